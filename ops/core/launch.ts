/**
 * Helpers shared by every kernel launcher: the parameter block layout, dtype checks, a one-call
 * launch over tensors, and (re-exported from the WGSL grid module) workgroup grids that respect
 * the 65,535-per-dimension limit.
 *
 * @module
 */
import { runtime } from "./runtime.ts";
import type { Tensor } from "./tensor.ts";

export { grid } from "../wgsl/grid.ts";
export type { Grid } from "../wgsl/grid.ts";

/**
 * Packs a parameter block: the `u32` words first, then the `f32` words, matching a WGSL struct
 * that declares its `u32` fields before its `f32` fields. Negative integers are stored as i32.
 */
export function packParams(ints: readonly number[], floats: readonly number[] = []): Uint32Array {
  const words = new Uint32Array(ints.length + floats.length);
  for (let i = 0; i < ints.length; i++) words[i] = ints[i] >>> 0;
  for (let i = 0; i < floats.length; i++) {
    floatScratch[0] = floats[i];
    words[ints.length + i] = wordScratch[0];
  }
  return words;
}

const floatScratch = new Float32Array(1);
const wordScratch = new Uint32Array(floatScratch.buffer);

/**
 * Compiles (once) and dispatches a kernel over tensors bound at 1..n in order.
 * @param op op name for error messages
 * @param wgsl shader source; bind group 0, binding 0 is the `var<uniform>` parameter block
 * @param params parameter block from {@link packParams}
 * @param tensors storage bindings 1..n
 * @param groups workgroup counts
 */
export function launch(
  op: string,
  wgsl: string,
  params: Uint32Array | null,
  tensors: readonly Tensor[],
  groups: readonly [number, number?, number?],
): void {
  const rt = runtime();
  rt.dispatch(op, rt.kernel(op, wgsl), params, tensors.map((t) => t.storage), groups);
}

/** Asserts a tensor has the given dtype. */
export function assertDType(op: string, t: Tensor, dtype: string): void {
  if (t.dtype !== dtype) {
    throw new TypeError(`${op}: expected a ${dtype} tensor, got ${t.describe()}`);
  }
}

/**
 * Asserts a tensor has the given dtype and exactly the given shape, naming the op and the
 * argument (`what`) when it does not.
 */
export function assertShape(
  op: string,
  what: string,
  t: Tensor,
  shape: readonly number[],
  dtype = "f32",
): void {
  assertDType(op, t, dtype);
  if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
    throw new RangeError(`${op}: ${what} must be [${shape.join(", ")}], got ${t.describe()}`);
  }
}
