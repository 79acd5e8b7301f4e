/**
 * Float64 references of Caser's convolutions and norms, written as plain loops over RecBole's
 * definitions: the horizontal convolutions of every height with ReLU and max-over-time
 * ({@link caserHorizontalReference}), the vertical convolution ({@link caserVerticalReference}),
 * the segment norms ({@link segmentNormsReference}), and the hand-derived gradients of each.
 * Arrays are flat, in the element order of the tensors given to the GPU ops.
 *
 * @module
 */
import { heightOffset, type HorizontalFilterShape } from "./layout.ts";

/** The sizes of a convolution call: batch B, window L, width E and filters (nh or nv). */
export interface CaserConvProblem {
  /** Batch size B. */
  readonly batch: number;
  /** Window length L. */
  readonly length: number;
  /** Embedding width E. */
  readonly dim: number;
  /** Filters: per height (horizontal, nh) or in all (vertical, nv). */
  readonly filters: number;
}

/** Gradients of a convolution's inputs. */
export interface CaserConvGrads {
  /** ∂L/∂x, `[B, L, E]`. */
  readonly x: Float64Array;
  /** ∂L/∂weight, shaped like the weight. */
  readonly weight: Float64Array;
  /** ∂L/∂bias, shaped like the bias. */
  readonly bias: Float64Array;
}

/** The horizontal problem's filter shape. */
function filterShape(p: CaserConvProblem): HorizontalFilterShape {
  return { length: p.length, dim: p.dim, filters: p.filters };
}

/** Height h's filter f at position t: the bias plus the window's dot product with the filter. */
function preActivation(
  p: CaserConvProblem,
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
  b: number,
  h: number,
  f: number,
  t: number,
): number {
  const w0 = heightOffset(filterShape(p), h) + f * h * p.dim;
  let s = bias[(h - 1) * p.filters + f];
  for (let i = 0; i < h; i++) {
    for (let e = 0; e < p.dim; e++) {
      s += weight[w0 + i * p.dim + e] * x[((b * p.length) + t + i) * p.dim + e];
    }
  }
  return s;
}

/**
 * The horizontal convolutions of every height, ReLU and max-over-time: `out` `[B, nh · L]` and
 * each output's winning position (the first largest pre-activation; −1 where that is ≤ 0).
 */
export function caserHorizontalReference(
  p: CaserConvProblem,
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
): { out: Float64Array; winner: Int32Array } {
  const n = p.batch * p.length * p.filters;
  const out = new Float64Array(n);
  const winner = new Int32Array(n);
  for (let b = 0; b < p.batch; b++) {
    for (let h = 1; h <= p.length; h++) {
      for (let f = 0; f < p.filters; f++) {
        let best = -Infinity, at = 0;
        for (let t = 0; t + h <= p.length; t++) {
          const s = preActivation(p, x, weight, bias, b, h, f, t);
          if (s > best) [best, at] = [s, t];
        }
        const k = (b * p.length + h - 1) * p.filters + f;
        out[k] = Math.max(best, 0);
        winner[k] = best > 0 ? at : -1;
      }
    }
  }
  return { out, winner };
}

/** The gradients of {@link caserHorizontalReference} for the output gradient `dout`. */
export function caserHorizontalReferenceBackward(
  p: CaserConvProblem,
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
  dout: Float64Array,
): CaserConvGrads {
  const { winner } = caserHorizontalReference(p, x, weight, bias);
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(weight.length);
  const dbias = new Float64Array(bias.length);
  for (let b = 0; b < p.batch; b++) {
    for (let h = 1; h <= p.length; h++) {
      for (let f = 0; f < p.filters; f++) {
        const k = (b * p.length + h - 1) * p.filters + f;
        const t = winner[k];
        if (t < 0) continue;
        const g = dout[k];
        const w0 = heightOffset(filterShape(p), h) + f * h * p.dim;
        dbias[(h - 1) * p.filters + f] += g;
        for (let i = 0; i < h; i++) {
          for (let e = 0; e < p.dim; e++) {
            const xi = ((b * p.length) + t + i) * p.dim + e;
            dweight[w0 + i * p.dim + e] += g * x[xi];
            dx[xi] += g * weight[w0 + i * p.dim + e];
          }
        }
      }
    }
  }
  return { x: dx, weight: dweight, bias: dbias };
}

/** The vertical convolution: `out[b, f·E + e] = bias[f] + Σ_t weight[f, t] · x[b, t, e]`. */
export function caserVerticalReference(
  p: CaserConvProblem,
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
): Float64Array {
  const out = new Float64Array(p.batch * p.filters * p.dim);
  for (let b = 0; b < p.batch; b++) {
    for (let f = 0; f < p.filters; f++) {
      for (let e = 0; e < p.dim; e++) {
        let s = bias[f];
        for (let t = 0; t < p.length; t++) {
          s += weight[f * p.length + t] * x[(b * p.length + t) * p.dim + e];
        }
        out[(b * p.filters + f) * p.dim + e] = s;
      }
    }
  }
  return out;
}

/** The gradients of {@link caserVerticalReference} for the output gradient `dout`. */
export function caserVerticalReferenceBackward(
  p: CaserConvProblem,
  x: Float64Array,
  weight: Float64Array,
  dout: Float64Array,
): CaserConvGrads {
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(weight.length);
  const dbias = new Float64Array(p.filters);
  for (let b = 0; b < p.batch; b++) {
    for (let f = 0; f < p.filters; f++) {
      for (let e = 0; e < p.dim; e++) {
        const g = dout[(b * p.filters + f) * p.dim + e];
        dbias[f] += g;
        for (let t = 0; t < p.length; t++) {
          const xi = (b * p.length + t) * p.dim + e;
          dweight[f * p.length + t] += g * x[xi];
          dx[xi] += g * weight[f * p.length + t];
        }
      }
    }
  }
  return { x: dx, weight: dweight, bias: dbias };
}

/** The unsquared Frobenius norm of each consecutive segment of `x`. */
export function segmentNormsReference(x: Float64Array, sizes: readonly number[]): Float64Array {
  const out = new Float64Array(sizes.length);
  let start = 0;
  sizes.forEach((size, s) => {
    let sum = 0;
    for (let j = start; j < start + size; j++) sum += x[j] * x[j];
    out[s] = Math.sqrt(sum);
    start += size;
  });
  return out;
}

/** The gradient of {@link segmentNormsReference}: `dnorms[s] · x / ‖x‖` (0 for a zero segment). */
export function segmentNormsReferenceBackward(
  x: Float64Array,
  sizes: readonly number[],
  dnorms: Float64Array,
): Float64Array {
  const norms = segmentNormsReference(x, sizes);
  const dx = new Float64Array(x.length);
  let start = 0;
  sizes.forEach((size, s) => {
    for (let j = start; j < start + size; j++) {
      dx[j] = norms[s] > 0 ? dnorms[s] * x[j] / norms[s] : 0;
    }
    start += size;
  });
  return dx;
}
