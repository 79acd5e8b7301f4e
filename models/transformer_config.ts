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

/** The sizes {@link checkTransformerSizes} checks. */
export interface TransformerSizes {
  /** Number of item ids including PAD. */
  readonly numItems: number;
  /** Model width H. */
  readonly hiddenSize: number;
  /** Number of attention heads. */
  readonly numHeads: number;
}

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
