/**
 * Float64 CPU references of the ops, written as plainly as possible: the tests compare every
 * GPU kernel with these.
 */

export { erf, erfc, normalCdf } from "../ops/pointwise/normal_cdf_reference.ts";
import { normalCdf } from "../ops/pointwise/normal_cdf_reference.ts";

/** Logistic sigmoid. */
export function sigmoidRef(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Unary references: value and derivative. */
export const unaryRef: Record<
  string,
  { f: (x: number, a: number) => number; df: (x: number, a: number) => number }
> = {
  gelu: {
    f: (x) => x * normalCdf(x),
    df: (x) => normalCdf(x) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI),
  },
  silu: {
    f: (x) => x / (1 + Math.exp(-x)),
    df: (x) => sigmoidRef(x) * (1 + x * sigmoidRef(-x)),
  },
  softplus: {
    f: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
    df: (x) => (x > 20 ? 1 : 1 / (1 + Math.exp(-x))),
  },
  sigmoid: {
    f: (x) => 1 / (1 + Math.exp(-x)),
    df: (x) => sigmoidRef(x) * sigmoidRef(-x),
  },
  exp: { f: (x) => Math.exp(x), df: (x) => Math.exp(x) },
  relu: { f: (x) => Math.max(x, 0), df: (x) => (x > 0 ? 1 : 0) },
  scale: { f: (x, a) => a * x, df: (_x, a) => a },
  addScalar: { f: (x, a) => x + a, df: () => 1 },
};

/** Applies `f` elementwise. */
export function map(x: Float64Array, f: (v: number, i: number) => number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i], i);
  return out;
}

/** Sums `x` viewed as [rows, cols] over rows → [cols]. */
export function sumRowsRef(x: Float64Array, cols: number): Float64Array {
  const out = new Float64Array(cols);
  for (let i = 0; i < x.length; i++) out[i % cols] += x[i];
  return out;
}

/** Sums `x` viewed as [rows, cols] over cols → [rows], times `scale`. */
export function rowSumRef(x: Float64Array, cols: number, scale = 1): Float64Array {
  const rows = x.length / cols;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[r * cols + c];
    out[r] = s * scale;
  }
  return out;
}

/** `y[r, o] = Σ_i x[r, i] W[o, i] (+ b[o])` for rows r: a linear layer with W `[out, in]`. */
export function linearRef(
  x: Float64Array,
  rows: number,
  w: Float64Array,
  out: number,
  b?: Float64Array,
): Float64Array {
  const inF = w.length / out;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

/**
 * The mean cross-entropy of scores `h · Eᵀ` against the tied item table E (`[V, d]`) for the
 * representations h (`[B, d]`) and their targets.
 */
export function tiedCrossEntropyRef(
  h: Float64Array,
  E: Float64Array,
  d: number,
  targets: ArrayLike<number>,
): number {
  const B = h.length / d;
  const V = E.length / d;
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const logits = new Float64Array(V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += h[b * d + i] * E[v * d + i];
      logits[v] = s;
      max = Math.max(max, s);
    }
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[v] - max);
    loss += Math.log(z) + max - logits[targets[b]];
  }
  return loss / B;
}
