/**
 * WGSL of a small product inside a kernel: rows a workgroup staged in workgroup memory times a
 * weight in storage, each output column (or four adjacent ones, read as vectors) summed by one
 * invocation for one or several rows, so each weight it loads serves all of them. Kernels that
 * fuse a layer's products for a few rows (the streaming step, the layer tail) share it.
 *
 * Each sum runs over the reduction in order with fused multiply-adds from zero, as `matmul` sums
 * without a split reduction, so the results equal matmul's bit for bit. An invocation loads
 * {@link WEIGHT_LOADS} weights (or as many as asked) before it multiplies them: a workgroup's few
 * invocations against
 * the latency of a load leave the products waiting on memory otherwise (one load at a time made
 * the layer tail take 0.40 ms for 10,000 rows on an H100, against 0.11 ms for separate ops).
 *
 * @module
 */

/** Weights an invocation loads before it multiplies them: that many loads in flight at once. */
export const WEIGHT_LOADS = 8;

/** How a product's output columns and rows are shared among a workgroup's invocations. */
export interface StagedProductLayout {
  /** Columns (or, with vector columns, groups of four) taken at once, one per invocation. */
  readonly columns: number;
  /** Groups of invocations, each taking its own rows of every column it takes. */
  readonly slices: number;
  /** Rows each invocation sums. */
  readonly perThread: number;
  /** Rows the staged matrix needs: slices × rows per invocation (≥ the rows). */
  readonly paddedRows: number;
}

/** How a product is shared among invocations: the choices of {@link StagedProduct}. */
export type StagedProductSharing = Pick<
  StagedProduct,
  "spreadRows" | "vectorColumns" | "rowsPerInvocation"
>;

/**
 * The layout of a product of `n` columns over `rows` rows on `threads` invocations: one
 * invocation a column (with `vectorColumns`, four adjacent columns), and with `spreadRows`, where
 * there are fewer columns than invocations, the rows shared among slices of invocations (at
 * least `rowsPerInvocation` rows each, so no more slices than rows; otherwise each invocation
 * sums every row).
 */
export function stagedProductLayout(
  n: number,
  rows: number,
  threads: number,
  { spreadRows, vectorColumns = false, rowsPerInvocation = 1 }: StagedProductSharing,
): StagedProductLayout {
  if (vectorColumns && n % 4 !== 0) {
    throw new RangeError(`stagedProductLayout: vector columns need n a multiple of 4, got ${n}`);
  }
  const columns = Math.min(vectorColumns ? n / 4 : n, threads);
  const most = Math.ceil(rows / rowsPerInvocation);
  const slices = spreadRows ? Math.max(1, Math.min(Math.floor(threads / columns), most)) : 1;
  const perThread = Math.ceil(rows / slices);
  return { columns, slices, perThread, paddedRows: slices * perThread };
}

/** One product for {@link stagedProductWgsl}. */
export interface StagedProduct {
  /** The staged rows, `[paddedRows, k]` in workgroup memory. */
  readonly src: string;
  /** The weight `[k, n]` in storage (a Linear's weight transposed). */
  readonly weight: string;
  /** The reduction length. */
  readonly k: number;
  /** Output columns. */
  readonly n: number;
  /** Rows with a result. */
  readonly rows: number;
  /** Invocations of the workgroup; `t` is the local invocation index. */
  readonly threads: number;
  /** Share the rows among slices of invocations ({@link stagedProductLayout}). */
  readonly spreadRows: boolean;
  /**
   * Each invocation takes four adjacent columns, reading the weight as `array<vec4<f32>>`
   * (`weight` names such a binding; n a multiple of 4): each value read from `src` then serves
   * four sums and each load fetches four weights. Every sum still runs over the reduction in
   * order (`fma` on vectors works component by component), so the results are the same.
   */
  readonly vectorColumns?: boolean;
  /** Weights an invocation loads before it multiplies them (default {@link WEIGHT_LOADS}). */
  readonly loads?: number;
  /**
   * With `spreadRows`, the fewest rows an invocation sums (default 1): fewer slices, each weight
   * loaded serving more rows ({@link stagedProductLayout}).
   */
  readonly rowsPerInvocation?: number;
  /**
   * WGSL statements taking row g's value `acc` of column c (expressions), run in a block of their
   * own per row.
   */
  readonly finish: (acc: string, c: string, g: string) => string;
}

/**
 * WGSL computing a product of rows staged in workgroup memory (see the module documentation),
 * in a block of its own; the caller puts a barrier after it before anything reads the results.
 */
export function stagedProductWgsl(
  {
    src,
    weight,
    k,
    n,
    rows,
    threads,
    spreadRows,
    vectorColumns = false,
    loads: inFlight = WEIGHT_LOADS,
    rowsPerInvocation = 1,
    finish,
  }: StagedProduct,
): string {
  const { columns, slices, perThread, paddedRows } = stagedProductLayout(n, rows, threads, {
    spreadRows,
    vectorColumns,
    rowsPerInvocation,
  });
  // With vector columns, `c` counts groups of four columns and the weight has n / 4 per row.
  const groups = vectorColumns ? n / 4 : n;
  const zero = vectorColumns ? "vec4<f32>()" : "0.0";
  const value = (v: string) => (vectorColumns ? `vec4<f32>(${v})` : v);
  const accs = Array.from({ length: perThread }, (_, i) => i);
  const loads = Array.from({ length: inFlight }, (_, u) => u);
  const row = (i: number) => `(slice + ${i * slices}u)`;
  const products = (w: string, kk: string) =>
    accs.map((i) =>
      `        acc_${i} = fma(${value(`${src}[${row(i)} * ${k}u + ${kk}]`)}, ${w}, acc_${i});`
    ).join("\n");
  const store = (i: number) =>
    vectorColumns
      ? [0, 1, 2, 3].map((j) => `{ ${finish(`acc_${i}[${j}]`, `(4u * c + ${j}u)`, row(i))} }`)
        .join(" ")
      : finish(`acc_${i}`, "c", row(i));
  return `  if (t < ${slices * columns}u) {
    let slice = t / ${columns}u;
    for (var c = t % ${columns}u; c < ${groups}u; c += ${columns}u) {
${accs.map((i) => `      var acc_${i} = ${zero};`).join("\n")}
      var k = 0u;
      for (; k + ${inFlight}u <= ${k}u; k += ${inFlight}u) {
${loads.map((u) => `        let w${u} = ${weight}[(k + ${u}u) * ${groups}u + c];`).join("\n")}
${loads.map((u) => products(`w${u}`, `k + ${u}u`)).join("\n")}
      }
      for (; k < ${k}u; k++) {
        let w = ${weight}[k * ${groups}u + c];
${products("w", "k")}
      }
${
    accs.map((i) =>
      paddedRows === rows
        ? `      { ${store(i)} }`
        : `      if (${row(i)} < ${rows}u) { ${store(i)} }`
    ).join("\n")
  }
    }
  }`;
}
