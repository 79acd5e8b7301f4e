/**
 * The forward kernel of Caser's horizontal convolutions, register-tiled.
 *
 * Work. For a row, height h and filter f, every position t = 0 … L − h is one dot product of the
 * filter (h·E values) with the window's h rows of x (h·E contiguous values), so the whole forward
 * is `nh · E · Σ_h (L − h + 1) · h = nh · E · L(L + 1)(L + 2)/6` multiply-adds per row.
 *
 * Layout. One invocation per (row, height, group of {@link filterTile} filters) walks every
 * position of that height in tiles, summing all of a tile's (filter, position) pairs in registers:
 * each step reads a few rows of x and a few rows of each filter and adds every product they make,
 * so that a value of x feeds several filters and positions, and a filter value several positions
 * ({@link ForwardSchedule} says how many). A workgroup holds {@link FORWARD_ROWS} consecutive rows
 * of one height and one filter group: its invocations read the same filter values at the same time
 * (one broadcast read per workgroup) and run the same number of steps. They read x from a copy
 * transposed to `[L · E, B]` ({@link TRANSPOSE_X}), where the rows' values of one step lie side by
 * side, so that a workgroup's read of a step is a few whole cache lines rather than one line per
 * row. The last tile of a height may run past its last position: those sums read x's last row
 * instead and are never compared. Workgroups are numbered by their height's work, largest first
 * (heights near (L + 1)/2 hold the most, since (L − h + 1)·h is symmetric about it), so that the
 * lightest heights fill the end of the dispatch.
 *
 * Results. Each sum starts from the bias and adds the window's values in order, as a plain loop
 * over the window does, and positions are compared in order: the first position with the largest
 * pre-activation wins ties; ReLU then max equals max then ReLU, so the op saves only that position
 * per output (−1 where the maximum is ≤ 0: ReLU passes no gradient there).
 *
 * @module
 */
import { HORIZONTAL_PRELUDE } from "./horizontal_prelude.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/** The most filters an invocation sums at once. */
const MAX_TILE_FILTERS = 8;

/** Rows of the batch in one workgroup (one per invocation). */
export const FORWARD_ROWS = 64;

/**
 * The filters one invocation sums at once for `filters` per height: the largest divisor of
 * `filters` up to 8, so that every group is full.
 */
export function filterTile(filters: number): number {
  for (let tile = Math.min(filters, MAX_TILE_FILTERS); tile > 1; tile--) {
    if (filters % tile === 0) return tile;
  }
  return 1;
}

/** The forward workgroups: heights × filter groups × blocks of {@link FORWARD_ROWS} rows. */
export function forwardWorkgroups(batch: number, length: number, filters: number): number {
  return length * (filters / filterTile(filters)) * Math.ceil(batch / FORWARD_ROWS);
}

/** Invocations per workgroup of the transpose. */
export const TRANSPOSE_WG = 64;

/**
 * The transpose of x `[B, L · E]` to `[L · E, B]` in units of `unit` values (one invocation per
 * unit, writing side by side). The parameter block's `n` is the number of units.
 */
function transposeShader(unit: 1 | 4): string {
  const U = unit === 4 ? "vec4f" : "f32";
  return /* wgsl */ `
${HORIZONTAL_PRELUDE}
@group(0) @binding(1) var<storage, read> x: array<${U}>;
@group(0) @binding(2) var<storage, read_write> xt: array<${U}>;
// Invocation k = (t · E/${unit} + e) · B + row.
@compute @workgroup_size(${TRANSPOSE_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = grid_index(gid, p.stride);
  if (k >= p.n) { return; }
  let row = k % p.batch;
  xt[k] = x[row * (p.length * p.dim / ${unit}u) + k / p.batch];
}`;
}

/** The transposes of x by unit, for the forward kernel. */
export const TRANSPOSE_X = { 1: transposeShader(1), 4: transposeShader(4) };

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * How an invocation walks a tile of positions: `rows × shifts` positions, `t0 + a·rows + b`
 * (a < shifts, b < rows). At step s the positions of group a are at row s − a·rows of their
 * windows, so every group reads the same `rows` rows of x (t0 + s + b) and each group its own
 * row of each filter: a step reads `rows` values of x and `shifts × tile filters` filter values
 * for `rows × shifts × tile filters` products. Every sum still adds its window in order.
 */
export interface ForwardSchedule {
  /** Positions of a group, side by side: rows of x each step reads. */
  readonly rows: number;
  /** Groups, each `rows` positions further: rows of each filter each step reads. */
  readonly shifts: number;
}

/**
 * The schedule the op uses: 4 × 2 positions, reading 4 values of x and 16 filter values for 64
 * products with 8 filters (each x value feeding 16 sums, each filter value 4). `bench/caser_conv.ts`
 * times it beside others.
 */
export const DEFAULT_SCHEDULE: ForwardSchedule = { rows: 4, shifts: 2 };

/**
 * The forward kernel reading x and the filters in units of `unit` values (vec4 when E is a
 * multiple of 4: a window and a filter are then whole vec4s, and each step is one `dot`), with
 * `tile` filters per invocation and tiles of positions walked by `schedule`. The parameter
 * block's `n` is the number of workgroups and `stride` the width of their folded grid.
 */
