/**
 * The GPU engine: runtime, tensors, autograd and the WGSL kernels.
 *
 * @module
 */
export { flush, GpuError, initGpu, runtime, sizeClass, sync } from "./runtime.ts";
export type { GpuInfo, InitOptions, Kernel, PooledBuffer, Runtime } from "./runtime.ts";
export { keep, numel, readTensors, Tensor, tidy } from "./tensor.ts";
export type { DType, HostArray, HostArrayOf, TapeNode } from "./tensor.ts";
export {
  backward,
  gradEnabled,
  noGrad,
  noGradAsync,
  record,
  requireGrad,
  zeroGrad,
} from "./autograd.ts";
export {
  accumulateInto,
  add,
  addScalar,
  addTensors,
  clone,
  exp,
  fill,
  fillInto,
  gelu,
  mul,
  relu,
  reshape,
  scale,
  sigmoid,
  silu,
  softplus,
  sub,
  unary,
  zeros,
} from "./elementwise.ts";
export type { UnaryName } from "./elementwise.ts";
export { meanAll, rowMean, rowSum, sumAll, sumLeading } from "./reduce.ts";
export { assertSameShape, grid, launch, packParams } from "./launch.ts";
export type { Grid } from "./launch.ts";
