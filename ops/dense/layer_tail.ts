/**
 * The per-token layers after a Mamba block, for rows that are one token each, in one kernel
 * ({@link layerTail}): the output projection (plus the block's residual where the model has
 * one), LayerNorm, then the position-wise feed-forward network `W₂·GELU(W₁·n + b₁) + b₂ + n` and
 * its LayerNorm. The streaming form can run it per event after `mambaStep` (its `fusedTail`
 * option); as separate ops it is three products over a few thousand rows (which fill the GPU
 * poorly), two LayerNorms, GELU and a sum, each with a dispatch of its own.
 *
 * One workgroup takes a group of rows (`G`, as many as its memory holds, at most 16) and keeps
 * every intermediate in workgroup memory. In a product an invocation owns four adjacent output
 * columns (one where the width is not a multiple of 4) for several rows of the group, so each
 * weight it reads (from the weights transposed, `[in, out]`, read coalesced across the
 * invocations, four at a time) serves all those rows and each staged value four columns. Each sum runs over the input in
 * order with fused multiply-adds from zero and adds the bias after, as `matmul` does without a
 * split reduction, so the products equal the separate ops' bit for bit; the LayerNorms take the
 * mean and then the biased variance from sixteen partial sums per row, added in order (the
 * separate op merges its partial sums in a tree), so the result differs from the separate ops by
 * rounding only.
 * `layerTailReference` (`layer_tail_reference.ts`) computes the same in float64.
 *
 * Inference only: nothing is recorded on the tape.
 *
 * @module
 */
import { assertShape, launch, packParams } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { shaderGenerator } from "../wgsl/cache.ts";
import { foldWorkgroups, GRID_WGSL } from "../wgsl/grid.ts";
import { GELU_WGSL } from "../wgsl/math.ts";
import { stagedProductLayout, stagedProductWgsl } from "../wgsl/staged_product.ts";

/** The weights of a layer tail, in the layouts {@link layerTail} reads. */
export interface LayerTailWeights {
  /** The output projection transposed, `[inner, d]` (the Linear's weight is `[d, inner]`). */
  readonly outT: Tensor;
  /** The first LayerNorm's scale and shift, `[d]` each. */
  readonly norm1: { readonly weight: Tensor; readonly bias: Tensor };
  /** W₁ transposed, `[d, ffn]`, and its bias `[ffn]`. */
  readonly w1T: Tensor;
  /** W₁'s bias `[ffn]`. */
  readonly b1: Tensor;
  /** W₂ transposed, `[ffn, d]`. */
  readonly w2T: Tensor;
  /** W₂'s bias `[d]`. */
  readonly b2: Tensor;
  /** The feed-forward network's LayerNorm, `[d]` each. */
  readonly norm2: { readonly weight: Tensor; readonly bias: Tensor };
  /** The LayerNorms' variance epsilon. */
  readonly eps: number;
}

/**
 * How {@link layerTail} shares its products among a workgroup's invocations; no setting changes
 * a bit of its results (every sum runs over its input in order).
 */
export interface LayerTailTuning {
  /**
   * The fewest rows of the group an invocation sums in each product, from 1 to 16 (default 1):
   * fewer invocations at work, but each weight loaded serves that many rows.
   */
  readonly rowsPerInvocation?: number;
}

/** Invocations per workgroup. */
const THREADS = 256;
/** The most rows one workgroup takes. */
const MAX_ROWS = 16;

/** `tuning` with its default filled in, or a RangeError naming the setting. */
export function checkLayerTailTuning(tuning: LayerTailTuning): { rowsPerInvocation: number } {
  const rowsPerInvocation = tuning.rowsPerInvocation ?? 1;
  if (
    !(Number.isInteger(rowsPerInvocation) && rowsPerInvocation >= 1 &&
      rowsPerInvocation <= MAX_ROWS)
  ) {
    throw new RangeError(
      `layerTail: tuning.rowsPerInvocation must be an integer from 1 to ${MAX_ROWS}, got ` +
        `${rowsPerInvocation}`,
    );
  }
  return { rowsPerInvocation };
}

