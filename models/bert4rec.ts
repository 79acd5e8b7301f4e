/**
 * BERT4Rec as RecBole v1.2 builds, trains and evaluates it: the item embedding with one extra
 * row, the mask token (id `numItems`, PAD 0 counted in `numItems`), plus an absolute position
 * embedding of `maxLength` rows, LayerNorm then dropout, a stack of post-LN Transformer layers
 * (RecBole's `TransformerEncoder`, `transformer.ts`, as in SASRec) attending in both directions with pad keys
 * masked, and an output head `output_ln(gelu(output_ffn(x)))` at every position.
 *
 * Scores are `h · E[:numItems]ᵀ + output_bias`: every item row, PAD included, but not the mask
 * token's row, plus one learned bias per item. The evaluator and the trainer score `h · tableᵀ`,
 * so the model's representation is `[h | 1]` (`[B, H + 1]`) and its item table is
 * `[E[:numItems] | output_bias]` (`[numItems, H + 1]`): the product is exactly RecBole's scores.
 *
 * Training ({@link BERT4Rec.trainingLoss}): each prefix batch is masked on the host as RecBole's
 * `MaskItemSequence` masks it (see `bert4rec_masking.ts`), and the loss is the mean cross-entropy
 * over the masked positions that RecBole's loss counts (a per-token mean). The target after each
 * window is never used, as in RecBole. Where a batch has no such position (the fine-tune branch
 * on windows of one item only) the loss is 0 with zero gradients, where RecBole's is 0/0.
 *
 * Evaluation ({@link BERT4Rec.rankingItems}): RecBole's `reconstruct_test_data`, the mask token
 * appended after the last item and the oldest item dropped; the representation is the one at the
 * mask token.
 *
 * Initialisation as RecBole's `_init_weights`: every Linear and Embedding weight ~ N(0, 0.02),
 * the PAD and mask rows and the position table included, Linear biases 0, LayerNorm weight 1 and
 * bias 0, `output_bias` 0.
 *
 * @module
 */
import { DEFAULT_SEED } from "../data/mod.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { gelu, reshape } from "../ops/pointwise/elementwise.ts";
import { concatColumns } from "../ops/pointwise/concat.ts";
import { padMask } from "../ops/pointwise/pad_mask.ts";
import { fill } from "../ops/core/unrecorded.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { Tensor } from "../ops/core/tensor.ts";
import { type DropoutContext, INIT_STD, LayerNorm, Linear } from "./layers.ts";
import { embedWindow, lastItemRows, type OutputRows, TransformerEncoder } from "./transformer.ts";
import { mergeConfig, MODEL_CHECKS } from "./config.ts";
import {
  checkTransformerSizes,
  TRANSFORMER_CHECKS,
  type TransformerRecommenderConfig,
} from "./transformer_config.ts";
import { ParameterSet } from "./parameters.ts";
import {
  evaluationWindow,
  lossRows,
  maskItemLength,
  maskItemSequence,
} from "./bert4rec_masking.ts";
import type {
  ModelInputs,
  PaddedModel,
  PaddedTrainingBatch,
  TrainingBatchPosition,
} from "./model.ts";

/**
 * BERT4Rec's hyperparameters: those of every Transformer recommender (`numItems`, PAD counted, is
 * also the mask token's id: the embedding has one row more) and the masking's two, with RecBole's
 * `BERT4Rec.yaml` defaults ({@link BERT4REC_DEFAULTS}: width 64, 2 layers of 2 heads, inner size
 * 256, both dropouts 0.2, epsilon 1e-12, L 50).
 */
export interface BERT4RecConfig extends TransformerRecommenderConfig {
  /**
   * Probability that a real position is masked in training (`mask_ratio`, 0.2); at most
   * `int(maskRatio · L)` masked positions per window enter the loss.
   */
  readonly maskRatio: number;
  /** Probability that a training batch masks only each window's last item (`ft_ratio`, 0.5). */
  readonly ftRatio: number;
}

