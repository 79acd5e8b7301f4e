/**
 * SSD4Rec (arXiv 2409.01192) as its official code builds it, on packed batches: every sample's
 * history concatenated into one row with a segment id per token, no padding. The item embedding
 * (row 0, the mask id, learned; no positional embedding), optionally dropout then LayerNorm; then
 * Bi-SSD layers, each running ONE Mamba-2 block on x and on x reversed within every segment and
 * summing `h = fwd + β·bwd + x` without reversing bwd back, followed by Dropout(LayerNorm(h)) and a
 * position-wise feed-forward network `Dropout(LayerNorm(W₂ Dropout(GELU(W₁ h)) + h))`; the
 * representation is each segment's last token, scored against the tied item embedding.
 *
 * Masking history tokens to 0 (ρ) belongs to the batches (`packedBatches`' `maskRatio`, training
 * only), not to the model.
 *
 * @module
 */
import { DEFAULT_SEED, SeededRandom } from "../data/random.ts";
import type { PackedBatch } from "../data/packed_batches.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { add, mul, reshape } from "../ops/pointwise/elementwise.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { GATED_RMS_NORM_MAX_GROUP } from "../ops/dense/gated_rms_norm.ts";
import {
  SSD_DEFAULT_CHUNK,
  SSD_MAX_CHUNK,
  type SsdPieces,
  ssdPieces,
} from "../ops/sequence/ssd_scan/mod.ts";
import { Tensor } from "../ops/core/tensor.ts";
import {
  applyDropout,
  type DropoutContext,
  FeedForward,
  freeAfter,
  INIT_STD,
  LayerNorm,
} from "./layers.ts";
import { Mamba2Block, type PackedSegments } from "./mamba2_block.ts";
import { ConfigError, mergeConfig, MODEL_CHECKS } from "./config.ts";
import { ParameterSet } from "./parameters.ts";

/** SSD4Rec's hyperparameters (defaults: the official `config.yaml`, its ML-1M block). */
export interface SSD4RecConfig {
  /** Number of item ids including id 0, the padding and mask id (the embedding table's rows). */
  readonly numItems: number;
  /** Model width (`hidden_size`, 256). */
  readonly hiddenSize: number;
  /** Number of Bi-SSD layers (2). */
  readonly numLayers: number;
  /** Dropout probability of every dropout (0.2). */
  readonly dropoutProb: number;
  /** SSM state size (`d_state`, 64). */
  readonly dState: number;
  /** Channels per SSD head (`headdim`, 16). */
  readonly headDim: number;
  /** Causal convolution width (`d_conv`, 4). */
  readonly dConv: number;
  /** Inner expansion (`expand`, 2). */
  readonly expand: number;
  /** Dropout then LayerNorm on the item embeddings (`norm_embedding`, true). */
  readonly normEmbedding: boolean;
  /** Weight of the backward direction in `h = fwd + β·bwd + x` (`beta`, 0.1). */
  readonly beta: number;
  /**
   * Longest run of tokens the SSD scan handles in one piece (the scan's default; mamba_ssm uses
   * 256). Changes rounding only; the batches' `packedInputs` must be built with the same chunk.
   */
  readonly chunkSize: number;
  /** Seed of the initial weights and the dropout stream. */
  readonly seed: number;
}

/** The official defaults, without `numItems`. */
export const SSD4REC_DEFAULTS: Omit<SSD4RecConfig, "numItems"> = {
  hiddenSize: 256,
  numLayers: 2,
  dropoutProb: 0.2,
  dState: 64,
  headDim: 16,
  dConv: 4,
  expand: 2,
  normEmbedding: true,
  beta: 0.1,
  chunkSize: SSD_DEFAULT_CHUNK,
  seed: DEFAULT_SEED,
};

/** Stream of the Mamba-2 blocks' A_log and dt_bias draws, apart from the other parameters'. */
const MAMBA2_INIT_STREAM = 0x55d4;

