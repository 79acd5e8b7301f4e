/**
 * Mamba4Rec (arXiv 2403.03900) exactly as its official code builds it: item embedding with no
 * positional embedding, dropout then LayerNorm, Mamba layers (no residual around the Mamba block
 * when there is one layer), a position-wise feed-forward network with exact GELU, the hidden
 * state at each sequence's last real item, and scores `h · Eᵀ` against the tied item embedding.
 *
 * Ablation variants (the paper's ablation study), each off by default so that the default model
 * keeps its parameters, their names, order and seeded values: `ffn: false` drops each layer's
 * feed-forward network (the layer's output is its LayerNorm); `layerNorm: false` drops every
 * LayerNorm (the embedding's, each layer's and each feed-forward network's; the residuals stay);
 * `positionEmbedding: true` adds a learned position table (`maxLength` rows) to the item
 * embedding before the dropout. Without dropout is `dropoutProb: 0`; deeper is `numLayers`.
 *
 * Prefix batches (`inputs.positions`, each row's last real index): only the last layer's output at
 * that index reaches the loss, and everything after that layer's scan acts position by position. So
 * the last layer reads its scan at the positions only (`selectiveScanAt`: its forward and backward
 * stop each row there), and its gate (z projected from the input rows at the positions), output
 * projection, residual, LayerNorm, feed-forward network and dropouts run on `[B, d]` rows. Earlier
 * layers run over every position. The values and every gradient are those of the full computation
 * gathered at the positions, up to rounding (the output projection's and the gate projection's
 * products are summed over fewer rows, and the scan's backward takes its adjoint in closed form:
 * `selectiveScanAt`). Dropout draws do not match the full computation's: each dropout after the
 * last scan draws its mask over the `[B, d]` rows (element b·d + j), where the full computation
 * would draw it over `[B, L, d]` (element (b·L + position)·d + j); both are independent Bernoulli
 * masks of the same rate, and every-position batches (no `positions`) draw as before.
 *
 * @module
 */
import { DEFAULT_SEED } from "../data/mod.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { add } from "../ops/pointwise/elementwise.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { Tensor } from "../ops/core/tensor.ts";
import {
  applyDropout,
  type DropoutContext,
  FeedForward,
  INIT_STD,
  LayerNorm,
  MambaBlock,
} from "./layers.ts";
import { ConfigError, mergeConfig, MODEL_CHECKS } from "./config.ts";
import { ParameterSet } from "./parameters.ts";
import type { ModelInputs, SequentialModel } from "./model.ts";

/** Mamba4Rec's hyperparameters (defaults: the official `config.yaml`). */
export interface Mamba4RecConfig {
  /** Number of item ids including PAD (the embedding table's rows). */
  readonly numItems: number;
  /** Model width (`hidden_size`, 64). */
  readonly hiddenSize: number;
  /** Number of Mamba layers (1). */
  readonly numLayers: number;
  /** Dropout probability of every dropout (0.2). */
  readonly dropoutProb: number;
  /** SSM state size (`d_state`, 32). */
  readonly dState: number;
  /** Causal convolution width (`d_conv`, 4). */
  readonly dConv: number;
  /** Inner expansion (`expand`, 2). */
  readonly expand: number;
  /** Seed of the initial weights and the dropout stream. */
  readonly seed: number;
  /** Whether each layer has its position-wise feed-forward network (unset: true; ablation: false). */
  readonly ffn?: boolean;
  /** Whether the model has its LayerNorms (unset: true; ablation: false). */
  readonly layerNorm?: boolean;
  /**
   * Whether a learned position table is added to the item embedding before the dropout (unset:
   * false, as the official code has none; ablation: true). It needs
   * {@link Mamba4RecConfig.maxLength}.
   */
  readonly positionEmbedding?: boolean;
  /**
   * Rows of the position table, at least the training window; only with `positionEmbedding`
   * (unset otherwise, so that the run layer does not size anything by it).
   */
  readonly maxLength?: number;
}