/** RecBole's defaults, without `numItems`. */
export const BERT4REC_DEFAULTS: Omit<BERT4RecConfig, "numItems"> = {
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 2,
  innerSize: 256,
  hiddenDropoutProb: 0.2,
  attnDropoutProb: 0.2,
  layerNormEps: 1e-12,
  maxLength: 50,
  maskRatio: 0.2,
  ftRatio: 0.5,
  seed: DEFAULT_SEED,
};

const BERT4REC_CHECKS = {
  ...TRANSFORMER_CHECKS,
  maskRatio: MODEL_CHECKS.probability,
  ftRatio: (v: unknown) =>
    typeof v === "number" && v >= 0 && v <= 1 ? null : "must be a probability in [0, 1]",
  seed: MODEL_CHECKS.nonNegativeInt,
};

/**
 * BERT4Rec's configuration: RecBole's defaults overridden by `overrides` (which must set
 * `numItems`), validated; an unknown key or a bad value fails naming the key.
 */
export function bert4recConfig(overrides: Record<string, unknown>): BERT4RecConfig {
  const c = mergeConfig(
    "bert4rec config",
    { ...BERT4REC_DEFAULTS, numItems: 0 },
    BERT4REC_CHECKS,
    overrides,
  );
  checkTransformerSizes("bert4rec", c);
  maskItemLength(c.maskRatio, c.maxLength);
  return c;
}

