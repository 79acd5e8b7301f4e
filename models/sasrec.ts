/**
 * SASRec as RecBole v1.2 builds it: the item embedding (PAD id 0) plus an absolute position
 * embedding (positions 0 … L − 1 from the left, neither scaled), LayerNorm then dropout, and a
 * stack of post-LN Transformer layers (RecBole's `TransformerEncoder`, `transformer.ts`) under the
 * causal mask.
 *
 * The representation is the last layer's output at each sequence's last real item; scores are
 * `h · Eᵀ` against the tied item embedding, PAD row included.
 *
 * Padding. Batches are left-aligned and right-padded with id 0. RecBole's mask also masks pad
 * keys, but under the causal mask every pad key sits after every real query, so the causal mask
 * alone already hides the pads from every real position: the model passes no `keyPadding`, and
 * every real position's output is the same as RecBole's (a masked entry's probability is exactly
 * 0 in f32 either way). Pads change only pad queries: a pad query at position i attends every key
 * j ≤ i, the real items and the pads before it (RecBole's attends the real items only). Nothing
 * reads a pad position's output (not the last-item representation; in all-positions training a
 * pad position has no target), so the difference never reaches a loss or a score.
 *
 * Initialisation as RecBole's `_init_weights`: every Linear and Embedding weight ~ N(0, 0.02),
 * the PAD row and the position table included, Linear biases 0, LayerNorm weight 1 and bias 0.
 *
 * @module
 */
import { DEFAULT_SEED } from "../data/mod.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import type { Tensor } from "../ops/core/tensor.ts";
import { type DropoutContext, INIT_STD, LayerNorm } from "./layers.ts";
import { embedWindow, lastItemRows, TransformerEncoder } from "./transformer.ts";
import { mergeConfig, MODEL_CHECKS } from "./config.ts";
import {
  checkTransformerSizes,
  TRANSFORMER_CHECKS,
  type TransformerRecommenderConfig,
} from "./transformer_config.ts";
import { ParameterSet } from "./parameters.ts";
import type { ModelInputs, PaddedModel } from "./model.ts";

/**
 * SASRec's hyperparameters: those of every Transformer recommender, with RecBole's `SASRec.yaml`
 * defaults ({@link SASREC_DEFAULTS}: width 64, 2 layers of 2 heads, inner size 256, both dropouts
 * 0.5, epsilon 1e-12, L 50).
 */
export type SASRecConfig = TransformerRecommenderConfig;

/** RecBole's defaults, without `numItems`. */
export const SASREC_DEFAULTS: Omit<SASRecConfig, "numItems"> = {
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 2,
  innerSize: 256,
  hiddenDropoutProb: 0.5,
  attnDropoutProb: 0.5,
  layerNormEps: 1e-12,
  maxLength: 50,
  seed: DEFAULT_SEED,
};

const SASREC_CHECKS = {
  ...TRANSFORMER_CHECKS,
  seed: MODEL_CHECKS.nonNegativeInt,
};

/**
 * SASRec's configuration: RecBole's defaults overridden by `overrides` (which must set
 * `numItems`), validated; an unknown key or a bad value fails naming the key.
 */
export function sasrecConfig(overrides: Record<string, unknown>): SASRecConfig {
  const c = mergeConfig(
    "sasrec config",
    { ...SASREC_DEFAULTS, numItems: 0 },
    SASREC_CHECKS,
    overrides,
  );
  checkTransformerSizes("sasrec", c);
  return c;
}

/** SASRec on WebGPU, on padded batches. */
export class SASRec implements PaddedModel {
  /** Model name, as checkpoints record it. */
  readonly name = "sasrec";
  /** The input layout: padded `[B, L]` windows. */
  readonly layout = "padded";
  /** The hyperparameters. */
  readonly config: SASRecConfig;
  /** All trainable parameters by name (RecBole's names). */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #items: Tensor;
  readonly #positions: Tensor;
  readonly #embNorm: LayerNorm;
  readonly #encoder: TransformerEncoder;

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: SASRecConfig) {
    this.config = config;
    const { numItems, hiddenSize: h, layerNormEps: eps } = config;
    this.params = new ParameterSet(config.seed);
    this.dropoutRng = new DropoutRng(config.seed);
    const p = this.params;
    // nn.Embedding(n_items, H, padding_idx=0), then N(0, 0.02) over every row, PAD included.
    this.#items = p.normal("item_embedding.weight", [numItems, h], INIT_STD);
    this.#positions = p.normal("position_embedding.weight", [config.maxLength, h], INIT_STD);
    this.#encoder = new TransformerEncoder(p, config);
    this.#embNorm = new LayerNorm(p, "LayerNorm", h, eps);
  }

  /** The item embedding table `[numItems, H]`, tied between input and output. */
  get itemTable(): Tensor {
    return this.#items;
  }

  /**
   * Representations `[B, H]` at `inputs.positions` (each sequence's last real item), or at every
   * position (`[B, L, H]`) without them (all-positions training: the causal mask makes position
   * t's output depend on items 0 … t only). With positions, the last layer computes its query,
   * attention row and everything after at those positions only: the same values for a fraction
   * of the work. A window longer than the position table fails with a {@link ConfigError} naming
   * `maxLength`.
   */
  forward(inputs: ModelInputs, training: boolean): Tensor {
    const ctx: DropoutContext = {
      p: this.config.hiddenDropoutProb,
      rng: this.dropoutRng,
      training,
    };
    const x = embedWindow(
      this.name,
      inputs.items,
      { items: this.#items, positions: this.#positions, norm: this.#embNorm },
      ctx,
    );
    return this.#encoder.forward(x, ctx, { mask: "causal" }, lastItemRows(inputs.positions));
  }
}
