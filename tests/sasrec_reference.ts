/**
 * A float64 reference of the whole SASRec forward pass and loss (dropout off), written literally
 * from RecBole's model definition: item plus position embedding, LayerNorm, post-LN Transformer
 * layers (Q/K/V projections, causal attention with pad keys masked too, as RecBole's
 * `get_attention_mask`, the output projection and LayerNorm over the residual, then
 * `dense_2(gelu(dense_1(a)))` and LayerNorm over its residual), the output at length − 1 and the
 * tied cross-entropy over every item row, PAD included.
 */
import { attentionReference } from "../ops/dense/attention_reference.ts";
import { layerNormRef } from "./layernorm_reference.ts";
import { linearRef, normalCdf, tiedCrossEntropyRef } from "./reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

export type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/** `[B, L, nh·d]` as `[B, nh, L, d]` (`mergeHeads` when `back`). */
function swapHeads(x: Float64Array, B: number, L: number, nh: number, back: boolean) {
  const d = x.length / (B * L * nh);
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      for (let h = 0; h < nh; h++) {
        for (let c = 0; c < d; c++) {
          const blh = ((b * L + t) * nh + h) * d + c;
          const bhl = ((b * nh + h) * L + t) * d + c;
          if (back) out[blh] = x[bhl];
          else out[bhl] = x[blh];
        }
      }
    }
  }
  return out;
}

/**
 * SASRec's outputs at every position `[B, L, H]`, the last-item representations `[B, H]` and
 * their mean cross-entropy loss on a batch.
 */
export function sasrecReference(
  p: RefParams,
  batch: RefBatch,
  o: { numLayers: number; numHeads: number; eps: number },
): { loss: number; h: Float64Array; all: Float64Array } {
  const get = (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`reference: missing parameter ${n}`);
    return t.data;
  };
  const table = get("item_embedding.weight");
  const pos = get("position_embedding.weight");
  const H = p.get("item_embedding.weight")!.shape[1];
  const { size: B, maxLength: L } = batch;
  const rows = B * L;
  const nh = o.numHeads;
  const ln = (x: Float64Array, name: string) =>
    layerNormRef(x, get(`${name}.weight`), get(`${name}.bias`), H, o.eps);
  const lin = (x: Float64Array, name: string, out: number) =>
    linearRef(x, rows, get(`${name}.weight`), out, get(`${name}.bias`));
  let x: Float64Array = new Float64Array(rows * H);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < H; i++) {
      x[r * H + i] = table[batch.items[r] * H + i] + pos[(r % L) * H + i];
    }
  }
  x = ln(x, "LayerNorm");
  const keyPadding = Int32Array.from(batch.items, (id) => (id === 0 ? 1 : 0));
  for (let layer = 0; layer < o.numLayers; layer++) {
    const attn = `trm_encoder.layer.${layer}.multi_head_attention`;
    const ffn = `trm_encoder.layer.${layer}.feed_forward`;
    const [q, k, v] = ["query", "key", "value"].map((n) =>
      swapHeads(lin(x, `${attn}.${n}`, H), B, L, nh, false)
    );
    const context = swapHeads(
      attentionReference(q, k, v, {
        batch: B,
        heads: nh,
        length: L,
        dim: H / nh,
        causal: true,
        keyPadding,
        scale: 1 / Math.sqrt(H / nh),
      }),
      B,
      L,
      nh,
      true,
    );
    const dense = lin(context, `${attn}.dense`, H);
    const a = ln(dense.map((val, i) => val + x[i]), `${attn}.LayerNorm`);
    const inner = get(`${ffn}.dense_1.bias`).length;
    const g = lin(a, `${ffn}.dense_1`, inner).map((val) => val * normalCdf(val));
    const f = linearRef(g, rows, get(`${ffn}.dense_2.weight`), H, get(`${ffn}.dense_2.bias`));
    x = ln(f.map((val, i) => val + a[i]), `${ffn}.LayerNorm`);
  }
  const h = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    const at = Math.max(batch.lengths[b] - 1, 0);
    h.set(x.subarray((b * L + at) * H, (b * L + at + 1) * H), b * H);
  }
  return { loss: tiedCrossEntropyRef(h, table, H, batch.targets), h, all: x };
}
