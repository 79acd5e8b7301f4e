/**
 * GRU4Rec as RecBole v1.2 builds it: the item embedding (PAD id 0), dropout, GRU layers without
 * biases, a `dense` Linear (hidden → embedding, with bias) on the GRU's output, the result at
 * each sequence's last real item, and scores `h · Eᵀ` against the tied item embedding.
 *
 * Padded batches are left-aligned and right-padded with id 0, as RecBole's, and the GRU runs over
 * the whole window without skipping pads: pads only follow a sequence's last real item, so the
 * state read there (`inputs.positions`, length − 1) never depends on them.
 *
 * Initialisation as RecBole's: `xavier_normal_` on the whole embedding (PAD row included),
 * `xavier_uniform_` on the first layer's `weight_ih` and `weight_hh` as whole `(3·hidden, in)`
 * matrices, PyTorch's defaults elsewhere (`dense` and further GRU layers: U(±1/√fan_in)), drawn
 * from the model's seed.
 *
 * @module
 */
import { DEFAULT_SEED } from "../data/mod.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { gru, type GruWeights } from "../ops/sequence/gru/mod.ts";
import type { Tensor } from "../ops/core/tensor.ts";
import { applyDropout } from "./layers.ts";
import { ConfigError, mergeConfig, MODEL_CHECKS } from "./config.ts";
import { ParameterSet, xavierNormalStd } from "./parameters.ts";
import type { ModelInputs, PaddedModel } from "./model.ts";

/** GRU4Rec's hyperparameters (defaults: RecBole's `GRU4Rec.yaml`). */
export interface GRU4RecConfig {
  /** Number of item ids including PAD (the embedding table's rows). */
  readonly numItems: number;
  /** Item embedding width E (`embedding_size`, 64): the width items are scored in. */
  readonly embeddingSize: number;
  /** GRU state width (`hidden_size`, 128), at most the GRU op's `GRU_MAX_HIDDEN`. */
  readonly hiddenSize: number;
  /** Number of stacked GRU layers (`num_layers`, 1). */
  readonly numLayers: number;
  /** Dropout probability on the item embeddings (`dropout_prob`, 0.3). */
  readonly dropoutProb: number;
  /** Seed of the initial weights and the dropout stream. */
  readonly seed: number;
}

/** RecBole's defaults, without `numItems`. */
export const GRU4REC_DEFAULTS: Omit<GRU4RecConfig, "numItems"> = {
  embeddingSize: 64,
  hiddenSize: 128,
  numLayers: 1,
  dropoutProb: 0.3,
  seed: DEFAULT_SEED,
};

const GRU4REC_CHECKS = {
  numItems: MODEL_CHECKS.positiveInt,
  embeddingSize: MODEL_CHECKS.positiveInt,
  hiddenSize: MODEL_CHECKS.gruHidden,
  numLayers: MODEL_CHECKS.positiveInt,
  dropoutProb: MODEL_CHECKS.probability,
  seed: MODEL_CHECKS.nonNegativeInt,
};

/**
 * GRU4Rec's configuration: RecBole's defaults overridden by `overrides` (which must set
 * `numItems`), validated; an unknown key or a bad value fails naming the key.
 */
export function gru4recConfig(overrides: Record<string, unknown>): GRU4RecConfig {
  const c = mergeConfig(
    "gru4rec config",
    { ...GRU4REC_DEFAULTS, numItems: 0 },
    GRU4REC_CHECKS,
    overrides,
  );
  if (c.numItems < 2) {
    throw new ConfigError(
      "gru4rec config: 'numItems' must count PAD and at least one item",
      "numItems",
    );
  }
  return c;
}

/** `xavier_uniform_`'s bound for a `[out, in]` matrix: √(6 / (fan_in + fan_out)). */
function xavierUniformBound(shape: readonly [number, number]): number {
  return Math.sqrt(6 / (shape[0] + shape[1]));
}

/** PyTorch's default bound for a layer with `fanIn` inputs (kaiming_uniform, a = √5): 1/√fan_in. */
function defaultBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}

/** GRU4Rec on WebGPU, on padded batches. */
export class GRU4Rec implements PaddedModel {
  /** Model name, as checkpoints record it. */
  readonly name = "gru4rec";
  /** The input layout: padded `[B, L]` windows. */
  readonly layout = "padded";
  /** The hyperparameters. */
  readonly config: GRU4RecConfig;
  /** All trainable parameters by name (RecBole's names). */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #items: Tensor;
  readonly #layers: GruWeights[] = [];
  readonly #denseWeight: Tensor;
  readonly #denseBias: Tensor;

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: GRU4RecConfig) {
    this.config = config;
    const { numItems, embeddingSize: e, hiddenSize: h } = config;
    this.params = new ParameterSet(config.seed);
    this.dropoutRng = new DropoutRng(config.seed);
    const itemShape = [numItems, e] as const;
    this.#items = this.params.normal(
      "item_embedding.weight",
      [...itemShape],
      xavierNormalStd(itemShape),
    );
    for (let i = 0; i < config.numLayers; i++) {
      const ihShape = [3 * h, i === 0 ? e : h] as const;
      const hhShape = [3 * h, h] as const;
      // RecBole re-initialises only the first layer; later ones keep PyTorch's U(±1/√hidden).
      const ihBound = i === 0 ? xavierUniformBound(ihShape) : defaultBound(h);
      const hhBound = i === 0 ? xavierUniformBound(hhShape) : defaultBound(h);
      this.#layers.push({
        weightIh: this.params.uniform(`gru_layers.weight_ih_l${i}`, [...ihShape], ihBound),
        weightHh: this.params.uniform(`gru_layers.weight_hh_l${i}`, [...hhShape], hhBound),
      });
    }
    this.#denseWeight = this.params.uniform("dense.weight", [e, h], defaultBound(h));
    this.#denseBias = this.params.uniform("dense.bias", [e], defaultBound(h));
  }

  /** The item embedding table `[numItems, E]`, tied between input and output. */
  get itemTable(): Tensor {
    return this.#items;
  }

  /**
   * Representations `[B, E]` at `inputs.positions` (each sequence's last real item), or at every
   * position (`[B, L, E]`) without them. `dense` acts position by position, so it is applied
   * after the gather: the same values for a fraction of the work.
   */
  forward(inputs: ModelInputs, training: boolean): Tensor {
    const ctx = { p: this.config.dropoutProb, rng: this.dropoutRng, training };
    let h = applyDropout(embedding(inputs.items, this.#items, { paddingIdx: 0 }), ctx);
    for (const layer of this.#layers) h = gru(h, layer).output;
    if (inputs.positions) h = gatherPositions(h, inputs.positions);
    return matmul(h, this.#denseWeight, { transB: true, bias: this.#denseBias });
  }
}
