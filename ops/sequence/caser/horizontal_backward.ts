/**
 * The backward kernels of Caser's horizontal convolutions, from the winning positions the forward
 * saved (one per output; −1 where ReLU passed no gradient). No atomics: every gradient value is
 * one invocation's sum in a fixed order, so the results are the same from run to run.
 *
 * - `dx`: one invocation per (row, position, unit of E) adds, over every height and then every
 *   filter whose winning window covers that position, the output gradient times the filter's
 *   values there.
 * - `dweight` and `dbias`: one invocation per unit of packed weights (and one per bias) adds its
 *   terms over the batch in row order.
 *
 * A unit is 4 values (vec4 reads and sums) when E is a multiple of 4, else 1; each of its
 * components is summed as the scalar form sums it.
 *
 * @module
 */
import { HORIZONTAL_PRELUDE } from "./horizontal_prelude.ts";

/** The `dx` kernel reading the filters and writing `dx` in units of `unit` values. */
function backwardXShader(unit: 1 | 4): string {
  const U = unit === 4 ? "vec4f" : "f32";
  return /* wgsl */ `
${HORIZONTAL_PRELUDE}
@group(0) @binding(1) var<storage, read> weight: array<${U}>;
@group(0) @binding(2) var<storage, read> winner: array<i32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<${U}>;
// Invocation k = (row · L + s) · E/${unit} + e: every (height, filter) whose winning window
// covers s. Offsets count units of ${unit}.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = grid_index(gid, p.stride);
  if (k >= p.n) { return; }
  let dim = p.dim / ${unit}u;
  let e = k % dim;
  let s = (k / dim) % p.length;
  let row = k / (dim * p.length);
  var acc = ${U}(0.0);
  for (var h = 1u; h <= p.length; h++) {
    let base = (row * p.length + h - 1u) * p.filters;
    let w0 = height_offset(h) / ${unit}u;
    for (var f = 0u; f < p.filters; f++) {
      let t = winner[base + f];
      if (t >= 0 && u32(t) <= s && s - u32(t) < h) {
        acc += dout[base + f] * weight[w0 + (f * h + s - u32(t)) * dim + e];
      }
    }
  }
  dx[k] = acc;
}`;
}

/** The `dweight`/`dbias` kernel reading x and writing `dweight` in units of `unit` values. */
function backwardParametersShader(unit: 1 | 4): string {
  const U = unit === 4 ? "vec4f" : "f32";
  return /* wgsl */ `
${HORIZONTAL_PRELUDE}
@group(0) @binding(1) var<storage, read> x: array<${U}>;
@group(0) @binding(2) var<storage, read> winner: array<i32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<${U}>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;
// The height whose filters hold packed weight k: the largest h with height_offset(h) ≤ k.
fn height_of(k: u32) -> u32 {
  let q = k / (p.filters * p.dim);
  var h = u32((sqrt(8.0 * f32(q) + 1.0) + 1.0) * 0.5);
  while (h > 1u && h * (h - 1u) / 2u > q) { h--; }
  while ((h + 1u) * h / 2u <= q) { h++; }
  return h;
}
// Invocations below the packed weight count over ${unit} take one unit of weights, the next
// L · nh one bias each; each adds its terms over the batch in row order.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = grid_index(gid, p.stride);
  if (k >= p.n) { return; }
  let dim = p.dim / ${unit}u;
  let units = height_offset(p.length + 1u) / ${unit}u;
  if (k < units) {
    let h = height_of(k * ${unit}u);
    let r = k * ${unit}u - height_offset(h);
    let f = r / (h * p.dim);
    let within = (r % (h * p.dim)) / ${unit}u;
    var acc = ${U}(0.0);
    for (var row = 0u; row < p.batch; row++) {
      let o = (row * p.length + h - 1u) * p.filters + f;
      let t = winner[o];
      if (t >= 0) { acc += dout[o] * x[(row * p.length + u32(t)) * dim + within]; }
    }
    dweight[k] = acc;
  } else {
    let j = k - units;
    var acc = 0.0;
    for (var row = 0u; row < p.batch; row++) {
      let o = row * p.length * p.filters + j;
      if (winner[o] >= 0) { acc += dout[o]; }
    }
    dbias[j] = acc;
  }
}`;
}

/** The `dx` kernels by unit. */
export const BACKWARD_X = { 1: backwardXShader(1), 4: backwardXShader(4) };

/** The `dweight`/`dbias` kernels by unit. */
export const BACKWARD_PARAMETERS = {
  1: backwardParametersShader(1),
  4: backwardParametersShader(4),
};
