/**
 * One event of a one-layer Bi-SSD (SSD4Rec's bidirectional Mamba-2 block, read at each sequence's
 * newest token) per stream, in one kernel ({@link biSsdStep}), with O(1) work and state per
 * stream.
 *
 * The forward direction is Mamba-2's recurrence: the convolution over the stream's last `w − 1`
 * projected inputs and the new one, then `h ← exp(Δ·A)·h + Δ·x·Bᵀ` per head and `y = h·C + D·x`.
 *
 * The backward direction runs the same block over the history newest first and, as SSD4Rec reads
 * it (its output is not reversed back), is read at the end of that reversed scan, the oldest
 * token. Its state there, over the n tokens of the history, is
 *
 *     h = Σ_i exp(A·S_i)·Δ_i·x_i·B_iᵀ,   S_i = Σ_{j<i} Δ_j
 *
 * (the decays between token i and the end are those of the older tokens j < i), so a new token
 * adds one term and changes no other weight. Its inputs x_i, B_i, C_i come from the convolution
 * run newest first, which for token i reads tokens i … i + w − 1: the newest `w − 1` tokens' terms
 * are still open (their windows lack tokens that have not come yet, zeros until then). Each stream
 * therefore keeps the sum of its closed terms `F`, and each event closes the term of token
 * n − w + 1 (whose window the new token n completes), then reads
 *
 *     y = F·C_0 + Σ_{open i} exp(A·S_i)·Δ_i·x_i·(B_i·C_0) + D·x_0
 *
 * with x_0, C_0 the oldest token's (final once token w − 1 has come; kept per stream) and the
 * open terms from the window. The backward direction's gate is the oldest token's z, also kept.
 * Besides the forward state and F (`[slots, N, d_inner]` each, state-major like `mambaStep`'s),
 * a stream keeps its window of projected xBC rows (shared by both directions), the last `w − 1`
 * tokens' Δ and S, the running ΣΔ, and x_0, C_0 and z_0.
 *
 * One workgroup takes one stream. Groups G = 1 (B and C shared by all heads, as SSD4Rec builds
 * the block). An invocation updates its channel's states of each pool several at a time, their
 * loads issued together: the step reads and writes both pools whole, so it is bound by how many
 * loads wait at once. `biSsdStepReference` (`bi_ssd_step_reference.ts`) does the same in float64
 * on the host.
 *
 * @module
 */
import { assertShape, launch, packParams } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL } from "../wgsl/grid.ts";
import { MATH_WGSL } from "../wgsl/math.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const OP = "biSsdStep";

/** Invocations per workgroup. */
const THREADS = 256;

/** The block's weights {@link biSsdStep} reads. */
export interface BiSsdStepWeights {
  /** Depthwise convolution weight over xBC's channels `[d_inner + 2N, w]`, w 2, 3 or 4. */
  readonly convWeight: Tensor;
  /** Convolution bias `[d_inner + 2N]`. */
  readonly convBias: Tensor;
  /** Added to dt before the softplus, per head `[H]`. */
  readonly dtBias: Tensor;
  /** The decay rates A = −exp(A_log), per head `[H]`. */
  readonly A: Tensor;
  /** The skip D per head `[H]`. */
  readonly D: Tensor;
}

/** Each stream's state, one row per slot, updated in place (zeros before a stream's first event). */
export interface BiSsdStepPools {
  /** The last `w − 1` projected xBC rows, oldest first: `[slots, w − 1, d_inner + 2N]`. */
  readonly window: Tensor;
  /** The forward direction's SSM state, state-major: `[slots, N, d_inner]`. */
  readonly state: Tensor;
  /** The backward direction's closed terms F, state-major: `[slots, N, d_inner]`. */
  readonly closed: Tensor;
  /**
   * Per head, `[slots, 2w − 1, H]`: rows 0 … w − 2 the last `w − 1` tokens' Δ (after bias and
   * softplus), oldest first; rows w − 1 … 2w − 3 their S (ΣΔ of the tokens before each), oldest
   * first; row 2w − 2 ΣΔ over all the stream's tokens.
   */
  readonly perHead: Tensor;
  /** The oldest token's x, C and z for the backward direction: `[slots, 2·d_inner + N]`. */
  readonly oldest: Tensor;
}

