/**
 * One step of the Mamba block's two recurrent parts for a batch of independent streams, each
 * keeping its state in a row ("slot") of a pool tensor: the depthwise causal convolution with
 * SiLU ({@link causalConv1dStep}, the pool holding the last `width − 1` inputs) and the selective
 * scan with softplus Δ, the D skip and the SiLU(z) gate ({@link selectiveScanStep}, the pool
 * holding the `d × n` state). {@link writeSlotRows} copies rows into slots or clears them.
 *
 * Each kernel is one invocation per (stream, channel) reading and rewriting only its own slot
 * row, so the slots of one call must be distinct (the caller splits repeated slots over calls).
 * Inference only: nothing is recorded on the tape. The float64 references beside the kernels
 * ({@link causalConv1dStepReference}, {@link selectiveScanStepReference}) do the same on the host.
 *
 * @module
 */
import { assertDType, assertShape, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { MATH_WGSL } from "../wgsl/math.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const WG = 64;

function slotCount(op: string, pool: Tensor, slots: Tensor): number {
  assertDType(op, slots, "i32");
  if (slots.shape.length !== 1 || slots.size === 0) {
    throw new RangeError(`${op}: slots must be a non-empty i32 [streams], got ${slots.describe()}`);
  }
  if (pool.shape.length < 2) {
    throw new RangeError(`${op}: the pool must be [slots, ...], got ${pool.describe()}`);
  }
  return slots.size;
}

const CONV_STEP_WGSL = shaderGenerator("causalConv1dStep", (width: number) => /* wgsl */ `
struct P { n: u32, stride: u32, channels: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> slot: array<i32>;
@group(0) @binding(5) var<storage, read_write> conv_window: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
const W: u32 = ${width}u;
${MATH_WGSL}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let c = i % p.channels;
  let base = u32(slot[i / p.channels]) * (W - 1u) * p.channels + c;
  // The taps in the full convolution's order: oldest input first, the new input last.
  var acc = bias[c];
  for (var k = 0u; k < W - 1u; k++) { acc += weight[c * W + k] * conv_window[base + k * p.channels]; }
  let xi = x[i];
  acc += weight[c * W + W - 1u] * xi;
  out[i] = silu_(acc);
  for (var k = 0u; k + 2u < W; k++) {
    conv_window[base + k * p.channels] = conv_window[base + (k + 1u) * p.channels];
  }
  conv_window[base + (W - 2u) * p.channels] = xi;
}`);

/**
 * One step of `causalConv1d(…, { activation: "silu", layout: "bld" })` per stream: with
 * `window[slot]` holding the stream's last `w − 1` inputs (oldest first, zeros before its first
 * event), `out[s, c] = SiLU(bias[c] + Σ_{k<w−1} weight[c, k] · window[slot, k, c] + weight[c, w −
 * 1] · x[s, c])`, then the window drops its oldest input and appends `x[s, c]`.
 * @param x the new inputs `[streams, channels]`
 * @param weight `[channels, w]`, w 2, 3 or 4
 * @param bias `[channels]`
 * @param window the pool `[slots, w − 1, channels]`, updated in place
 * @param slots i32 `[streams]`: each stream's row of the pool, distinct and in range
 * @returns `[streams, channels]`
 */
export function causalConv1dStep(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  window: Tensor,
  slots: Tensor,
): Tensor {
  const op = "causalConv1dStep";
  const streams = slotCount(op, window, slots);
  const channels = x.shape[1];
  assertShape(op, "x", x, [streams, channels]);
  const width = weight.shape[1];
  if (!(width >= 2 && width <= 4)) {
    throw new RangeError(`${op}: weight must be [${channels}, 2..4], got ${weight.describe()}`);
  }
  assertShape(op, "weight", weight, [channels, width]);
  assertShape(op, "bias", bias, [channels]);
  assertShape(op, "window", window, [window.shape[0], width - 1, channels]);
  const out = Tensor.empty([streams, channels], "f32", op);
  const g = grid(x.size, WG);
  launch(
    op,
    CONV_STEP_WGSL(width),
    packParams([x.size, g.stride, channels]),
    [x, weight, bias, slots, window, out],
    g.groups,
  );
  return out;
}

const SCAN_STEP_WGSL = /* wgsl */ `
struct P { n: u32, stride: u32, channels: u32, states: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> cmat: array<f32>;
@group(0) @binding(6) var<storage, read> dskip: array<f32>;
@group(0) @binding(7) var<storage, read> z: array<f32>;
@group(0) @binding(8) var<storage, read> dbias: array<f32>;
@group(0) @binding(9) var<storage, read> slot: array<i32>;
@group(0) @binding(10) var<storage, read_write> state: array<f32>;
@group(0) @binding(11) var<storage, read_write> out: array<f32>;
${MATH_WGSL}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let c = i % p.channels;
  let s = i / p.channels;
  let h0 = (u32(slot[s]) * p.channels + c) * p.states;
  let dt = softplus_(delta[i] + dbias[c]);
  let u = x[i];
  let du = dt * u;
  var acc = dskip[c] * u;
  for (var k = 0u; k < p.states; k++) {
    let h = exp(dt * a[c * p.states + k]) * state[h0 + k] + du * b[s * p.states + k];
    state[h0 + k] = h;
    acc += cmat[s * p.states + k] * h;
  }
  let zi = z[i];
  out[i] = acc * silu_(zi);
}`;

/** The per-step inputs of {@link selectiveScanStep}, as the Mamba block computes them. */
export interface SelectiveScanStepInputs {
  /** Input u `[streams, d]`. */
  readonly x: Tensor;
  /** Step sizes before bias and softplus `[streams, d]`. */
  readonly delta: Tensor;
  /** State matrix A `[d, n]` (negative). */
  readonly A: Tensor;
  /** Input matrix B `[streams, n]`. */
  readonly B: Tensor;
  /** Output matrix C `[streams, n]`. */
  readonly C: Tensor;
  /** Skip D `[d]`. */
  readonly D: Tensor;
  /** Gate z `[streams, d]`. */
  readonly z: Tensor;
  /** Added to delta before the softplus `[d]`. */
  readonly deltaBias: Tensor;
}

/**
 * One step of `selectiveScan(…, { D, z, deltaBias, deltaSoftplus: true })` per stream: with
 * Δ = softplus(delta + deltaBias), `h ← exp(Δ·A) ⊙ h + Δ·B·u` on the stream's state
 * `state[slot]` (zeros before its first event), then `y = (C·h + D·u) · SiLU(z)`.
 * @param inputs this step's inputs
 * @param state the pool `[slots, d, n]`, updated in place
 * @param slots i32 `[streams]`: each stream's row of the pool, distinct and in range
 * @returns y `[streams, d]`
 */
export function selectiveScanStep(
  inputs: SelectiveScanStepInputs,
  state: Tensor,
  slots: Tensor,
): Tensor {
  const op = "selectiveScanStep";
  const streams = slotCount(op, state, slots);
  const { x, delta, A, B, C, D, z, deltaBias } = inputs;
  const [channels, states] = A.shape;
  assertShape(op, "A", A, [channels, states]);
  assertShape(op, "x", x, [streams, channels]);
  assertShape(op, "delta", delta, [streams, channels]);
  assertShape(op, "z", z, [streams, channels]);
  assertShape(op, "B", B, [streams, states]);
  assertShape(op, "C", C, [streams, states]);
  assertShape(op, "D", D, [channels]);
  assertShape(op, "deltaBias", deltaBias, [channels]);
  assertShape(op, "state", state, [state.shape[0], channels, states]);
  const out = Tensor.empty([streams, channels], "f32", op);
  const g = grid(x.size, WG);
  launch(
    op,
    SCAN_STEP_WGSL,
    packParams([x.size, g.stride, channels, states]),
    [x, delta, A, B, C, D, z, deltaBias, slots, state, out],
    g.groups,
  );
  return out;
}

const WRITE_ROWS_WGSL = shaderGenerator("writeSlotRows", (clear: boolean) => /* wgsl */ `
struct P { n: u32, stride: u32, row: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> slot: array<i32>;
@group(0) @binding(2) var<storage, read_write> pool: array<f32>;
${clear ? "" : "@group(0) @binding(3) var<storage, read> src: array<f32>;"}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  pool[u32(slot[i / p.row]) * p.row + i % p.row] = ${clear ? "0.0" : "src[i]"};
}`);

/**
 * Writes `rows[s]` into `pool[slots[s]]` for every s, or zeros there when `rows` is null. A row
 * is everything past the pool's first dimension. Slots must be distinct when `rows` is given.
 * @param pool `[slots, ...]`, updated in place
 * @param slots i32 `[streams]`, in range
 * @param rows `[streams, ...]` shaped like the pool past its first dimension, or null to clear
 */
export function writeSlotRows(pool: Tensor, slots: Tensor, rows: Tensor | null): void {
  const op = "writeSlotRows";
  const streams = slotCount(op, pool, slots);
  const row = pool.size / pool.shape[0];
  if (rows) assertShape(op, "rows", rows, [streams, ...pool.shape.slice(1)]);
  const n = streams * row;
  const g = grid(n, WG);
  launch(
    op,
    WRITE_ROWS_WGSL(rows === null),
    packParams([n, g.stride, row]),
    rows ? [slots, pool, rows] : [slots, pool],
    g.groups,
  );
}

const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * Float64 reference of {@link causalConv1dStep} for one stream: returns the output `[d]` and
 * shifts `window` (`[w − 1, d]`, oldest first) in place.
 * @param x the new input `[d]`
 * @param weight `[d, w]`
 * @param bias `[d]`
 * @param window the stream's window `[w − 1, d]`, updated
 */
export function causalConv1dStepReference(
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
  window: Float64Array,
): Float64Array {
  const d = x.length;
  const w = weight.length / d;
  const out = new Float64Array(d);
  for (let c = 0; c < d; c++) {
    let acc = bias[c];
    for (let k = 0; k < w - 1; k++) acc += weight[c * w + k] * window[k * d + c];
    acc += weight[c * w + w - 1] * x[c];
    out[c] = silu(acc);
    for (let k = 0; k + 2 < w; k++) window[k * d + c] = window[(k + 1) * d + c];
    window[(w - 2) * d + c] = x[c];
  }
  return out;
}

/**
 * Float64 reference of {@link selectiveScanStep} for one stream: returns y `[d]` and advances
 * `state` (`[d, n]`) in place. Arrays as in {@link SelectiveScanStepInputs}, without the
 * stream dimension.
 * @param inputs this step's inputs for the stream
 * @param state the stream's state `[d, n]`, updated
 */
export function selectiveScanStepReference(
  inputs: {
    x: Float64Array;
    delta: Float64Array;
    A: Float64Array;
    B: Float64Array;
    C: Float64Array;
    D: Float64Array;
    z: Float64Array;
    deltaBias: Float64Array;
  },
  state: Float64Array,
): Float64Array {
  const { x, delta, A, B, C, D, z, deltaBias } = inputs;
  const d = x.length, n = B.length;
  const y = new Float64Array(d);
  for (let c = 0; c < d; c++) {
    const dt = softplus(delta[c] + deltaBias[c]);
    let acc = D[c] * x[c];
    for (let k = 0; k < n; k++) {
      const h = Math.exp(dt * A[c * n + k]) * state[c * n + k] + dt * B[k] * x[c];
      state[c * n + k] = h;
      acc += C[k] * h;
    }
    y[c] = acc * silu(z[c]);
  }
  return y;
}