/** The official defaults, without `numItems`. */
export const MAMBA4REC_DEFAULTS: Omit<Mamba4RecConfig, "numItems"> = {
  hiddenSize: 64,
  numLayers: 1,
  dropoutProb: 0.2,
  dState: 32,
  dConv: 4,
  expand: 2,
  seed: DEFAULT_SEED,
};

/**
 * The ablation switches' defaults: the official model. A configuration holds a switch only when
 * it differs from these, so that the default model's configuration (and every record and
 * checkpoint of it) has the same keys as before the switches existed.
 */
export const MAMBA4REC_ABLATION_DEFAULTS: Readonly<
  Required<Pick<Mamba4RecConfig, "ffn" | "layerNorm" | "positionEmbedding">>
> = Object.freeze({ ffn: true, layerNorm: true, positionEmbedding: false });

const boolean = (v: unknown) => typeof v === "boolean" ? null : "must be true or false";

const MAMBA4REC_CHECKS = {
  numItems: MODEL_CHECKS.positiveInt,
  hiddenSize: MODEL_CHECKS.positiveInt,
  numLayers: MODEL_CHECKS.positiveInt,
  dropoutProb: MODEL_CHECKS.probability,
  dState: MODEL_CHECKS.positiveInt,
  dConv: (v: unknown) =>
    Number.isInteger(v) && (v as number) >= 2 && (v as number) <= 4 ? null : "must be 2, 3 or 4",
  expand: MODEL_CHECKS.positiveInt,
  seed: MODEL_CHECKS.nonNegativeInt,
  ffn: boolean,
  layerNorm: boolean,
  positionEmbedding: boolean,
  maxLength: MODEL_CHECKS.positiveInt,
};

/**
 * Mamba4Rec's configuration: the official defaults overridden by `overrides` (which must set
 * `numItems`), validated; an unknown key or a bad value fails naming the key.
 */
export function mamba4recConfig(overrides: Record<string, unknown>): Mamba4RecConfig {
  const c = mergeConfig(
    "mamba4rec config",
    { ...MAMBA4REC_DEFAULTS, numItems: 0 },
    MAMBA4REC_CHECKS,
    overrides,
  );
  if (c.numItems < 2) {
    throw new ConfigError(
      "mamba4rec config: 'numItems' must count PAD and at least one item",
      "numItems",
    );
  }
  const held: Record<string, unknown> = { ...c };
  for (const [key, value] of Object.entries(MAMBA4REC_ABLATION_DEFAULTS)) {
    if (held[key] === value) delete held[key];
  }
  if (held.positionEmbedding && held.maxLength === undefined) {
    throw new ConfigError(
      "mamba4rec config: 'positionEmbedding' needs 'maxLength' (the position table's rows); " +
        "give the training window length",
      "maxLength",
    );
  }
  if (!held.positionEmbedding && held.maxLength !== undefined) {
    throw new ConfigError(
      "mamba4rec config: 'maxLength' sizes the position table, which only " +
        "'positionEmbedding: true' has; leave it out or turn the position embedding on",
      "maxLength",
    );
  }
  return held as unknown as Mamba4RecConfig;
}

