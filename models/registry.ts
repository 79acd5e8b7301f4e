/**
 * Models by name, and the per-dataset settings the papers used.
 *
 * @module
 */
import { Mamba4Rec, mamba4recConfig } from "./mamba4rec.ts";
import type { SequentialModel } from "./model.ts";

/** Names accepted by {@link createModel}. */
export const MODEL_NAMES = ["mamba4rec"] as const;

/** A model name. */
export type ModelName = (typeof MODEL_NAMES)[number];

/**
 * Builds a model by name with fresh weights. `overrides` are the model's hyperparameters
 * (validated; unknown keys are refused); `numItems` comes from the dataset.
 */
export function createModel(
  name: string,
  numItems: number,
  overrides: Record<string, unknown> = {},
): SequentialModel {
  switch (name.toLowerCase()) {
    case "mamba4rec":
      return new Mamba4Rec(mamba4recConfig({ ...overrides, numItems }));
    default:
      throw new Error(`unknown model '${name}' (known: ${MODEL_NAMES.join(", ")})`);
  }
}

/** Settings the papers used per dataset (window length, dropout), keyed by dataset name. */
export interface DatasetPreset {
  /** Window length L (`MAX_ITEM_LIST_LENGTH`). */
  readonly maxLength: number;
  /** Dropout probability. */
  readonly dropoutProb: number;
}

/**
 * Mamba4Rec's settings: L = 200 for MovieLens-1M, 50 for the Amazon datasets; dropout 0.2 from the
 * official config, except Amazon Beauty where a reproduction reports the paper uses 0.4.
 */
export const MAMBA4REC_PRESETS: Readonly<Record<string, DatasetPreset>> = {
  "ml-1m": { maxLength: 200, dropoutProb: 0.2 },
  "amazon-beauty": { maxLength: 50, dropoutProb: 0.4 },
  "amazon-video-games": { maxLength: 50, dropoutProb: 0.2 },
  "amazon-sports": { maxLength: 50, dropoutProb: 0.2 },
  "amazon-toys": { maxLength: 50, dropoutProb: 0.2 },
  "yelp": { maxLength: 50, dropoutProb: 0.2 },
};
