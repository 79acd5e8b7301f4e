/**
 * The float64 reference of the Transformer encoder RecBole's SASRec and BERT4Rec share (dropout
 * off), written literally from RecBole's model definition: item plus position embedding,
 * LayerNorm, then post-LN Transformer layers (Q/K/V projections, attention with pad keys masked,
 * causal or in both directions, the output projection and LayerNorm over the residual, then
 * `dense_2(gelu(dense_1(a)))` and LayerNorm over its residual).
 *
 * @module
 */
import { attentionReference } from "../ops/dense/attention_reference.ts";
import { layerNormRef } from "./layernorm_reference.ts";
import { linearRef, normalCdf } from "./reference.ts";
import type { RefParams } from "./mamba4rec_reference.ts";

/** The architecture settings the encoder reference needs. */
export interface TransformerRefOptions {
  /** Transformer layers. */
  readonly numLayers: number;
  /** Attention heads. */
  readonly numHeads: number;
  /** LayerNorm epsilon. */
  readonly eps: number;
}

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

/** A parameter's values by name; a missing one fails naming it. */
export function paramGetter(p: RefParams): (name: string) => Float64Array {
  return (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`reference: missing parameter ${n}`);
    return t.data;
  };
}

/**
 * The encoder's output `[B, L, H]` at every position of `items` `[B, L]` (right-padded with 0):
 * pad keys are masked for every query, and with `causal` query t attends keys 0 … t only.
 */
export function transformerEncoderRef(
  p: RefParams,
  items: Int32Array,
  B: number,
  L: number,
  o: TransformerRefOptions,
  causal: boolean,
): Float64Array {
  const get = paramGetter(p);
  const table = get("item_embedding.weight");
  const pos = get("position_embedding.weight");
  const H = p.get("item_embedding.weight")!.shape[1];
  const rows = B * L;
  const nh = o.numHeads;
  const ln = (x: Float64Array, name: string) =>
    layerNormRef(x, get(`${name}.weight`), get(`${name}.bias`), H, o.eps);
  const lin = (x: Float64Array, name: string, out: number) =>
    linearRef(x, rows, get(`${name}.weight`), out, get(`${name}.bias`));
  let x: Float64Array = new Float64Array(rows * H);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < H; i++) x[r * H + i] = table[items[r] * H + i] + pos[(r % L) * H + i];
  }
  x = ln(x, "LayerNorm");
  // RecBole's get_attention_mask: −10000 on pad keys (and, causal, on later keys).
  const keyPadding = Int32Array.from(items, (id) => (id === 0 ? 1 : 0));
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
        causal,
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
  return x;
}
