/**
 * Caser's horizontal convolutions, every height in one op: for each height h = 1 … L, `nh`
 * filters of `h × E` slide over the `[L, E]` embedding matrix of a window (PyTorch's
 * `Conv2d(1, nh, (h, E))`, L − h + 1 positions), then ReLU and a max-pool over all positions
 * give one value per filter. The result is `[B, nh · L]`, height after height (RecBole's
 * `torch.cat(out_hs, 1)`).
 *
 * Forward: one invocation per (row, height, filter) walks the positions; a window of h rows of x
 * is h·E contiguous values, so each position is one dot product with the filter (read as vec4s
 * when E is a multiple of 4), and neighbouring invocations share a height. The first
 * position with the largest pre-activation wins ties; ReLU then max equals max then ReLU, so the
 * op saves only that position per output (−1 where the maximum is ≤ 0: ReLU passes no gradient
 * there).
 *
 * Backward, from the saved positions and no atomics: `dx` with one invocation per (row, position,
 * channel) adding, over every height and filter whose winning window covers that row, the output
 * gradient times the filter entry; the weight and bias gradients with one invocation per packed
 * weight (and per bias) adding over the batch in order. Deterministic.
 *
 * @module
 */
import { record } from "../../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../../core/launch.ts";
import { Tensor } from "../../core/tensor.ts";
import { GRID_WGSL } from "../../wgsl/grid.ts";
import { type HorizontalFilterShape, packedFilterSize } from "./layout.ts";

const OP = "caserHorizontalConv";
const WG = 64;

/**
 * Shared WGSL: the parameter block, the bindings' sizes and `height_offset(h)`, the start of
 * height h's filters in the packed weights (`heightOffset` of `layout.ts`).
 */
const PRELUDE = /* wgsl */ `
struct P { n: u32, stride: u32, batch: u32, length: u32, dim: u32, filters: u32 }
@group(0) @binding(0) var<uniform> p: P;
fn height_offset(h: u32) -> u32 { return p.filters * p.dim * (h * (h - 1u) / 2u); }
${GRID_WGSL}`;

/**
 * The forward kernel reading x and the filters in units of `unit` values (vec4 when E is a
 * multiple of 4: a window and a filter are then whole vec4s, and each step is one `dot`).
 */
function forwardShader(unit: 1 | 4): string {
  const U = unit === 4 ? "vec4f" : "f32";
  const product = unit === 4 ? "dot(weight[w0 + j], x[x0 + j])" : "weight[w0 + j] * x[x0 + j]";
  return /* wgsl */ `
${PRELUDE}
@group(0) @binding(1) var<storage, read> x: array<${U}>;
@group(0) @binding(2) var<storage, read> weight: array<${U}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> winner: array<i32>;
// Invocation k = ((h − 1) · B + row) · nh + f: neighbours share a height, so they walk the same
// number of positions. Offsets and spans count units of ${unit}.
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = grid_index(gid, p.stride);
  if (k >= p.n) { return; }
  let f = k % p.filters;
  let row = (k / p.filters) % p.batch;
  let h = k / (p.filters * p.batch) + 1u;
  let dim = p.dim / ${unit}u;
  let w0 = height_offset(h) / ${unit}u + f * h * dim;
  let span = h * dim;
  let b = bias[(h - 1u) * p.filters + f];
  var best = 0.0;
  var at = 0u;
  for (var t = 0u; t + h <= p.length; t++) {
    let x0 = (row * p.length + t) * dim;
    var s = b;
    for (var j = 0u; j < span; j++) { s += ${product}; }
    if (t == 0u || s > best) { best = s; at = t; }
  }
  let o = (row * p.length + h - 1u) * p.filters + f;
  out[o] = max(best, 0.0);
  winner[o] = select(-1, i32(at), best > 0.0);
}`;
}

const FORWARD = { 1: forwardShader(1), 4: forwardShader(4) };

const BACKWARD_X = /* wgsl */ `
${PRELUDE}
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> winner: array<i32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
// Invocation k = (row · L + s) · E + e: every (height, filter) whose winning window covers s.
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = grid_index(gid, p.stride);
  if (k >= p.n) { return; }
  let e = k % p.dim;
  let s = (k / p.dim) % p.length;
  let row = k / (p.dim * p.length);
  var acc = 0.0;
  for (var h = 1u; h <= p.length; h++) {
    let base = (row * p.length + h - 1u) * p.filters;
    let w0 = height_offset(h);
    for (var f = 0u; f < p.filters; f++) {
      let t = winner[base + f];
      if (t >= 0 && u32(t) <= s && s - u32(t) < h) {
        acc += dout[base + f] * weight[w0 + (f * h + s - u32(t)) * p.dim + e];
      }
    }
  }
  dx[k] = acc;
}`;

