/**
 * The configuration rules the Transformer recommenders (SASRec, BERT4Rec) share: the checks of
 * their common keys and the refusals of an item count without items and of a head count that
 * does not divide the width.
 *
 * @module
 */
import { ATTENTION_MAX_LENGTH } from "../ops/dense/attention.ts";
import { ConfigError, MODEL_CHECKS } from "./config.ts";

/**
 * The checks of the keys every Transformer recommender takes, in the order their errors list
 * them; a model adds its own keys and then `seed`.
 */
export const TRANSFORMER_CHECKS = {
  numItems: MODEL_CHECKS.positiveInt,
  hiddenSize: MODEL_CHECKS.positiveInt,
  numLayers: MODEL_CHECKS.positiveInt,
  numHeads: MODEL_CHECKS.positiveInt,
  innerSize: MODEL_CHECKS.positiveInt,
  hiddenDropoutProb: MODEL_CHECKS.probability,
  attnDropoutProb: MODEL_CHECKS.probability,
  layerNormEps: (v: unknown): string | null =>
    typeof v === "number" && Number.isFinite(v) && v > 0 ? null : "must be a positive number",
  maxLength: (v: unknown): string | null =>
    Number.isInteger(v) && (v as number) > 0 && (v as number) <= ATTENTION_MAX_LENGTH
      ? null
      : `must be an integer in [1, ${ATTENTION_MAX_LENGTH}] (the attention op's longest sequence)`,
};

/**
 * The hyperparameters every Transformer recommender takes (RecBole's names in parentheses; each
 * model's defaults are its own `.yaml`'s).
 */
export interface TransformerRecommenderConfig {
  /** Number of item ids including PAD (the item embedding's rows, a model's extra rows aside). */
  readonly numItems: number;
  /** Model width H (`hidden_size`), shared by the item and position embeddings. */
  readonly hiddenSize: number;
  /** Number of Transformer layers (`n_layers`). */
  readonly numLayers: number;
  /** Number of attention heads (`n_heads`); must divide `hiddenSize`. */
  readonly numHeads: number;
  /** Feed-forward inner width (`inner_size`). */
  readonly innerSize: number;
  /**
   * Dropout on the embeddings, after each output projection and after the feed-forward network
   * (`hidden_dropout_prob`).
   */
  readonly hiddenDropoutProb: number;
  /** Dropout on the attention probabilities (`attn_dropout_prob`). */
  readonly attnDropoutProb: number;
  /** The LayerNorms' variance epsilon (`layer_norm_eps`). */
  readonly layerNormEps: number;
  /**
   * Rows of the position embedding (`MAX_ITEM_LIST_LENGTH`): the longest window the model takes,
   * at most the attention op's `ATTENTION_MAX_LENGTH`.
   */
  readonly maxLength: number;
  /** Seed of the initial weights and the dropout stream. */
  readonly seed: number;
}

/** The sizes {@link checkTransformerSizes} checks. */
export type TransformerSizes = Pick<
  TransformerRecommenderConfig,
  "numItems" | "hiddenSize" | "numHeads"
>;

/**
 * Refuses, with a {@link ConfigError} naming the key, an item count without one item past PAD
 * and a head count that does not divide the width.
 * @param model the model's name, to begin messages (`"sasrec"`)
 * @param c the merged configuration
 */
export function checkTransformerSizes(model: string, c: TransformerSizes): void {
  if (c.numItems < 2) {
    throw new ConfigError(
      `${model} config: 'numItems' must count PAD and at least one item`,
      "numItems",
    );
  }
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new ConfigError(
      `${model} config: 'numHeads' ${c.numHeads} must divide 'hiddenSize' ${c.hiddenSize} ` +
        `(each head takes hiddenSize / numHeads columns)`,
      "numHeads",
    );
  }
}