/** Sizes a {@link layerTail} kernel is compiled for. */
interface TailSizes {
  /** Input width (the Mamba block's d_inner). */
  inner: number;
  /** Model width d. */
  d: number;
  /** Feed-forward width. */
  ffn: number;
  /** Rows per workgroup. */
  rows: number;
  /** Whether the block's residual is added before the first LayerNorm. */
  residual: boolean;
  /** Whether row i is written to row `slot[i]` of a table ({@link layerTailInto}). */
  slotted: boolean;
  /** `LayerTailTuning.rowsPerInvocation`. */
  rowsPerInvocation: number;
}

/**
 * Whether a product of `n` output columns reads its weight four columns at a time (each
 * invocation then sums four columns: a quarter of the workgroup-memory reads per multiply-add).
 */
function vectorColumns(n: number): boolean {
  return n % 4 === 0;
}

/** Rows of workgroup memory each staged matrix needs (every product's rows, padded). */
function paddedRows(s: Omit<TailSizes, "slotted">): number {
  return Math.max(
    ...[s.d, s.ffn].map((n) =>
      stagedProductLayout(n, s.rows, THREADS, {
        spreadRows: true,
        vectorColumns: vectorColumns(n),
        rowsPerInvocation: s.rowsPerInvocation,
      }).paddedRows
    ),
    s.rows,
  );
}

/** Workgroup bytes the kernel for `s` takes. */
function workgroupBytes(s: Omit<TailSizes, "slotted">): number {
  return 4 * (paddedRows(s) * (s.inner + 2 * s.d + s.ffn) + 2 * s.rows + THREADS);
}

/**
 * WGSL of one product: `src` (`[rows, k]` in workgroup memory) times `weight` (`[k, n]`,
 * global), each sum finished by `finish(acc, c, g)` (a WGSL statement storing the value of row g,
 * column c), then a barrier; the rows are shared among the invocations where the columns are
 * fewer.
 */
function productCode(
  src: string,
  weight: string,
  k: number,
  n: number,
  s: TailSizes,
  finish: (acc: string, c: string, g: string) => string,
): string {
  const product = {
    src,
    weight,
    k,
    n,
    rows: s.rows,
    threads: THREADS,
    spreadRows: true,
    vectorColumns: vectorColumns(n),
    rowsPerInvocation: s.rowsPerInvocation,
    finish,
  };
  return `${stagedProductWgsl(product)}
  workgroupBarrier();`;
}

/** Invocations that share one row's sums in the LayerNorms (every row of a full group). */
const LANES = THREADS / MAX_ROWS;

/**
 * WGSL normalising the group's rows of `x` (`[rows, d]`) into `dst(g, c, value)`: each row's sum
 * and then its squared deviations from the mean are summed by {@link LANES} invocations (every
 * LANES-th value) whose partial sums one invocation adds in order.
 */
function layerNormCode(
  x: string,
  d: number,
  rows: number,
  weight: string,
  bias: string,
  store: (g: string, c: string, value: string) => string,
): string {
  // The partial sums of `term(v)` over each row's values, then their sum into `stats[2g + k]`.
  const rowSums = (term: (v: string) => string, k: number, finish: (sum: string) => string) =>
    `  {
    let g = t / ${LANES}u;
    var acc = 0.0;
    if (g < ${rows}u) {
      for (var c = t % ${LANES}u; c < ${d}u; c += ${LANES}u) { acc += ${
      term(`${x}[g * ${d}u + c]`)
    }; }
    }
    parts[t] = acc;
  }
  workgroupBarrier();
  if (t < ${rows}u) {
    var sum = 0.0;
    for (var l = 0u; l < ${LANES}u; l++) { sum += parts[t * ${LANES}u + l]; }
    stats[2u * t + ${k}u] = ${finish("sum")};
  }
  workgroupBarrier();`;
  return `${rowSums((v) => v, 0, (sum) => `${sum} / ${d}.0`)}
${
    rowSums((v) => `(${v} - stats[2u * g]) * (${v} - stats[2u * g])`, 1, (sum) =>
      `inverseSqrt(${sum} / ${d}.0 + p.eps)`)
  }
  for (var e = t; e < ${rows * d}u; e += ${THREADS}u) {
    let g = e / ${d}u;
    let c = e % ${d}u;
    ${store("g", "c", `(${x}[e] - stats[2u * g]) * stats[2u * g + 1u] * ${weight}[c] + ${bias}[c]`)}
  }
  workgroupBarrier();`;
}