/** The outputs of {@link biSsdStep}, each `[streams, d_inner]`, before the gated norm. */
export interface BiSsdStepOutputs {
  /** The forward direction's y at the new token. */
  readonly yForward: Tensor;
  /** The backward direction's y at the oldest token (the end of the reversed scan). */
  readonly yBackward: Tensor;
  /** The backward direction's gate: the oldest token's z. */
  readonly zBackward: Tensor;
}

/** Sizes a kernel is compiled for. */
interface StepSizes {
  inner: number;
  heads: number;
  states: number;
  width: number;
}

/** States of a pool an invocation loads before it updates them ({@link stateLoop}). */
const STATE_LOADS = 8;

/**
 * WGSL updating one channel's `count` states of `pool` in order: {@link STATE_LOADS} of them
 * loaded together (their loads in flight at once, none waiting for the previous update's store),
 * then each one's new value `g` from `update(old, i)`, stored, and `use(i)` (i a WGSL index
 * expression). The arithmetic and its order are those of one state at a time.
 */
function stateLoop(
  count: number,
  pool: string,
  update: (old: string, i: string) => string,
  use: (i: string) => string,
): string {
  const batch = Math.min(STATE_LOADS, count);
  const us = Array.from({ length: batch }, (_, u) => u);
  const at = (i: string) => `(sl * N + ${i}) * DI + c`;
  const step = (old: string, i: string) =>
    `      {\n        ${update(old, i)}\n        ${pool}[${at(i)}] = g;\n        ${
      use(i)
    }\n      }`;
  return [
    "    {",
    "    var i0 = 0u;",
    `    for (; i0 + ${batch}u <= N; i0 += ${batch}u) {`,
    ...us.map((u) => `      let old${u} = ${pool}[${at(`i0 + ${u}u`)}];`),
    ...us.map((u) => step(`old${u}`, `i0 + ${u}u`)),
    "    }",
    "    for (; i0 < N; i0++) {",
    step(`${pool}[${at("i0")}]`, "i0"),
    "    }",
    "    }",
  ].join("\n");
}

