/**
 * One step of the Mamba block's recurrent core for a batch of independent streams, in one kernel
 * ({@link mambaStep}): from the input projection's x and z halves of one new token per stream,
 * the depthwise causal convolution with SiLU over the stream's window, `x_proj` (Δ's low-rank
 * part, B and C), `dt_proj` with softplus, the selective state update, `C·h + D·x` and the
 * SiLU(z) gate. Each stream keeps its window `[w − 1, d]` and its SSM state in a row ("slot")
 * of two pools, updated in place.
 *
 * One workgroup takes one stream, or a few (`MambaStepTuning.streamsPerWorkgroup`), which then
 * share every weight it reads. Its invocations run over the channels, so every pool access
 * is coalesced: the window is `[slot, w − 1, d]` and the state is kept state-major,
 * `[slot, n, d]` (channel c of state entry k at `k·d + c`), with A transposed alike (`[n, d]`);
 * `x_proj`'s three weights are packed transposed into one `[d, r + 2n]` matrix so that the
 * invocations computing its outputs read it coalesced too. The convolved x and the projections
 * stay in workgroup memory. The two projections sum their products in order with fused
 * multiply-adds, as `matmul` does without a split reduction, and the convolution and the state
 * update are those of `causalConv1dStep` and `selectiveScanStep` (`selective_step.ts`): the step
 * gives the results of those kernels and products, bit for bit. {@link writeTransposedRows} (`transposed_rows.ts`) lays weights and
 * states out so.
 *
 * Slots of one call must be distinct (the caller splits repeated ones over calls). Inference
 * only: nothing is recorded on the tape. `mambaStepReference` (`mamba_step_reference.ts`) does the
 * same in float64 on the host, in the model's own layouts.
 *
 * @module
 */
import { assertShape, launch, packParams } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL } from "../wgsl/grid.ts";
import { MATH_WGSL } from "../wgsl/math.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

/** Sizes and launch settings a {@link mambaStep} kernel is compiled for. */
interface StepSizes {
  /** Channels (d_inner). */
  d: number;
  /** SSM states per channel. */
  n: number;
  /** Δ's rank. */
  r: number;
  /** Convolution width. */
  w: number;
  /** States loaded before they are updated ({@link MambaStepTuning.stateBatch}). */
  stateBatch: number;
  /** States of each invocation's row loaded first ({@link MambaStepTuning.prefetchStates}). */
  prefetch: number;
  /** Streams one workgroup takes ({@link MambaStepTuning.streamsPerWorkgroup}). */
  streams: number;
}

/**
 * How {@link mambaStep} waits for memory; no setting changes a bit of its results (each state is
 * updated, and its `C·h` term added, in the same order).
 */
export interface MambaStepTuning {
  /**
   * States an invocation loads before it updates them, from 1 to n (default
   * {@link MAMBA_STEP_STATE_BATCH}): that many loads of its state are in flight at once.
   */
  readonly stateBatch?: number;
  /**
   * States of each invocation's row, from 0 to n, loaded when the kernel starts (the first ones),
   * so that those loads overlap the convolution and `x_proj` instead of following them; the rest
   * follow in batches of `stateBatch` (default 0). Each one held costs a register through
   * `x_proj`. Only when one invocation takes one channel: streams per workgroup × d_inner ≤ 256.
   */
  readonly prefetchStates?: number;
  /**
   * Streams one workgroup takes, from 1 to {@link MAMBA_STEP_MAX_STREAMS} (default 1): each
   * `x_proj` weight a workgroup reads then serves that many streams, whose sums run side by
   * side instead of one long chain.
   */
  readonly streamsPerWorkgroup?: number;
}

/** The most streams one {@link mambaStep} workgroup may take. */
export const MAMBA_STEP_MAX_STREAMS = 8;

/**
 * Invocations per workgroup: the channels of its streams rounded up to whole subgroups, at most
 * 256.
 */
const invocations = (channels: number) => Math.min(256, Math.ceil(channels / 32) * 32);

/**
 * States an invocation reads before it updates them, by default: that many loads of its state
 * are in flight at once, which a memory-bound step needs to approach the memory's bandwidth.
 */
export const MAMBA_STEP_STATE_BATCH = 8;

/**
 * WGSL updating `count` states from `k0` on (`k0` a WGSL expression): each state's new value
 * from its old one, `value(i)`, stored, and its `C·h` term added to `acc`, in order.
 */
function stateUpdates(k0: string, count: number, value: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => [
    `    let g_${i} = exp(dt * a_t[(${k0} + ${i}u) * D + c]) * ${
      value(i)
    } + du * proj[pb + R + ${k0} + ${i}u];`,
    `    state[h0 + (${k0} + ${i}u) * D] = g_${i};`,
    `    acc += proj[pb + R + N + ${k0} + ${i}u] * g_${i};`,
  ]).flat().join("\n");
}

