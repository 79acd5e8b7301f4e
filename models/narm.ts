/**
 * NARM as RecBole v1.2 builds it: the item embedding (PAD id 0) and dropout, GRU layers without
 * biases, the global encoder `h_t` (the GRU's output at each sequence's last real item), and a
 * local encoder that weights every real position j by
 * `α_j = v · (mask_j · σ(A₁ gru_j + A₂ h_t))` (no softmax; `mask_j` is 1 for a real item, 0 for
 * PAD), `c_local = Σ_j α_j gru_j`. The context `[c_local, h_t]` (2H) goes through dropout and
 * `B` (2H → E, no bias); scores are `B c · Eᵀ` against the tied item embedding.
 *
 * Padded batches are left-aligned and right-padded with id 0, as RecBole's. The GRU runs over the
 * whole window; pads only follow the last real item, so neither `h_t` nor any real position's GRU
 * output depends on them, and the mask gives them no weight.
 *
 * The ops compose NARM without new kernels: the mask is an embedding lookup in a constant
 * `[numItems, 1]` table (0 for PAD, 1 otherwise) and multiplies `v · σ(…)` (the same value as
 * `v · (mask · σ(…))`, since the mask is a per-position scalar); `A₂ h_t` is repeated over the
 * window by a product with a column of ones; the concatenation `[c_local, h_t]` is a sum of two
 * products with constant selection matrices `[I | 0]` and `[0 | I]`, whose products are exact.
 *
 * Initialisation as RecBole's: `xavier_normal_` on the embedding (PAD row included) and on every
 * Linear weight (`a_1`, `a_2`, `v_t`, `b`), PyTorch's default U(±1/√H) on every GRU weight, drawn
 * from the model's seed.
 *
 * NARM predicts at the last real item only (its attention reads `h_t` there), so it has no
 * every-position output: `trainingMode: "all-positions"` is refused.
 *
 * @module
 */
import { DEFAULT_SEED } from "../data/mod.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { add, mul, reshape, sigmoid } from "../ops/pointwise/elementwise.ts";
import { fill } from "../ops/core/unrecorded.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { gru, type GruWeights } from "../ops/sequence/gru/mod.ts";
import { Tensor } from "../ops/core/tensor.ts";
import { applyDropout } from "./layers.ts";
import { ConfigError, mergeConfig, MODEL_CHECKS } from "./config.ts";
import { ParameterSet, xavierNormalStd } from "./parameters.ts";
import type { ModelInputs, PaddedModel } from "./model.ts";

/** NARM's hyperparameters (defaults: RecBole's `NARM.yaml`). */
export interface NARMConfig {
  /** Number of item ids including PAD (the embedding table's rows). */
  readonly numItems: number;
  /** Item embedding width E (`embedding_size`, 64): the width items are scored in. */
  readonly embeddingSize: number;
  /** GRU state width H (`hidden_size`, 128), at most the GRU op's `GRU_MAX_HIDDEN`. */
  readonly hiddenSize: number;
  /** Number of stacked GRU layers (`n_layers`, 1). */
  readonly numLayers: number;
  /**
   * Dropout probabilities (`dropout_probs`, [0.25, 0.5]): on the item embeddings, and on the
   * context `[c_local, h_t]` before `B`.
   */
  readonly dropoutProbs: readonly [number, number];
  /** Seed of the initial weights and the dropout stream. */
  readonly seed: number;
}

/** RecBole's defaults, without `numItems`. */
export const NARM_DEFAULTS: Omit<NARMConfig, "numItems"> = {
  embeddingSize: 64,
  hiddenSize: 128,
  numLayers: 1,
  dropoutProbs: [0.25, 0.5],
  seed: DEFAULT_SEED,
};

const NARM_CHECKS = {
  numItems: MODEL_CHECKS.positiveInt,
  embeddingSize: MODEL_CHECKS.positiveInt,
  hiddenSize: MODEL_CHECKS.gruHidden,
  numLayers: MODEL_CHECKS.positiveInt,
  dropoutProbs: (v: unknown) =>
    Array.isArray(v) && v.length === 2 && v.every((p) => MODEL_CHECKS.probability(p) === null)
      ? null
      : "must be two probabilities in [0, 1): [embedding dropout, context dropout]",
  seed: MODEL_CHECKS.nonNegativeInt,
};

/**
 * NARM's configuration: RecBole's defaults overridden by `overrides` (which must set
 * `numItems`), validated; an unknown key or a bad value fails naming the key.
 */
export function narmConfig(overrides: Record<string, unknown>): NARMConfig {
  const c = mergeConfig("narm config", { ...NARM_DEFAULTS, numItems: 0 }, NARM_CHECKS, overrides);
  if (c.numItems < 2) {
    throw new ConfigError(
      "narm config: 'numItems' must count PAD and at least one item",
      "numItems",
    );
  }
  return { ...c, dropoutProbs: [c.dropoutProbs[0], c.dropoutProbs[1]] };
}