const BI_SSD_STEP_WGSL = shaderGenerator(
  "biSsdStep",
  ({ inner, heads, states, width }: StepSizes) => /* wgsl */ `
struct P { streams: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> slot: array<i32>;
@group(0) @binding(3) var<storage, read> count: array<i32>;
@group(0) @binding(4) var<storage, read> conv_w: array<f32>;
@group(0) @binding(5) var<storage, read> conv_b: array<f32>;
@group(0) @binding(6) var<storage, read> dt_bias: array<f32>;
@group(0) @binding(7) var<storage, read> a_head: array<f32>;
@group(0) @binding(8) var<storage, read> d_head: array<f32>;
@group(0) @binding(9) var<storage, read_write> window: array<f32>;
@group(0) @binding(10) var<storage, read_write> state: array<f32>;
@group(0) @binding(11) var<storage, read_write> closed: array<f32>;
@group(0) @binding(12) var<storage, read_write> per_head: array<f32>;
@group(0) @binding(13) var<storage, read_write> oldest: array<f32>;
@group(0) @binding(14) var<storage, read_write> y_fwd: array<f32>;
@group(0) @binding(15) var<storage, read_write> y_bwd: array<f32>;
@group(0) @binding(16) var<storage, read_write> z_bwd: array<f32>;
const DI: u32 = ${inner}u;
const H: u32 = ${heads}u;
const N: u32 = ${states}u;
const W: u32 = ${width}u;
const HR: u32 = 2u * W - 1u;
const CD: u32 = DI + 2u * N;
const ROW: u32 = DI + CD + H;
const PH: u32 = DI / H;
const T: u32 = ${THREADS}u;
// The forward convolution's output, then the backward one's at positions k = 0 … W − 1, position
// k being token n − k (n the new token's index).
var<workgroup> xf: array<f32, CD>;
var<workgroup> xb: array<f32, ${width * (inner + 2 * states)}>;
// exp(A·S)·Δ of each position's token (zero for tokens before the first), and the new Δ.
var<workgroup> wk: array<f32, ${width * heads}>;
var<workgroup> dnew: array<f32, H>;
// The oldest token's x and C, and B_k·C_0 of the open positions.
var<workgroup> x0: array<f32, DI>;
var<workgroup> c0: array<f32, N>;
var<workgroup> dots: array<f32, W>;
${MATH_WGSL}
${GRID_WGSL}
@compute @workgroup_size(T)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let s = grid_index(wid, p.gx);
  if (s >= p.streams) { return; }
  let sl = u32(slot[s]);
  let n = u32(count[s]);
  // Per channel of xBC: both convolutions from the window and the new row, then the window
  // shifts the new row in.
  for (var c = t; c < CD; c += T) {
    var raw: array<f32, W>;
    for (var k = 0u; k < W - 1u; k++) { raw[k] = window[(sl * (W - 1u) + k) * CD + c]; }
    raw[W - 1u] = proj[s * ROW + DI + c];
    var acc = conv_b[c];
    for (var k = 0u; k < W; k++) { acc += conv_w[c * W + k] * raw[k]; }
    xf[c] = silu_(acc);
    // Newest first, token n − k's window is tokens n − k … n − k + W − 1 (those after n still
    // zeros), tap W − 1 on the token itself: raw index W − 1 − k + (W − 1 − j) for tap j.
    for (var k = 0u; k < W; k++) {
      var back = conv_b[c];
      for (var j = W - 1u - k; j < W; j++) { back += conv_w[c * W + j] * raw[2u * W - 2u - k - j]; }
      xb[k * CD + c] = silu_(back);
    }
    for (var k = 0u; k + 1u < W - 1u; k++) {
      window[(sl * (W - 1u) + k) * CD + c] = raw[k + 1u];
    }
    window[(sl * (W - 1u) + W - 2u) * CD + c] = raw[W - 1u];
  }
  // Per head: the new Δ, each position's weight exp(A·S)·Δ, and the rings shifted.
  for (var h = t; h < H; h += T) {
    let dt = softplus_(proj[s * ROW + DI + CD + h] + dt_bias[h]);
    let sum = per_head[(sl * HR + 2u * W - 2u) * H + h];
    dnew[h] = dt;
    wk[h] = exp(a_head[h] * sum) * dt;
    var dr: array<f32, W>;
    var sr: array<f32, W>;
    for (var k = 0u; k < W - 1u; k++) {
      dr[k] = per_head[(sl * HR + k) * H + h];
      sr[k] = per_head[(sl * HR + W - 1u + k) * H + h];
    }
    for (var k = 1u; k < W; k++) {
      wk[k * H + h] = exp(a_head[h] * sr[W - 1u - k]) * dr[W - 1u - k];
    }
    for (var k = 0u; k + 1u < W - 1u; k++) {
      per_head[(sl * HR + k) * H + h] = dr[k + 1u];
      per_head[(sl * HR + W - 1u + k) * H + h] = sr[k + 1u];
    }
    per_head[(sl * HR + W - 2u) * H + h] = dt;
    per_head[(sl * HR + 2u * W - 3u) * H + h] = sum;
    per_head[(sl * HR + 2u * W - 2u) * H + h] = sum + dt;
  }
  workgroupBarrier();
  // The oldest token's x and C: position n of this event while its window fills (n < W), kept
  // from then on.
  let base = sl * (2u * DI + N);
  for (var c = t; c < DI + N; c += T) {
    if (n < W) {
      let v = select(xb[n * CD + DI + N + c - DI], xb[n * CD + c], c < DI);
      oldest[base + c] = v;
    }
    let v = oldest[base + c];
    if (c < DI) { x0[c] = v; } else { c0[c - DI] = v; }
  }
  workgroupBarrier();
  for (var k = t; k + 1u < W; k += T) {
    var acc = 0.0;
    for (var i = 0u; i < N; i++) { acc = fma(xb[k * CD + DI + i], c0[i], acc); }
    dots[k] = acc;
  }
  workgroupBarrier();
  for (var c = t; c < DI; c += T) {
    let h = c / PH;
    // The forward direction's step.
    let dt = dnew[h];
    let decay = exp(dt * a_head[h]);
    let dx = dt * xf[c];
    var acc = 0.0;
${
    stateLoop(
      states,
      "state",
      (old, i) => `let g = decay * ${old} + dx * xf[DI + ${i}];`,
      (i) => `acc = fma(g, xf[DI + N + ${i}], acc);`,
    )
  }
    y_fwd[s * DI + c] = acc + d_head[h] * xf[c];
    // The backward direction: close token n − W + 1's term, then read at C_0 with the open ones.
    let wx = wk[(W - 1u) * H + h] * xb[(W - 1u) * CD + c];
    var back = 0.0;
${
    stateLoop(
      states,
      "closed",
      (old, i) => `let g = ${old} + wx * xb[(W - 1u) * CD + DI + ${i}];`,
      (i) => `back = fma(g, c0[${i}], back);`,
    )
  }
    for (var k = 0u; k + 1u < W; k++) { back += wk[k * H + h] * xb[k * CD + c] * dots[k]; }
    y_bwd[s * DI + c] = back + d_head[h] * x0[c];
    // The backward gate: the oldest token's z, kept from its event on.
    if (n == 0u) { oldest[base + DI + N + c] = proj[s * ROW + c]; }
    z_bwd[s * DI + c] = select(oldest[base + DI + N + c], proj[s * ROW + c], n == 0u);
  }
}`,
);