/** WGSL updating `count` states from the variable `k0` on: every load first, then the updates. */
function stateBatch(count: number): string {
  const loads = Array.from(
    { length: count },
    (_, i) => `    let h_${i} = state[h0 + (k0 + ${i}u) * D];`,
  );
  return [...loads, stateUpdates("k0", count, (i) => `h_${i}`)].join("\n");
}

/**
 * WGSL loading the first `count` states of the invocation's row into `hp_0 …` when the kernel
 * starts: invocation t takes channel t mod d of the workgroup's stream ⌊t / d⌋.
 */
function statePrefetch(count: number): string {
  const ks = Array.from({ length: count }, (_, i) => i);
  return [
    ...ks.map((i) => `  var hp_${i} = 0.0;`),
    "  if (t < S * D && u0 + t / D < p.users) {",
    "    let hp0 = u32(slot[u0 + t / D]) * N * D + t % D;",
    ...ks.map((i) => `    hp_${i} = state[hp0 + ${i}u * D];`),
    "  }",
  ].join("\n");
}

/**
 * The state phase, states in order: the prefetched ones from their registers, the rest in
 * batches of `stateBatch` loads.
 */
function stateCode({ n, stateBatch: batch, prefetch }: StepSizes): string {
  // The held states' updates in a block of their own: the last batch reuses their names.
  const held = prefetch > 0
    ? `    {\n${stateUpdates("0u", prefetch, (i) => `hp_${i}`)}\n    }\n`
    : "";
  const rest = n - prefetch;
  if (rest === 0) return held;
  return `${held}    var k0 = ${prefetch}u;
    for (; k0 + ${batch}u <= N; k0 += ${batch}u) {
${stateBatch(batch)}
    }
${stateBatch(rest % batch)}`;
}

/** Weights of `x_proj` an invocation loads before it multiplies them ({@link xProjCode}). */
const X_PROJ_LOADS = 8;

/**
 * WGSL of `x_proj` for the workgroup's streams: invocation j < J sums column j for each of them,
 * every weight read once and used by all, each sum in channel order.
 */
function xProjCode(streams: number): string {
  const each = (f: (i: number) => string) =>
    Array.from({ length: streams }, (_, i) => f(i)).join("\n");
  const us = Array.from({ length: X_PROJ_LOADS }, (_, u) => u);
  const products = (w: string, c: string) =>
    each((i) => `      acc_${i} = fma(xs[${i}u * D + ${c}], ${w}, acc_${i});`);
  return `  for (var j = t; j < J; j += T) {
${each((i) => `    var acc_${i} = 0.0;`)}
    var c = 0u;
    for (; c + ${X_PROJ_LOADS}u <= D; c += ${X_PROJ_LOADS}u) {
${us.map((u) => `      let w${u} = x_proj_t[(c + ${u}u) * J + j];`).join("\n")}
${us.map((u) => products(`w${u}`, `c + ${u}u`)).join("\n")}
    }
    for (; c < D; c++) {
      let wj = x_proj_t[c * J + j];
${products("wj", "c")}
    }
${each((i) => `    proj[${i}u * J + j] = acc_${i};`)}
  }`;
}