/** Mamba4Rec on WebGPU. */
export class Mamba4Rec implements SequentialModel {
  /** Model name, as checkpoints record it. */
  readonly name = "mamba4rec";
  /** The hyperparameters. */
  readonly config: Mamba4RecConfig;
  /** All trainable parameters by name. */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #items: Tensor;
  readonly #positions: Tensor | null = null;
  readonly #embNorm: LayerNorm | null = null;
  readonly #layers: { mamba: MambaBlock; norm: LayerNorm | null; ffn: FeedForward | null }[] = [];

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: Mamba4RecConfig) {
    this.config = config;
    const d = config.hiddenSize;
    this.params = new ParameterSet(config.seed);
    this.dropoutRng = new DropoutRng(config.seed);
    // nn.Embedding(n_items, D, padding_idx=0), then N(0, 0.02) over every row, PAD included.
    this.#items = this.params.normal("item_embedding.weight", [config.numItems, d], INIT_STD);
    if (config.positionEmbedding) {
      // RecBole's position tables (SASRec's): nn.Embedding under the model's N(0, 0.02)
      // initialiser, the same as the item table, so that at init the two sums' parts have the
      // same scale. Drawn right after the item table; with the option off nothing is drawn, so
      // the default model's parameters keep their seeded values.
      this.#positions = this.params.normal(
        "position_embedding.weight",
        [config.maxLength!, d],
        INIT_STD,
      );
    }
    const norm = (name: string) =>
      config.layerNorm !== false ? new LayerNorm(this.params, name, d) : null;
    this.#embNorm = norm("LayerNorm");
    for (let i = 0; i < config.numLayers; i++) {
      const name = `mamba_layers.${i}`;
      this.#layers.push({
        mamba: new MambaBlock(this.params, `${name}.mamba`, {
          dModel: d,
          dState: config.dState,
          dConv: config.dConv,
          expand: config.expand,
        }),
        norm: norm(`${name}.LayerNorm`),
        ffn: config.ffn !== false
          ? new FeedForward(this.params, `${name}.ffn`, d, 4 * d, "before-residual", {
            layerNorm: config.layerNorm !== false,
          })
          : null,
      });
    }
  }

  /** The item embedding table `[numItems, d]`, tied between input and output. */
  get itemTable(): Tensor {
    return this.#items;
  }

  /**
   * Hidden states. With `inputs.positions` given, the state at each sequence's position only
   * (`[B, d]`): the last layer reads its scan there and runs the rest on those rows (see the
   * module doc). Without positions, every position (`[B, L, d]`): the full computation.
   */
  forward(inputs: ModelInputs, training: boolean): Tensor {
    const ctx: DropoutContext = { p: this.config.dropoutProb, rng: this.dropoutRng, training };
    const normed = (norm: LayerNorm | null, x: Tensor) => norm ? norm.forward(x) : x;
    const embedded = this.#embed(inputs.items);
    const dropped = applyDropout(embedded, ctx);
    // Dropout's backward recomputes its mask and reads nothing of its input, and the embedding's
    // reads the ids: nothing reads the embedded rows again once dropped.
    if (dropped !== embedded) embedded.dispose();
    let h = normed(this.#embNorm, dropped);
    this.#layers.forEach((layer, i) => {
      const at = i === this.#layers.length - 1 ? inputs.positions : undefined;
      const m = applyDropout(layer.mamba.forward(h, at), ctx);
      // One layer: no residual around the Mamba block (the official code's choice).
      const x = normed(
        layer.norm,
        this.#layers.length === 1 ? m : add(m, at ? gatherPositions(h, at) : h),
      );
      h = layer.ffn ? layer.ffn.forward(x, ctx) : x;
    });
    return h;
  }

  /** `E[items]`, plus `P[0 … L − 1]` with the position embedding, `[B, L, d]`. */
  #embed(items: Tensor): Tensor {
    const embedded = embedding(items, this.#items, { paddingIdx: 0 });
    if (!this.#positions) return embedded;
    const [, length] = items.shape;
    const rows = this.#positions.shape[0];
    if (length > rows) {
      throw new ConfigError(
        `mamba4rec: a window of ${length} items is longer than the position embedding ` +
          `(${rows} rows); set the model's 'maxLength' to at least the training 'maxLength'`,
        "maxLength",
      );
    }
    const ids = Tensor.from(Int32Array.from({ length }, (_, t) => t), [length], "i32");
    // [B, L, d] + [L, d]: the position rows repeat over the batch.
    return add(embedded, embedding(ids, this.#positions));
  }
}