const tailShader = shaderGenerator("layerTail", (s: TailSizes) => {
  const { inner, d, ffn, rows } = s;
  const padded = paddedRows(s);
  let binding = 1;
  const decl = (name: string, access = "read", element = "f32") =>
    `@group(0) @binding(${binding++}) var<storage, ${access}> ${name}: array<${element}>;`;
  // A product's weight, read four columns at a time where its width allows.
  const weight = (name: string, n: number) =>
    decl(name, "read", vectorColumns(n) ? "vec4<f32>" : "f32");
  const bindings = [
    decl("y"),
    ...(s.residual ? [decl("resid")] : []),
    weight("out_t", d),
    decl("ln1_w"),
    decl("ln1_b"),
    weight("w1_t", ffn),
    decl("b1"),
    weight("w2_t", d),
    decl("b2"),
    decl("ln2_w"),
    decl("ln2_b"),
    decl("out", "read_write"),
    ...(s.slotted ? [`@group(0) @binding(${binding++}) var<storage, read> slot: array<i32>;`] : []),
  ].join("\n");
  return /* wgsl */ `
struct P { rows: u32, gx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
${bindings}
var<workgroup> ys: array<f32, ${padded * inner}>;
var<workgroup> ms: array<f32, ${padded * d}>;
var<workgroup> hs: array<f32, ${padded * d}>;
var<workgroup> acts: array<f32, ${padded * ffn}>;
var<workgroup> stats: array<f32, ${2 * rows}>;
var<workgroup> parts: array<f32, ${THREADS}>;
${GELU_WGSL}
${GRID_WGSL}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let u0 = grid_index(wid, p.gx) * ${rows}u;
  if (u0 >= p.rows) { return; }
  // Rows past the last stay zero (workgroup memory starts zeroed) and are never written out.
  let live = min(${rows}u, p.rows - u0);
  for (var e = t; e < live * ${inner}u; e += ${THREADS}u) { ys[e] = y[u0 * ${inner}u + e]; }
  workgroupBarrier();
  // The output projection (and the residual).
${
    productCode("ys", "out_t", inner, d, s, (acc, c, g) =>
      s.residual
        ? `if (${g} < live) { ms[${g} * ${d}u + ${c}] = ${acc} + resid[(u0 + ${g}) * ${d}u + ${c}]; }`
        : `ms[${g} * ${d}u + ${c}] = ${acc};`)
  }
${layerNormCode("ms", d, rows, "ln1_w", "ln1_b", (g, c, v) => `hs[${g} * ${d}u + ${c}] = ${v};`)}
  // W₁, its bias and the exact GELU.
${
    productCode("hs", "w1_t", d, ffn, s, (acc, c, g) =>
      `let a = ${acc} + b1[${c}]; acts[${g} * ${ffn}u + ${c}] = gelu_(a);`)
  }
  // W₂, its bias and the feed-forward network's residual (its input).
${
    productCode("acts", "w2_t", ffn, d, s, (acc, c, g) =>
      `ms[${g} * ${d}u + ${c}] = (${acc} + b2[${c}]) + hs[${g} * ${d}u + ${c}];`)
  }
${
    layerNormCode(
      "ms",
      d,
      rows,
      "ln2_w",
      "ln2_b",
      (g, c, v) =>
        `if (${g} < live) { out[${
          s.slotted ? `u32(slot[u0 + ${g}])` : `(u0 + ${g})`
        } * ${d}u + ${c}] = ${v}; }`,
    )
  }
}`;
});

/** The rows per workgroup for `s` on this device: the most (≤ 16) whose memory fits. */
function rowsPerWorkgroup(s: Omit<TailSizes, "rows" | "slotted">): number {
  const limit = runtime().info.maxWorkgroupBytes;
  for (let rows = MAX_ROWS; rows >= 1; rows--) {
    if (workgroupBytes({ ...s, rows }) <= limit) return rows;
  }
  throw new RangeError(
    `layerTail: one row of d_inner ${s.inner}, d ${s.d} and feed-forward ${s.ffn} needs ` +
      `${workgroupBytes({ ...s, rows: 1 })} bytes of workgroup memory, more than this device's ` +
      `${limit}; run the layers as separate ops`,
  );
}

