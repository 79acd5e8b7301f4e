/**
 * What SASRec and BERT4Rec share: their input, `dropout(LayerNorm(E[items] + P[0 … L − 1]))` with
 * an absolute position embedding P of `maxLength` rows ({@link embedWindow}), and RecBole v1.2's
 * `TransformerEncoder`, the stack of post-LN Transformer layers. Each layer on `[B, L, H]`:
 *
 * - multi-head attention: Q, K, V = Linear(H, H) with bias, per head
 *   `dropout(softmax(Q·Kᵀ / √(H / heads) + mask)) · V`, the heads concatenated, then
 *   `LayerNorm(dropout(dense(context)) + input)`;
 * - feed-forward: `LayerNorm(dropout(dense_2(gelu(dense_1(a)))) + a)` with exact (erf) GELU and
 *   no dropout between the activation and `dense_2`.
 *
 * The mask is the model's: causal (SASRec) or pad keys only (BERT4Rec). Parameters carry
 * RecBole's names (`trm_encoder.layer.{i}.multi_head_attention.query.weight`, …) and are drawn
 * layer by layer in that order, so a seeded model's weights and its checkpoints match RecBole's
 * layout.
 *
 * @module
 */
import { add, gelu, reshape } from "../ops/pointwise/elementwise.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { attention, type AttentionOptions } from "../ops/dense/attention.ts";
import { mergeHeads, splitHeads } from "../ops/dense/attention_heads.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { Tensor } from "../ops/core/tensor.ts";
import { applyDropout, type DropoutContext, LayerNorm, Linear } from "./layers.ts";
import { ConfigError } from "./config.ts";
import type { ParameterSet } from "./parameters.ts";

/** The tables of a window's input: item and position embeddings, and the LayerNorm of their sum. */
export interface WindowEmbedding {
  /** Item embedding `[rows, H]`, row 0 PAD. */
  readonly items: Tensor;
  /** Position embedding `[maxLength, H]`: row t is added at position t from the left. */
  readonly positions: Tensor;
  /** The LayerNorm after the sum (RecBole's `LayerNorm`). */
  readonly norm: LayerNorm;
}

/**
 * A window's input to the encoder, `dropout(LayerNorm(E[items] + P[0 … L − 1]))`, `[B, L, H]`,
 * from `[B, L]` item ids (PAD id 0 looked up without gradient), as RecBole's SASRec and BERT4Rec
 * build it; `ctx` is the hidden dropout. A window longer than the position table fails with a
 * {@link ConfigError} naming `maxLength` and `model`.
 */
export function embedWindow(
  model: string,
  items: Tensor,
  tables: WindowEmbedding,
  ctx: DropoutContext,
): Tensor {
  const [, length] = items.shape;
  const maxLength = tables.positions.shape[0];
  if (length > maxLength) {
    throw new ConfigError(
      `${model}: a window of ${length} items is longer than the position embedding ` +
        `(${maxLength} rows); set the model's 'maxLength' to at least the training 'maxLength'`,
      "maxLength",
    );
  }
  const positionIds = Tensor.from(Int32Array.from({ length }, (_, i) => i), [length], "i32");
  const embedded = embedding(items, tables.items, { paddingIdx: 0 });
  // [B, L, H] + [L, H]: the position rows repeat over the batch.
  return applyDropout(
    tables.norm.forward(add(embedded, embedding(positionIds, tables.positions))),
    ctx,
  );
}

/** The encoder's hyperparameters (RecBole's names in brackets). */
export interface TransformerEncoderConfig {
  /** Model width H (`hidden_size`). */
  readonly hiddenSize: number;
  /** Number of layers (`n_layers`). */
  readonly numLayers: number;
  /** Number of attention heads (`n_heads`); must divide `hiddenSize`. */
  readonly numHeads: number;
  /** Feed-forward inner width (`inner_size`). */
  readonly innerSize: number;
  /** Dropout on the attention probabilities (`attn_dropout_prob`). */
  readonly attnDropoutProb: number;
  /** The LayerNorms' variance epsilon (`layer_norm_eps`). */
  readonly layerNormEps: number;
}

/** Which keys each query may attend: the attention op's mask and pad keys. */
export interface EncoderMask {
  /** `"causal"`: query i attends keys j ≤ i; `"none"`: every key not masked as a pad. */
  readonly mask: AttentionOptions["mask"];
  /** `[B, L]` i32 pad flags of the keys (nonzero: masked for every query), if any. */
  readonly keyPadding?: Tensor;
}

/** Picks the rows a caller needs from a layer's `[B, L, H]` output, giving `[R, H]`. */
export type RowGather = (x: Tensor) => Tensor;

/**
 * The rows of the last layer a caller needs: Lq per sequence, the same number in each. The last
 * layer computes their queries, their attention rows and everything after at those rows alone.
 */
