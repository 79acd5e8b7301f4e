/**
 * Float64 reference of the gated RMS normalization (mamba_ssm's `rms_norm_ref` without bias)
 * and its analytic gradient, on flat arrays in the element order of the tensors given to
 * `gatedRmsNorm`. Meant for checking the GPU op on small problems.
 *
 * @module
 */

/** Sizes and switches of one gated RMSNorm, for {@link gatedRmsNormReference}. */
export interface GatedRmsNormProblem {
  /** The last dimension D. */
  cols: number;
  /** Features per normalization group (divides D). */
  groupSize: number;
  /** Added to the mean square. */
  eps: number;
  /** Normalize x, then multiply by SiLU(z), instead of normalizing x ⊙ SiLU(z). */
  normBeforeGate: boolean;
}

/** The gradients of Σ dy ⊙ y; `dz` is null without a gate. */
export interface GatedRmsNormGrads {
  /** ∂L/∂x, the shape of x. */
  dx: Float64Array;
  /** ∂L/∂z, the shape of x, or null without a gate. */
  dz: Float64Array | null;
  /** ∂L/∂weight, `[D]`. */
  dweight: Float64Array;
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

function silu(v: number): number {
  return v * sigmoid(v);
}

function dsilu(v: number): number {
  const s = sigmoid(v);
  return s * (1 + v * (1 - s));
}

/** The normalized input: x ⊙ SiLU(z) when the gate comes first, else x. */
function normInput(x: Float64Array, z: Float64Array | null, p: GatedRmsNormProblem, i: number) {
  return z && !p.normBeforeGate ? x[i] * silu(z[i]) : x[i];
}

/** 1 / sqrt(mean(v²) + eps) of the group starting at element `base`. */
function groupRstd(
  x: Float64Array,
  z: Float64Array | null,
  p: GatedRmsNormProblem,
  base: number,
): number {
  let q = 0;
  for (let c = 0; c < p.groupSize; c++) q += normInput(x, z, p, base + c) ** 2;
  return 1 / Math.sqrt(q / p.groupSize + p.eps);
}

/**
 * `RMSNorm(x ⊙ SiLU(z)) ⊙ w` (or `RMSNorm(x) ⊙ w ⊙ SiLU(z)` with `normBeforeGate`, or
 * `RMSNorm(x) ⊙ w` when `z` is null), the RMS taken per group of `groupSize` features.
 * @param x `[rows, D]` flat
 * @param z gate, the shape of x, or null
 * @param w weight `[D]`
 */
export function gatedRmsNormReference(
  x: Float64Array,
  z: Float64Array | null,
  w: Float64Array,
  p: GatedRmsNormProblem,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += p.groupSize) {
    const rstd = groupRstd(x, z, p, base);
    for (let c = 0; c < p.groupSize; c++) {
      const i = base + c;
      const after = z && p.normBeforeGate ? silu(z[i]) : 1;
      out[i] = normInput(x, z, p, i) * rstd * w[i % p.cols] * after;
    }
  }
  return out;
}

/**
 * The analytic gradients of `Σ dy ⊙ gatedRmsNormReference(x, z, w, p)`.
 * @param dy the output gradient, the shape of x
 */
export function gatedRmsNormReferenceBackward(
  x: Float64Array,
  z: Float64Array | null,
  w: Float64Array,
  p: GatedRmsNormProblem,
  dy: Float64Array,
): GatedRmsNormGrads {
  const dx = new Float64Array(x.length);
  const dz = z ? new Float64Array(x.length) : null;
  const dweight = new Float64Array(p.cols);
  const before = z !== null && p.normBeforeGate;
  const n = new Float64Array(p.groupSize);
  const dn = new Float64Array(p.groupSize);
  for (let base = 0; base < x.length; base += p.groupSize) {
    const rstd = groupRstd(x, z, p, base);
    let m = 0;
    for (let c = 0; c < p.groupSize; c++) {
      const i = base + c;
      const wc = w[i % p.cols];
      const gate = before ? silu(z![i]) : 1;
      n[c] = normInput(x, z, p, i) * rstd;
      dn[c] = dy[i] * wc * gate;
      m += dn[c] * n[c];
      dweight[i % p.cols] += dy[i] * n[c] * gate;
      if (before) dz![i] = dy[i] * n[c] * wc * dsilu(z![i]);
    }
    m /= p.groupSize;
    for (let c = 0; c < p.groupSize; c++) {
      const i = base + c;
      const dv = rstd * (dn[c] - n[c] * m);
      if (z && !before) {
        dx[i] = dv * silu(z[i]);
        dz![i] = dv * x[i] * dsilu(z[i]);
      } else dx[i] = dv;
    }
  }
  return { dx, dz, dweight };
}
