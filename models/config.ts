/**
 * Training configuration with RecBole v1.2.0's defaults (as Mamba4Rec's `config.yaml` sets them),
 * checked before any work starts: an unknown key or a bad value fails naming the key.
 *
 * @module
 */
import { DEFAULT_EVAL_BATCH_SIZE, DEFAULT_SEED, DEFAULT_TRAIN_BATCH_SIZE } from "../data/mod.ts";
import { RANKING_METRICS } from "../ops/training/ranking.ts";
import { GRU_MAX_HIDDEN } from "../ops/sequence/gru/mod.ts";

/** Everything the trainer needs besides the model and the data. */
export interface TrainConfig {
  /** Maximum number of epochs (300). */
  epochs: number;
  /** Training samples per step (2048). */
  batchSize: number;
  /** Adam learning rate (0.001). */
  learningRate: number;
  /** Adam's L2 weight decay (0). */
  weightDecay: number;
  /** Gradient clipping by global norm; null for none (RecBole's default). */
  clipGradNorm: number | null;
  /** Users per evaluation batch (4096). */
  evalBatchSize: number;
  /** Early-stopping patience in evaluations (10). */
  stoppingStep: number;
  /** Metric that selects the best epoch (`"ndcg@10"`). */
  validMetric: string;
  /** Metric cut-offs ([10]). */
  topk: number[];
  /** Seed of the data order (and, through the model config, of the weights) (2020). */
  seed: number;
  /** Window length L (200 for ML-1M, 50 for Amazon). */
  maxLength: number;
  /** Where checkpoints go; null keeps them in memory only. */
  checkpointDir: string | null;
  /**
   * `"prefix"` (RecBole's protocol): one sample per prefix, the loss at its last position.
   * `"all-positions"` (faster): each user's training sequence in windows of L, the loss at every
   * position.
   */
  trainingMode: "prefix" | "all-positions";
  /**
   * Check the loss for NaN/Inf every this many steps: each check starts a readback that the next
   * one (or the epoch's end) looks at, so a diverged step stops training within two checks.
   */
  lossCheckEvery: number;
  /** Show progress (the run layer's display: steps within an epoch, one line per epoch). */
  verbose: boolean;
  /**
   * Samples per micro-batch (absent by default): each step's batch is cut into micro-batches of
   * at most this many samples, run forward and backward one after another with their gradients
   * summed, then one optimizer step; the update is the whole batch's to rounding. Left out, a
   * step is cut only when it would bind more than the device's storage binding limit, into the
   * largest halves, quarters, … that fit (see the trainer). Not for models with their own
   * training objective (BERT4Rec, Caser).
   */
  microBatchSize?: number;
  /**
   * All-positions training only (absent by default): about this many targets a step instead of
   * `batchSize` windows. Each step then takes the windows that hold that many targets on average
   * (the training targets over the windows, rounded, at least one). A prefix batch of B samples
   * has B targets, so `targetsPerStep: B` gives all-positions training as many optimizer steps an
   * epoch as the prefix protocol; with `batchSize` windows it takes several times fewer (6× on
   * Beauty's windows of 50, about 100× on ML-1M's of 200).
   */
  targetsPerStep?: number;
  /**
   * Packed-batch models only (absent for padded ones; {@link PACKED_TRAIN_DEFAULTS} when left
   * out): ρ, the probability with which each training history token is replaced by id 0
   * (SSD4Rec's `maskratio`). Validation and test batches are never masked.
   */
  maskRatio?: number;
  /**
   * Packed-batch models only (absent for padded ones; {@link PACKED_TRAIN_DEFAULTS} when left
   * out): true keeps every history whole (SSD4Rec's `var_len: True`); false keeps the last
   * `maxLength` items of each, in training and evaluation alike.
   */
  varLen?: boolean;
  /**
   * Packed-batch models only (absent for padded ones and by default): every segment, in
   * training and evaluation, is exactly this many tokens — the last `padTo` history items (fewer
   * when `varLen` is false and `maxLength` is smaller), left-padded with id 0 — so that a packed
   * model runs on the padded windows a padded model sees (for efficiency comparisons).
   */
  padTo?: number;
}

/** The settings that only packed-batch models read, as their training configuration keys. */
export const PACKED_TRAIN_KEYS: readonly ("maskRatio" | "varLen" | "padTo")[] = Object.freeze([
  "maskRatio",
  "varLen",
  "padTo",
]);

/**
 * Values of the packed-batch settings left out of a configuration: no masking, whole histories
 * (`padTo` has none: left out, segments are not padded).
 */
export const PACKED_TRAIN_DEFAULTS: Readonly<{ maskRatio: number; varLen: boolean }> = Object
  .freeze({ maskRatio: 0, varLen: true });

/** The packed-batch settings of `config`, with {@link PACKED_TRAIN_DEFAULTS} for those left out. */
export function packedTrainSettings(
  config: Pick<TrainConfig, "maskRatio" | "varLen">,
): { maskRatio: number; varLen: boolean } {
  return {
    maskRatio: config.maskRatio ?? PACKED_TRAIN_DEFAULTS.maskRatio,
    varLen: config.varLen ?? PACKED_TRAIN_DEFAULTS.varLen,
  };
}

