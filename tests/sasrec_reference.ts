/**
 * A float64 reference of the whole SASRec forward pass and loss (dropout off), written literally
 * from RecBole's model definition: item plus position embedding, LayerNorm, post-LN Transformer
 * layers (Q/K/V projections, causal attention with pad keys masked too, as RecBole's
 * `get_attention_mask`, the output projection and LayerNorm over the residual, then
 * `dense_2(gelu(dense_1(a)))` and LayerNorm over its residual), the output at length − 1 and the
 * tied cross-entropy over every item row, PAD included.
 */
import { tiedCrossEntropyRef } from "./reference.ts";
import { paramGetter, transformerEncoderRef } from "./transformer_reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

export type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/**
 * SASRec's outputs at every position `[B, L, H]`, the last-item representations `[B, H]` and
 * their mean cross-entropy loss on a batch.
 */
export function sasrecReference(
  p: RefParams,
  batch: RefBatch,
  o: { numLayers: number; numHeads: number; eps: number },
): { loss: number; h: Float64Array; all: Float64Array } {
  const table = paramGetter(p)("item_embedding.weight");
  const H = p.get("item_embedding.weight")!.shape[1];
  const { size: B, maxLength: L } = batch;
  const x = transformerEncoderRef(p, batch.items, B, L, o, true);
  const h = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    const at = Math.max(batch.lengths[b] - 1, 0);
    h.set(x.subarray((b * L + at) * H, (b * L + at + 1) * H), b * H);
  }
  return { loss: tiedCrossEntropyRef(h, table, H, batch.targets), h, all: x };
}
