/**
 * Float64 reference of {@link attention}'s scaled dot-product attention and of its gradients,
 * written as plain loops over RecBole's formula: `scores = scale · Q·Kᵀ + mask` with an additive
 * mask of −10,000 on masked entries, a softmax over keys, an optional dropout keep mask on the
 * probabilities, then the product with V.
 *
 * @module
 */

/** The additive score of a masked (query, key) entry, as RecBole's `get_attention_mask`. */
export const ATTENTION_MASKED_SCORE: number = -10000;

/** The sizes, mask and dropout of one {@link attentionReference} problem. */
export interface AttentionProblem {
  /** Batch size B. */
  batch: number;
  /** Number of heads H. */
  heads: number;
  /** Sequence length L (queries and keys). */
  length: number;
  /** Head size d. */
  dim: number;
  /** Whether query i may only attend keys j ≤ i. */
  causal: boolean;
  /** `[B, L]`: nonzero marks a pad key, masked for every query of that sequence. */
  keyPadding?: ArrayLike<number>;
  /** The factor applied to Q·Kᵀ, usually 1/√d. */
  scale: number;
  /** `[B, H, L, L]` dropout keep mask on the probabilities (1 kept, 0 dropped); none: all kept. */
  keep?: ArrayLike<number>;
  /** The factor applied to kept probabilities, 1/(1 − p). */
  keepScale?: number;
}

/** Gradients of {@link attentionReferenceBackward}, each `[B, H, L, d]`. */
export interface AttentionGrads {
  /** Gradient of the queries. */
  dq: Float64Array;
  /** Gradient of the keys. */
  dk: Float64Array;
  /** Gradient of the values. */
  dv: Float64Array;
}

/** Whether key j is masked for query i of sequence b. */
function isMasked(p: AttentionProblem, b: number, i: number, j: number): boolean {
  return (p.causal && j > i) ||
    (p.keyPadding !== undefined && p.keyPadding[b * p.length + j] !== 0);
}

/**
 * The softmax probabilities `[B, H, L, L]` before dropout, and after it (the probabilities that
 * multiply V).
 */
export function attentionReferenceProbabilities(
  q: Float64Array,
  k: Float64Array,
  p: AttentionProblem,
): { probs: Float64Array; dropped: Float64Array } {
  const { batch, heads, length: L, dim: d } = p;
  const probs = new Float64Array(batch * heads * L * L);
  const dropped = new Float64Array(probs.length);
  const s = new Float64Array(L);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const base = (b * heads + h) * L * d;
      for (let i = 0; i < L; i++) {
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[base + i * d + c] * k[base + j * d + c];
          s[j] = p.scale * dot + (isMasked(p, b, i, j) ? ATTENTION_MASKED_SCORE : 0);
          max = Math.max(max, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += Math.exp(s[j] - max);
        const row = ((b * heads + h) * L + i) * L;
        for (let j = 0; j < L; j++) {
          probs[row + j] = Math.exp(s[j] - max) / sum;
          const keep = p.keep === undefined ? 1 : p.keep[row + j] * (p.keepScale ?? 1);
          dropped[row + j] = probs[row + j] * keep;
        }
      }
    }
  }
  return { probs, dropped };
}

/** The attention output `[B, H, L, d]` for q, k, v `[B, H, L, d]`. */
export function attentionReference(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  p: AttentionProblem,
): Float64Array {
  const { batch, heads, length: L, dim: d } = p;
  const { dropped } = attentionReferenceProbabilities(q, k, p);
  const out = new Float64Array(batch * heads * L * d);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        const w = dropped[(bh * L + i) * L + j];
        for (let c = 0; c < d; c++) out[(bh * L + i) * d + c] += w * v[(bh * L + j) * d + c];
      }
    }
  }
  return out;
}

/** The gradients of Σ out ⊙ `gOut` with respect to q, k and v. */
export function attentionReferenceBackward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  p: AttentionProblem,
  gOut: Float64Array,
): AttentionGrads {
  const { batch, heads, length: L, dim: d } = p;
  const { probs, dropped } = attentionReferenceProbabilities(q, k, p);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dP = new Float64Array(L);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < L; i++) {
      const row = (bh * L + i) * L;
      let t = 0;
      for (let j = 0; j < L; j++) {
        let dy = 0;
        for (let c = 0; c < d; c++) {
          const g = gOut[(bh * L + i) * d + c];
          dy += g * v[(bh * L + j) * d + c];
          dv[(bh * L + j) * d + c] += dropped[row + j] * g;
        }
        const keep = p.keep === undefined ? 1 : p.keep[row + j] * (p.keepScale ?? 1);
        dP[j] = dy * keep;
        t += dP[j] * probs[row + j];
      }
      for (let j = 0; j < L; j++) {
        const ds = p.scale * probs[row + j] * (dP[j] - t);
        for (let c = 0; c < d; c++) {
          dq[(bh * L + i) * d + c] += ds * k[(bh * L + j) * d + c];
          dk[(bh * L + j) * d + c] += ds * q[(bh * L + i) * d + c];
        }
      }
    }
  }
  return { dq, dk, dv };
}
