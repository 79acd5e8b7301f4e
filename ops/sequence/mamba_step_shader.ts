/**
 * The WGSL of the fused Mamba step ({@link mambaStepWgsl}), generated from its sizes and tuning;
 * `mamba_step.ts` launches it and documents what it computes.
 *
 * @module
 */
import { GRID_WGSL } from "../wgsl/grid.ts";
import { MATH_WGSL } from "../wgsl/math.ts";
import { shaderGenerator } from "../wgsl/cache.ts";
import { stagedProductWgsl } from "../wgsl/staged_product.ts";

/** Sizes and launch settings a `mambaStep` kernel is compiled for. */
export interface StepSizes {
  /** Channels (d_inner). */
  d: number;
  /** SSM states per channel. */
  n: number;
  /** Δ's rank. */
  r: number;
  /** Convolution width. */
  w: number;
  /** States loaded before they are updated (`MambaStepTuning.stateBatch`). */
  stateBatch: number;
  /** States of each invocation's row loaded first (`MambaStepTuning.prefetchStates`). */
  prefetch: number;
  /** Streams one workgroup takes (`MambaStepTuning.streamsPerWorkgroup`). */
  streams: number;
  /** Weights loaded before they are multiplied (`MambaStepTuning.weightLoads`). */
  weightLoads: number;
  /**
   * Width of the hidden rows the step projects itself (`mambaStepFromHidden`); 0 when it reads
   * the input projection's x and z made before (`mambaStep`).
   */
  inputWidth: number;
}

/**
 * Invocations per workgroup: the channels of its streams rounded up to whole subgroups, at most
 * 256.
 */
export function invocations(channels: number): number {
  return Math.min(256, Math.ceil(channels / 32) * 32);
}

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

/**
 * WGSL of one of the step's products for the workgroup's streams (`src` `[streams, k]` in
 * workgroup memory into `dst` `[streams, n]`): each invocation sums one column for every stream,
 * so each weight it reads serves them all.
 */
function productCode(
  sizes: StepSizes,
  src: string,
  weight: string,
  k: number,
  n: number,
  dst: string,
): string {
  return stagedProductWgsl({
    src,
    weight,
    k,
    n,
    rows: sizes.streams,
    threads: invocations(sizes.streams * sizes.d),
    spreadRows: false,
    loads: sizes.weightLoads,
    finish: (acc, c, g) => `${dst}[${g} * ${n}u + ${c}] = ${acc};`,
  });
}

/**
 * WGSL staging the workgroup's streams' hidden rows and multiplying them by the input
 * projection into `xzs` (`[streams, 2d]`: x, then z), in place of reading a product made before.
 */
function inProjectionCode(sizes: StepSizes): string {
  return `  for (var e = t; e < S * DM; e += T) {
    let u = u0 + e / DM;
    if (u < p.users) { hs[e] = hin[u * DM + e % DM]; }
  }
  workgroupBarrier();
${productCode(sizes, "hs", "in_proj_t", sizes.inputWidth, 2 * sizes.d, "xzs")}
  workgroupBarrier();
`;
}

/**
 * The step's WGSL for `sizes`, generated once per sizes. Bindings: 0 the parameters, 1 the
 * input (xz `[streams, 2d]`, or with `inputWidth` the hidden rows `[streams, inputWidth]`), 2 the
 * slots, 3–9 the weights (convolution weight and bias, `x_proj`ᵀ, `dt_proj` weight and bias, Aᵀ,
 * D), 10 the windows, 11 the states, 12 the output, 13 the input projection transposed
 * `[inputWidth, 2d]` (with `inputWidth` only).
 */
export const mambaStepWgsl: (sizes: StepSizes) => string = shaderGenerator(
  "mambaStep",
  (sizes: StepSizes) => {
    const { d, n, r, w, streams, inputWidth } = sizes;
    const fused = inputWidth > 0;
    // Where the stream's x and z are read: the product made before, or the one made here.
    const xAt = (u: string, e: string) =>
      fused ? `xzs[(${e} / D) * 2u * D + ${e} % D]` : `xz[${u} * 2u * D + ${e} % D]`;
    const zAt = (u: string, e: string) =>
      fused ? `xzs[(${e} / D) * 2u * D + D + ${e} % D]` : `xz[${u} * 2u * D + D + ${e} % D]`;
    return /* wgsl */ `
struct P { users: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ${fused ? "hin" : "xz"}: array<f32>;
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
${fused ? "@group(0) @binding(13) var<storage, read> in_proj_t: array<f32>;" : ""}
const D: u32 = ${d}u;
const N: u32 = ${n}u;
const R: u32 = ${r}u;
const W: u32 = ${w}u;
const J: u32 = R + 2u * N;
const S: u32 = ${streams}u;
const T: u32 = ${invocations(streams * d)}u;
${fused ? `const DM: u32 = ${inputWidth}u;` : ""}
var<workgroup> xs: array<f32, ${streams * d}>;
var<workgroup> proj: array<f32, ${streams * (r + 2 * n)}>;
${
      fused
        ? `var<workgroup> hs: array<f32, ${streams * inputWidth}>;
var<workgroup> xzs: array<f32, ${streams * 2 * d}>;`
        : ""
    }
${MATH_WGSL}
${GRID_WGSL}
@compute @workgroup_size(T)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  // Streams u0 … u0 + S − 1; a workgroup's streams past the last leave xs at zero.
  let u0 = grid_index(wid, p.gx) * S;
  if (u0 >= p.users) { return; }
${sizes.prefetch > 0 ? statePrefetch(sizes.prefetch) + "\n" : ""}${
      fused ? inProjectionCode(sizes) : ""
    }  // The convolution, taps oldest first and the new input last, then SiLU; the window drops its
  // oldest input and appends the new one.
  for (var e = t; e < S * D; e += T) {
    let u = u0 + e / D;
    if (u >= p.users) { break; }
    let c = e % D;
    let base = u32(slot[u]) * (W - 1u) * D + c;
    var acc = conv_b[c];
    for (var k = 0u; k < W - 1u; k++) { acc += conv_w[c * W + k] * conv_window[base + k * D]; }
    let xi = ${xAt("u", "e")};
    acc += conv_w[c * W + W - 1u] * xi;
    xs[e] = silu_(acc);
    for (var k = 0u; k + 2u < W; k++) {
      conv_window[base + k * D] = conv_window[base + (k + 1u) * D];
    }
    conv_window[base + (W - 2u) * D] = xi;
  }
  workgroupBarrier();
  // x_proj over each stream's whole x: Δ's low-rank part, then B, then C.
${productCode(sizes, "xs", "x_proj_t", d, r + 2 * n, "proj")}
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
    out[u * D + c] = acc * silu_(${zAt("u", "e")});
  }
}`;
  },
);
