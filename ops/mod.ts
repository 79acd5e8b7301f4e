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
export { writeAt } from "./elementwise.ts";
export { assertSameShape, grid, launch, packParams } from "./launch.ts";
export type { Grid } from "./launch.ts";
export { gatherPositions } from "./gather.ts";
export { matmul, planMatmul } from "./matmul.ts";
export type { MatmulOptions, MatmulPlan, MatmulTiles } from "./matmul.ts";
export { copyShader, copyTensor, DEFAULT_COPY_CONFIG } from "./copy.ts";
export type { CopyConfig } from "./copy.ts";
export { LAYER_NORM_MAX_DIM, layerNorm } from "./layernorm.ts";
export { checkEmbeddingIds, embedding } from "./embedding.ts";
export type { EmbeddingOptions } from "./embedding.ts";
export { dropout, DROPOUT_HASH_WGSL, DropoutRng } from "./dropout.ts";
export type { DropoutOptions, DropoutRngState } from "./dropout.ts";
export { crossEntropy, itemCrossEntropy } from "./cross_entropy.ts";
export type { CrossEntropyOptions } from "./cross_entropy.ts";
export { Adam, globalGradNorm } from "./optimizer.ts";
export type { AdamOptions, AdamState } from "./optimizer.ts";
export { MAX_CUTOFFS, RANKING_METRICS, rankingMetrics, targetRanks } from "./ranking.ts";
export type { TargetRankOptions } from "./ranking.ts";
export { causalConv1d } from "./causal_conv1d.ts";
export type { CausalConv1dOptions } from "./causal_conv1d.ts";
export { SELECTIVE_SCAN_MAX_STATES, selectiveScan } from "./selective_scan.ts";
export type { SelectiveScanOptions, SelectiveScanTuning } from "./selective_scan.ts";