const check = (what: string, t: Tensor, shape: readonly number[], dtype = "f32") =>
  assertShape(OP, what, t, shape, dtype);

/** The sizes of a step, checked against every argument. */
function sizesOf(
  projection: Tensor,
  weights: BiSsdStepWeights,
  pools: BiSsdStepPools,
): StepSizes {
  const [slots, states, inner] = pools.state.shape;
  const heads = weights.A.shape[0];
  const width = weights.convWeight.shape[1];
  if (
    pools.state.shape.length !== 3 || weights.A.shape.length !== 1 || !(width >= 2 && width <= 4)
  ) {
    throw new RangeError(
      `${OP}: state must be [slots, N, d_inner], A [H] and convWeight [d_inner + 2N, 2..4], got ` +
        `${pools.state.describe()}, ${weights.A.describe()} and ${weights.convWeight.describe()}`,
    );
  }
  if (inner % heads !== 0) {
    throw new RangeError(`${OP}: d_inner ${inner} must split into the ${heads} heads of A`);
  }
  const convDim = inner + 2 * states;
  check("projection ([z | xBC | dt] rows)", projection, [
    projection.shape[0],
    inner + convDim + heads,
  ]);
  check("convWeight", weights.convWeight, [convDim, width]);
  check("convBias", weights.convBias, [convDim]);
  for (const [what, t] of [["dtBias", weights.dtBias], ["D", weights.D]] as const) {
    check(what, t, [heads]);
  }
  check("window", pools.window, [slots, width - 1, convDim]);
  check("closed", pools.closed, [slots, states, inner]);
  check("perHead", pools.perHead, [slots, 2 * width - 1, heads]);
  check("oldest", pools.oldest, [slots, 2 * inner + states]);
  const floats = (width + 1) * convDim + (width + 1) * heads + inner + states + width;
  if (4 * floats > runtime().info.maxWorkgroupBytes) {
    throw new RangeError(
      `${OP}: a stream's convolutions and weights (${4 * floats} bytes) exceed the device's ` +
        `${runtime().info.maxWorkgroupBytes} bytes of workgroup memory; use fewer channels`,
    );
  }
  return { inner, heads, states, width };
}

/**
 * One event per stream of a one-layer Bi-SSD read at the newest token (see the module's text):
 * from the input projection of each stream's new token, the forward direction's y there, the
 * backward direction's y at the oldest token and its gate, each stream's pools advanced.
 * @param projection `[streams, 2·d_inner + 2N + H]`: the new tokens' `[z | xBC | dt]` rows
 * @param weights the block's weights
 * @param pools the streams' state, updated in place
 * @param slots i32 `[streams]`: each stream's row of the pools, distinct and in range
 * @param counts i32 `[streams]`: each stream's events before this one (the new token's index)
 */
export function biSsdStep(
  projection: Tensor,
  weights: BiSsdStepWeights,
  pools: BiSsdStepPools,
  slots: Tensor,
  counts: Tensor,
): BiSsdStepOutputs {
  const sizes = sizesOf(projection, weights, pools);
  const streams = projection.shape[0];
  if (streams === 0) throw new RangeError(`${OP}: no streams; give at least one slot`);
  check("slots", slots, [streams], "i32");
  check("counts", counts, [streams], "i32");
  const out = () => Tensor.empty([streams, sizes.inner], "f32", OP);
  const yForward = out(), yBackward = out(), zBackward = out();
  const groups = foldWorkgroups(streams);
  const { convWeight, convBias, dtBias, A, D } = weights;
  launch(
    OP,
    BI_SSD_STEP_WGSL(sizes),
    packParams([streams, groups[0]]),
    [
      projection,
      slots,
      counts,
      convWeight,
      convBias,
      dtBias,
      A,
      D,
      pools.window,
      pools.state,
      pools.closed,
      pools.perHead,
      pools.oldest,
      yForward,
      yBackward,
      zBackward,
    ],
    groups,
  );
  return { yForward, yBackward, zBackward };
}
