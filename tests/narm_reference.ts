/**
 * A float64 reference of the whole NARM forward pass and loss (dropout off), written literally
 * from RecBole's model definition: embedding lookup (the PAD row read as it is), GRU layers
 * without biases (`gruReference`), `h_t` at index length − 1, the local attention
 * `α_j = v · (mask_j · σ(A₁ gru_j + A₂ h_t))` with `mask_j = (item_j > 0)` and no softmax,
 * `c_local = Σ_j α_j gru_j`, `B [c_local, h_t]` and the tied cross-entropy.
 */
import { embeddedGruRef, refParam } from "./gru_model_reference.ts";
import { linearRef, sigmoidRef, tiedCrossEntropyRef } from "./reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

export type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/** NARM's mean cross-entropy loss on a batch, and the last-item representations `[B, E]`. */
export function narmReference(
  p: RefParams,
  batch: RefBatch,
  numLayers: number,
): { loss: number; h: Float64Array } {
  const get = (n: string) => refParam(p, n);
  const table = get("item_embedding.weight");
  const E = table.shape[1];
  const { size: B, maxLength: L } = batch;
  const { x, width } = embeddedGruRef(p, batch, numLayers, "gru");
  const H = width;
  const ht = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    const pos = Math.max(batch.lengths[b] - 1, 0);
    ht.set(x.subarray((b * L + pos) * H, (b * L + pos + 1) * H), b * H);
  }
  const q1 = linearRef(x, B * L, get("a_1.weight").data, H);
  const q2 = linearRef(ht, B, get("a_2.weight").data, H);
  const v = get("v_t.weight").data;
  const context = new Float64Array(B * 2 * H);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < L; j++) {
      const mask = batch.items[b * L + j] > 0 ? 1 : 0;
      let alpha = 0;
      for (let k = 0; k < H; k++) {
        alpha += v[k] * mask * sigmoidRef(q1[(b * L + j) * H + k] + q2[b * H + k]);
      }
      for (let k = 0; k < H; k++) context[b * 2 * H + k] += alpha * x[(b * L + j) * H + k];
    }
    for (let k = 0; k < H; k++) context[b * 2 * H + H + k] = ht[b * H + k];
  }
  const h = linearRef(context, B, get("b.weight").data, E);
  return { loss: tiedCrossEntropyRef(h, table.data, E, batch.targets), h };
}
