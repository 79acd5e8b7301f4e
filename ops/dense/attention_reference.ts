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
  /** Sequence length L (keys; queries too unless `queryPositions`). */
  length: number;
  /** Head size d. */
  dim: number;
  /** Whether query i may only attend keys j ≤ i. */
  causal: boolean;
  /** `[B, L]`: nonzero marks a pad key, masked for every query of that sequence. */
  keyPadding?: ArrayLike<number>;
  /** The factor applied to Q·Kᵀ, usually 1/√d. */
  scale: number;
  /**
   * `[B, Lq]`: the position among the keys of each query, when the queries are Lq selected
   * positions rather than all L.
   */
  queryPositions?: ArrayLike<number>;
  /**
   * `[B, H, L, L]` dropout keep mask on the probabilities of every (position, key) pair (1 kept,
   * 0 dropped); none: all kept.
   */
  keep?: ArrayLike<number>;
  /** The factor applied to kept probabilities, 1/(1 − p). */
  keepScale?: number;
}

/** Gradients of {@link attentionReferenceBackward}, each the shape of its input. */
export interface AttentionGrads {
  /** Gradient of the queries. */
  dq: Float64Array;
  /** Gradient of the keys. */
  dk: Float64Array;
  /** Gradient of the values. */
  dv: Float64Array;
}

/** Queries per sequence: Lq with query positions, else L. */
export function referenceQueries(p: AttentionProblem): number {
  return p.queryPositions === undefined ? p.length : p.queryPositions.length / p.batch;
}

/** The position among the keys of query i of sequence b. */
function positionOf(p: AttentionProblem, b: number, i: number): number {
  return p.queryPositions === undefined ? i : p.queryPositions[b * referenceQueries(p) + i];
}

/** Whether key j is masked for the query at position `at` of sequence b. */
function isMasked(p: AttentionProblem, b: number, at: number, j: number): boolean {
  return (p.causal && j > at) ||
    (p.keyPadding !== undefined && p.keyPadding[b * p.length + j] !== 0);
}

/**
 * The softmax probabilities `[B, H, Lq, L]` (Lq = L without query positions) before dropout,
 * and after it (the probabilities that multiply V).
 */
export function attentionReferenceProbabilities(
  q: Float64Array,
  k: Float64Array,
  p: AttentionProblem,
): { probs: Float64Array; dropped: Float64Array } {
  const { batch, heads, length: L, dim: d } = p;
  const Lq = referenceQueries(p);
  const probs = new Float64Array(batch * heads * Lq * L);
  const dropped = new Float64Array(probs.length);
  const s = new Float64Array(L);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const qBase = (b * heads + h) * Lq * d, kBase = (b * heads + h) * L * d;
      for (let i = 0; i < Lq; i++) {
        const at = positionOf(p, b, i);
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qBase + i * d + c] * k[kBase + j * d + c];
          s[j] = p.scale * dot + (isMasked(p, b, at, j) ? ATTENTION_MASKED_SCORE : 0);
          max = Math.max(max, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += Math.exp(s[j] - max);
        const row = ((b * heads + h) * Lq + i) * L;
        // The keep mask is indexed by the (position, key) pair of the full probabilities.
        const keepRow = ((b * heads + h) * L + at) * L;
        for (let j = 0; j < L; j++) {
          probs[row + j] = Math.exp(s[j] - max) / sum;
          const keep = p.keep === undefined ? 1 : p.keep[keepRow + j] * (p.keepScale ?? 1);
          dropped[row + j] = probs[row + j] * keep;
        }
      }
    }
  }
  return { probs, dropped };
}

/** The attention output `[B, H, Lq, d]` for q `[B, H, Lq, d]` and k, v `[B, H, L, d]`. */
export function attentionReference(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  p: AttentionProblem,
): Float64Array {
  const { batch, heads, length: L, dim: d } = p;
  const Lq = referenceQueries(p);
  const { dropped } = attentionReferenceProbabilities(q, k, p);
  const out = new Float64Array(batch * heads * Lq * d);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < Lq; i++) {
      for (let j = 0; j < L; j++) {
        const w = dropped[(bh * Lq + i) * L + j];
        for (let c = 0; c < d; c++) out[(bh * Lq + i) * d + c] += w * v[(bh * L + j) * d + c];
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
  const Lq = referenceQueries(p);
  const { probs, dropped } = attentionReferenceProbabilities(q, k, p);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dP = new Float64Array(L);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < Lq; i++) {
      const row = (bh * Lq + i) * L;
      const keepRow = (bh * L + positionOf(p, Math.floor(bh / heads), i)) * L;
      let t = 0;
      for (let j = 0; j < L; j++) {
        let dy = 0;
        for (let c = 0; c < d; c++) {
          const g = gOut[(bh * Lq + i) * d + c];
          dy += g * v[(bh * L + j) * d + c];
          dv[(bh * L + j) * d + c] += dropped[row + j] * g;
        }
        const keep = p.keep === undefined ? 1 : p.keep[keepRow + j] * (p.keepScale ?? 1);
        dP[j] = dy * keep;
        t += dP[j] * probs[row + j];
      }
      for (let j = 0; j < L; j++) {
        const ds = p.scale * probs[row + j] * (dP[j] - t);
        for (let c = 0; c < d; c++) {
          dq[(bh * Lq + i) * d + c] += ds * k[(bh * L + j) * d + c];
          dk[(bh * L + j) * d + c] += ds * q[(bh * Lq + i) * d + c];
        }
      }
    }
  }
  return { dq, dk, dv };
}