/** The constant `[H, 2H]` matrix that places an `[·, H]` input at column `offset` of `2H`. */
function placementMatrix(hidden: number, offset: number): Tensor {
  const data = new Float32Array(hidden * 2 * hidden);
  for (let i = 0; i < hidden; i++) data[i * 2 * hidden + offset + i] = 1;
  return Tensor.from(data, [hidden, 2 * hidden], "f32");
}

/** NARM on WebGPU, on padded batches. */
export class NARM implements PaddedModel {
  /** Model name, as checkpoints record it. */
  readonly name = "narm";
  /** The input layout: padded `[B, L]` windows. */
  readonly layout = "padded";
  /** It represents a window at its last real item only: no all-positions training. */
  readonly lastItemOnly = true;
  /** The hyperparameters. */
  readonly config: NARMConfig;
  /** All trainable parameters by name (RecBole's names). */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #items: Tensor;
  readonly #layers: GruWeights[] = [];
  readonly #a1: Tensor;
  readonly #a2: Tensor;
  readonly #v: Tensor;
  readonly #b: Tensor;
  /** `[numItems, 1]`: 0 for PAD, 1 for every item (not trained). */
  readonly #realItem: Tensor;
  /** `[H, 2H]` constants `[I | 0]` and `[0 | I]` that concatenate `[c_local, h_t]`. */
  readonly #placeLocal: Tensor;
  readonly #placeGlobal: Tensor;

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: NARMConfig) {
    this.config = config;
    const { numItems, embeddingSize: e, hiddenSize: h } = config;
    this.params = new ParameterSet(config.seed);
    this.dropoutRng = new DropoutRng(config.seed);
    const xavier = (name: string, shape: [number, number]) =>
      this.params.normal(name, shape, xavierNormalStd(shape));
    this.#items = xavier("item_embedding.weight", [numItems, e]);
    const gruBound = 1 / Math.sqrt(h);
    for (let i = 0; i < config.numLayers; i++) {
      this.#layers.push({
        weightIh: this.params.uniform(`gru.weight_ih_l${i}`, [3 * h, i === 0 ? e : h], gruBound),
        weightHh: this.params.uniform(`gru.weight_hh_l${i}`, [3 * h, h], gruBound),
      });
    }
    this.#a1 = xavier("a_1.weight", [h, h]);
    this.#a2 = xavier("a_2.weight", [h, h]);
    this.#v = xavier("v_t.weight", [1, h]);
    this.#b = xavier("b.weight", [e, 2 * h]);
    const real = new Float32Array(numItems).fill(1);
    real[0] = 0;
    this.#realItem = Tensor.from(real, [numItems, 1], "f32");
    this.#placeLocal = placementMatrix(h, 0);
    this.#placeGlobal = placementMatrix(h, h);
  }

  /** The item embedding table `[numItems, E]`, tied between input and output. */
  get itemTable(): Tensor {
    return this.#items;
  }

  /**
   * Representations `[B, E]` at `inputs.positions` (each sequence's last real item). Without
   * `positions` (every-position output, `trainingMode: "all-positions"`) it fails with a
   * {@link ConfigError}: NARM's attention reads the state at the last item, so it predicts there
   * only.
   */
  forward(inputs: ModelInputs, training: boolean): Tensor {
    if (!inputs.positions) {
      throw new ConfigError(
        `narm predicts at each sequence's last item only (its attention reads the GRU state ` +
          `there), so it cannot train with trainingMode "all-positions"; use trainingMode "prefix"`,
        "trainingMode",
      );
    }
    const [embeddingP, contextP] = this.config.dropoutProbs;
    const rng = this.dropoutRng;
    let out = applyDropout(
      embedding(inputs.items, this.#items, { paddingIdx: 0 }),
      { p: embeddingP, rng, training },
    );
    for (const layer of this.#layers) out = gru(out, layer).output;
    const [B, L, H] = out.shape;
    const global = gatherPositions(out, inputs.positions); // h_t [B, H]
    const q1 = matmul(out, this.#a1, { transB: true }); // [B, L, H]
    const q2 = reshape(matmul(global, this.#a2, { transB: true }), [B, 1, H]);
    const q2Repeated = matmul(fill([L, 1], 1), q2); // [B, L, H]
    const gate = sigmoid(add(q1, q2Repeated));
    const mask = embedding(inputs.items, this.#realItem); // [B, L, 1]
    const alpha = mul(matmul(gate, this.#v, { transB: true }), mask); // [B, L, 1]
    const local = reshape(matmul(alpha, out, { transA: true }), [B, H]); // Σ_j α_j gru_j
    const context = add(
      matmul(local, this.#placeLocal),
      matmul(global, this.#placeGlobal),
    ); // [c_local, h_t]
    return matmul(applyDropout(context, { p: contextP, rng, training }), this.#b, {
      transB: true,
    });
  }
}
