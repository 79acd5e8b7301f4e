/**
 * Float64 reference of layer normalization over the last dimension (biased variance, affine),
 * and its analytic gradient.
 */

function rowStats(x: Float64Array, cols: number, r: number, eps: number): [number, number] {
  let s = 0;
  for (let c = 0; c < cols; c++) s += x[r * cols + c];
  const mean = s / cols;
  let q = 0;
  for (let c = 0; c < cols; c++) q += (x[r * cols + c] - mean) ** 2;
  return [mean, 1 / Math.sqrt(q / cols + eps)];
}

/** `(x − mean) / sqrt(var + eps) · w + b` per row of `cols` values. */
export function layerNormRef(
  x: Float64Array,
  w: Float64Array,
  b: Float64Array,
  cols: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    const [mean, rstd] = rowStats(x, cols, r, eps);
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = (x[r * cols + c] - mean) * rstd * w[c] + b[c];
    }
  }
  return out;
}

/** Gradients of Σ g ⊙ layerNorm(x) with respect to x, w and b. */
export function layerNormGradRef(
  x: Float64Array,
  w: Float64Array,
  cols: number,
  eps: number,
  g: Float64Array,
): [Float64Array, Float64Array, Float64Array] {
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(cols);
  const db = new Float64Array(cols);
  for (let r = 0; r < x.length / cols; r++) {
    const [mean, rstd] = rowStats(x, cols, r, eps);
    let a = 0, b = 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const xhat = (x[i] - mean) * rstd;
      a += g[i] * w[c];
      b += g[i] * w[c] * xhat;
      dw[c] += g[i] * xhat;
      db[c] += g[i];
    }
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const xhat = (x[i] - mean) * rstd;
      dx[i] = rstd * (g[i] * w[c] - a / cols - xhat * b / cols);
    }
  }
  return [dx, dw, db];
}