/** RecBole's defaults with Mamba4Rec's settings. */
export const TRAIN_DEFAULTS: TrainConfig = {
  epochs: 300,
  batchSize: DEFAULT_TRAIN_BATCH_SIZE,
  learningRate: 0.001,
  weightDecay: 0,
  clipGradNorm: null,
  evalBatchSize: DEFAULT_EVAL_BATCH_SIZE,
  stoppingStep: 10,
  validMetric: "ndcg@10",
  topk: [10],
  seed: DEFAULT_SEED,
  maxLength: 200,
  checkpointDir: null,
  trainingMode: "prefix",
  lossCheckEvery: 100,
  verbose: true,
};

/** A configuration error that names the offending key. */
export class ConfigError extends Error {
  /**
   * An error with a message that names the key.
   * @param message what is wrong, naming the key
   * @param key the offending key, when one key is at fault
   */
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Check = (v: unknown) => string | null;
const positiveInt: Check = (v) =>
  Number.isInteger(v) && (v as number) > 0 ? null : "must be a positive integer";
const nonNegativeInt: Check = (v) =>
  Number.isInteger(v) && (v as number) >= 0 ? null : "must be an integer ≥ 0";
const positive: Check = (v) =>
  typeof v === "number" && Number.isFinite(v) && v > 0 ? null : "must be a positive number";
const nonNegative: Check = (v) =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "must be a number ≥ 0";
const bool: Check = (v) => (typeof v === "boolean" ? null : "must be true or false");
const probability: Check = (v) =>
  typeof v === "number" && v >= 0 && v < 1 ? null : "must be a probability in [0, 1)";

/** A metric name with its cut-off, e.g. `ndcg@10`. */
const VALID_METRIC = new RegExp(`^(${RANKING_METRICS.join("|")})@\\d+$`);

const TRAIN_CHECKS: Record<keyof TrainConfig, Check> = {
  epochs: positiveInt,
  batchSize: positiveInt,
  learningRate: positive,
  weightDecay: nonNegative,
  clipGradNorm: (v) => (v === null ? null : positive(v)),
  evalBatchSize: positiveInt,
  stoppingStep: nonNegativeInt,
  validMetric: (v) =>
    typeof v === "string" && VALID_METRIC.test(v)
      ? null
      : `must look like ndcg@10 (${RANKING_METRICS.join(", ")} @ K)`,
  topk: (v) =>
    Array.isArray(v) && v.length > 0 && v.every((k) => Number.isInteger(k) && k > 0)
      ? null
      : "must be a non-empty list of positive integers",
  seed: nonNegativeInt,
  maxLength: positiveInt,
  checkpointDir: (v) => (v === null || typeof v === "string" ? null : "must be a path or null"),
  trainingMode: (v) =>
    v === "prefix" || v === "all-positions" ? null : 'must be "prefix" or "all-positions"',
  lossCheckEvery: positiveInt,
  verbose: bool,
  microBatchSize: positiveInt,
  targetsPerStep: positiveInt,
  maskRatio: probability,
  varLen: bool,
  padTo: positiveInt,
};

/**
 * Merges `overrides` into `defaults`, rejecting unknown keys and bad values with a message that
 * names the key. `checks` validates each key.
 */
export function mergeConfig<T extends object>(
  what: string,
  defaults: T,
  checks: Record<keyof T, (v: unknown) => string | null>,
  overrides: Record<string, unknown>,
): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!(key in checks)) {
      const known = Object.keys(checks).join(", ");
      throw new ConfigError(`${what}: unknown key '${key}' (known keys: ${known})`, key);
    }
    const problem = (checks as Record<string, Check>)[key](value);
    if (problem) {
      throw new ConfigError(`${what}: '${key}' ${problem}, got ${JSON.stringify(value)}`, key);
    }
    out[key] = value;
  }
  return out as T;
}

/** The training configuration: defaults overridden by `overrides`, validated. */
export function trainConfig(overrides: Record<string, unknown> = {}): TrainConfig {
  const c = mergeConfig("training config", TRAIN_DEFAULTS, TRAIN_CHECKS, overrides);
  const k = Number(c.validMetric.split("@")[1]);
  if (!c.topk.includes(k)) {
    throw new ConfigError(
      `training config: 'validMetric' ${c.validMetric} needs ${k} in 'topk' [${c.topk.join(", ")}]`,
      "validMetric",
    );
  }
  return c;
}

/** A GRU's hidden size: an integer the GRU op can hold (GRU4Rec, NARM). */
function gruHidden(v: unknown): string | null {
  return Number.isInteger(v) && (v as number) > 0 && (v as number) <= GRU_MAX_HIDDEN
    ? null
    : `must be an integer in [1, ${GRU_MAX_HIDDEN}] (the GRU op's largest state)`;
}

/** Validation rules for model hyperparameters shared by the models. */
export const MODEL_CHECKS = {
  positiveInt,
  nonNegativeInt,
  probability,
  gruHidden,
};
