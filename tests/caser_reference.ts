/**
 * A float64 reference of the whole Caser forward pass and training loss (dropout off), written
 * literally from RecBole's model definition: the embedded window (PAD rows read as they are), the
 * vertical convolution `Conv2d(1, nv, (L, 1))`, for each height h `Conv2d(1, nh, (h, E))` then
 * ReLU then the max over positions, `ReLU(fc1([v, h]))`, `ReLU(fc2([z, user]))`, the tied
 * cross-entropy plus `regWeight` times the unsquared Frobenius norms.
 */
import { heightOffset } from "../ops/sequence/caser/layout.ts";
import { refParam } from "./gru_model_reference.ts";
import { linearRef, tiedCrossEntropyRef } from "./reference.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

export type { RefBatch, RefParams } from "./mamba4rec_reference.ts";

/** A padded batch with each row's user. */
export interface CaserRefBatch extends RefBatch {
  /** `[B]` user ids. */
  users: Int32Array;
}

/** Caser's sizes the parameters do not show. */
export interface CaserRefConfig {
  /** Horizontal filters per height. */
  nh: number;
  /** Weight of the norms in the loss. */
  regWeight: number;
}

const relu = (v: number) => Math.max(v, 0);

/** ‖w‖₂ of the values `w[start … end)`. */
function norm(w: Float64Array, start = 0, end = w.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s += w[i] * w[i];
  return Math.sqrt(s);
}

/**
 * Caser's training loss (cross-entropy plus the regularisation), its cross-entropy alone, and the
 * window representations `[B, E]`. With `lookupPad`, the lookup of a pad reads that row instead
 * of the table's row 0: the PAD row held fixed where the lookup reads it, as `padding_idx = 0`
 * gives the lookup no gradient for it (the scores and the norm still read the table's row), so
 * that finite differences of the PAD row match PyTorch's gradient.
 */
export function caserReference(
  p: RefParams,
  batch: CaserRefBatch,
  config: CaserRefConfig,
  lookupPad?: Float64Array,
): { loss: number; crossEntropy: number; h: Float64Array } {
  const get = (n: string) => refParam(p, n).data;
  const items = get("item_embedding.weight");
  const users = get("user_embedding.weight");
  const E = refParam(p, "item_embedding.weight").shape[1];
  const { size: B, maxLength: L } = batch;
  const { nh } = config;
  const convV = get("conv_v.weight"), convVBias = get("conv_v.bias");
  const nv = convVBias.length;
  const convH = get("conv_h.weight"), convHBias = get("conv_h.bias");
  const shape = { length: L, dim: E, filters: nh };
  const D = nv * E + nh * L;
  const joined = new Float64Array(B * D);
  const withUser = new Float64Array(B * 2 * E);
  for (let b = 0; b < B; b++) {
    // The window's embedding matrix [L, E], pads included.
    const x = (t: number, e: number) => {
      const id = batch.items[b * L + t];
      return id === 0 && lookupPad ? lookupPad[e] : items[id * E + e];
    };
    for (let f = 0; f < nv; f++) {
      for (let e = 0; e < E; e++) {
        let s = convVBias[f];
        for (let t = 0; t < L; t++) s += convV[f * L + t] * x(t, e);
        joined[b * D + f * E + e] = s;
      }
    }
    for (let h = 1; h <= L; h++) {
      for (let f = 0; f < nh; f++) {
        const w0 = heightOffset(shape, h) + f * h * E;
        let pooled = -Infinity;
        for (let t = 0; t + h <= L; t++) {
          let s = convHBias[(h - 1) * nh + f];
          for (let i = 0; i < h; i++) {
            for (let e = 0; e < E; e++) s += convH[w0 + i * E + e] * x(t + i, e);
          }
          pooled = Math.max(pooled, relu(s));
        }
        joined[b * D + nv * E + (h - 1) * nh + f] = pooled;
      }
    }
  }
  const z = linearRef(joined, B, get("fc1.weight"), E, get("fc1.bias")).map(relu);
  for (let b = 0; b < B; b++) {
    for (let e = 0; e < E; e++) {
      withUser[b * 2 * E + e] = z[b * E + e];
      withUser[b * 2 * E + E + e] = users[batch.users[b] * E + e];
    }
  }
  const h = linearRef(withUser, B, get("fc2.weight"), E, get("fc2.bias")).map(relu);
  const crossEntropy = tiedCrossEntropyRef(h, items, E, batch.targets);
  let reg = 0;
  for (const name of ["user_embedding", "item_embedding", "conv_v", "fc1", "fc2"]) {
    reg += norm(get(`${name}.weight`));
  }
  for (let height = 1; height <= L; height++) {
    reg += norm(convH, heightOffset(shape, height), heightOffset(shape, height + 1));
  }
  return { loss: crossEntropy + config.regWeight * reg, crossEntropy, h };
}