export interface OutputRows {
  /** i32 `[B, Lq]`: each sequence's row positions (each in `[0, L)`). */
  readonly positions: Tensor;
  /** Picks those rows from a `[B, L, H]` tensor: `[B·Lq, H]`, sequence by sequence in order. */
  readonly gather: RowGather;
}

/**
 * The {@link OutputRows} of one row per sequence at `positions` (i32 `[B]`, each sequence's
 * last item), or null (every position) without them.
 */
export function lastItemRows(positions: Tensor | undefined): OutputRows | null {
  if (!positions) return null;
  return {
    positions: reshape(positions, [positions.shape[0], 1]),
    gather: (x) => gatherPositions(x, positions),
  };
}

/** One post-LN Transformer layer's parameters (RecBole's `TransformerLayer`). */
interface TransformerLayerWeights {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dense: Linear;
  readonly attnNorm: LayerNorm;
  readonly dense1: Linear;
  readonly dense2: Linear;
  readonly ffnNorm: LayerNorm;
}

/** RecBole's `TransformerEncoder`: `numLayers` post-LN Transformer layers. */
export class TransformerEncoder {
  /** The hyperparameters. */
  readonly config: TransformerEncoderConfig;
  readonly #layers: TransformerLayerWeights[] = [];

  /**
   * Creates every layer's parameters in `params`, layer by layer (RecBole's order): the query,
   * key, value and dense Linears and the attention LayerNorm, then the feed-forward Linears and
   * LayerNorm.
   * @param params where the parameters live
   * @param config the hyperparameters
   * @param prefix the parameter name prefix (RecBole's `trm_encoder`)
   */
  constructor(params: ParameterSet, config: TransformerEncoderConfig, prefix = "trm_encoder") {
    this.config = config;
    const { hiddenSize: h, innerSize, layerNormEps: eps } = config;
    for (let i = 0; i < config.numLayers; i++) {
      const attn = `${prefix}.layer.${i}.multi_head_attention`;
      const ffn = `${prefix}.layer.${i}.feed_forward`;
      this.#layers.push({
        query: new Linear(params, `${attn}.query`, h, h),
        key: new Linear(params, `${attn}.key`, h, h),
        value: new Linear(params, `${attn}.value`, h, h),
        dense: new Linear(params, `${attn}.dense`, h, h),
        attnNorm: new LayerNorm(params, `${attn}.LayerNorm`, h, eps),
        dense1: new Linear(params, `${ffn}.dense_1`, h, innerSize),
        dense2: new Linear(params, `${ffn}.dense_2`, innerSize, h),
        ffnNorm: new LayerNorm(params, `${ffn}.LayerNorm`, h, eps),
      });
    }
  }

  /**
   * Runs every layer on `x` (`[B, L, H]`). `ctx` is the hidden dropout (after each output
   * projection and the feed-forward network); the attention dropout draws from the same
   * generator with `attnDropoutProb`. With `rows`, the last layer computes only what those rows
   * need (everything after the attention acts position by position, and a query's attention row
   * depends on that query alone, so the values are the same for a fraction of the work) and the
   * output is `[R, H]`; without it, `[B, L, H]`.
   */
  forward(x: Tensor, ctx: DropoutContext, mask: EncoderMask, rows: OutputRows | null): Tensor {
    const last = this.#layers.length - 1;
    this.#layers.forEach((layer, i) => {
      x = this.#layer(layer, x, ctx, mask, i === last ? rows : null);
    });
    return x;
  }

  /** One layer on `[B, L, H]`; with `rows`, its output at those rows only. */
  #layer(
    w: TransformerLayerWeights,
    x: Tensor,
    ctx: DropoutContext,
    mask: EncoderMask,
    rows: OutputRows | null,
  ): Tensor {
    const heads = this.config.numHeads;
    // With output rows, the queries at those positions alone: [B, Lq, H].
    let picked: Tensor | null = null;
    let query: Tensor;
    if (rows) {
      picked = rows.gather(x);
      query = reshape(w.query.forward(picked), [x.shape[0], rows.positions.shape[1], x.shape[2]]);
    } else {
      query = w.query.forward(x);
    }
    let context = mergeHeads(
      attention(
        splitHeads(query, heads),
        splitHeads(w.key.forward(x), heads),
        splitHeads(w.value.forward(x), heads),
        {
          mask: mask.mask,
          keyPadding: mask.keyPadding,
          dropout: { p: this.config.attnDropoutProb, rng: ctx.rng, training: ctx.training },
          ...(rows ? { queryPositions: rows.positions } : {}),
        },
      ),
    );
    let residual = x;
    if (picked) {
      context = reshape(context, picked.shape);
      residual = picked;
    }
    const a = w.attnNorm.forward(add(applyDropout(w.dense.forward(context), ctx), residual));
    const f = w.dense2.forward(gelu(w.dense1.forward(a)));
    return w.ffnNorm.forward(add(applyDropout(f, ctx), a));
  }
}
