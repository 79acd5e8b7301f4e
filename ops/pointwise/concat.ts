/**
 * `concatColumns`: two matrices with the same rows side by side, `[N, Da]` and `[N, Db]` into
 * `[N, Da + Db]`. Its backward splits the gradient's columns back into the two operands' shapes.
 * Every output entry is a copy of one input entry, so forward and backward are exact.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";

const WG = 256;

const CONCAT = /* wgsl */ `
struct P { n: u32, stride: u32, da: u32, db: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let width = p.da + p.db;
  let row = i / width;
  let col = i % width;
  if (col < p.da) {
    out[i] = a[row * p.da + col];
  } else {
    out[i] = b[row * p.db + col - p.da];
  }
}`;

// Columns [offset, offset + cols) of every row of a [rows, width] matrix.
const COLUMNS = /* wgsl */ `
struct P { n: u32, stride: u32, width: u32, offset: u32, cols: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  out[i] = x[(i / p.cols) * p.width + p.offset + i % p.cols];
}`;

/** Columns `[offset, offset + cols)` of the `[rows, width]` matrix `x`, unrecorded. */
function columns(x: Tensor, offset: number, cols: number, name: string): Tensor {
  const [rows, width] = x.shape;
  const out = Tensor.empty([rows, cols], "f32", name);
  const g = grid(rows * cols, WG);
  launch(
    name,
    COLUMNS,
    packParams([rows * cols, g.stride, width, offset, cols]),
    [x, out],
    g.groups,
  );
  return out;
}

/**
 * `[a | b]`: the columns of `a` `[N, Da]` followed by those of `b` `[N, Db]`, giving
 * `[N, Da + Db]`. Recorded on the tape for both operands. A shape other than two non-empty
 * matrices with the same number of rows fails with a RangeError naming both shapes.
 */
export function concatColumns(a: Tensor, b: Tensor): Tensor {
  const op = "concatColumns";
  assertDType(op, a, "f32");
  assertDType(op, b, "f32");
  if (
    a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[0] || a.size === 0 ||
    b.size === 0
  ) {
    throw new RangeError(
      `${op}: expected two non-empty matrices with the same rows, [N, Da] and [N, Db], got ` +
        `[${a.shape.join(", ")}] and [${b.shape.join(", ")}]`,
    );
  }
  const [rows, da] = a.shape;
  const db = b.shape[1];
  const out = Tensor.empty([rows, da + db], "f32", op);
  const g = grid(out.size, WG);
  launch(op, CONCAT, packParams([out.size, g.stride, da, db]), [a, b, out], g.groups);
  return record(out, op, [a, b], (gy) => [
    a.requiresGrad ? columns(gy, 0, da, `${op} backward`) : null,
    b.requiresGrad ? columns(gy, da, db, `${op} backward`) : null,
  ]);
}
