/**
 * Models, the trainer and the full-ranking evaluator.
 *
 * @module
 */
export {
  type Checkpoint,
  loadTensors,
  readCheckpoint,
  type StoredTensor,
  writeCheckpoint,
} from "./training/checkpoint.ts";
export {
  ConfigError,
  mergeConfig,
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
export {
  Mamba4Rec,
  MAMBA4REC_DEFAULTS,
  type Mamba4RecConfig,
  mamba4recConfig,
} from "./mamba4rec.ts";
export type { ModelInputs, SequentialModel } from "./model.ts";
export { ParameterSet } from "./parameters.ts";
export {
  createModel,
  type DatasetPreset,
  MAMBA4REC_PRESETS,
  MODEL_NAMES,
  type ModelName,
} from "./registry.ts";
export {
  type EpochRecord,
  train,
  TrainingDivergedError,
  type TrainOptions,
  type TrainResult,
} from "./training/trainer.ts";
