/**
 * A float64 reference of the whole GRU4Rec forward pass and loss (dropout off), from RecBole's
 * model definition: embedding lookup (the PAD row read as it is), GRU layers without biases
 * (`gruReference`), the state at index length − 1, `dense`, and the tied cross-entropy.
 */
import { embeddedGruRef, refParam } from "./gru_model_reference.ts";
import { linearRef, tiedCrossEntropyRef } from "./reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

export type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/** GRU4Rec's mean cross-entropy loss on a batch, and the last-position representations. */
export function gru4recReference(
  p: RefParams,
  batch: RefBatch,
  numLayers: number,
): { loss: number; h: Float64Array } {
  const get = (n: string) => refParam(p, n);
  const table = get("item_embedding.weight");
  const E = table.shape[1];
  const { size: B, maxLength: L } = batch;
  const { x, width } = embeddedGruRef(p, batch, numLayers, "gru_layers");
  const last = new Float64Array(B * width);
  for (let b = 0; b < B; b++) {
    const pos = Math.max(batch.lengths[b] - 1, 0);
    last.set(x.subarray((b * L + pos) * width, (b * L + pos + 1) * width), b * width);
  }
  const h = linearRef(last, B, get("dense.weight").data, E, get("dense.bias").data);
  return { loss: tiedCrossEntropyRef(h, table.data, E, batch.targets), h };
}
