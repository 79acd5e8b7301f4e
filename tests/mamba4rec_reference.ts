/**
 * A float64 reference of the whole Mamba4Rec forward pass and loss (dropout off), written as
 * plain loops over the official model's definition, for checking the GPU model and its gradients.
 */
import { layerNormRef } from "./layernorm_reference.ts";
import { linearRef as linear, normalCdf, tiedCrossEntropyRef } from "./reference.ts";

/** Parameters by name (the GPU model's names) with their shapes. */
export type RefParams = Map<string, { data: Float64Array; shape: readonly number[] }>;

/** A batch in the prefix layout. */
export interface RefBatch {
  /** `[B × L]` item ids. */
  items: Int32Array;
  /** `[B]` lengths. */
  lengths: Int32Array;
  /** `[B]` targets. */
  targets: Int32Array;
  /** B. */
  size: number;
  /** L. */
  maxLength: number;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** Mamba4Rec's ablation switches (the model's defaults when left out). */
export interface RefVariant {
  /** Each layer's feed-forward network (default true). */
  ffn?: boolean;
  /** Every LayerNorm (default true). */
  layerNorm?: boolean;
}

/**
 * Mamba4Rec's mean cross-entropy loss on a batch, and the last-position representations; with a
 * `position_embedding.weight` parameter, its rows 0 … L − 1 are added to the item embedding.
 */
export function mamba4recReference(
  p: RefParams,
  batch: RefBatch,
  numLayers: number,
  variant: RefVariant = {},
): { loss: number; h: Float64Array } {
  const get = (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`reference: missing parameter ${n}`);
    return t.data;
  };
  const withFfn = variant.ffn ?? true, withNorm = variant.layerNorm ?? true;
  const norm = (x: Float64Array, name: string, d: number) =>
    withNorm ? layerNormRef(x, get(`${name}.weight`), get(`${name}.bias`), d, 1e-12) : x;
  const E = get("item_embedding.weight");
  const d = p.get("item_embedding.weight")!.shape[1];
  const { size: B, maxLength: L } = batch;
  const rows = B * L;
  let h: Float64Array = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) h[r * d + i] = E[batch.items[r] * d + i];
  }
  const P = p.get("position_embedding.weight")?.data;
  if (P) {
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < d; i++) h[r * d + i] += P[(r % L) * d + i];
    }
  }
  h = norm(h, "LayerNorm", d);
  for (let layer = 0; layer < numLayers; layer++) {
    const pre = `mamba_layers.${layer}`;
    const m = mambaBlock(p, `${pre}.mamba`, h, B, L, d);
    const x = numLayers === 1 ? m : m.map((v, i) => v + h[i]);
    const normed = norm(x, `${pre}.LayerNorm`, d);
    if (!withFfn) {
      h = normed;
      continue;
    }
    const inner = get(`${pre}.ffn.w_1.bias`).length;
    const a = linear(normed, rows, get(`${pre}.ffn.w_1.weight`), inner, get(`${pre}.ffn.w_1.bias`))
      .map((v) => v * normalCdf(v));
    const f = linear(a, rows, get(`${pre}.ffn.w_2.weight`), d, get(`${pre}.ffn.w_2.bias`));
    h = norm(f.map((v, i) => v + normed[i]), `${pre}.ffn.LayerNorm`, d);
  }
  const last = new Float64Array(B * d);
  for (let b = 0; b < B; b++) {
    const pos = Math.max(batch.lengths[b] - 1, 0);
    for (let i = 0; i < d; i++) last[b * d + i] = h[(b * L + pos) * d + i];
  }
  return { loss: tiedCrossEntropyRef(last, E, d, batch.targets), h: last };
}

function mambaBlock(p: RefParams, pre: string, h: Float64Array, B: number, L: number, d: number) {
  const get = (n: string) => p.get(`${pre}.${n}`)!.data;
  const rows = B * L;
  const inner = p.get(`${pre}.in_proj_x.weight`)!.shape[0];
  const N = p.get(`${pre}.A_log`)!.shape[1];
  const R = p.get(`${pre}.x_proj_dt.weight`)!.shape[0];
  const W = p.get(`${pre}.conv1d.weight`)!.shape[1];
  const xin = linear(h, rows, get("in_proj_x.weight"), inner);
  const z = linear(h, rows, get("in_proj_z.weight"), inner);
  const cw = get("conv1d.weight"), cb = get("conv1d.bias");
  const x = new Float64Array(rows * inner);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      for (let c = 0; c < inner; c++) {
        let s = cb[c];
        for (let k = 0; k < W; k++) {
          const src = t - (W - 1) + k;
          if (src >= 0) s += cw[c * W + k] * xin[(b * L + src) * inner + c];
        }
        x[(b * L + t) * inner + c] = silu(s);
      }
    }
  }
  const dt = linear(x, rows, get("x_proj_dt.weight"), R);
  const Bm = linear(x, rows, get("x_proj_B.weight"), N);
  const Cm = linear(x, rows, get("x_proj_C.weight"), N);
  const delta = linear(dt, rows, get("dt_proj.weight"), inner);
  const dtBias = get("dt_proj.bias"), aLog = get("A_log"), D = get("D");
  const y = new Float64Array(rows * inner);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < inner; c++) {
      const state = new Float64Array(N);
      for (let t = 0; t < L; t++) {
        const r = b * L + t;
        const dl = softplus(delta[r * inner + c] + dtBias[c]);
        const u = x[r * inner + c];
        let out = 0;
        for (let s = 0; s < N; s++) {
          const a = -Math.exp(aLog[c * N + s]);
          state[s] = Math.exp(dl * a) * state[s] + dl * Bm[r * N + s] * u;
          out += Cm[r * N + s] * state[s];
        }
        out += D[c] * u;
        y[r * inner + c] = out * silu(z[r * inner + c]);
      }
    }
  }
  return linear(y, rows, get("out_proj.weight"), d);
}
