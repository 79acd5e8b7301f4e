/**
 * A Linear layer on one row in float64, for the references of kernels that fuse products.
 *
 * @module
 */

/**
 * `W·x + b` for one row: `weight` is `[out, x.length]`, as a Linear stores it.
 * @param x the row
 * @param weight `[out, x.length]`, row-major
 * @param bias `[out]`, or none
 * @returns `[out]`
 */
export function linearReference(
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array | null = null,
): Float64Array {
  const cols = x.length, out = new Float64Array(weight.length / cols);
  for (let o = 0; o < out.length; o++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < cols; i++) s += weight[o * cols + i] * x[i];
    out[o] = s;
  }
  return out;
}
