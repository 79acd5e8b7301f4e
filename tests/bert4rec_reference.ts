/**
 * A float64 reference of BERT4Rec (dropout off), written literally from RecBole v1.2's model and
 * its `MaskItemSequence` transform: item plus position embedding, LayerNorm, post-LN Transformer
 * layers attending in both directions with pad keys masked, the output head
 * `output_ln(gelu(output_ffn(x)))`, scores `h · E[:n_items]ᵀ + output_bias`; the masking with its
 * padded `pos_items` / `masked_index` rows, and the loss `Σ CE · t / Σ t` with
 * `t = masked_index > 0`, padded slots included as RecBole computes them.
 */
import type { SeededRandom } from "../data/random.ts";
import { layerNormRef } from "./layernorm_reference.ts";
import { linearRef, normalCdf } from "./reference.ts";
import type { RefParams } from "./mamba4rec_reference.ts";
import type { PaddedTrainingBatch } from "../models/model.ts";
import { paddedItems } from "./util.ts";
import {
  paramGetter,
  transformerEncoderRef,
  type TransformerRefOptions,
} from "./transformer_reference.ts";

export type { RefParams } from "./mamba4rec_reference.ts";

/** The architecture settings the reference needs: the encoder's. */
export type Bert4RecRefOptions = TransformerRefOptions;

/** BERT4Rec's output `[B, L, H]` (after the output head) at every position of `items` `[B, L]`. */
export function bert4recReference(
  p: RefParams,
  items: Int32Array,
  B: number,
  L: number,
  o: Bert4RecRefOptions,
): Float64Array {
  const get = paramGetter(p);
  const H = p.get("item_embedding.weight")!.shape[1];
  const rows = B * L;
  const ln = (x: Float64Array, name: string) =>
    layerNormRef(x, get(`${name}.weight`), get(`${name}.bias`), H, o.eps);
  const lin = (x: Float64Array, name: string, out: number) =>
    linearRef(x, rows, get(`${name}.weight`), out, get(`${name}.bias`));
  const gelu = (x: Float64Array) => x.map((v) => v * normalCdf(v));
  // RecBole's get_attention_mask(bidirectional=True): −10000 on pad keys only.
  const x = transformerEncoderRef(p, items, B, L, o, false);
  return ln(gelu(lin(x, "output_ffn", H)), "output_ln");
}

/** Scores `[R, n_items]`: `h · E[:n_items]ᵀ + output_bias` for the representations `h` `[R, H]`. */
export function bert4recScoresRef(p: RefParams, h: Float64Array): Float64Array {
  const get = paramGetter(p);
  const table = get("item_embedding.weight");
  const bias = get("output_bias");
  const H = p.get("item_embedding.weight")!.shape[1];
  const n = bias.length;
  const R = h.length / H;
  const out = new Float64Array(R * n);
  for (let r = 0; r < R; r++) {
    for (let v = 0; v < n; v++) {
      let s = bias[v];
      for (let i = 0; i < H; i++) s += h[r * H + i] * table[v * H + i];
      out[r * n + v] = s;
    }
  }
  return out;
}

/** RecBole's masked batch: the input ids and the `[B, m]` left-padded `pos_items`, `masked_index`. */
export interface RecBoleMaskedBatch {
  /** Input ids `[B, L]` with the masked positions set to the mask token. */
  readonly items: Int32Array;
  /** `[B, m]` masked items, left-padded with 0. */
  readonly posItems: Int32Array;
  /** `[B, m]` their positions, left-padded with 0. */
  readonly maskedIndex: Int32Array;
  /** Whether the fine-tune branch ran. */
  readonly fineTune: boolean;
}

/** Python's `([0] * (m − len(seq)) + seq)[-m:]`. */
function paddingSequence(seq: number[], m: number): number[] {
  const padded = [...new Array(Math.max(m - seq.length, 0)).fill(0), ...seq];
  return padded.slice(padded.length - m);
}

/**
 * A literal port of `MaskItemSequence.__call__` (without the BPR negatives), drawing
 * `random.random()` from `random`: the fine-tune coin first, then one draw per real position.
 */
export function maskItemSequenceRef(
  items: Int32Array,
  lengths: Int32Array,
  B: number,
  L: number,
  o: { maskToken: number; maskRatio: number; ftRatio: number },
  random: SeededRandom,
): RecBoleMaskedBatch {
  const m = Math.trunc(o.maskRatio * L);
  const masked = items.slice(0, B * L);
  const posItems: number[] = [], maskedIndex: number[] = [];
  const fineTune = random.nextFloat() < o.ftRatio;
  for (let b = 0; b < B; b++) {
    const instance = Array.from(items.subarray(b * L, (b + 1) * L));
    const posItem: number[] = [], indexIds: number[] = [];
    if (fineTune) {
      const last = lengths[b] - 1;
      posItem.push(instance[last]);
      indexIds.push(last);
      masked[b * L + last] = o.maskToken;
    } else {
      for (const [indexId, item] of instance.entries()) {
        if (item === 0) break;
        if (random.nextFloat() < o.maskRatio) {
          posItem.push(item);
          masked[b * L + indexId] = o.maskToken;
          indexIds.push(indexId);
        }
      }
    }
    posItems.push(...paddingSequence(posItem, m));
    maskedIndex.push(...paddingSequence(indexIds, m));
  }
  return {
    items: masked,
    posItems: Int32Array.from(posItems),
    maskedIndex: Int32Array.from(maskedIndex),
    fineTune,
  };
}

/**
 * RecBole's BERT4Rec CE loss on a masked batch: the outputs gathered at `masked_index` (padded
 * slots included), their scores' cross-entropy against `pos_items`, weighted by
 * `t = masked_index > 0` and divided by `Σ t`.
 */
export function bert4recLossRef(
  p: RefParams,
  masked: RecBoleMaskedBatch,
  B: number,
  L: number,
  o: Bert4RecRefOptions,
): number {
  const H = p.get("item_embedding.weight")!.shape[1];
  const out = bert4recReference(p, masked.items, B, L, o);
  const m = masked.maskedIndex.length / B;
  const gathered = new Float64Array(B * m * H);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < m; j++) {
      const at = (b * L + masked.maskedIndex[b * m + j]) * H;
      gathered.set(out.subarray(at, at + H), (b * m + j) * H);
    }
  }
  const logits = bert4recScoresRef(p, gathered);
  const n = logits.length / (B * m);
  let sum = 0, weight = 0;
  for (let r = 0; r < B * m; r++) {
    const t = masked.maskedIndex[r] > 0 ? 1 : 0;
    const row = logits.subarray(r * n, (r + 1) * n);
    const max = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    sum += (Math.log(z) + max - row[masked.posItems[r]]) * t;
    weight += t;
  }
  return sum / weight;
}

/** A training batch of `lengths` random windows of length L. */
export function trainingBatch(
  rng: () => number,
  lengths: Int32Array,
  L: number,
  numItems: number,
): PaddedTrainingBatch {
  const size = lengths.length;
  return {
    size,
    maxLength: L,
    items: paddedItems(rng, lengths, L, numItems),
    lengths,
    targets: new Int32Array(size).fill(1),
    users: new Int32Array(size),
  };
}

/** RecBole's `reconstruct_test_data`, literally: append a 0 column, mask at `len`, drop column 0. */
export function reconstructRef(items: Int32Array, lengths: Int32Array, L: number, mask: number) {
  const out: number[] = [];
  lengths.forEach((len, b) => {
    const row = [...items.subarray(b * L, (b + 1) * L), 0];
    row[len] = mask;
    out.push(...row.slice(1));
  });
  return Int32Array.from(out);
}
