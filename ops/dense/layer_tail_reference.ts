/**
 * Float64 reference of `layerTail` (`layer_tail.ts`), in the model's own layouts: the
 * Linear weights as `[out, in]`, as the model stores them.
 *
 * @module
 */
import { normalCdf } from "../pointwise/normal_cdf_reference.ts";
import { linearReference } from "./linear_reference.ts";

/** The layer tail's weights as float64 host arrays, Linear weights `[out, in]`. */
export interface LayerTailReferenceWeights {
  /** Output projection `[d, inner]`. */
  out: Float64Array;
  /** First LayerNorm scale and shift `[d]`. */
  norm1: { weight: Float64Array; bias: Float64Array };
  /** W₁ `[ffn, d]` and its bias `[ffn]`. */
  w1: Float64Array;
  /** W₁'s bias. */
  b1: Float64Array;
  /** W₂ `[d, ffn]`. */
  w2: Float64Array;
  /** W₂'s bias `[d]`. */
  b2: Float64Array;
  /** The feed-forward network's LayerNorm `[d]` each. */
  norm2: { weight: Float64Array; bias: Float64Array };
  /** Variance epsilon. */
  eps: number;
}

/** LayerNorm with the biased variance. */
function layerNorm(
  x: Float64Array,
  norm: { weight: Float64Array; bias: Float64Array },
  eps: number,
) {
  const n = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / n;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  const r = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * r * norm.weight[i] + norm.bias[i]);
}

/**
 * `layerTail` in float64: rows `y` (`[rows, inner]`) and the optional residual
 * (`[rows, d]`), each row through the output projection, LayerNorm and the feed-forward network.
 */
export function layerTailReference(
  y: Float64Array,
  rows: number,
  w: LayerTailReferenceWeights,
  residual: Float64Array | null,
): Float64Array {
  const d = w.b2.length, inner = y.length / rows;
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const m = linearReference(y.subarray(r * inner, (r + 1) * inner), w.out);
    if (residual) { for (let c = 0; c < d; c++) m[c] += residual[r * d + c]; }
    const n = layerNorm(m, w.norm1, w.eps);
    const a = linearReference(n, w.w1, w.b1).map((v) => v * normalCdf(v));
    const f = linearReference(a, w.w2, w.b2);
    out.set(layerNorm(f.map((v, c) => v + n[c]), w.norm2, w.eps), r * d);
  }
  return out;
}