/**
 * `LayerNorm₂(FFN(n) + n)` with `n = LayerNorm₁(y·outᵀ [+ residual])` and `FFN(n) = W₂·GELU(W₁·n
 * + b₁) + b₂`, for rows of one token each.
 * @param y `[rows, inner]`: the Mamba block's output before its output projection
 * @param weights the projections (transposed), biases and LayerNorms
 * @param residual `[rows, d]` added after the output projection, or null (one-layer Mamba4Rec)
 * @param tuning how the products are shared among invocations (the results are the same)
 * @returns `[rows, d]`
 */
export function layerTail(
  y: Tensor,
  weights: LayerTailWeights,
  residual: Tensor | null,
  tuning: LayerTailTuning = {},
): Tensor {
  const out = Tensor.empty([y.shape[0], weights.outT.shape[1] ?? 0], "f32", "layerTail");
  launchTail(y, weights, residual, out, null, tuning);
  return out;
}

/**
 * {@link layerTail} written straight into a table: row i of the result goes to row `slots[i]` of
 * `table` (`[capacity, d]`, updated in place), as `writeSlotRows(table, slots, layerTail(…))`
 * would write it, one dispatch fewer.
 * @param y `[rows, inner]`: the Mamba block's output before its output projection
 * @param weights the projections (transposed), biases and LayerNorms
 * @param residual `[rows, d]` added after the output projection, or null (one-layer Mamba4Rec)
 * @param table `[capacity, d]`, its rows `slots` overwritten
 * @param slots i32 `[rows]`: distinct rows of `table`
 * @param tuning how the products are shared among invocations (the results are the same)
 */
export function layerTailInto(
  y: Tensor,
  weights: LayerTailWeights,
  residual: Tensor | null,
  table: Tensor,
  slots: Tensor,
  tuning: LayerTailTuning = {},
): void {
  const d = weights.outT.shape[1] ?? 0;
  assertShape("layerTail", "table", table, [table.shape[0], d]);
  assertShape("layerTail", "slots", slots, [y.shape[0]], "i32");
  launchTail(y, weights, residual, table, slots, tuning);
}

/** Checks the shapes and launches the tail into `out` (its rows `slots`, or in order). */
function launchTail(
  y: Tensor,
  weights: LayerTailWeights,
  residual: Tensor | null,
  out: Tensor,
  slots: Tensor | null,
  tuning: LayerTailTuning,
): void {
  const op = "layerTail";
  const { rowsPerInvocation } = checkLayerTailTuning(tuning);
  const [inner, d] = weights.outT.shape;
  const ffn = weights.w1T.shape[1];
  const rows = y.shape[0];
  if (weights.outT.shape.length !== 2 || weights.w1T.shape.length !== 2 || !(rows >= 1)) {
    throw new RangeError(
      `${op}: outT must be [inner, d], w1T [d, ffn] and y [rows ≥ 1, inner], got ` +
        `${weights.outT.describe()}, ${weights.w1T.describe()} and ${y.describe()}`,
    );
  }
  assertShape(op, "y", y, [rows, inner]);
  if (residual) assertShape(op, "residual", residual, [rows, d]);
  assertShape(op, "w1T", weights.w1T, [d, ffn]);
  assertShape(op, "b1", weights.b1, [ffn]);
  assertShape(op, "w2T", weights.w2T, [ffn, d]);
  assertShape(op, "b2", weights.b2, [d]);
  for (const [name, norm] of [["norm1", weights.norm1], ["norm2", weights.norm2]] as const) {
    assertShape(op, `${name}.weight`, norm.weight, [d]);
    assertShape(op, `${name}.bias`, norm.bias, [d]);
  }
  const base = { inner, d, ffn, residual: residual !== null, rowsPerInvocation };
  const sizes = { ...base, rows: rowsPerWorkgroup(base), slotted: slots !== null };
  const groups = foldWorkgroups(Math.ceil(rows / sizes.rows));
  const { norm1, norm2 } = weights;
  launch(
    op,
    tailShader(sizes),
    packParams([rows, groups[0]], [weights.eps]),
    [
      y,
      ...(residual ? [residual] : []),
      weights.outT,
      norm1.weight,
      norm1.bias,
      weights.w1T,
      weights.b1,
      weights.w2T,
      weights.b2,
      norm2.weight,
      norm2.bias,
      out,
      ...(slots ? [slots] : []),
    ],
    groups,
  );
}