function forwardShader(unit: 1 | 4, tile: number, schedule: ForwardSchedule): string {
  const U = unit === 4 ? "vec4f" : "f32";
  const { rows, shifts } = schedule;
  const size = rows * shifts;
  const F = range(tile), T = range(size), A = range(shifts), B = range(rows);
  const product = (f: number, b: number) => unit === 4 ? `dot(w${f}, x${b})` : `w${f} * x${b}`;
  const lines = (items: string[], indent: string) => items.join(`\n${indent}`);
  // Group a's step: its filter values, then its products (position a·rows + b with x row b).
  const groupStep = (a: number, indent: string) =>
    lines([
      ...F.map((f) => `let w${f} = weight[wb${f} + wr${a} + e];`),
      ...F.flatMap((f) => B.map((b) => `s${f}_${a * rows + b} += ${product(f, b)};`)),
    ], indent);
  // Group a's row of its windows at step s, and whether s is in them: [a·rows, h + a·rows).
  const windowRow = (a: number) => a === 0 ? "s" : `(s - ${a * rows}u)`;
  const inWindows = (a: number) => a === 0 ? "s < h" : `s >= ${a * rows}u && s < h + ${a * rows}u`;
  // With one group, every step is in the windows.
  const step = shifts === 1 ? groupStep(0, "        ") : lines(
    A.map((a) => `if (on${a}) {\n          ${groupStep(a, "          ")}\n        }`),
    "        ",
  );
  const compare = T.map((q) =>
    `    if (t0 + ${q}u < positions) {\n` +
    F.map((f) =>
      `      if (t0 + ${q}u == 0u || s${f}_${q} > best${f}) { best${f} = s${f}_${q}; ` +
      `at${f} = t0 + ${q}u; }`
    ).join("\n") + "\n    }"
  ).join("\n");
  return /* wgsl */ `
${HORIZONTAL_PRELUDE}
@group(0) @binding(1) var<storage, read> xt: array<${U}>;
@group(0) @binding(2) var<storage, read> weight: array<${U}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> winner: array<i32>;
// The height of workgroup rank j when heights are ranked by their work (L − h + 1)·h, largest
// first: the middle height m = ⌊(L + 1)/2⌋, then m + 1, m − 1, m + 2, m − 2, …
fn height_by_work(j: u32) -> u32 {
  let m = (p.length + 1u) / 2u;
  if (j == 0u) { return m; }
  if ((j & 1u) == 1u) { return m + (j + 1u) / 2u; }
  return m - j / 2u;
}
// Workgroup g = (height rank · groups + filter group) · blocks + block of ${FORWARD_ROWS} rows;
// offsets count units of ${unit}; unit e of x's row r in batch row b is xt[(r · E/${unit} + e) · B + b].
// Tiles of ${size} positions, t0 + a·${rows} + b (a < ${shifts}, b < ${rows}); sum s{f}_{q} is filter
// f0 + f at position t0 + q.
@compute @workgroup_size(${FORWARD_ROWS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
  let g = grid_index(wid, p.stride);
  if (g >= p.n) { return; }
  let blocks = (p.batch + ${FORWARD_ROWS - 1}u) / ${FORWARD_ROWS}u;
  let groups = p.filters / ${tile}u;
  let h = height_by_work(g / (blocks * groups));
  let f0 = ((g / blocks) % groups) * ${tile}u;
  let row = (g % blocks) * ${FORWARD_ROWS}u + lane;
  if (row >= p.batch) { return; }
  let positions = p.length - h + 1u;
  let dim = p.dim / ${unit}u;
  let w_start = height_offset(h) / ${unit}u + f0 * h * dim;
  ${lines(F.map((f) => `let wb${f} = w_start + ${f}u * h * dim;`), "  ")}
  ${lines(F.map((f) => `let c${f} = bias[(h - 1u) * p.filters + f0 + ${f}u];`), "  ")}
  ${lines(F.map((f) => `var best${f} = 0.0;\n  var at${f} = 0u;`), "  ")}
  for (var t0 = 0u; t0 < positions; t0 += ${size}u) {
    ${lines(F.flatMap((f) => T.map((q) => `var s${f}_${q} = c${f};`)), "    ")}
    for (var s = 0u; s < h + ${(shifts - 1) * rows}u; s++) {
      ${
    lines(
      B.map((b) => `let xr${b} = min(t0 + s + ${b}u, p.length - 1u) * dim * p.batch + row;`),
      "      ",
    )
  }
      ${lines(A.map((a) => `let wr${a} = ${windowRow(a)} * dim;`), "      ")}
      ${shifts === 1 ? "" : lines(A.map((a) => `let on${a} = ${inWindows(a)};`), "      ")}
      for (var e = 0u; e < dim; e++) {
        ${lines(B.map((b) => `let x${b} = xt[xr${b} + e * p.batch];`), "        ")}
        ${step}
      }
    }
${compare}
  }
  let o = (row * p.length + h - 1u) * p.filters + f0;
  ${lines(F.map((f) => `out[o + ${f}u] = max(best${f}, 0.0);`), "  ")}
  ${lines(F.map((f) => `winner[o + ${f}u] = select(-1, i32(at${f}), best${f} > 0.0);`), "  ")}
}`;
}

/** {@link forwardShader}, generated once per unit, tile and schedule. */
const forwardSource = shaderGenerator(
  "caserHorizontalConv",
  forwardShader,
  (unit, tile, { rows, shifts }) => `${unit}/${tile}/${rows}/${shifts}`,
);

/**
 * The forward kernel's WGSL for reads in units of `unit`, `tile` filters per invocation and
 * tiles of positions walked by `schedule` (1 to 16 positions).
 */
export function forwardKernel(unit: 1 | 4, tile: number, schedule: ForwardSchedule): string {
  const { rows, shifts } = schedule;
  if (![rows, shifts].every(Number.isInteger) || rows < 1 || shifts < 1 || rows * shifts > 16) {
    throw new RangeError(
      `caserHorizontalConv: a schedule needs whole rows ≥ 1 and shifts ≥ 1 with rows × shifts ` +
        `≤ 16 positions per tile; got rows ${rows}, shifts ${shifts}`,
    );
  }
  return forwardSource(unit, tile, schedule);
}