const SSD4REC_CHECKS = {
  numItems: MODEL_CHECKS.positiveInt,
  hiddenSize: MODEL_CHECKS.positiveInt,
  numLayers: MODEL_CHECKS.positiveInt,
  dropoutProb: MODEL_CHECKS.probability,
  dState: MODEL_CHECKS.positiveInt,
  headDim: MODEL_CHECKS.positiveInt,
  dConv: (v: unknown) =>
    Number.isInteger(v) && (v as number) >= 2 && (v as number) <= 4 ? null : "must be 2, 3 or 4",
  expand: MODEL_CHECKS.positiveInt,
  normEmbedding: (v: unknown) => (typeof v === "boolean" ? null : "must be true or false"),
  beta: (v: unknown) =>
    typeof v === "number" && Number.isFinite(v) ? null : "must be a finite number",
  chunkSize: (v: unknown) =>
    Number.isInteger(v) && (v as number) >= 1 && (v as number) <= SSD_MAX_CHUNK
      ? null
      : `must be an integer in [1, ${SSD_MAX_CHUNK}]`,
  seed: MODEL_CHECKS.nonNegativeInt,
};

/**
 * SSD4Rec's configuration: the official defaults overridden by `overrides` (which must set
 * `numItems`), validated; an unknown key or a bad value fails naming the key.
 */
export function ssd4recConfig(overrides: Record<string, unknown>): SSD4RecConfig {
  const c = mergeConfig(
    "ssd4rec config",
    { ...SSD4REC_DEFAULTS, numItems: 0 },
    SSD4REC_CHECKS,
    overrides,
  );
  if (c.numItems < 2) {
    throw new ConfigError(
      "ssd4rec config: 'numItems' must count id 0 and at least one item",
      "numItems",
    );
  }
  const inner = c.expand * c.hiddenSize;
  if (inner % c.headDim !== 0) {
    throw new ConfigError(
      `ssd4rec config: 'headDim' ${c.headDim} must divide expand · hiddenSize = ${inner}`,
      "headDim",
    );
  }
  if (inner > GATED_RMS_NORM_MAX_GROUP) {
    throw new ConfigError(
      `ssd4rec config: expand · hiddenSize = ${inner} is normalised as one group, at most ` +
        `${GATED_RMS_NORM_MAX_GROUP}; use a smaller 'hiddenSize' or 'expand'`,
      "hiddenSize",
    );
  }
  return c;
}

/** A packed batch on the GPU, as {@link SSD4Rec.forward} takes it. */
export interface PackedModelInputs extends PackedSegments {
  /** Item ids of every token, i32 `[T]`, the histories concatenated (masked tokens are 0). */
  readonly items: Tensor;
  /** Segment id of every token, i32 `[1, T]`. */
  readonly seqIdx: Tensor;
  /** Position each token takes its value from when every segment is reversed, i32 `[T]`. */
  readonly reversal: Tensor;
  /** Index of each segment's last token, i32 `[B]`. */
  readonly lastIndex: Tensor;
  /** The scan's chunking of the segments, shared by every scan of the batch. */
  readonly pieces: SsdPieces;
  /** Frees the tensors and the chunking's tables (after the backward). */
  dispose(): void;
}

/**
 * Uploads a packed batch for {@link SSD4Rec.forward} and chunks its segments for the scan once.
 * Dispose the result after the batch's backward.
 * @param batch the batch (`packedBatches`)
 * @param chunk the scan's chunk length; must equal the model's `chunkSize` (default the scan's)
 */