/** BERT4Rec on WebGPU, on padded batches, with its own masked-item training loss. */
export class BERT4Rec implements PaddedModel {
  /** Model name, as checkpoints record it. */
  readonly name = "bert4rec";
  /** The input layout: padded `[B, L]` windows. */
  readonly layout = "padded";
  /** The hyperparameters. */
  readonly config: BERT4RecConfig;
  /** All trainable parameters by name (RecBole's names). */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #items: Tensor;
  readonly #positions: Tensor;
  readonly #encoder: TransformerEncoder;
  readonly #embNorm: LayerNorm;
  readonly #outputFfn: Linear;
  readonly #outputNorm: LayerNorm;
  readonly #outputBias: Tensor;

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: BERT4RecConfig) {
    this.config = config;
    const { numItems, hiddenSize: h, layerNormEps: eps } = config;
    this.params = new ParameterSet(config.seed);
    this.dropoutRng = new DropoutRng(config.seed);
    const p = this.params;
    // nn.Embedding(n_items + 1, H, padding_idx=0): the last row is the mask token's.
    this.#items = p.normal("item_embedding.weight", [numItems + 1, h], INIT_STD);
    this.#positions = p.normal("position_embedding.weight", [config.maxLength, h], INIT_STD);
    this.#encoder = new TransformerEncoder(p, config);
    this.#embNorm = new LayerNorm(p, "LayerNorm", h, eps);
    this.#outputFfn = new Linear(p, "output_ffn", h, h);
    this.#outputNorm = new LayerNorm(p, "output_ln", h, eps);
    this.#outputBias = p.constant("output_bias", [numItems], 0);
  }

  /** The mask token's id: `numItems`, the item embedding's last row. */
  get maskToken(): number {
    return this.config.numItems;
  }

  /**
   * The scoring table `[numItems, H + 1]`: the item embedding without the mask token's row, with
   * `output_bias` as its last column, so that `[h | 1] · tableᵀ = h · E[:numItems]ᵀ + bias`.
   * Built from the parameters on each access (recorded for both): call inside `tidy`.
   */
  get itemTable(): Tensor {
    const n = this.config.numItems;
    const ids = Tensor.from(Int32Array.from({ length: n }, (_, i) => i), [n], "i32");
    return concatColumns(embedding(ids, this.#items), reshape(this.#outputBias, [n, 1]));
  }

  /**
   * Representations `[h | 1]`, `[B, H + 1]`, at `inputs.positions`, or at every position
   * (`[B, L, H + 1]`) without them; `inputs.items` are taken as they are (masked or not; see
   * {@link rankingItems} for the evaluation input). A window longer than the position table
   * fails with a {@link ConfigError} naming `maxLength`.
   */
  forward(inputs: ModelInputs, training: boolean): Tensor {
    const [batch, length] = inputs.items.shape;
    const { positions } = inputs;
    if (positions) {
      const h = this.#represent(inputs.items, training, lastItemRows(positions));
      return withOnes(h);
    }
    const h = this.#represent(inputs.items, training, null);
    const flat = withOnes(reshape(h, [batch * length, this.config.hiddenSize]));
    return reshape(flat, [batch, length, this.config.hiddenSize + 1]);
  }

  /**
   * RecBole's masked-item loss on a prefix batch (call inside `tidy`): the batch masked by
   * `maskItemSequence` from `at`, the last layer and the output head at its loss positions
   * (`lossRows`: as many rows in each sequence, padded with other positions whose outputs are
   * not used), and the mean cross-entropy of their scores (see {@link itemTable}) against the
   * items masked there.
   */
  readonly trainingLoss = (batch: PaddedTrainingBatch, at: TrainingBatchPosition): Tensor => {
    const { size, maxLength: L } = batch;
    const H = this.config.hiddenSize;
    const masked = maskItemSequence(batch, this.#masking(), at);
    // The last layer computes the loss positions alone: the same number in every sequence.
    const layout = lossRows(masked.lossPositions, size, L);
    const flat = Tensor.from(layout.flat, [layout.flat.length], "i32");
    const h = this.#represent(Tensor.from(masked.items, [size, L], "i32"), true, {
      positions: Tensor.from(layout.positions, [size, layout.perSequence], "i32"),
      gather: (x) => embedding(flat, reshape(x, [size * L, H]), { distinctIds: true }),
    });
    // No loss position: one ignored row (target PAD) keeps the loss defined, 0 with no gradient.
    const empty = masked.lossPositions.length === 0;
    const rows = empty ? Int32Array.of(0) : layout.lossRows;
    const targets = empty ? Int32Array.of(0) : masked.lossTargets;
    return itemCrossEntropy(
      withOnes(embedding(Tensor.from(rows, [rows.length], "i32"), h, { distinctIds: true })),
      this.itemTable,
      Tensor.from(targets, [targets.length], "i32"),
      { ignoreIndex: 0 },
    );
  };

  /**
   * The evaluation input (RecBole's `reconstruct_test_data`): each window with the mask token
   * appended after its last item and its oldest item dropped (see `evaluationWindow`).
   */
  readonly rankingItems = (
    items: Int32Array,
    lengths: Int32Array,
    size: number,
    maxLength: number,
  ): Int32Array => evaluationWindow(items, lengths, size, maxLength, this.maskToken);

  /** The masking settings of the training draw. */
  #masking() {
    const { maskRatio, ftRatio } = this.config;
    return { maskToken: this.maskToken, maskRatio, ftRatio };
  }

  /**
   * The output head `output_ln(gelu(output_ffn(x)))` on the encoder's output: at every position
   * (`[B, L, H]`, `rows` null), or at the rows `rows` names (`[R, H]`), which the last layer
   * computes alone (see {@link TransformerEncoder.forward}).
   */
  #represent(items: Tensor, training: boolean, rows: OutputRows | null): Tensor {
    const ctx: DropoutContext = {
      p: this.config.hiddenDropoutProb,
      rng: this.dropoutRng,
      training,
    };
    const x = embedWindow(
      this.name,
      items,
      { items: this.#items, positions: this.#positions, norm: this.#embNorm },
      ctx,
    );
    const pads = padMask(items);
    const h = this.#encoder.forward(x, ctx, { mask: "none", keyPadding: pads }, rows);
    return this.#outputNorm.forward(gelu(this.#outputFfn.forward(h)));
  }
}

/** `[h | 1]`: the representations `[R, H]` with a column of ones, to meet the bias column. */
function withOnes(h: Tensor): Tensor {
  return concatColumns(h, fill([h.shape[0], 1], 1));
}
