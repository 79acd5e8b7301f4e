/** Float64 reference of torch.optim.Adam preceded by clip_grad_norm_, step by step. */

/** Hyperparameters of {@link adamStepRef}. */
export interface AdamRefOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm?: number;
}

/** One parameter's state in the reference. */
export interface AdamRefParam {
  x: Float64Array;
  m: Float64Array;
  v: Float64Array;
  step: number;
  /**
   * Per value, a first-order bound of how far float32 arithmetic may move x from this
   * reference: each step adds `lr · 2δ / (√v̂ + eps)`, δ the largest rounding of the effective
   * gradient so far (its float32 parts and the clipping coefficient's), which the update divides
   * by `√v̂ + eps`. Large only where the gradient stays near zero (an update of ±lr hinges on
   * its sign), small elsewhere.
   */
  drift?: Float64Array;
  /** The largest rounding δ of each value's effective gradient so far (see {@link drift}). */
  rounding?: Float64Array;
}

/** Relative error allowed for the clipping coefficient computed in float32 over many values. */
const COEF_REL_ERROR = 1e-6;

/** Relative error of a few float32 roundings. */
const F32_REL_ERROR = 4 * 2 ** -24;

/** L2 norm over all the given gradients (nulls skipped). */
export function globalNormRef(grads: (Float64Array | null)[]): number {
  let s = 0;
  for (const g of grads) if (g) { for (const v of g) s += v * v; }
  return Math.sqrt(s);
}

/** One optimizer step over all parameters; a null gradient skips its parameter. */
export function adamStepRef(
  params: AdamRefParam[],
  grads: (Float64Array | null)[],
  o: AdamRefOptions,
): void {
  let coef = 1;
  if (o.maxGradNorm !== undefined) {
    coef = Math.min(1, o.maxGradNorm / (globalNormRef(grads) + 1e-6));
  }
  params.forEach((p, k) => {
    const grad = grads[k];
    if (!grad) return;
    p.step++;
    const bc1 = 1 - o.beta1 ** p.step;
    const bc2 = 1 - o.beta2 ** p.step;
    p.drift ??= new Float64Array(p.x.length);
    p.rounding ??= new Float64Array(p.x.length);
    for (let i = 0; i < p.x.length; i++) {
      const scaled = grad[i] * coef, decay = o.weightDecay * p.x[i];
      const g = scaled + decay;
      p.rounding[i] = Math.max(
        p.rounding[i],
        COEF_REL_ERROR * Math.abs(scaled) + F32_REL_ERROR * (Math.abs(scaled) + Math.abs(decay)),
      );
      p.m[i] = o.beta1 * p.m[i] + (1 - o.beta1) * g;
      p.v[i] = o.beta2 * p.v[i] + (1 - o.beta2) * g * g;
      const denominator = Math.sqrt(p.v[i]) / Math.sqrt(bc2) + o.eps;
      p.x[i] -= (o.lr / bc1) * p.m[i] / denominator;
      p.drift[i] += (o.lr * 2 * p.rounding[i]) / denominator;
    }
  });
}
