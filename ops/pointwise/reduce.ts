/**
 * Reductions: sums and means over the last dimension (one workgroup per row, a tree in workgroup
 * memory) and sums over leading dimensions (column chunks, repeated until one row is left; the
 * gradient of a broadcast operand). Both are deterministic: no atomics.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { numel, Tensor } from "../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL, MAX_WORKGROUPS_PER_DIMENSION } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";

const ROW_WG = 256;
/** Invocations per workgroup of the kernel that expands row gradients back over the row. */
const EXPAND_WG = 256;

const ROW_SUM = /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, ${ROW_WG}>;
${GRID_WGSL}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = grid_index(wid, p.gx);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += ${ROW_WG}u) { s += x[base + c]; }
  ${workgroupReduceWgsl({ array: "part", size: ROW_WG, combine: "sum", value: "s" })}
  if (lid == 0u) { out[row] = part[0] * p.scale; }
}`;

const EXPAND_ROWS = /* wgsl */ `
struct P { n: u32, stride: u32, cols: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${EXPAND_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  out[i] = g[i / p.cols] * p.scale;
}`;

function rowReduce(op: string, x: Tensor, mean: boolean): Tensor {
  assertDType(op, x, "f32");
  if (x.shape.length === 0) throw new RangeError(`${op}: needs at least one dimension`);
  const cols = x.shape[x.shape.length - 1];
  const rows = x.size / Math.max(cols, 1);
  const scale = mean ? 1 / cols : 1;
  const out = Tensor.empty(x.shape.slice(0, -1), "f32", op);
  const g = grid(rows, 1);
  launch(op, ROW_SUM, packParams([rows, cols, g.groups[0]], [scale]), [x, out], g.groups);
  return record(out, op, [x], (gy) => {
    const gx = Tensor.empty(x.shape, "f32", `${op} backward`);
    const e = grid(x.size, EXPAND_WG);
    launch(
      `${op} backward`,
      EXPAND_ROWS,
      packParams([x.size, e.stride, cols], [scale]),
      [gy, gx],
      e.groups,
    );
    return [gx];
  });
}

/** Sums over the last dimension: shape `[..., n]` → `[...]`. */
export const rowSum = (x: Tensor): Tensor => rowReduce("rowSum", x, false);
/** Means over the last dimension: shape `[..., n]` → `[...]`. */
export const rowMean = (x: Tensor): Tensor => rowReduce("rowMean", x, true);

/** Sum of all elements, as a one-element tensor of shape `[]`. */
export function sumAll(x: Tensor): Tensor {
  const flat = new Tensor(x.storage, [1, x.size], x.dtype);
  const s = rowReduce("sumAll", flat, false);
  flat.dispose();
  const out = new Tensor(s.storage, [], "f32");
  s.dispose();
  return record(out, "sumAll", [x], (g) => {
    const gx = Tensor.empty(x.shape, "f32", "sumAll backward");
    const e = grid(x.size, EXPAND_WG);
    launch(
      "sumAll backward",
      EXPAND_ROWS,
      packParams([x.size, e.stride, x.size], [1]),
      [g, gx],
      e.groups,
    );
    return [gx];
  });
}

/** Mean of all elements, as a one-element tensor of shape `[]`. */
export function meanAll(x: Tensor): Tensor {
  const flat = new Tensor(x.storage, [x.size], x.dtype);
  const m = rowReduce("meanAll", flat, true);
  flat.dispose();
  const out = new Tensor(m.storage, [], "f32");
  m.dispose();
  return record(out, "meanAll", [x], (g) => {
    const gx = Tensor.empty(x.shape, "f32", "meanAll backward");
    const e = grid(x.size, EXPAND_WG);
    launch(
      "meanAll backward",
      EXPAND_ROWS,
      packParams([x.size, e.stride, x.size], [1 / x.size]),
      [g, gx],
      e.groups,
    );
    return [gx];
  });
}

const COL_WG = 64;
/** Rows each invocation of a column pass sums, in order (more only past 65,535 chunks). */
const COL_CHUNK = 64;

const COL_SUM = /* wgsl */ `
struct P { rows: u32, cols: u32, chunk: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${COL_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  // Columns fold over x and z (more than 65,535 workgroups of columns), chunks of rows over y.
  let c = grid_index(gid.xzy, p.gx * ${COL_WG}u);
  if (c >= p.cols) { return; }
  let r0 = gid.y * p.chunk;
  let r1 = min(r0 + p.chunk, p.rows);
  var s = 0.0;
  for (var r = r0; r < r1; r++) { s += x[r * p.cols + c]; }
  out[gid.y * p.cols + c] = s;
}`;

/** Columns of one workgroup of the last two passes ({@link COL_SUM_LAST_TWO}). */
const LAST_COLS = 32;
/** Chunk lanes of one workgroup of the last two passes: each sums every 8th chunk. */
const LAST_LANES = 8;

/**
 * The last two column passes in one dispatch, for at most 64 chunks of 64 rows: lanes sum the
 * chunks (each in row order, as {@link COL_SUM} does), then one invocation per column sums the
 * chunk sums in chunk order, as a second pass of {@link COL_SUM} would: the same result, bit for
 * bit, one dispatch fewer.
 */
const COL_SUM_LAST_TWO = /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> sums: array<f32, ${COL_CHUNK * LAST_COLS}>;
${GRID_WGSL}
@compute @workgroup_size(${LAST_COLS}, ${LAST_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = grid_index(wid, p.gx) * ${LAST_COLS}u + lid.x;
  let chunks = (p.rows + ${COL_CHUNK - 1}u) / ${COL_CHUNK}u;
  if (c < p.cols) {
    for (var j = lid.y; j < chunks; j += ${LAST_LANES}u) {
      let r1 = min((j + 1u) * ${COL_CHUNK}u, p.rows);
      var s = 0.0;
      for (var r = j * ${COL_CHUNK}u; r < r1; r++) { s += x[r * p.cols + c]; }
      sums[j * ${LAST_COLS}u + lid.x] = s;
    }
  }
  workgroupBarrier();
  if (c < p.cols && lid.y == 0u) {
    var s = 0.0;
    for (var j = 0u; j < chunks; j++) { s += sums[j * ${LAST_COLS}u + lid.x]; }
    out[c] = s;
  }
}`;

/**
 * Sums `x` over its leading dimensions down to `shape` (a suffix of `x.shape`), e.g. the
 * gradient of a bias. Not recorded on the tape.
 *
 * The sum is a fixed tree: passes of chunks of 64 rows (more only past 65,535 chunks), each
 * summed in row order, until one row is left; the last two passes run as one dispatch where
 * they can. Deterministic, and independent of how the passes are dispatched.
 */
export function sumLeading(x: Tensor, shape: readonly number[]): Tensor {
  const cols = numel(shape);
  let rows = x.size / cols;
  let cur = x;
  while (rows > 1 || cur === x) {
    if (rows > COL_CHUNK && rows <= COL_CHUNK * COL_CHUNK) {
      const out = Tensor.empty(shape, "f32", "sumLeading");
      const groups = foldWorkgroups(Math.ceil(cols / LAST_COLS));
      launch(
        "sumLeading",
        COL_SUM_LAST_TWO,
        packParams([rows, cols, groups[0]]),
        [cur, out],
        groups,
      );
      if (cur !== x) cur.dispose();
      return out;
    }
    const chunk = Math.max(COL_CHUNK, Math.ceil(rows / MAX_WORKGROUPS_PER_DIMENSION));
    const chunks = Math.ceil(rows / chunk);
    const next = Tensor.empty(chunks === 1 ? shape : [chunks, cols], "f32", "sumLeading");
    const [gx, gz] = foldWorkgroups(Math.ceil(cols / COL_WG));
    launch(
      "sumLeading",
      COL_SUM,
      packParams([rows, cols, chunk, gx]),
      [cur, next],
      [gx, chunks, gz],
    );
    if (cur !== x) cur.dispose();
    cur = next;
    rows = chunks;
  }
  return cur;
}
