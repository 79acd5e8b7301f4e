/**
 * Models, the trainer and the full-ranking evaluator.
 *
 * @module
 */
export {
  type Checkpoint,
  loadTensors,
  readCheckpoint,
  readCheckpointMetadata,
  RESUME_SAFE_SETTINGS,
  type RunSettings,
  runSettings,
  type SettingDifference,
  SETTINGS_METADATA_KEY,
  settingsDifferences,
  SettingsMismatchError,
  type SettingValue,
  storedRunSettings,
  type StoredTensor,
  writeCheckpoint,
} from "./training/checkpoint.ts";
export {
  ConfigError,
  mergeConfig,
  PACKED_TRAIN_DEFAULTS,
  PACKED_TRAIN_KEYS,
  packedTrainSettings,
  TRAIN_DEFAULTS,
  type TrainConfig,
  trainConfig,
} from "./config.ts";
export {
  evaluateRanking,
  type EvaluationOptions,
  type EvaluationResult,
  METRIC_NAMES,
  type Metrics,
  uploadSequences,
} from "./training/evaluator.ts";
export {
  applyDropout,
  type DropoutContext,
  FeedForward,
  INIT_STD,
  LayerNorm,
  Linear,
  MambaBlock,
  type MambaBlockConfig,
} from "./layers.ts";
export { GRU4Rec, GRU4REC_DEFAULTS, type GRU4RecConfig, gru4recConfig } from "./gru4rec.ts";
export {
  Mamba4Rec,
  MAMBA4REC_ABLATION_DEFAULTS,
  MAMBA4REC_DEFAULTS,
  type Mamba4RecConfig,
  mamba4recConfig,
} from "./mamba4rec.ts";
export { NARM, NARM_DEFAULTS, type NARMConfig, narmConfig } from "./narm.ts";
export {
  embedWindow,
  type EncoderMask,
  type OutputRows,
  type RowGather,
  TransformerEncoder,
  type TransformerEncoderConfig,
  type WindowEmbedding,
} from "./transformer.ts";
export { SASRec, SASREC_DEFAULTS, type SASRecConfig, sasrecConfig } from "./sasrec.ts";
export type { TransformerRecommenderConfig } from "./transformer_config.ts";
export { Caser, CASER_DEFAULTS, type CaserConfig, caserConfig } from "./caser.ts";
export { BERT4Rec, BERT4REC_DEFAULTS, type BERT4RecConfig, bert4recConfig } from "./bert4rec.ts";
export {
  evaluationWindow,
  type MaskedBatch,
  type MaskingOptions,
  maskingRandom,
  maskItemLength,
  maskItemSequence,
} from "./bert4rec_masking.ts";
export {
  type BlockProjection,
  Mamba2Block,
  type Mamba2BlockConfig,
  type PackedSegments,
} from "./mamba2_block.ts";
export {
  type EventRound,
  fullRepresentations,
  INIT_TOKENS_PER_PASS,
  Mamba4RecStream,
  type Mamba4RecStreamOptions,
  openStream,
  type Recommendations,
  SlotStream,
  SSD4RecStream,
  type SSD4RecStreamOptions,
  STREAMABLE_MODELS,
  type StreamableModel,
  topKRows,
} from "./streaming/mod.ts";
export {
  type InputLayout,
  layoutOf,
  type ModelBase,
  type ModelInputs,
  type PackedModel,
  type PaddedModel,
  type PaddedTrainingBatch,
  type SequentialModel,
  type TrainableModel,
  type TrainingBatchPosition,
} from "./model.ts";
export { ParameterSet } from "./parameters.ts";
export {
  BERT4REC_PRESETS,
  CASER_PRESETS,
  createModel,
  type DatasetPreset,
  type DatasetSizes,
  datasetSizes,
  findModel,
  GRU4REC_PRESETS,
  MAMBA4REC_PRESETS,
  MODEL_NAMES,
  type ModelEntry,
  type ModelEntryOf,
  type ModelName,
  modelPreset,
  MODELS,
  type ModelTypes,
  NARM_PRESETS,
  SASREC_PRESETS,
  SSD4REC_PRESETS,
  SSD4REC_TRAIN_DEFAULTS,
} from "./registry.ts";
export {
  packedInputs,
  type PackedModelInputs,
  SSD4Rec,
  SSD4REC_DEFAULTS,
  type SSD4RecConfig,
  ssd4recConfig,
} from "./ssd4rec.ts";
export {
  checkLayoutSettings,
  type RankingBatch,
  rankingBatches,
  type RankingBatchOptions,
  type TrainingStep,
  trainingSteps,
} from "./training/layouts.ts";
export {
  type EpochRecord,
  type StepProgress,
  train,
  TrainingDivergedError,
  type TrainingObserver,
  type TrainOptions,
  type TrainResult,
} from "./training/trainer.ts";