const MAMBA_STEP_WGSL = shaderGenerator("mambaStep", (sizes: StepSizes) => {
  const { d, n, r, w, streams } = sizes;
  return /* wgsl */ `
struct P { users: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xz: array<f32>;
@group(0) @binding(2) var<storage, read> slot: array<i32>;
@group(0) @binding(3) var<storage, read> conv_w: array<f32>;
@group(0) @binding(4) var<storage, read> conv_b: array<f32>;
@group(0) @binding(5) var<storage, read> x_proj_t: array<f32>;
@group(0) @binding(6) var<storage, read> dt_w: array<f32>;
@group(0) @binding(7) var<storage, read> dt_b: array<f32>;
@group(0) @binding(8) var<storage, read> a_t: array<f32>;
@group(0) @binding(9) var<storage, read> d_skip: array<f32>;
@group(0) @binding(10) var<storage, read_write> conv_window: array<f32>;
@group(0) @binding(11) var<storage, read_write> state: array<f32>;
@group(0) @binding(12) var<storage, read_write> out: array<f32>;
const D: u32 = ${d}u;
const N: u32 = ${n}u;
const R: u32 = ${r}u;
const W: u32 = ${w}u;
const J: u32 = R + 2u * N;
const S: u32 = ${streams}u;
const T: u32 = ${invocations(streams * d)}u;
var<workgroup> xs: array<f32, ${streams * d}>;
var<workgroup> proj: array<f32, ${streams * (r + 2 * n)}>;
${MATH_WGSL}
${GRID_WGSL}
@compute @workgroup_size(T)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  // Streams u0 … u0 + S − 1; a workgroup's streams past the last leave xs at zero.
  let u0 = grid_index(wid, p.gx) * S;
  if (u0 >= p.users) { return; }
${
    sizes.prefetch > 0
      ? statePrefetch(sizes.prefetch) + "\n"
      : ""
  }  // The convolution, taps oldest first and the new input last, then SiLU; the window drops its
  // oldest input and appends the new one.
  for (var e = t; e < S * D; e += T) {
    let u = u0 + e / D;
    if (u >= p.users) { break; }
    let c = e % D;
    let base = u32(slot[u]) * (W - 1u) * D + c;
    var acc = conv_b[c];
    for (var k = 0u; k < W - 1u; k++) { acc += conv_w[c * W + k] * conv_window[base + k * D]; }
    let xi = xz[u * 2u * D + c];
    acc += conv_w[c * W + W - 1u] * xi;
    xs[e] = silu_(acc);
    for (var k = 0u; k + 2u < W; k++) {
      conv_window[base + k * D] = conv_window[base + (k + 1u) * D];
    }
    conv_window[base + (W - 2u) * D] = xi;
  }
  workgroupBarrier();
  // x_proj over each stream's whole x: Δ's low-rank part, then B, then C.
${xProjCode(streams)}
  workgroupBarrier();
  // dt_proj and softplus, the state update, C·h, the D skip and the SiLU(z) gate.
  for (var e = t; e < S * D; e += T) {
    let u = u0 + e / D;
    if (u >= p.users) { break; }
    let c = e % D;
    let pb = (e / D) * J;
    var delta = 0.0;
    for (var q = 0u; q < R; q++) { delta = fma(proj[pb + q], dt_w[c * R + q], delta); }
    let dt = softplus_(delta + dt_b[c]);
    let x = xs[e];
    let du = dt * x;
    var acc = d_skip[c] * x;
    let h0 = u32(slot[u]) * N * D + c;
${stateCode(sizes)}
    out[u * D + c] = acc * silu_(xz[u * 2u * D + D + c]);
  }
}`;
});

/**
 * `tuning` with its defaults filled in, or a RangeError naming the setting, for a step of
 * `d` channels (d_inner) and `n` states.
 */
export function checkMambaStepTuning(
  tuning: MambaStepTuning,
  d: number,
  n: number,
): { stateBatch: number; prefetch: number; streams: number } {
  const stateBatch = tuning.stateBatch ?? MAMBA_STEP_STATE_BATCH;
  if (
    tuning.stateBatch !== undefined &&
    !(Number.isInteger(stateBatch) && stateBatch >= 1 && stateBatch <= n)
  ) {
    throw new RangeError(
      `mambaStep: tuning.stateBatch must be an integer from 1 to n (${n}), got ${stateBatch}`,
    );
  }
  const streams = tuning.streamsPerWorkgroup ?? 1;
  if (!(Number.isInteger(streams) && streams >= 1 && streams <= MAMBA_STEP_MAX_STREAMS)) {
    throw new RangeError(
      `mambaStep: tuning.streamsPerWorkgroup must be an integer from 1 to ` +
        `${MAMBA_STEP_MAX_STREAMS}, got ${streams}`,
    );
  }
  const prefetch = tuning.prefetchStates ?? 0;
  if (
    !(Number.isInteger(prefetch) && prefetch >= 0 && prefetch <= n) ||
    (prefetch > 0 && invocations(streams * d) < streams * d)
  ) {
    throw new RangeError(
      `mambaStep: tuning.prefetchStates must be an integer from 0 to n (${n}), and above 0 ` +
        `only with streams per workgroup × d_inner ≤ 256 (one channel per invocation), got ` +
        `${prefetch} with ${streams} × d_inner ${d}`,
    );
  }
  return { stateBatch, prefetch, streams };
}

/** The step's weights, in the layouts {@link mambaStep} reads. */
export interface MambaStepWeights {
  /** Depthwise convolution weight `[d, w]`, w 2, 3 or 4. */
  readonly convWeight: Tensor;
  /** Convolution bias `[d]`. */
  readonly convBias: Tensor;
  /**
   * `x_proj`'s weights transposed and side by side, `[d, r + 2n]`: columns `[0, r)` give Δ's
   * low-rank part, `[r, r + n)` B and `[r + n, r + 2n)` C.
   */
  readonly xProjT: Tensor;
  /** `dt_proj`'s weight `[d, r]`. */
  readonly dtWeight: Tensor;
  /** `dt_proj`'s bias `[d]`, added before the softplus. */
  readonly dtBias: Tensor;
  /** The state matrix A transposed, `[n, d]` (negative). */
  readonly aT: Tensor;
  /** The skip D `[d]`. */
  readonly D: Tensor;
}

