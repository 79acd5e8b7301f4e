/**
 * A float64 reference of the whole SSD4Rec forward pass and loss (dropout off) on one packed
 * batch, written as plain loops over the official model's definition, for checking the GPU model
 * and its gradients. The SSD recurrence itself is `ssdScanReference`; everything around it (the
 * split projection, the convolution with causal-conv1d's `seq_idx` rule, the gated RMSNorm, the
 * reversal within segments, the Bi-SSD sum, the feed-forward and the loss) is spelled out here.
 */
import { ssdScanReference } from "../ops/mod.ts";
import { layerNormRef } from "./layernorm_reference.ts";
import type { RefParams } from "./mamba4rec_reference.ts";
import { linearRef as linear, normalCdf, tiedCrossEntropyRef } from "./reference.ts";

/** A packed batch: the histories concatenated into one row of T tokens. */
export interface PackedRefBatch {
  /** `[T]` item ids. */
  items: Int32Array;
  /** `[T]` segment id of every token, non-decreasing. */
  seqIdx: Int32Array;
  /** `[T]` the position each token reads when every segment is reversed in place. */
  flipIndex: Int32Array;
  /** `[B]` each segment's last token. */
  lastIndex: Int32Array;
  /** `[B]` target items. */
  targets: Int32Array;
}

/** The settings the reference cannot read off the parameter shapes. */
export interface Ssd4recRefOptions {
  /** Bi-SSD layers. */
  numLayers: number;
  /** Weight of the backward direction. */
  beta: number;
  /** LayerNorm on the embeddings. */
  normEmbedding: boolean;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const silu = (v: number) => v * sigmoid(v);

function getter(p: RefParams) {
  return (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`ssd4rec reference: missing parameter ${n}`);
    return t;
  };
}

/**
 * mamba_ssm 2.2's Mamba2 block (d_model d, G = 1) on `u` (`[T, d]`) with segment ids `seqIdx`.
 * Exported for the direction tests.
 */
export function mamba2BlockReference(
  p: RefParams,
  pre: string,
  u: Float64Array,
  seqIdx: Int32Array,
): Float64Array {
  const get = getter(p);
  const T = seqIdx.length;
  const inProj = get(`${pre}.in_proj.weight`);
  const [rows, d] = inProj.shape;
  const inner = get(`${pre}.norm.weight`).data.length;
  const H = get(`${pre}.A_log`).data.length;
  const P = inner / H;
  const [convDim, W] = get(`${pre}.conv1d.weight`).shape;
  const N = (convDim - inner) / 2;
  if (rows !== inner + convDim + H) throw new Error(`${pre}: in_proj has ${rows} rows`);
  const zxbcdt = linear(u, T, inProj.data, rows);
  const cw = get(`${pre}.conv1d.weight`).data, cb = get(`${pre}.conv1d.bias`).data;
  // causal-conv1d with seq_idx: out[t, c] = SiLU(b[c] + Σ_k W[c, k]·xBC[t − (W−1) + k, c]) over
  // taps at or after position 0 whose segment id equals token t's.
  const xBC = new Float64Array(T * convDim);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < convDim; c++) {
      let s = cb[c];
      for (let k = 0; k < W; k++) {
        const src = t - (W - 1) + k;
        if (src >= 0 && seqIdx[src] === seqIdx[t]) {
          s += cw[c * W + k] * zxbcdt[src * rows + inner + c];
        }
      }
      xBC[t * convDim + c] = silu(s);
    }
  }
  const column = (from: Float64Array, width: number, start: number, count: number) => {
    const out = new Float64Array(T * count);
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < count; c++) out[t * count + c] = from[t * width + start + c];
    }
    return out;
  };
  const z = column(zxbcdt, rows, 0, inner);
  const dt = column(zxbcdt, rows, inner + convDim, H);
  const { y } = ssdScanReference(
    { batch: 1, length: T, heads: H, headDim: P, groups: 1, states: N, dtSoftplus: true },
    {
      x: column(xBC, convDim, 0, inner),
      dt,
      A: get(`${pre}.A_log`).data.map((v) => -Math.exp(v)),
      B: column(xBC, convDim, inner, N),
      C: column(xBC, convDim, inner + N, N),
      D: get(`${pre}.D`).data,
      dtBias: get(`${pre}.dt_bias`).data,
      seqIdx,
    },
  );
  // Gated RMSNorm, norm_before_gate = False, one group: RMSNorm(y ⊙ SiLU(z)) ⊙ w, eps 1e-5.
  const w = get(`${pre}.norm.weight`).data;
  const normed = new Float64Array(T * inner);
  for (let t = 0; t < T; t++) {
    let sq = 0;
    for (let c = 0; c < inner; c++) sq += (y[t * inner + c] * silu(z[t * inner + c])) ** 2;
    const rstd = 1 / Math.sqrt(sq / inner + 1e-5);
    for (let c = 0; c < inner; c++) {
      normed[t * inner + c] = y[t * inner + c] * silu(z[t * inner + c]) * rstd * w[c];
    }
  }
  return linear(normed, T, get(`${pre}.out_proj.weight`).data, d);
}

/**
 * SSD4Rec's mean cross-entropy loss on a packed batch and the representations (each segment's
 * last token, `[B, d]`).
 */
export function ssd4recReference(
  p: RefParams,
  batch: PackedRefBatch,
  options: Ssd4recRefOptions,
): { loss: number; h: Float64Array } {
  const get = (n: string) => getter(p)(n).data;
  const E = get("item_embedding.weight");
  const d = getter(p)("item_embedding.weight").shape[1];
  const T = batch.items.length;
  const B = batch.lastIndex.length;
  let h: Float64Array = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i++) h[t * d + i] = E[batch.items[t] * d + i];
  }
  if (options.normEmbedding) {
    h = layerNormRef(h, get("LayerNorm.weight"), get("LayerNorm.bias"), d, 1e-12);
  }
  for (let layer = 0; layer < options.numLayers; layer++) {
    const pre = `ssd_layers.${layer}`;
    const fwd = mamba2BlockReference(p, `${pre}.mamba`, h, batch.seqIdx);
    const reversed = new Float64Array(T * d);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < d; i++) reversed[t * d + i] = h[batch.flipIndex[t] * d + i];
    }
    const bwd = mamba2BlockReference(p, `${pre}.mamba`, reversed, batch.seqIdx);
    // h = fwd + β·bwd + x, position by position: bwd is not reversed back.
    const mixed = fwd.map((v, i) => v + options.beta * bwd[i] + h[i]);
    const normed = layerNormRef(
      mixed,
      get(`${pre}.LayerNorm.weight`),
      get(`${pre}.LayerNorm.bias`),
      d,
      1e-12,
    );
    const inner = get(`${pre}.ffn.w_1.bias`).length;
    const a = linear(normed, T, get(`${pre}.ffn.w_1.weight`), inner, get(`${pre}.ffn.w_1.bias`))
      .map((v) => v * normalCdf(v));
    const f = linear(a, T, get(`${pre}.ffn.w_2.weight`), d, get(`${pre}.ffn.w_2.bias`));
    h = layerNormRef(
      f.map((v, i) => v + normed[i]),
      get(`${pre}.ffn.LayerNorm.weight`),
      get(`${pre}.ffn.LayerNorm.bias`),
      d,
      1e-12,
    );
  }
  const last = new Float64Array(B * d);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < d; i++) last[b * d + i] = h[batch.lastIndex[b] * d + i];
  }
  return { loss: tiedCrossEntropyRef(last, E, d, batch.targets), h: last };
}
