/**
 * The GPU engine: runtime, tensors, autograd and the WGSL kernels.
 *
 * @module
 */
export {
  flush,
  initGpu,
  memoryStats,
  releasePooledMemory,
  resetPeakMemory,
  runtime,
  settleDestroyedBuffers,
  startProfile,
  stopProfile,
  sync,
  withPurpose,
} from "./core/runtime.ts";
export { summarizeProfile } from "./core/profiler.ts";
export type { ProfiledDispatch } from "./core/profiler.ts";
export type {
  MemoryByPurpose,
  MemoryPurpose,
  MemoryStats,
  PurposeBytes,
  Runtime,
} from "./core/runtime.ts";
export { GpuError } from "./core/gpu_runtime.ts";
export { isCpuAdapterDescription } from "./core/device.ts";
export type { GpuInfo, InitOptions } from "./core/device.ts";
export type { Kernel } from "./core/kernels.ts";
export { MEMORY_PURPOSES, sizeClass } from "./core/buffers.ts";
export type { PooledBuffer } from "./core/buffers.ts";
export { keep, numel, readTensors, tagPurpose, Tensor, tidy } from "./core/tensor.ts";
export type { DType, HostArray, HostArrayOf, TapeNode } from "./core/tensor.ts";
export {
  backward,
  gradEnabled,
  noGrad,
  record,
  recordsGradient,
  requireGrad,
  zeroGrad,
} from "./core/autograd.ts";
export {
  accumulateInto,
  addTensors,
  clone,
  fill,
  fillInto,
  writeAt,
  zeros,
} from "./core/unrecorded.ts";
export {
  add,
  addScalar,
  exp,
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
} from "./pointwise/elementwise.ts";
export type { UnaryName } from "./pointwise/elementwise.ts";
export { meanAll, rowMean, rowSum, sumAll, sumLeading } from "./pointwise/reduce.ts";
export { grid, launch, packParams } from "./core/launch.ts";
export type { Grid } from "./core/launch.ts";
export {
  foldWorkgroups,
  GRID_WGSL,
  MATH_WGSL,
  MAX_WORKGROUPS_PER_DIMENSION,
  workgroupReduceWgsl,
} from "./wgsl/mod.ts";
export type { ReduceArray, ReduceCombine, WorkgroupReduce } from "./wgsl/mod.ts";
export { gatherPositions } from "./pointwise/gather.ts";
export { concatColumns } from "./pointwise/concat.ts";
export { splitColumns } from "./pointwise/split_columns.ts";
export { padMask } from "./pointwise/pad_mask.ts";
export { matmul, planMatmul } from "./dense/matmul/mod.ts";
export type { MatmulOptions, MatmulPlan, MatmulTiles } from "./dense/matmul/mod.ts";
export { copyShader, copyTensor, DEFAULT_COPY_CONFIG } from "./pointwise/copy.ts";
export type { CopyConfig } from "./pointwise/copy.ts";
export {
  LAYER_NORM_MAX_DIM,
  layerNorm,
  layerNormInto,
  layerNormOfRows,
} from "./dense/layernorm.ts";
export { checkLayerTailTuning, layerTail, layerTailInto } from "./dense/layer_tail.ts";
export type { LayerTailTuning, LayerTailWeights } from "./dense/layer_tail.ts";
export { GATED_RMS_NORM_MAX_GROUP, gatedRmsNorm } from "./dense/gated_rms_norm.ts";
export type { GatedRmsNormOptions } from "./dense/gated_rms_norm.ts";
export {
  gatedRmsNormReference,
  gatedRmsNormReferenceBackward,
} from "./dense/gated_rms_norm_reference.ts";
export type { GatedRmsNormGrads, GatedRmsNormProblem } from "./dense/gated_rms_norm_reference.ts";
export { checkEmbeddingIds, embedding } from "./dense/embedding.ts";
export type { EmbeddingOptions } from "./dense/embedding.ts";
export { attention, ATTENTION_MAX_LENGTH } from "./dense/attention.ts";
export type { AttentionDropout, AttentionOptions } from "./dense/attention.ts";
export { FLASH_ATTENTION_MAX_DIM } from "./dense/attention_options.ts";
export { mergeHeads, splitHeads } from "./dense/attention_heads.ts";
export {
  ATTENTION_MASKED_SCORE,
  attentionReference,
  attentionReferenceBackward,
  attentionReferenceProbabilities,
} from "./dense/attention_reference.ts";
export type { AttentionGrads, AttentionProblem } from "./dense/attention_reference.ts";
export { dropout, DROPOUT_HASH_WGSL, DropoutRng } from "./pointwise/dropout.ts";
export type { DropoutOptions, DropoutRngState } from "./pointwise/dropout.ts";
export { crossEntropy, itemCrossEntropy } from "./training/cross_entropy.ts";
export type { CrossEntropyOptions } from "./training/cross_entropy.ts";
export { Adam } from "./training/optimizer.ts";
export { globalGradNorm } from "./training/grad_norm.ts";
export type { AdamOptions, AdamState } from "./training/optimizer.ts";
export { MAX_CUTOFFS, RANKING_METRICS, rankingMetrics, targetRanks } from "./training/ranking.ts";
export type { TargetRankOptions } from "./training/ranking.ts";
export { causalConv1d } from "./sequence/causal_conv1d.ts";
export type { CausalConv1dOptions } from "./sequence/causal_conv1d.ts";
export { reverseSegments, segmentReversal } from "./sequence/reverse_segments.ts";
export {
  causalConv1dStep,
  causalConv1dStepReference,
  selectiveScanStep,
  selectiveScanStepReference,
  writeSlotRows,
} from "./sequence/selective_step.ts";
export type { SelectiveScanStepInputs } from "./sequence/selective_step.ts";
export {
  checkMambaStepTuning,
  MAMBA_STEP_MAX_STREAMS,
  MAMBA_STEP_STATE_BATCH,
  mambaStep,
  mambaStepFromHidden,
} from "./sequence/mamba_step.ts";
export { mambaStepReference } from "./sequence/mamba_step_reference.ts";
export type { MambaStepReferenceWeights } from "./sequence/mamba_step_reference.ts";
export type { MambaStepPools, MambaStepTuning, MambaStepWeights } from "./sequence/mamba_step.ts";
export { biSsdStep } from "./sequence/bi_ssd_step.ts";
export type { BiSsdStepOutputs, BiSsdStepPools, BiSsdStepWeights } from "./sequence/bi_ssd_step.ts";
export { biSsdStepReference } from "./sequence/bi_ssd_step_reference.ts";
export type { BiSsdStepReferenceWeights } from "./sequence/bi_ssd_step_reference.ts";
export { writeTransposedRows, writeTransposedRowsReference } from "./sequence/transposed_rows.ts";
export type { TransposedRowsShape } from "./sequence/transposed_rows.ts";
export {
  SSD_DEFAULT_CHUNK,
  SSD_MAX_CHUNK,
  SsdPieces,
  ssdPieces,
  ssdScan,
  ssdScanLast,
  ssdScanReference,
  ssdScanReferenceBackward,
  ssdSegmentStarts,
} from "./sequence/ssd_scan/mod.ts";
export type {
  PieceTables,
  SsdScanGrads,
  SsdScanInputs,
  SsdScanLastOptions,
  SsdScanOptions,
  SsdScanProblem,
  SsdScanResult,
} from "./sequence/ssd_scan/mod.ts";
export {
  SELECTIVE_SCAN_MAX_STATES,
  selectiveScan,
  selectiveScanAt,
  selectiveScanReference,
  selectiveScanReferenceAt,
  selectiveScanReferenceAtBackward,
  selectiveScanReferenceBackward,
  selectiveScanReferenceFinalState,
  selectiveScanWithFinalState,
} from "./sequence/selective_scan/mod.ts";
export type {
  SelectiveScanFinalStateOptions,
  SelectiveScanGrads,
  SelectiveScanInputs,
  SelectiveScanOptions,
  SelectiveScanProblem,
  SelectiveScanTuning,
  SelectiveScanWithState,
} from "./sequence/selective_scan/mod.ts";
export { gru, GRU_MAX_HIDDEN, gruReference, gruReferenceBackward } from "./sequence/gru/mod.ts";
export type {
  GruGrads,
  GruInputs,
  GruOptions,
  GruProblem,
  GruResult,
  GruWeights,
} from "./sequence/gru/mod.ts";
export {
  caserHorizontalConv,
  caserHorizontalReference,
  caserHorizontalReferenceBackward,
  caserVerticalConv,
  caserVerticalReference,
  caserVerticalReferenceBackward,
  heightOffset,
  heightSize,
  heightSizes,
  NORM_BLOCK,
  packedFilterSize,
  segmentNorms,
  segmentNormsReference,
  segmentNormsReferenceBackward,
} from "./sequence/caser/mod.ts";
export type {
  CaserConvGrads,
  CaserConvProblem,
  HorizontalFilterShape,
} from "./sequence/caser/mod.ts";
