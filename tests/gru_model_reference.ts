/**
 * What the float64 references of the GRU-based baselines (GRU4Rec, NARM) share: a parameter by
 * name, the item embedding lookup of a padded batch (the PAD row read as it is) and RecBole's
 * stack of bias-free GRU layers over it (`gruReference`).
 */
import { gruReference } from "../ops/sequence/gru/reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/** Parameter `name` of `p`; throws naming it when missing. */
export function refParam(
  p: RefParams,
  name: string,
): { data: Float64Array; shape: readonly number[] } {
  const t = p.get(name);
  if (!t) throw new Error(`reference: missing parameter ${name}`);
  return t;
}

/**
 * The embedded batch through `numLayers` GRU layers named `<prefix>.weight_ih_l<i>` /
 * `weight_hh_l<i>`: every step's output `[B·L, H]` and its width H.
 */
export function embeddedGruRef(
  p: RefParams,
  batch: RefBatch,
  numLayers: number,
  prefix: string,
): { x: Float64Array; width: number } {
  const table = refParam(p, "item_embedding.weight");
  const E = table.shape[1];
  const { size: B, maxLength: L } = batch;
  let width = E;
  let x: Float64Array = new Float64Array(B * L * E);
  for (let r = 0; r < B * L; r++) {
    for (let i = 0; i < E; i++) x[r * E + i] = table.data[batch.items[r] * E + i];
  }
  for (let layer = 0; layer < numLayers; layer++) {
    const weightHh = refParam(p, `${prefix}.weight_hh_l${layer}`);
    const hidden = weightHh.shape[1];
    x = gruReference({ batch: B, length: L, input: width, hidden }, {
      x,
      weightIh: refParam(p, `${prefix}.weight_ih_l${layer}`).data,
      weightHh: weightHh.data,
    });
    width = hidden;
  }
  return { x, width };
}
