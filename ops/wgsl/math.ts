/**
 * Scalar math that several kernels share, as WGSL source to paste into a shader.
 *
 * @module
 */

/**
 * Coefficients 1, 1/3, 1/5, …, 1/19 of the odd series atanh(q)/q = Σ q^(2k) / (2k + 1), nested
 * for Horner evaluation in `q2` = q².
 *
 * Ten terms, to q¹⁹: with q ≤ 1/3 the first omitted term is below 3⁻²⁰/21 ≈ 1.4e-11 of the sum,
 * against 1.4e-10 for nine terms (to q¹⁷). Both are far below f32 resolution (6e-8), so in f32
 * the two lengths agree on all but about one input in 10⁵ and then by one or two ulp, neither
 * consistently closer to the exact value. The longer series is kept because its truncation
 * error is the smaller one and because the selective scan, the softplus the models use, was
 * validated with it: sharing it leaves the scan's results unchanged.
 */
const ATANH_SERIES = Array.from({ length: 10 }, (_, i) => (1 / (2 * i + 1)).toPrecision(9))
  .reduceRight((inner, coef) => (inner ? `${coef} + q2 * (${inner})` : coef), "");

/**
 * WGSL functions `normal_cdf(x: f32) -> f32` (Φ(x), for the exact GELU x·Φ(x)) and its helper
 * `erfc_pos(z: f32) -> f32` (erfc for z ≥ 0). Paste once per shader, at module scope.
 */
export const NORMAL_CDF_WGSL: string = /* wgsl */ `
fn erfc_pos(z: f32) -> f32 {
  // Complementary error function for z >= 0, fractional error below 1.2e-7 (a Chebyshev fit
  // of the form t·exp(−z² + P(t)), t = 1/(1 + z/2)), so the tails keep their relative accuracy.
  let t = 1.0 / (1.0 + 0.5 * z);
  let q = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223
    + t * 0.17087277))))))));
  return t * exp(-z * z + q);
}
fn normal_cdf(x: f32) -> f32 {
  let c = 0.5 * erfc_pos(abs(x) * 0.7071067811865476);
  return select(1.0 - c, c, x < 0.0);
}
`;

/**
 * {@link NORMAL_CDF_WGSL} and `gelu_(x: f32) -> f32`, the exact GELU x·Φ(x) that every kernel
 * applying GELU calls (the elementwise op, the matrix product's epilogue, the fused layer tail),
 * so all of them compute the same values. Paste once per shader, at module scope.
 */
export const GELU_WGSL: string = `${NORMAL_CDF_WGSL}fn gelu_(x: f32) -> f32 {
  return x * normal_cdf(x);
}
`;

/**
 * WGSL functions `sigmoid_(x: f32) -> f32`, `silu_(x: f32) -> f32` (x · sigmoid(x)) and
 * `softplus_(x: f32) -> f32` (PyTorch's: x above the threshold 20, log(1 + eˣ) below), plus the
 * helper `log1p_unit_(v: f32) -> f32` (log(1 + v) for 0 ≤ v ≤ 1). The trailing underscores keep
 * the names clear of WGSL built-ins. Paste once per shader, at module scope.
 *
 * The sigmoid never evaluates exp of a positive argument, so it neither overflows nor loses the
 * small tail; the softplus is max(x, 0) + log(1 + e^−|x|) with the logarithm as 2·atanh(q),
 * q = v / (2 + v) ≤ 1/3, an odd series that needs no `log` (whose accuracy near 1 is loose on
 * GPUs) and keeps the relative accuracy of tiny results.
 */
export const MATH_WGSL: string = /* wgsl */ `
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn silu_(x: f32) -> f32 {
  return x * sigmoid_(x);
}
fn log1p_unit_(v: f32) -> f32 {
  let q = v / (2.0 + v);
  let q2 = q * q;
  return 2.0 * q * (${ATANH_SERIES});
}
fn softplus_(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  return max(x, 0.0) + log1p_unit_(exp(-abs(x)));
}
`;
