/**
 * A float64 reference of the whole GRU4Rec forward pass and loss (dropout off), from RecBole's
 * model definition: embedding lookup (the PAD row read as it is), GRU layers without biases
 * (`gruReference`), the state at index length − 1, `dense`, and the tied cross-entropy.
 */
import { gruReference } from "../ops/sequence/gru/reference.ts";
import { linearRef, tiedCrossEntropyRef } from "./reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

export type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/** GRU4Rec's mean cross-entropy loss on a batch, and the last-position representations. */
export function gru4recReference(
  p: RefParams,
  batch: RefBatch,
  numLayers: number,
): { loss: number; h: Float64Array } {
  const get = (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`reference: missing parameter ${n}`);
    return t;
  };
  const table = get("item_embedding.weight");
  const E = table.shape[1];
  const { size: B, maxLength: L } = batch;
  let width = E;
  let x: Float64Array = new Float64Array(B * L * E);
  for (let r = 0; r < B * L; r++) {
    for (let i = 0; i < E; i++) x[r * E + i] = table.data[batch.items[r] * E + i];
  }
  for (let layer = 0; layer < numLayers; layer++) {
    const weightHh = get(`gru_layers.weight_hh_l${layer}`);
    const hidden = weightHh.shape[1];
    x = gruReference({ batch: B, length: L, input: width, hidden }, {
      x,
      weightIh: get(`gru_layers.weight_ih_l${layer}`).data,
      weightHh: weightHh.data,
    });
    width = hidden;
  }
  const last = new Float64Array(B * width);
  for (let b = 0; b < B; b++) {
    const pos = Math.max(batch.lengths[b] - 1, 0);
    last.set(x.subarray((b * L + pos) * width, (b * L + pos + 1) * width), b * width);
  }
  const h = linearRef(last, B, get("dense.weight").data, E, get("dense.bias").data);
  return { loss: tiedCrossEntropyRef(h, table.data, E, batch.targets), h };
}