const BACKWARD_PARAMETERS = /* wgsl */ `
${PRELUDE}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> winner: array<i32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;
// The height whose filters hold packed weight k: the largest h with height_offset(h) ≤ k.
fn height_of(k: u32) -> u32 {
  let q = k / (p.filters * p.dim);
  var h = u32((sqrt(8.0 * f32(q) + 1.0) + 1.0) * 0.5);
  while (h > 1u && h * (h - 1u) / 2u > q) { h--; }
  while ((h + 1u) * h / 2u <= q) { h++; }
  return h;
}
// Invocations below the packed weight count take one weight, the next L · nh one bias each;
// each adds its terms over the batch in row order.
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = grid_index(gid, p.stride);
  if (k >= p.n) { return; }
  let weights = height_offset(p.length + 1u);
  var acc = 0.0;
  if (k < weights) {
    let h = height_of(k);
    let r = k - height_offset(h);
    let f = r / (h * p.dim);
    let within = r % (h * p.dim);
    for (var row = 0u; row < p.batch; row++) {
      let o = (row * p.length + h - 1u) * p.filters + f;
      let t = winner[o];
      if (t >= 0) { acc += dout[o] * x[(row * p.length + u32(t)) * p.dim + within]; }
    }
    dweight[k] = acc;
  } else {
    let j = k - weights;
    for (var row = 0u; row < p.batch; row++) {
      let o = row * p.length * p.filters + j;
      if (winner[o] >= 0) { acc += dout[o]; }
    }
    dbias[j] = acc;
  }
}`;

/** The filter shape `x`, `weight` and `bias` describe; fails naming the shapes otherwise. */
function validate(x: Tensor, weight: Tensor, bias: Tensor): HorizontalFilterShape {
  for (const t of [x, weight, bias]) assertDType(OP, t, "f32");
  const got = `x ${x.describe()}, weight ${weight.describe()}, bias ${bias.describe()}`;
  if (x.shape.length !== 3 || x.size === 0) {
    throw new RangeError(`${OP}: x must be a non-empty [batch, L, E] tensor; got ${got}`);
  }
  const [, length, dim] = x.shape;
  if (bias.shape.length !== 2 || bias.shape[0] !== length || bias.shape[1] === 0) {
    throw new RangeError(
      `${OP}: bias must be [L ${length}, filters per height]; got ${got}`,
    );
  }
  const shape = { length, dim, filters: bias.shape[1] };
  const want = packedFilterSize(shape);
  if (weight.shape.length !== 1 || weight.size !== want) {
    throw new RangeError(
      `${OP}: weight must hold every height's filters packed, [nh · E · L(L + 1)/2] = [${want}] ` +
        `for L ${length}, E ${dim}, nh ${shape.filters}; got ${got}`,
    );
  }
  return shape;
}

/**
 * Caser's horizontal convolutions of every height with ReLU and max-over-time pooling, recorded
 * on the tape (gradients for `x`, `weight` and `bias`):
 *
 *     out[b, (h − 1)·nh + f] = max over t of ReLU(bias[h − 1, f]
 *         + Σ_{i < h, e < E} W_h[f, i, e] · x[b, t + i, e]),   t = 0 … L − h
 *
 * with `W_h` height h's block of the packed weights (see `layout.ts`). Of equal maxima the first
 * position takes the gradient. `caserHorizontalReference` computes the same in float64.
 * @param x the embedded windows `[B, L, E]`
 * @param weight every height's filters, packed: `[nh · E · L(L + 1)/2]`
 * @param bias `[L, nh]`, height h's biases at row h − 1
 * @returns `[B, nh · L]`
 */
export function caserHorizontalConv(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  const shape = validate(x, weight, bias);
  const { length, dim, filters } = shape;
  const batch = x.shape[0];
  const outputs = batch * length * filters;
  const out = Tensor.empty([batch, length * filters], "f32", OP);
  const winner = Tensor.empty([batch, length * filters], "i32", `${OP} winners`);
  const params = (n: number) => {
    const g = grid(n, WG);
    return { g, words: packParams([n, g.stride, batch, length, dim, filters]) };
  };
  const fwd = params(outputs);
  const unit = dim % 4 === 0 ? 4 : 1;
  launch(OP, FORWARD[unit], fwd.words, [x, weight, bias, out, winner], fwd.g.groups);
  return record(out, OP, [x, weight, bias], (dout) => {
    let dx: Tensor | null = null, dweight: Tensor | null = null, dbias: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, "f32", `${OP} backward`);
      const b = params(x.size);
      launch(`${OP} backward x`, BACKWARD_X, b.words, [weight, winner, dout, dx], b.g.groups);
    }
    if (weight.requiresGrad || bias.requiresGrad) {
      dweight = Tensor.empty(weight.shape, "f32", `${OP} backward`);
      dbias = Tensor.empty(bias.shape, "f32", `${OP} backward`);
      const b = params(weight.size + bias.size);
      launch(
        `${OP} backward parameters`,
        BACKWARD_PARAMETERS,
        b.words,
        [x, winner, dout, dweight, dbias],
        b.g.groups,
      );
    }
    return [dx, dweight, dbias];
  }, [winner]);
}
