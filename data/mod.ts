/**
 * Data for sequential recommendation, equivalent to RecBole v1.2.0's pipeline: loaders for the
 * common interaction formats into Arrow tables, iterative k-core filtering, chronological ordering,
 * the leave-one-out split, a processed-dataset cache in Arrow IPC, and seeded batchers (prefix
 * samples, SSD4Rec's packed variable-length batches, all-positions batches, evaluation batches).
 *
 * ```ts
 * import { loadDataset, prefixBatches } from "./data/mod.ts";
 * const ml = await loadDataset("ml-1m"); // 5-core, cached
 * for (const batch of prefixBatches(ml, { maxLength: 200, epoch: 0 })) {
 *   // batch.items: Int32Array [B × 200], batch.lengths, batch.targets
 * }
 * ```
 *
 * @module
 */
export { DataFormatError } from "./errors.ts";
export { DEFAULT_SEED, deriveSeed, seededPermutation, SeededRandom } from "./random.ts";
export {
  type DatasetAvailability,
  type DatasetLocationOptions,
  type DatasetSource,
  DEFAULT_KUAIRAND_LOGS,
  defaultCacheDirectory,
  defaultDatasetsDirectory,
  findKnownDataset,
  generatedSourcePath,
  KNOWN_DATASETS,
  type KnownDataset,
  KUAIRAND_PURE_LOGS,
  type KuaiRandLogLocation,
  type KuaiRandLogSet,
  listDatasets,
  locateKuaiRandLogs,
  resolveDatasetSource,
} from "./paths.ts";
export {
  detectInteractionFormat,
  INTERACTION_FORMATS,
  type InteractionFormat,
  type InteractionParseOptions,
  type KuaiRandLogText,
  type LoadedInteractions,
  parseInteractions,
  parseKuaiRandLogs,
  readInteractions,
} from "./formats.ts";
export {
  buildSequentialDataset,
  chronologicalOrder,
  DEFAULT_MIN_INTERACTIONS,
  kCoreFilter,
  type KCoreOptions,
  type KCoreResult,
  type PipelineOptions,
  remapFirstAppearance,
} from "./pipeline.ts";
export { heldOutCount, type LeaveOneOutSplit, leaveOneOutSplit, type SampleSet } from "./split.ts";
export { SequentialDataset, type SequentialDatasetParts } from "./dataset.ts";
export { compareSequenceOrder, type OrderComparison } from "./order.ts";
export {
  computeStatistics,
  type DatasetStatistics,
  type StatisticsInput,
  statisticsToTable,
} from "./statistics.ts";
export {
  CACHE_LAYOUT_VERSION,
  datasetCacheKey,
  datasetCachePath,
  datasetFromIPC,
  datasetToIPC,
  readDatasetCache,
} from "./cache.ts";
export {
  type CacheMode,
  type DatasetLoadInfo,
  type GeneratedInteractionOptions,
  generatedInteractions,
  loadDataset,
  type LoadDatasetOptions,
  loadDatasetWithInfo,
} from "./load.ts";
export { type BatchStream, type SplitName } from "./batch_stream.ts";
export {
  type AllPositionsBatch,
  allPositionsBatches,
  type AllPositionsBatchOptions,
  DEFAULT_EVAL_BATCH_SIZE,
  DEFAULT_TRAIN_BATCH_SIZE,
  evaluationBatches,
  type EvaluationBatchOptions,
  type PrefixBatch,
  prefixBatches,
  type PrefixBatchOptions,
} from "./batches.ts";
export {
  type PackedBatch,
  packedBatches,
  type PackedBatchOptions,
  packHistories,
} from "./packed_batches.ts";
export {
  generateSyntheticKuaiRand,
  type HistoryLengthSummary,
  historyLengthSummary,
  SYNTHETIC_KUAIRAND_NAME,
  SYNTHETIC_KUAIRAND_SHAPE,
  syntheticHistoryLengths,
  syntheticItemCounts,
  type SyntheticKuaiRandOptions,
  type SyntheticKuaiRandShape,
  syntheticKuaiRandShape,
  syntheticKuaiRandSource,
} from "./synthetic_kuairand.ts";
