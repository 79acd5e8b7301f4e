/**
 * Elementwise kernels that never record on the tape: the gradient bookkeeping of
 * {@link backward} (sums, in-place accumulation, fills, copies) and the raw binary kernel that
 * the recorded `add`, `sub` and `mul` launch. They live below the autograd so that the tape can
 * use them while the recorded ops import the tape.
 *
 * @module
 */
import { grid, launch, packParams } from "./launch.ts";
import { type DType, Tensor } from "./tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

/** Invocations per workgroup of every elementwise kernel. */
export const ELEMENTWISE_WORKGROUP = 256;
const WG = ELEMENTWISE_WORKGROUP;

/** The binary elementwise operations. */
export type BinaryOp = "add" | "sub" | "mul";
const BINARY_EXPR: Record<BinaryOp, string> = { add: "a + b", sub: "a - b", mul: "a * b" };

/** The shader of a binary expression, generated once. */
const binaryShader = shaderGenerator("binary", binaryShaderSource, (expr) => expr);

function binaryShaderSource(expr: string): string {
  return /* wgsl */ `
struct P { n: u32, stride: u32, nb: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> as_: array<f32>;
@group(0) @binding(2) var<storage, read> bs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let a = as_[i];
  let b = bs[i % p.nb];
  out[i] = ${expr};
}`;
}

/**
 * `a op b` elementwise into a new tensor, not recorded; `b` repeats over `a`'s leading
 * dimensions when it is smaller (its size must divide `a`'s; callers check the shapes).
 * @param op the operation
 * @param a first operand
 * @param b second operand, `a`'s shape or a suffix of it
 * @param name op name for the output's label and error messages (default `op`)
 */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, name: string = op): Tensor {
  const out = Tensor.empty(a.shape, "f32", name);
  const g = grid(a.size, WG);
  launch(
    name,
    binaryShader(BINARY_EXPR[op]),
    packParams([a.size, g.stride, b.size]),
    [a, b, out],
    g.groups,
  );
  return out;
}

/** Sum of two same-shaped tensors, not recorded on the tape (for gradient bookkeeping). */
export function addTensors(a: Tensor, b: Tensor): Tensor {
  return binaryRaw("add", a, b, "gradient sum");
}

const AXPY = /* wgsl */ `
struct P { n: u32, stride: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  dst[i] = dst[i] + p.alpha * src[i];
}`;

/** In place: `dst += alpha · src` (not recorded). */
export function accumulateInto(dst: Tensor, src: Tensor, alpha = 1): void {
  if (dst.size !== src.size) {
    throw new RangeError(
      `accumulateInto: shapes do not match: ${dst.describe()} and ${src.describe()}`,
    );
  }
  const g = grid(dst.size, WG);
  launch("accumulate", AXPY, packParams([dst.size, g.stride], [alpha]), [src, dst], g.groups);
}

const FILL = /* wgsl */ `
struct P { n: u32, stride: u32, bits: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  dst[i] = p.bits;
}`;

/** A tensor with every element equal to `value`. */
export function fill(shape: readonly number[], value: number, dtype: DType = "f32"): Tensor {
  const t = Tensor.empty(shape, dtype, "fill");
  fillInto(t, value);
  return t;
}

/** Sets every element of `t` to `value` in place (not recorded). */
export function fillInto(t: Tensor, value: number): void {
  const word = new Uint32Array(1);
  if (t.dtype === "f32") new Float32Array(word.buffer)[0] = value;
  else word[0] = value >>> 0;
  const g = grid(t.size, WG);
  launch("fill", FILL, packParams([t.size, g.stride, word[0]]), [t], g.groups);
}

/** A tensor of zeros. */
export const zeros = (shape: readonly number[], dtype: DType = "f32"): Tensor =>
  fill(shape, 0, dtype);

/** A copy of `t` in new storage (not recorded). */
export function clone(t: Tensor): Tensor {
  const c = Tensor.empty(t.shape, t.dtype, "clone");
  if (t.size > 0) {
    // copyBufferToBuffer ends the compute pass; a copy kernel keeps the pass open.
    writeAt(c, t, 0);
  }
  return c;
}

/**
 * A copy kernel over `u32` words whose one statement says where word `i` goes: `src` and `dst`
 * bound, `p.n` words, `p.offset` the offset of the side that has one.
 */
function offsetCopyShader(statement: string): string {
  return /* wgsl */ `
struct P { n: u32, stride: u32, offset: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  ${statement}
}`;
}

const READ_AT = offsetCopyShader("dst[i] = src[p.offset + i];");

/**
 * Rows `[row0, row0 + count)` of a `[N, …]` tensor, copied into a new `[count, …]` tensor (not
 * recorded: for slabs of a computation and for evaluation).
 */
export function sliceRows(x: Tensor, row0: number, count: number): Tensor {
  const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
  if (!(row0 >= 0 && count >= 0 && row0 + count <= x.shape[0])) {
    throw new RangeError(`sliceRows: rows [${row0}, ${row0 + count}) are not in ${x.describe()}`);
  }
  const out = Tensor.empty([count, ...x.shape.slice(1)], x.dtype, "sliceRows");
  if (out.size === 0) return out;
  const g = grid(out.size, WG);
  launch("sliceRows", READ_AT, packParams([out.size, g.stride, row0 * width]), [x, out], g.groups);
  return out;
}

const WRITE_AT = offsetCopyShader("dst[p.offset + i] = src[i];");

/**
 * In place: copies all of `src` into `dst` starting at element `offset` (not recorded), e.g. a
 * step's loss into a per-epoch buffer that is read back once.
 */
export function writeAt(dst: Tensor, src: Tensor, offset: number): void {
  if (offset < 0 || offset + src.size > dst.size || src.dtype !== dst.dtype) {
    throw new RangeError(
      `writeAt: cannot write ${src.describe()} at ${offset} into ${dst.describe()}`,
    );
  }
  const g = grid(src.size, WG);
  launch("writeAt", WRITE_AT, packParams([src.size, g.stride, offset]), [src, dst], g.groups);
}