export function packedInputs(
  batch: PackedBatch,
  chunk: number = SSD_DEFAULT_CHUNK,
): PackedModelInputs {
  const T = batch.tokens;
  if (T < 1 || batch.size < 1) {
    throw new RangeError(
      `packedInputs: the batch has ${batch.size} samples and ${T} tokens; every sample needs a ` +
        "history of at least one item",
    );
  }
  const pieces = ssdPieces(1, T, batch.seqIdx, chunk);
  const tensors = {
    items: Tensor.from(batch.items, [T], "i32"),
    seqIdx: Tensor.from(batch.seqIdx, [1, T], "i32"),
    reversal: Tensor.from(batch.flipIndex, [T], "i32"),
    lastIndex: Tensor.from(batch.lastIndex, [batch.size], "i32"),
  };
  return {
    ...tensors,
    pieces,
    dispose() {
      for (const t of Object.values(tensors)) t.dispose();
      pieces.dispose();
    },
  };
}

/** One Bi-SSD layer's modules: the shared Mamba-2 block, its LayerNorm and the feed-forward. */
interface BiSsdLayer {
  readonly mamba: Mamba2Block;
  readonly norm: LayerNorm;
  readonly ffn: FeedForward;
}

/** SSD4Rec on WebGPU. */
export class SSD4Rec {
  /** Model name, as checkpoints record it. */
  readonly name = "ssd4rec";
  /** Takes packed batches ({@link packedInputs}). */
  readonly layout = "packed";
  /** The hyperparameters. */
  readonly config: SSD4RecConfig;
  /** All trainable parameters by name. */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #items: Tensor;
  readonly #embNorm: LayerNorm | null;
  readonly #layers: BiSsdLayer[] = [];

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: SSD4RecConfig) {
    this.config = config;
    const d = config.hiddenSize;
    this.params = new ParameterSet(config.seed);
    this.dropoutRng = new DropoutRng(config.seed);
    const mambaInit = new SeededRandom(config.seed, MAMBA2_INIT_STREAM);
    // nn.Embedding(n_items, D) without padding_idx: every row, 0 included, N(0, 0.02) and learned.
    this.#items = this.params.normal("item_embedding.weight", [config.numItems, d], INIT_STD);
    this.#embNorm = config.normEmbedding ? new LayerNorm(this.params, "LayerNorm", d) : null;
    for (let i = 0; i < config.numLayers; i++) {
      const name = `ssd_layers.${i}`;
      const block = {
        dModel: d,
        dState: config.dState,
        headDim: config.headDim,
        dConv: config.dConv,
        expand: config.expand,
        groups: 1,
      };
      this.#layers.push({
        mamba: new Mamba2Block(this.params, `${name}.mamba`, block, mambaInit),
        norm: new LayerNorm(this.params, `${name}.LayerNorm`, d),
        ffn: new FeedForward(this.params, `${name}.ffn`, d, 4 * d, "after-norm"),
      });
    }
  }

  /** The item embedding table `[numItems, d]`, tied between input and output. */
  get itemTable(): Tensor {
    return this.#items;
  }

  /**
   * The representation of every sample, its segment's last token (`[B, d]`). In the last layer,
   * the blocks' scans give their output at the last tokens only, and what acts token by token
   * (the gated norms and output projections, the LayerNorm and the feed-forward) runs on those.
   * @param inputs the packed batch ({@link packedInputs} with this model's `chunkSize`)
   * @param training whether dropout is on
   */
  forward(inputs: PackedModelInputs, training: boolean): Tensor {
    if (inputs.pieces.chunk !== this.config.chunkSize) {
      throw new RangeError(
        `SSD4Rec: the inputs were chunked for the scan by ${inputs.pieces.chunk} tokens, the ` +
          `model's chunkSize is ${this.config.chunkSize}; build them with ` +
          `packedInputs(batch, ${this.config.chunkSize})`,
      );
    }
    const ctx: DropoutContext = { p: this.config.dropoutProb, rng: this.dropoutRng, training };
    const { beta, hiddenSize: d } = this.config;
    const T = inputs.items.size;
    // Tensors no backward reads (sums, gathers' and dropout's inputs) are freed as soon as they
    // have been read; the rest live until the step's scope ends.
    let h = reshape(this.#embed(inputs.items, ctx), [1, T, d]);
    const betaRow = beta !== 0 ? this.#betaRow() : null;
    this.#layers.forEach((layer, i) => {
      // The last layer is read at each segment's last token only: its blocks' scans, norms and
      // output projections, the sum and what follows run for those tokens.
      const rows = i === this.#layers.length - 1 ? inputs.lastIndex : undefined;
      // The same block over every segment reversed in place reads the same projection reversed
      // (both made before either direction runs, which frees its pieces as it goes).
      const [projection, reversed] = beta !== 0
        ? layer.mamba.projectBothWays(h, inputs.reversal, rows)
        : [layer.mamba.project(h, rows)];
      const fwd = layer.mamba.mix(projection, inputs, rows);
      // Its output is NOT reversed back.
      const bwd = reversed ? layer.mamba.mix(reversed, inputs, rows) : null;
      let skip = h;
      if (rows) {
        const flat = reshape(h, [T, d]);
        skip = freeAfter(embedding(rows, flat, { distinctIds: true }), flat);
      }
      h = this.#layerOutput(i, { fwd, bwd, skip, keepSkip: rows === undefined }, betaRow, ctx);
    });
    return h;
  }

  /** The item embeddings of `items` (`[…, d]`), through dropout and LayerNorm when configured. */
  #embed(items: Tensor, ctx: DropoutContext): Tensor {
    const rows = embedding(items, this.#items);
    if (!this.#embNorm) return rows;
    return this.#embNorm.forward(freeAfter(applyDropout(rows, ctx), rows));
  }

  /**
   * The item embeddings of `items` as the first layer reads them, dropout off (`[…, d]`): for
   * the step form (`SSD4RecStream`).
   */
  embedItems(items: Tensor): Tensor {
    return this.#embed(items, { p: 0, rng: this.dropoutRng, training: false });
  }

  /** Layer `i`'s Mamba-2 block (for the step form). */
  block(i: number): Mamba2Block {
    return this.#layers[i].mamba;
  }

  /**
   * β as a row `[d]`: β·bwd is a product with it (the same rounding as scaling by β), whose
   * backward reads the row alone, so that bwd is freed once multiplied.
   */
  #betaRow(): Tensor {
    const d = this.config.hiddenSize;
    return Tensor.from(new Float32Array(d).fill(this.config.beta), [d]);
  }

  /**
   * The rest of Bi-SSD layer `i` after its block's two directions, dropout off (for the step
   * form): `h = fwd + β·bwd + skip`, then LayerNorm and the feed-forward. Frees its inputs.
   * @param i the layer
   * @param parts the block's output on the segments as they are (`fwd`) and on every segment
   *   reversed, not reversed back (`bwd`, null when β is 0), and the layer's input at the same
   *   rows (`skip`)
   */
  layerOutput(i: number, parts: { fwd: Tensor; bwd: Tensor | null; skip: Tensor }): Tensor {
    const ctx = { p: 0, rng: this.dropoutRng, training: false };
    return this.#layerOutput(i, parts, parts.bwd ? this.#betaRow() : null, ctx);
  }

  /** {@link layerOutput} with dropout as `ctx` says; `keepSkip` keeps `skip` (a backward reads it). */
  #layerOutput(
    i: number,
    parts: { fwd: Tensor; bwd: Tensor | null; skip: Tensor; keepSkip?: boolean },
    betaRow: Tensor | null,
    ctx: DropoutContext,
  ): Tensor {
    const layer = this.#layers[i];
    const { fwd, bwd, skip } = parts;
    let mixed = fwd;
    if (bwd && betaRow) {
      const weighted = freeAfter(mul(bwd, betaRow), bwd);
      mixed = freeAfter(freeAfter(add(mixed, weighted), mixed), weighted);
    }
    mixed = freeAfter(add(mixed, skip), mixed);
    if (!parts.keepSkip) skip.dispose();
    // The LayerNorm's output feeds dropout alone, whose backward reads neither.
    const normed = layer.norm.forward(mixed);
    return layer.ffn.forward(freeAfter(applyDropout(normed, ctx), normed), ctx);
  }
}
