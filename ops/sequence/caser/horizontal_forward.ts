/**
 * The forward kernel of Caser's horizontal convolutions, register-tiled.
 *
 * Work. For a row, height h and filter f, every position t = 0 … L − h is one dot product of the
 * filter (h·E values) with the window's h rows of x (h·E contiguous values), so the whole forward
 * is `nh · E · Σ_h (L − h + 1) · h = nh · E · L(L + 1)(L + 2)/6` multiply-adds per row.
 *
 * Layout. One invocation per (row, height, group of {@link filterTile} filters) walks every
 * position of that height in tiles of {@link TILE_POSITIONS}: for each step of the window it
 * reads the step's value of each of the tile's windows once and the step's value of each of the
 * group's filters once, and adds all their products in registers (tile filters × tile positions
 * sums), so a value of x feeds every filter of the group and a filter value every position of the
 * tile. A workgroup holds {@link FORWARD_ROWS} consecutive rows of one height and one filter group:
 * its invocations read the same filter values at the same time (one broadcast read per
 * workgroup) and run the same number of steps. They read x from a copy transposed to
 * `[L · E, B]` ({@link TRANSPOSE_X}), where the rows' values of one step lie side by side, so that
 * a workgroup's read of a step is a few whole cache lines rather than one line per row.
 * Workgroups are numbered by their height's work, largest first (heights near (L + 1)/2 hold the
 * most, since (L − h + 1)·h is symmetric about it), so that the lightest heights fill the end of
 * the dispatch.
 *
 * Results. Each sum starts from the bias and adds the window's values in order, as a plain loop
 * over the window does, and positions are compared in order: the first position with the largest
 * pre-activation wins ties; ReLU then max equals max then ReLU, so the op saves only that position
 * per output (−1 where the maximum is ≤ 0: ReLU passes no gradient there).
 *
 * @module
 */
import { HORIZONTAL_PRELUDE } from "./horizontal_prelude.ts";

/** Positions each invocation sums at once (a tile past the last position repeats the last one). */
export const TILE_POSITIONS = 4;

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
 * The forward kernel reading x and the filters in units of `unit` values (vec4 when E is a
 * multiple of 4: a window and a filter are then whole vec4s, and each step is one `dot`), with
 * `tile` filters per invocation. The parameter block's `n` is the number of workgroups and
 * `stride` the width of their folded grid.
 */
function forwardShader(unit: 1 | 4, tile: number): string {
  const U = unit === 4 ? "vec4f" : "f32";
  const F = range(tile), T = range(TILE_POSITIONS);
  const product = (f: number, q: number) => unit === 4 ? `dot(w${f}, x${q})` : `w${f} * x${q}`;
  const each = (fn: (f: number) => string) => F.map(fn).join("\n  ");
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
// offsets and spans count units of ${unit}; x's unit j of row b is xt[j · B + b].
@compute @workgroup_size(${FORWARD_ROWS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
  let g = grid_index(wid, p.stride);
  if (g >= p.n) { return; }
  let blocks = (p.batch + ${FORWARD_ROWS - 1}u) / ${FORWARD_ROWS}u;
  let groups = p.filters / ${tile}u;
  let h = height_by_work(g / (blocks * groups));
  let f0 = ((g / blocks) % groups) * ${tile}u;
  let first = (g % blocks) * ${FORWARD_ROWS}u + lane;
  let row = min(first, p.batch - 1u);
  let positions = p.length - h + 1u;
  let dim = p.dim / ${unit}u;
  let span = h * dim;
  let w_start = height_offset(h) / ${unit}u + f0 * span;
  ${each((f) => `let wb${f} = w_start + ${f}u * span;`)}
  ${each((f) => `let c${f} = bias[(h - 1u) * p.filters + f0 + ${f}u];`)}
  ${each((f) => `var best${f} = 0.0;\n  var at${f} = 0u;`)}
  for (var t0 = 0u; t0 < positions; t0 += ${TILE_POSITIONS}u) {
    ${
    T.map((q) => `let xb${q} = min(t0 + ${q}u, positions - 1u) * dim * p.batch + row;`).join(
      "\n    ",
    )
  }
    ${F.flatMap((f) => T.map((q) => `var s${f}_${q} = c${f};`)).join("\n    ")}
    for (var j = 0u; j < span; j++) {
      let jb = j * p.batch;
      ${T.map((q) => `let x${q} = xt[xb${q} + jb];`).join("\n      ")}
      ${F.map((f) => `let w${f} = weight[wb${f} + j];`).join("\n      ")}
      ${F.flatMap((f) => T.map((q) => `s${f}_${q} += ${product(f, q)};`)).join("\n      ")}
    }
${compare}
  }
  if (first < p.batch) {
    let o = (row * p.length + h - 1u) * p.filters + f0;
    ${F.map((f) => `out[o + ${f}u] = max(best${f}, 0.0);`).join("\n    ")}
    ${F.map((f) => `winner[o + ${f}u] = select(-1, i32(at${f}), best${f} > 0.0);`).join("\n    ")}
  }
}`;
}

const shaders = new Map<string, string>();

/** The forward kernel's WGSL for reads in units of `unit` and `tile` filters per invocation. */
export function forwardKernel(unit: 1 | 4, tile: number): string {
  const key = `${unit}/${tile}`;
  let wgsl = shaders.get(key);
  if (wgsl === undefined) {
    wgsl = forwardShader(unit, tile);
    shaders.set(key, wgsl);
  }
  return wgsl;
}
