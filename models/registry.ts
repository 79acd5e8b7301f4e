/**
 * Models by name: each model's configuration builder, its constructor and the settings its paper
 * used per dataset (presets). A model is added by adding one entry to {@link MODELS}.
 *
 * @module
 */
import { Mamba4Rec, type Mamba4RecConfig, mamba4recConfig } from "./mamba4rec.ts";
import type { SequentialModel } from "./model.ts";
import { ConfigError } from "./config.ts";

/**
 * The settings a paper used on one dataset: training overrides (e.g. the window length
 * `maxLength`) and model hyperparameter overrides (e.g. `dropoutProb`). Explicit settings of a
 * run take precedence over a preset.
 */
export interface DatasetPreset {
  /** Training configuration keys (`maxLength`, …). */
  readonly train: Readonly<Record<string, unknown>>;
  /** Model hyperparameters (`dropoutProb`, …). */
  readonly model: Readonly<Record<string, unknown>>;
}

/** One model of the registry. */
export interface ModelEntry {
  /** The model's name, as checkpoints and run records name it. */
  readonly name: string;
  /**
   * The validated hyperparameters: the model's defaults overridden by `overrides` (which set
   * `numItems`); an unknown key or a bad value fails naming the key.
   */
  readonly config: (overrides: Record<string, unknown>) => object;
  /** A model with fresh weights for a configuration built by `config`. */
  readonly create: (config: object) => SequentialModel;
  /** The paper's settings per dataset, keyed by the dataset's canonical name (`ml-1m`, …). */
  readonly presets: Readonly<Record<string, DatasetPreset>>;
}

/**
 * Mamba4Rec's settings: L = 200 for MovieLens-1M, 50 for the Amazon datasets; dropout 0.2 from the
 * official config, except Amazon Beauty where a reproduction reports the paper uses 0.4.
 */
export const MAMBA4REC_PRESETS: Readonly<Record<string, DatasetPreset>> = {
  "ml-1m": { train: { maxLength: 200 }, model: { dropoutProb: 0.2 } },
  "amazon-beauty": { train: { maxLength: 50 }, model: { dropoutProb: 0.4 } },
  "amazon-video-games": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
  "amazon-sports": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
  "amazon-toys": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
  "yelp": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
};

/** Every model, keyed by its (lower-case) name. */
export const MODELS: Readonly<Record<string, ModelEntry>> = {
  mamba4rec: {
    name: "mamba4rec",
    config: mamba4recConfig,
    create: (config) => new Mamba4Rec(config as Mamba4RecConfig),
    presets: MAMBA4REC_PRESETS,
  },
};

/** Names accepted by {@link createModel}. */
export const MODEL_NAMES: readonly string[] = Object.keys(MODELS);

/** A model name. */
export type ModelName = keyof typeof MODELS;

/**
 * The registry entry of `name` (case-insensitive); an unknown name fails with a
 * {@link ConfigError} listing the known ones.
 */
export function findModel(name: string): ModelEntry {
  const entry = Object.hasOwn(MODELS, name.toLowerCase()) ? MODELS[name.toLowerCase()] : undefined;
  if (!entry) {
    throw new ConfigError(`unknown model '${name}' (known: ${MODEL_NAMES.join(", ")})`, "model");
  }
  return entry;
}

/** The preset of model `name` on the dataset with canonical name `dataset`, if its paper has one. */
export function modelPreset(name: string, dataset: string): DatasetPreset | undefined {
  const presets = findModel(name).presets;
  return Object.hasOwn(presets, dataset) ? presets[dataset] : undefined;
}

/**
 * Builds a model by name with fresh weights. `overrides` are the model's hyperparameters
 * (validated; unknown keys are refused); `numItems` comes from the dataset.
 */
export function createModel(
  name: string,
  numItems: number,
  overrides: Record<string, unknown> = {},
): SequentialModel {
  const entry = findModel(name);
  return entry.create(entry.config({ ...overrides, numItems }));
}
