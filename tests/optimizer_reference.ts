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
}

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
    for (let i = 0; i < p.x.length; i++) {
      const g = grad[i] * coef + o.weightDecay * p.x[i];
      p.m[i] = o.beta1 * p.m[i] + (1 - o.beta1) * g;
      p.v[i] = o.beta2 * p.v[i] + (1 - o.beta2) * g * g;
      p.x[i] -= (o.lr / bc1) * p.m[i] / (Math.sqrt(p.v[i]) / Math.sqrt(bc2) + o.eps);
    }
  });
}