/** The pools {@link mambaStep} updates in place, one row per slot. */
export interface MambaStepPools {
  /** Each stream's last `w − 1` convolution inputs, oldest first: `[slots, w − 1, d]`. */
  readonly window: Tensor;
  /** Each stream's SSM state, state-major: `[slots, n, d]`. */
  readonly state: Tensor;
}

const check = (what: string, t: Tensor, shape: readonly number[], dtype = "f32") =>
  assertShape("mambaStep", what, t, shape, dtype);

function sizesOf(
  xz: Tensor,
  weights: MambaStepWeights,
  pools: MambaStepPools,
  tuning: MambaStepTuning,
): StepSizes {
  const [n, d] = weights.aT.shape;
  const w = weights.convWeight.shape[1];
  const r = weights.dtWeight.shape[1];
  if (weights.aT.shape.length !== 2 || !(w >= 2 && w <= 4) || !(r >= 1)) {
    throw new RangeError(
      `mambaStep: aT must be [n, d], convWeight [d, 2..4] and dtWeight [d, r ≥ 1], got ` +
        `${weights.aT.describe()}, ${weights.convWeight.describe()} and ` +
        `${weights.dtWeight.describe()}`,
    );
  }
  check("xz (the x and z halves of the input projection)", xz, [xz.shape[0], 2 * d]);
  check("convWeight", weights.convWeight, [d, w]);
  check("convBias", weights.convBias, [d]);
  check("xProjT", weights.xProjT, [d, r + 2 * n]);
  check("dtWeight", weights.dtWeight, [d, r]);
  check("dtBias", weights.dtBias, [d]);
  check("D", weights.D, [d]);
  check("window", pools.window, [pools.window.shape[0], w - 1, d]);
  check("state", pools.state, [pools.window.shape[0], n, d]);
  const tuned = checkMambaStepTuning(tuning, d, n);
  const bytes = 4 * tuned.streams * (d + r + 2 * n);
  if (bytes > runtime().info.maxWorkgroupBytes) {
    throw new RangeError(
      `mambaStep: ${tuned.streams} stream(s)' x and projections (d ${d} + r ${r} + 2·n ${n} ` +
        `floats each, ${bytes} bytes) exceed the device's ` +
        `${runtime().info.maxWorkgroupBytes} bytes of workgroup memory; take fewer streams per ` +
        "workgroup, or run the block unfused (causalConv1dStep, the products, selectiveScanStep)",
    );
  }
  return { d, n, r, w, ...tuned };
}

/**
 * One step of the Mamba block's core per stream: with `xz[s] = [x | z]` (the input projection
 * of the stream's new token), `u = SiLU(conv(window[slot], x))`, `[δ | B | C] = u · x_projᵀ`,
 * `Δ = softplus(dt_proj.weight · δ + dt_proj.bias)`, `h ← exp(Δ·A) ⊙ h + Δ·B·u` on the stream's
 * state, and `y = (C·h + D·u) · SiLU(z)`; the window shifts in x. A fresh slot (zeros) is a
 * stream before its first event.
 * @param xz `[streams, 2d]`: the input projection's x (columns `[0, d)`) and z (`[d, 2d)`)
 * @param weights the step's weights
 * @param pools the windows and states, updated in place
 * @param slots i32 `[streams]`: each stream's row of the pools, distinct and in range
 * @param tuning how the kernel waits for memory (the results are the same whatever it says)
 * @returns y `[streams, d]`, the output projection's input
 */
export function mambaStep(
  xz: Tensor,
  weights: MambaStepWeights,
  pools: MambaStepPools,
  slots: Tensor,
  tuning: MambaStepTuning = {},
): Tensor {
  const sizes = sizesOf(xz, weights, pools, tuning);
  const streams = xz.shape[0];
  check("slots", slots, [streams], "i32");
  if (streams === 0) {
    throw new RangeError("mambaStep: no streams; give at least one slot");
  }
  const out = Tensor.empty([streams, sizes.d], "f32", "mambaStep");
  const groups = foldWorkgroups(Math.ceil(streams / sizes.streams));
  const { convWeight, convBias, xProjT, dtWeight, dtBias, aT, D } = weights;
  launch(
    "mambaStep",
    MAMBA_STEP_WGSL(sizes),
    packParams([streams, groups[0]]),
    [
      xz,
      slots,
      convWeight,
      convBias,
      xProjT,
      dtWeight,
      dtBias,
      aT,
      D,
      pools.window,
      pools.state,
      out,
    ],
    groups,
  );
  return out;
}
