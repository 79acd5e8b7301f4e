/**
 * The selective scan of Mamba (mamba_ssm `selective_scan_fn` semantics), forward and backward.
 *
 * Per batch row b and channel c, with Δ_t = softplus(delta[b,c,t] + deltaBias[c]) (softplus
 * optional):
 *
 *     h_t[s] = exp(Δ_t·A[c,s])·h_{t−1}[s] + Δ_t·B[b,s,t]·u[b,c,t]        (h_{−1} = 0)
 *     y_t    = Σ_s C[b,s,t]·h_t[s] + D[c]·u[b,c,t],    out = y · SiLU(z)  (z optional)
 *
 * Three kernels, each with its sums in registers rather than in workgroup memory:
 *
 * - Forward (channel-major). One invocation owns a (batch, channel) recurrence with up to 32
 *   states in registers (more states: several invocations per channel), so y_t = Σ_s C·h is a
 *   register sum and the steps need no barrier. Per block of steps the workgroup stages (B, C) of
 *   its batch row, shared by all its channels, and (Δ, Δ·u, D·u, SiLU(z)) of its channels, then
 *   writes the outputs coalesced. It saves the state entering every interval of TS steps
 *   (checkpoints: b·d·n·l/TS floats, not the b·d·n·l history) and, with z, y before the gate.
 * - Adjoint (channel-major, the same shape run backwards in time): λ_t = C_t·gy_t +
 *   exp(Δ_{t+1}·A)·λ_{t+1} with gy = ∂L/∂y, in registers; it needs no states. It gives du =
 *   Δ·Σ_s λB + D·gy, the part u·Σ_s λB of dΔ, dz, dD, and λ at every interval end.
 * - States (state-major). One invocation owns a (batch, interval, state) and loops over the
 *   channels: it re-runs the interval from the checkpoint and walks it back from the saved λ, its
 *   own per-step values (B, C, h, exp(ΔA)) in registers, and sums over channels in registers:
 *   dB_t = Σ_c λ·Δu, dC_t = Σ_c gy·h_t, and dA. The remaining part of dΔ, Σ_s λ·A·exp(ΔA)·h_{t−1},
 *   is the one sum over states done in workgroup memory: all invocations sum slices of it, and
 *   the slices are added one channel later, so a channel costs one barrier.
 *
 * Long sequences: where batch × channels cannot fill the GPU, the channel-major kernels split the
 * length into segments scanned in parallel: a local pass gives each segment's end state from zero
 * and its decay Π exp(Δ·A), a short pass carries the true states across segments (the recurrence
 * is linear), and the main pass starts every segment from its true state. Parameter gradients are
 * per-row partial sums reduced by `sumLeading`. No atomics: every result is deterministic.
 *
 * Floor on an H200 at batch 2048, d 128, l 200, n 32: b·d·l·n = 1.68e9 state steps. Forward: one
 * exp each (≈ 4e12 exp/s on the special-function units → 0.4 ms) and ≈ 1 GB of u, Δ, z and out
 * traffic (0.25 ms at 4 TB/s), plus checkpoints (b·d·n·l/TS·4 B = 0.44 GB at TS 16). Backward:
 * two exps per state step (adjoint, re-run; the walk back reuses the re-run's: 0.8 ms), ≈ 3.5 GB
 * of traffic (0.8 ms). The state kernel alone: one exp (0.4 ms), ≈ 12 FMAs (0.6 ms at 33e12
 * FMA/s) and ≈ 3 workgroup-memory words (0.6 ms at 32 words/clock/SM) per state step, ≈ 1 ms.
 *
 * Measured on the H200 (`deno run -A bench/selective_scan.ts --variants`, bld, D, z, deltaBias,
 * softplus), b 2048 × l 200: forward 1.8–2.3 ms with 4 staged steps (3.1 ms with 8; mamba_ssm
 * 5.7 ms). Forward + backward with 16-step intervals: 34.0 ms before the state kernel kept its
 * per-step values in registers and split the dΔ state sum over all invocations; after,
 * 24.0 ms with 4 intervals per state workgroup, 15.9 ms with 2 (16.9 ms with 8-step intervals,
 * 23.2 ms with 8 × 8; mamba_ssm 23.6 ms). At b 256 × l 2,000: 28.8 ms with 4 intervals per
 * workgroup (24.0 ms with 8-step intervals; mamba_ssm 24.1 ms), 2 not yet measured. The state
 * kernel, by difference about 10 ms, is still far above its ≈ 1 ms floor.
 *
 * @module
 */
import { gradEnabled, record } from "../../core/autograd.ts";
import { assertDType, launch, packParams } from "../../core/launch.ts";
import { sumLeading } from "../../pointwise/reduce.ts";
import { runtime } from "../../core/runtime.ts";
import { Tensor } from "../../core/tensor.ts";

const OP = "selectiveScan";
/** Largest state size supported. */
export const SELECTIVE_SCAN_MAX_STATES = 256;
/** Most states one channel-major invocation keeps in registers. */
const MAX_STATES_PER_THREAD = 32;
/** Invocations wanted in flight on a discrete GPU before the length is split into segments. */
const TARGET_THREADS = 32768;

/** Options of {@link selectiveScan}. */
export interface SelectiveScanOptions {
  /** Skip connection D, shape (d): adds D[c]·u[b,c,t] to y. */
  D?: Tensor;
  /** Gate z, shaped like u: the output is y·SiLU(z). */
  z?: Tensor;
  /** Added to delta before the softplus, shape (d). */
  deltaBias?: Tensor;
  /** Apply softplus (PyTorch's, threshold 20) to delta + deltaBias. Default false. */
  deltaSoftplus?: boolean;
  /**
   * `"bdl"` (default): u, delta, z and the output are (batch, d, length), B and C are
   * (batch, n, length). `"bld"`: all of them are (batch, length, ·), channels-last, as linear
   * projections produce them.
   */
  layout?: "bdl" | "bld";
  /** Work-splitting overrides, for benchmarks and tests; the defaults suit the device. */
  tuning?: SelectiveScanTuning;
}

/** Work-splitting overrides of {@link selectiveScan}. */
export interface SelectiveScanTuning {
  /** Length segments scanned in parallel by the channel-major kernels (1: one pass). */
  segments?: number;
  /** Steps per interval, the checkpoint spacing: 1, 2, 4, …, 64 (default 16 where it fits). */
  interval?: number;
  /** Invocations per workgroup of the channel-major kernels (default 64). */
  channelThreads?: number;
  /** Steps staged at a time by the channel-major kernels: 1, 2, 4, …, 32 (default 4). */
  channelSteps?: number;
  /** Intervals per workgroup of the state-major kernel (default: up to 64 invocations). */
  stateRows?: number;
  /** Channels staged at a time by the state-major kernel (default 8). */
  stateChunk?: number;
}

/** Sizes and compile-time switches of one scan. */
interface ScanSpec {
  batch: number;
  channels: number;
  length: number;
  states: number;
  hasD: boolean;
  hasZ: boolean;
  hasBias: boolean;
  softplus: boolean;
  channelsLast: boolean;
}

/** Workgroup of the channel-major kernels: one invocation per (channel, ≤ 32 states). */
interface ChannelShape {
  /** Invocations per channel: ceil(n / 32). */
  tpc: number;
  /** States per invocation, in registers. */
  spt: number;
  /** Channels per workgroup. */
  cpg: number;
  /** Invocations per workgroup: cpg × tpc. */
  threads: number;
  /** Steps staged at a time (divides the interval). */
  steps: number;
  /** Channel blocks: ceil(d / cpg). */
  cblocks: number;
}

/** Workgroup of the state-major kernel: one invocation per (interval, state). */
interface StateShape {
  /** Intervals per workgroup. */
  rows: number;
  /** Invocations per workgroup: rows × n. */
  threads: number;
  /** Channels staged at a time. */
  chunk: number;
}

/** Workgroup shapes and time blocking, fixed per (n, d, l, device). */
interface ScanPlan {
  /** Steps per interval: the checkpoint spacing. */
  ts: number;
  /** Intervals covering the length. */
  intervals: number;
  /** Channel-major kernels. */
  ch: ChannelShape;
  /** State-major kernel. */
  st: StateShape;
}

const odd = (v: number) => (v % 2 === 0 ? v + 1 : v);

/** Workgroup-memory words of a channel-major kernel. */
function channelWords(c: Omit<ChannelShape, "steps" | "cblocks">, steps: number): number {
  return steps * (2 * c.tpc * c.spt + 4 * c.cpg + c.cpg * c.tpc);
}

/** Slices the state-major kernel splits each step's sum over the n states into. */
function stateParts(n: number, ts: number): number {
  return Math.max(1, Math.floor(n / ts));
}

/** Workgroup-memory words of the state-major kernel. */
function stateWords(n: number, ts: number, rows: number, chunk: number): number {
  const span = rows * ts;
  return span * (5 * chunk + 2 * odd(n) + 2 * stateParts(n, ts)) + 4 * rows * n;
}

function planScan(
  channels: number,
  states: number,
  length: number,
  tuning: SelectiveScanTuning,
): ScanPlan {
  const info = runtime().info;
  const budget = Math.floor(info.maxWorkgroupBytes / 4);
  const tpc = Math.ceil(states / MAX_STATES_PER_THREAD);
  const spt = Math.ceil(states / tpc);
  const cpg = Math.max(1, Math.min(channels, Math.floor((tuning.channelThreads ?? 64) / tpc)));
  const chBase = { tpc, spt, cpg, threads: cpg * tpc };
  if (chBase.threads > info.maxInvocations) {
    throw new RangeError(
      `${OP}: tuning.channelThreads gives ${chBase.threads} invocations per workgroup, more than ` +
        `this device's ${info.maxInvocations}`,
    );
  }
  // 16-step intervals: measured on the H200 (b 2048, l 200), the state kernel at 32 steps (64
  // register accumulators per invocation) took 1.4× as long.
  for (const ts of tuning.interval ? [tuning.interval] : [16, 8, 4, 2, 1]) {
    const steps = [tuning.channelSteps ?? 4, 2, 1].find((v) =>
      v <= ts && ts % v === 0 && channelWords(chBase, v) <= budget
    );
    // 64 invocations per state-kernel workgroup: measured on the H200 (b 2048, l 200, n 32), 2 rows
    // took 15.9 ms forward + backward against 24.0 ms with 4 rows and 23.2 ms with 8 (8-step
    // intervals).
    const rowsWanted = tuning.stateRows ?? Math.max(1, Math.floor(64 / states));
    let st: StateShape | undefined;
    for (let rows = rowsWanted; rows >= 1 && !st; rows = tuning.stateRows ? 0 : rows >> 1) {
      const chunk = [tuning.stateChunk ?? 8, 4, 2, 1].find((c) =>
        stateWords(states, ts, rows, c) <= budget
      );
      if (chunk && rows * states <= info.maxInvocations) {
        st = { rows, threads: rows * states, chunk };
      }
    }
    if (steps && st) {
      return {
        ts,
        intervals: Math.ceil(length / ts),
        ch: { ...chBase, steps, cblocks: Math.ceil(channels / cpg) },
        st,
      };
    }
  }
  throw new RangeError(
    `${OP}: n = ${states} states do not fit this device's workgroup memory ` +
      `(${info.maxWorkgroupBytes} bytes; tuning ${JSON.stringify(tuning)})`,
  );
}

/** Segments and intervals per segment for a pass that already has `threads` per segment. */
function segmentsFor(plan: ScanPlan, threads: number, wanted?: number) {
  const auto = runtime().info.isCpu ? 1 : Math.ceil(TARGET_THREADS / threads);
  const k = Math.max(1, Math.min(plan.intervals, Math.floor(wanted ?? auto)));
  const ips = Math.ceil(plan.intervals / k);
  return { segs: Math.ceil(plan.intervals / ips), ips };
}

/** A 2-D workgroup grid of `total` groups; the shader folds it back with `gx`. */
function fold(total: number): { groups: [number, number]; gx: number } {
  const gy = Math.ceil(total / 65535);
  const gx = Math.ceil(total / gy);
  return { groups: [gx, gy], gx };
}

// ---------------------------------------------------------------------------------------------
// WGSL

/** Σ_{i<10} q2^i / (2i + 1) in Horner form with literal coefficients. */
const ATANH_SERIES = Array.from({ length: 10 }, (_, i) => (1 / (2 * i + 1)).toPrecision(9))
  .reduceRight((inner, coef) => (inner ? `${coef} + q2 * (${inner})` : coef), "");

/** Fields of the parameter block, all u32, in order. */
const FIELDS = [
  "batch",
  "channels",
  "length",
  "segs",
  "seg_count",
  "seg_offset",
  "ips",
  "intervals",
  "cblocks",
  "gx",
  "ds_b",
  "ds_c",
  "ds_t",
  "ns_b",
  "ns_c",
  "ns_t",
] as const;
type Params = Record<(typeof FIELDS)[number], number>;

function params(spec: ScanSpec, plan: ScanPlan, p: Partial<Params>): Uint32Array {
  const { batch, channels: d, length: l, states: n, channelsLast } = spec;
  const full: Params = {
    batch,
    channels: d,
    length: l,
    segs: 1,
    seg_count: 1,
    seg_offset: 0,
    ips: plan.intervals,
    intervals: plan.intervals,
    cblocks: plan.ch.cblocks,
    gx: 1,
    ds_b: d * l,
    ds_c: channelsLast ? 1 : l,
    ds_t: channelsLast ? d : 1,
    ns_b: n * l,
    ns_c: channelsLast ? 1 : l,
    ns_t: channelsLast ? n : 1,
    ...p,
  };
  return packParams(FIELDS.map((f) => full[f]));
}

type Binding = [access: "read" | "read_write", name: string];

function bind(list: Binding[]): string {
  return list.map(([access, name], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<f32>;`
  ).join("\n");
}

/** Declarations every scan kernel shares. */
function prelude(spec: ScanSpec, plan: ScanPlan): string {
  return /* wgsl */ `
struct P { ${FIELDS.map((f) => `${f}: u32`).join(", ")} }
@group(0) @binding(0) var<uniform> p: P;
const N: u32 = ${spec.states}u;
const TS: u32 = ${plan.ts}u;
const LOG2E: f32 = 1.4426950408889634;
fn didx(b: u32, c: u32, t: u32) -> u32 { return b * p.ds_b + c * p.ds_c + t * p.ds_t; }
fn nidx(b: u32, s: u32, t: u32) -> u32 { return b * p.ns_b + s * p.ns_c + t * p.ns_t; }
// (b, m, c, s) of a per-interval state: checkpoints h entering interval m, λ leaving it.
fn ckidx(b: u32, m: u32, c: u32, s: u32) -> u32 { return ((b * p.intervals + m) * p.channels + c) * N + s; }
// Per-segment value (b, k, c, s).
fn segidx(b: u32, k: u32, c: u32, s: u32) -> u32 { return ((b * p.segs + k) * p.channels + c) * N + s; }
fn sigmoid_(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}
// log(1 + v) for 0 ≤ v ≤ 1 without the loss of a plain log near 1: 2·atanh(q), q = v / (2 + v),
// an odd series in q ≤ 1/3 summed to q¹⁹.
fn log1p_unit_(v: f32) -> f32 {
  let q = v / (2.0 + v);
  let q2 = q * q;
  return 2.0 * q * (${ATANH_SERIES});
}
fn softplus_(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  return max(v, 0.0) + log1p_unit_(exp(-abs(v)));
}
// Δ at (b, c, t) after the bias and the optional softplus, and the softplus' derivative there.
fn step_size(g: u32, c: u32) -> vec2<f32> {
  let raw = delta[g]${spec.hasBias ? " + delta_bias[c]" : ""};
  return ${spec.softplus ? "vec2<f32>(softplus_(raw), sigmoid_(raw))" : "vec2<f32>(raw, 1.0)"};
}
`;
}

/** What a channel-major kernel computes. */
type ChannelRole = "forward" | "forward-local" | "adjoint" | "adjoint-local";

/**
 * The channel-major kernels: one invocation per (batch, channel, group of ≤ 32 states), the
 * states (or adjoints) and exp2-scaled A in registers, the per-state code generated unrolled.
 * Per block of FS steps the workgroup stages (B, C) for its batch row and four values per
 * channel and step, runs the steps (forward in time for the forward, backward for the adjoint),
 * then writes the per-channel results coalesced.
 *
 * - forward: h_t = exp(ΔA)·h + Δu·B, y = Σ C·h; writes out = (y + Du)·SiLU(z), the checkpoints
 *   entering each interval (`save`) and, with z, y + Du before the gate.
 * - adjoint: λ = gy·C + κ, S = Σ λ·B, κ ← exp(ΔA)·λ; writes du = Δ·S + D·gy, the first part
 *   u·S of dΔ (before the softplus derivative), dz, κ at every interval end, and per-row dD and
 *   d deltaBias partial sums.
 * - the local roles scan each segment from zero and write its end value and decay only.
 */
function channelShader(spec: ScanSpec, plan: ScanPlan, role: ChannelRole, save = false): string {
  const { ch } = plan;
  const np = ch.tpc * ch.spt;
  const last = spec.channelsLast;
  const forward = role === "forward" || role === "forward-local";
  const local = role.endsWith("local");
  const { hasD, hasZ, hasBias } = spec;
  const list: Binding[] = [];
  if (forward) {
    list.push(["read", "u"], ["read", "delta"], ["read", "A"], ["read", "Bm"]);
    if (!local) list.push(["read", "Cm"]);
    if (!local && hasD) list.push(["read", "Dv"]);
    if (!local && hasZ) list.push(["read", "z"]);
  } else {
    list.push(["read", "gout"], ["read", "delta"]);
    if (!local) list.push(["read", "u"]);
    list.push(["read", "A"]);
    if (!local) list.push(["read", "Bm"]);
    list.push(["read", "Cm"]);
    if (!local && hasD) list.push(["read", "Dv"]);
    if (hasZ) list.push(["read", "z"]);
    if (!local && hasZ) list.push(["read", "ysave"]);
  }
  if (hasBias) list.push(["read", "delta_bias"]);
  if (local) list.push(["read_write", "seg_state"], ["read_write", "seg_decay"]);
  else if (forward) {
    list.push(["read_write", "out"], ["read_write", "ck"]);
    if (save && hasZ) list.push(["read_write", "ysave"]);
  } else {
    list.push(["read_write", "lam"], ["read_write", "du"], ["read_write", "ddelta"]);
    if (hasZ) list.push(["read_write", "dz"]);
    list.push(["read_write", "apart"]);
  }

  const J = Array.from({ length: ch.spt }, (_, j) => j);
  const own = (j: number) => `live && s0 + ${j}u < N`;
  // Where a segment's starting value comes from: the checkpoint entering its first interval
  // (forward), or the adjoint entering its last interval from the right (adjoint).
  const start = local
    ? ""
    : forward
    ? (j: number) => `if (seg > 0u) { x${j} = ck[ckidx(b, m0, c, s0 + ${j}u)]; }`
    : (j: number) => `if (seg + 1u < p.segs) { x${j} = lam[ckidx(b, m1 - 1u, c, s0 + ${j}u)]; }`;
  const init = J.map((j) =>
    `var x${j} = 0.0;
  var a${j} = 0.0;
  ${local ? `var q${j} = 1.0;` : ""}
  if (${own(j)}) {
    a${j} = A[c * N + s0 + ${j}u] * LOG2E;
    ${start ? start(j) : ""}
  }`
  ).join("\n  ");
  const stepForward = J.map((j) =>
    `{
          let bc = sBC[row + ${j}u];
          let da = exp2(ch.x * a${j});
          x${j} = da * x${j} + ch.y * bc.x;
          ${local ? `q${j} *= da;` : `y += bc.y * x${j};`}
        }`
  ).join("\n        ");
  const stepAdjoint = J.map((j) =>
    `{
          let bc = sBC[row + ${j}u];
          let da = exp2(ch.x * a${j});
          let lm = ch.z * bc.y + x${j};
          ${local ? `q${j} *= da;` : "y += lm * bc.x;"}
          x${j} = da * lm;
        }`
  ).join("\n        ");
  const writeState = (target: string, m: string) =>
    J.map((j) => `if (${own(j)}) { ${target}[ckidx(b, ${m}, c, s0 + ${j}u)] = x${j}; }`)
      .join("\n      ");
  const finishLocal = J.map((j) =>
    `if (${own(j)}) {
    seg_state[segidx(b, seg, c, s0 + ${j}u)] = x${j};
    seg_decay[segidx(b, seg, c, s0 + ${j}u)] = q${j};
  }`
  ).join("\n  ");

  // Per channel and step: forward (Δ, Δu, Du, SiLU(z)); adjoint (Δ, u, gy, softplus').
  const stageValue = forward
    ? `let uu = u[g];
        v = vec4<f32>(ds.x, ds.x * uu, ${!local && hasD ? "Dv[c2] * uu" : "0.0"}, ${
      !local && hasZ ? "z[g] * sigmoid_(z[g])" : "1.0"
    });`
    : `var gy = gout[g];
        ${
      hasZ
        ? `let zz = z[g];
        let sz = sigmoid_(zz);
        ${local ? "" : "dz[g] = gy * ysave[g] * sz * (1.0 + zz * (1.0 - sz));"}
        gy *= zz * sz;`
        : ""
    }
        v = vec4<f32>(ds.x, ${local ? "0.0" : "u[g]"}, gy, ds.y);`;

  const writeOut = forward
    ? `let yd = y + v.z;
          out[g] = yd * v.w;
          ${save && hasZ ? "ysave[g] = yd;" : ""}`
    : `du[g] = v.x * y${hasD ? " + Dv[c2] * v.z" : ""};
          ddelta[g] = v.y * y;`;

  return /* wgsl */ `
${bind(list)}
${prelude(spec, plan)}
const TPC: u32 = ${ch.tpc}u;
const SPT: u32 = ${ch.spt}u;
const NP: u32 = ${np}u;
const FS: u32 = ${ch.steps}u;
const CPG: u32 = ${ch.cpg}u;
const WG: u32 = ${ch.threads}u;
var<workgroup> sBC: array<vec2<f32>, ${ch.steps * np}>;    // [step][state]: (B, C)
var<workgroup> sCh: array<vec4<f32>, ${ch.steps * ch.cpg}>; // [step][channel]
${
    local
      ? ""
      : `var<workgroup> sY: array<f32, ${ch.steps * ch.cpg * ch.tpc}>;  // per-invocation sums`
  }
@compute @workgroup_size(${ch.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * p.gx;
  if (wg >= p.cblocks * p.batch * p.seg_count) { return; }
  let cb = wg % p.cblocks;
  let rest = wg / p.cblocks;
  let seg = rest % p.seg_count + p.seg_offset;
  let b = rest / p.seg_count;
  let cl = lid / TPC;
  let s0 = (lid % TPC) * SPT;
  let c = cb * CPG + cl;
  let live = c < p.channels;
  let m0 = seg * p.ips;
  let m1 = min(m0 + p.ips, p.intervals);
  let tbeg = m0 * TS;
  let tend = min(m1 * TS, p.length);
  let blocks = (tend - tbeg + FS - 1u) / FS;
  ${init}
  ${!forward && !local ? "var dD_acc = 0.0;\n  var dbias_acc = 0.0;" : ""}
  for (var qq = 0u; qq < blocks; qq++) {
    let t0 = tbeg + ${forward ? "qq" : "(blocks - 1u - qq)"} * FS;
    let len = min(FS, tend - t0);
    ${
    role === "forward" && save
      ? `if (t0 % TS == 0u) {
      ${writeState("ck", "t0 / TS")}
    }`
      : ""
  }
    ${
    role === "adjoint"
      ? `if ((t0 + len) % TS == 0u || t0 + len == p.length) {
      ${writeState("lam", "(t0 + len - 1u) / TS")}
    }`
      : ""
  }
    workgroupBarrier();
    for (var i = lid; i < FS * NP; i += WG) {
      ${last ? "let t = i / NP; let s = i % NP;" : "let s = i / FS; let t = i % FS;"}
      var v = vec2<f32>(0.0, 0.0);
      if (t < len && s < N) {
        let g = nidx(b, s, t0 + t);
        v = vec2<f32>(${
    role === "forward-local" || role === "forward" || role === "adjoint" ? "Bm[g]" : "0.0"
  }, ${role === "forward-local" ? "0.0" : "Cm[g]"});
      }
      sBC[t * NP + s] = v;
    }
    for (var i = lid; i < FS * CPG; i += WG) {
      ${last ? "let cl2 = i % CPG; let t = i / CPG;" : "let cl2 = i / FS; let t = i % FS;"}
      let c2 = cb * CPG + cl2;
      var v = vec4<f32>(0.0, 0.0, 0.0, 0.0);
      if (c2 < p.channels && t < len) {
        let g = didx(b, c2, t0 + t);
        let ds = step_size(g, c2);
        ${stageValue}
      }
      sCh[t * CPG + cl2] = v;
    }
    workgroupBarrier();
    ${
    forward
      ? "for (var k = 0u; k < len; k++) {"
      : "for (var kk = len; kk > 0u; kk--) {\n      let k = kk - 1u;"
  }
      let ch = sCh[k * CPG + cl];
      let row = k * NP + s0;
      ${local ? "" : "var y = 0.0;"}
      ${forward ? stepForward : stepAdjoint}
      ${
    local ? "" : `sY[(k * CPG + cl) * TPC + lid % TPC] = y;${
      forward ? "" : `
      dbias_acc += ch.y * y * ch.w;
      if (lid % TPC == 0u) { dD_acc += ch.z * ch.y; }`
    }`
  }
    }
    ${
    local ? "" : `workgroupBarrier();
    for (var i = lid; i < FS * CPG; i += WG) {
      ${last ? "let cl2 = i % CPG; let t = i / CPG;" : "let cl2 = i / FS; let t = i % FS;"}
      let c2 = cb * CPG + cl2;
      if (c2 < p.channels && t < len) {
        var y = 0.0;
        for (var q = 0u; q < TPC; q++) { y += sY[(t * CPG + cl2) * TPC + q]; }
        let v = sCh[t * CPG + cl2];
        let g = didx(b, c2, t0 + t);
        ${writeOut}
      }
    }`
  }
  }
  ${local ? finishLocal : ""}
  ${
    !forward && !local
      ? `if (live) {
    // Row (b, segment): [dD | d deltaBias] per (channel, invocation of the channel).
    let base = (b * p.segs + seg) * 2u * p.channels * TPC + c * TPC + lid % TPC;
    apart[base] = dD_acc;
    apart[base + p.channels * TPC] = dbias_acc;
  }`
      : ""
  }
}`;
}

/**
 * The state-major backward kernel: one invocation per (batch, interval, state); a workgroup holds
 * `rows` consecutive intervals × n states of one batch row and loops over all channels. Every
 * per-step value an invocation needs only for itself lives in registers (the step code is
 * unrolled): its B_t and C_t, the re-run's h_t and exp(Δ_t·A), and the dB_t and dC_t sums over
 * channels. Per channel it re-runs each interval from its checkpoint, then walks it back from
 * the adjoint saved at the interval's end. Workgroup memory holds only what invocations share:
 * the staged per-channel step values, and the terms λ·A·exp(ΔA)·h_{t−1} whose sum over states is
 * the rest of dΔ. That sum is split over all invocations (each sums a slice of the states of one
 * step) and finished one channel later, so each channel costs one barrier; the term tiles and
 * the dA and d deltaBias row partials are double-buffered for that.
 */
function stateShader(spec: ScanSpec, plan: ScanPlan): string {
  const { st, ts } = plan;
  const n = spec.states;
  const span = st.rows * ts; // steps covered by a workgroup
  const parts = stateParts(n, ts);
  const list: Binding[] = [
    ["read", "gout"],
    ["read", "delta"],
    ["read", "u"],
    ["read", "A"],
    ["read", "Bm"],
    ["read", "Cm"],
  ];
  if (spec.hasZ) list.push(["read", "z"]);
  if (spec.hasBias) list.push(["read", "delta_bias"]);
  list.push(
    ["read", "ck"],
    ["read", "lam"],
    ["read_write", "ddelta"],
    ["read_write", "dB"],
    ["read_write", "dC"],
    ["read_write", "spart"],
  );
  const K = Array.from({ length: ts }, (_, k) => k);
  const perStep = K.map((k) =>
    `var bv${k} = 0.0;
  var cv${k} = 0.0;
  var dB${k} = 0.0;
  var dC${k} = 0.0;
  if (valid && m * TS + ${k}u < p.length) {
    let g = nidx(b, s, m * TS + ${k}u);
    bv${k} = Bm[g];
    cv${k} = Cm[g];
  }`
  ).join("\n  ");
  // h${k} is h_{t−1} of step k, h${ts} the interval's last state.
  const rerun = K.map((k) =>
    `let h${k} = h;
    let da${k} = exp2(sQ[qb + ${k}u].x * a2);
    h = da${k} * h + sQ[qb + ${k}u].y * bv${k};`
  ).join("\n    ");
  const reverse = [...K].reverse().map((k) =>
    `{
      let q = sQ[qb + ${k}u];
      let lm = q.z * cv${k} + lc;
      dB${k} += lm * q.y;
      dC${k} += q.z * ${k + 1 < ts ? `h${k + 1}` : "h"};
      let e = lm * da${k} * h${k};
      dA_c += e * q.x;
      let v = e * a;
      tile[tb + (r * TS + ${k}u) * NPAD + s] = v;
      w += v * q.w;
      lc = da${k} * lm;
    }`
  ).join("\n    ");
  const writeGrads = K.map((k) =>
    `if (m * TS + ${k}u < p.length) {
      let g = nidx(b, s, m * TS + ${k}u);
      dB[g] = dB${k};
      dC[g] = dC${k};
    }`
  ).join("\n    ");
  return /* wgsl */ `
${bind(list)}
${prelude(spec, plan)}
const R: u32 = ${st.rows}u;
const WG: u32 = ${st.threads}u;
const CC: u32 = ${st.chunk}u;
const SPAN: u32 = ${span}u;
const NPAD: u32 = ${odd(n)}u;
const PARTS: u32 = ${parts}u;                  // slices of the states per step's sum
const PLEN: u32 = ${Math.ceil(n / parts)}u;     // states per slice
var<workgroup> sQ: array<vec4<f32>, ${st.chunk * span}>; // [channel][step]: (Δ, Δu, gy, softplus')
var<workgroup> sP: array<f32, ${st.chunk * span}>;       // [channel][step]: u·Σλ·B from the adjoint
var<workgroup> tile: array<f32, ${
    2 * span * odd(n)
  }>;   // [buffer][step][state]: λ·A·exp(ΔA)·h_{t-1}
var<workgroup> tpart: array<f32, ${2 * parts * span}>;   // [buffer][slice][step]: dΔ partial sums
var<workgroup> tA: array<f32, ${2 * st.threads}>;       // [buffer][invocation]
var<workgroup> tB: array<f32, ${2 * st.threads}>;
// Sums the slices of the state sum of channel c's steps (buffer buf) and writes its dΔ.
fn finish_ddelta(buf: u32, b: u32, c: u32, tbase: u32, wlen: u32, lid: u32) {
  for (var j = (lid + N) % WG; j < wlen; j += WG) {
    var v = 0.0;
    for (var q = 0u; q < PARTS; q++) { v += tpart[(buf * PARTS + q) * SPAN + j]; }
    ddelta[didx(b, c, tbase + j)] = v;
  }
}
@compute @workgroup_size(${st.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * p.gx;
  let groups = (p.intervals + R - 1u) / R;
  if (wg >= p.batch * groups) { return; }
  let mg = wg % groups;
  let b = wg / groups;
  let r = lid / N;
  let s = lid % N;
  let m = mg * R + r;
  let valid = m < p.intervals;
  let tbase = mg * SPAN;
  let wlen = min(SPAN, p.length - tbase);
  let prow = (b * groups + mg) * 2u * p.channels * N;
  ${perStep}
  // The next channel's A, checkpoint and adjoint, loaded one channel ahead.
  var na = 0.0;
  var nh = 0.0;
  var nl = 0.0;
  if (valid) {
    na = A[s];
    nh = ck[ckidx(b, m, 0u, s)];
    nl = lam[ckidx(b, m, 0u, s)];
  }
  for (var c = 0u; c < p.channels; c++) {
    let cc = c % CC;
    let buf = c % 2u;
    if (cc == 0u) {
      workgroupBarrier();
      for (var i = lid; i < CC * SPAN; i += WG) {
        ${
    spec.channelsLast ? "let c2 = i % CC; let t = i / CC;" : "let c2 = i / SPAN; let t = i % SPAN;"
  }
        var q = vec4<f32>(0.0, 0.0, 0.0, 0.0);
        var pd = 0.0;
        if (c + c2 < p.channels && t < wlen) {
          let g = didx(b, c + c2, tbase + t);
          let ds = step_size(g, c + c2);
          var gy = gout[g];
          ${spec.hasZ ? "gy *= z[g] * sigmoid_(z[g]);" : ""}
          q = vec4<f32>(ds.x, ds.x * u[g], gy, ds.y);
          pd = ddelta[g];
        }
        sQ[c2 * SPAN + t] = q;
        sP[c2 * SPAN + t] = pd;
      }
      workgroupBarrier();
    }
    let a = na;
    let a2 = a * LOG2E;
    var h = nh;
    var lc = nl;
    if (valid && c + 1u < p.channels) {
      na = A[(c + 1u) * N + s];
      nh = ck[ckidx(b, m, c + 1u, s)];
      nl = lam[ckidx(b, m, c + 1u, s)];
    }
    let qb = cc * SPAN + r * TS;
    let tb = buf * SPAN * NPAD;
    ${rerun}
    var dA_c = 0.0;
    var w = 0.0;
    ${reverse}
    tA[buf * WG + lid] = dA_c;
    tB[buf * WG + lid] = w;
    workgroupBarrier();
    // This channel's slices of the state sums, scaled by softplus' (the adjoint's part in slice
    // 0); the previous channel's dΔ from its slices; this channel's dA and d deltaBias partials.
    for (var i = lid; i < PARTS * SPAN; i += WG) {
      let j = i % SPAN;
      let q0 = (i / SPAN) * PLEN;
      var v = 0.0;
      for (var q = q0; q < min(q0 + PLEN, N); q++) { v += tile[tb + j * NPAD + q]; }
      let at = cc * SPAN + j;
      if (q0 == 0u) { v += sP[at]; }
      tpart[buf * PARTS * SPAN + i] = v * sQ[at].w;
    }
    if (c > 0u) { finish_ddelta(1u - buf, b, c - 1u, tbase, wlen, lid); }
    for (var s2 = lid; s2 < N; s2 += WG) {
      var va = 0.0;
      var vb = 0.0;
      for (var rr = 0u; rr < R; rr++) {
        va += tA[buf * WG + rr * N + s2];
        vb += tB[buf * WG + rr * N + s2];
      }
      spart[prow + c * N + s2] = va;
      spart[prow + (p.channels + c) * N + s2] = vb;
    }
  }
  workgroupBarrier();
  finish_ddelta((p.channels - 1u) % 2u, b, p.channels - 1u, tbase, wlen, lid);
  if (valid) {
    ${writeGrads}
  }
}`;
}

/** Carries segment values across segments, x ← decay_k·x + local_k, in either direction. */
const CARRY = /* wgsl */ `
struct P { batch: u32, channels: u32, states: u32, segs: u32, out_m: u32, out_s: u32,
  out_off: u32, backward: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> seg_state: array<f32>;
@group(0) @binding(2) var<storage, read> seg_decay: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let s = i % p.states;
  let c = (i / p.states) % p.channels;
  let b = i / (p.states * p.channels);
  var x = 0.0;
  for (var j = 0u; j < p.segs; j++) {
    let k = select(j, p.segs - 1u - j, p.backward == 1u);
    let m = k * p.out_s + p.out_off;
    if (m < p.out_m) { out[((b * p.out_m + m) * p.channels + c) * p.states + s] = x; }
    if (j + 1u < p.segs) {
      let li = ((b * p.segs + k) * p.channels + c) * p.states + s;
      x = seg_decay[li] * x + seg_state[li];
    }
  }
}`;

/**
 * Splits the summed partial rows into dA, dD and d deltaBias: `adj` holds the adjoint's
 * [dD | d deltaBias] per (channel, invocation of the channel), `st` the state kernel's
 * [dA | d deltaBias] per (channel, state).
 */
function finishShader(hasD: boolean, hasBias: boolean, tpc: number): string {
  const list: Binding[] = [["read", "adj"], ["read", "st"], ["read_write", "dA"]];
  if (hasD) list.push(["read_write", "dD"]);
  if (hasBias) list.push(["read_write", "dbias"]);
  return /* wgsl */ `
struct P { channels: u32, states: u32 }
@group(0) @binding(0) var<uniform> p: P;
${bind(list)}
const TPC: u32 = ${tpc}u;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let na = p.channels * p.states;
  if (i < na) {
    dA[i] = st[i];
    return;
  }
  let c = i - na;
  if (c >= p.channels) { return; }
  var sd = 0.0;
  var sb = 0.0;
  for (var s = 0u; s < p.states; s++) { sb += st[na + c * p.states + s]; }
  for (var g = 0u; g < TPC; g++) {
    sd += adj[c * TPC + g];
    sb += adj[(p.channels + c) * TPC + g];
  }
  ${hasD ? "dD[c] = sd;" : ""}
  ${hasBias ? "dbias[c] = sb;" : ""}
}`;
}

// ---------------------------------------------------------------------------------------------
// Launchers

function describeShape(layout: string, second: string): string {
  return layout === "bdl" ? `(batch, ${second}, length)` : `(batch, length, ${second})`;
}

function validate(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  o: SelectiveScanOptions,
): ScanSpec {
  const layout = o.layout ?? "bdl";
  if (layout !== "bdl" && layout !== "bld") {
    throw new RangeError(`${OP}: layout must be "bdl" or "bld", got ${JSON.stringify(layout)}`);
  }
  const named: [string, Tensor | undefined][] = [
    ["u", u],
    ["delta", delta],
    ["A", A],
    ["B", B],
    ["C", C],
    ["D", o.D],
    ["z", o.z],
    ["deltaBias", o.deltaBias],
  ];
  for (const [, t] of named) if (t) assertDType(OP, t, "f32");
  if (u.shape.length !== 3 || u.size === 0) {
    throw new RangeError(
      `${OP}: u must be a non-empty ${describeShape(layout, "d")} tensor, got ${u.describe()}`,
    );
  }
  const [batch, second, third] = u.shape;
  const [channels, length] = layout === "bdl" ? [second, third] : [third, second];
  if (A.shape.length !== 2 || A.shape[0] !== channels || A.shape[1] === 0) {
    throw new RangeError(`${OP}: A must be (d ${channels}, n), got ${A.describe()}`);
  }
  const states = A.shape[1];
  if (states > SELECTIVE_SCAN_MAX_STATES) {
    throw new RangeError(
      `${OP}: n = ${states} states exceeds the supported ${SELECTIVE_SCAN_MAX_STATES} (A ` +
        `${A.describe()})`,
    );
  }
  const dShape = layout === "bdl" ? [batch, channels, length] : [batch, length, channels];
  const nShape = layout === "bdl" ? [batch, states, length] : [batch, length, states];
  const expect = (name: string, t: Tensor | undefined, shape: number[], what: string) => {
    if (t && (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i]))) {
      throw new RangeError(
        `${OP}: ${name} must be ${what} [${shape.join(", ")}], got ${t.describe()} ` +
          `(u ${u.describe()}, A ${A.describe()}, layout ${layout})`,
      );
    }
  };
  expect("delta", delta, dShape, describeShape(layout, "d"));
  expect("z", o.z, dShape, describeShape(layout, "d"));
  expect("B", B, nShape, describeShape(layout, "n"));
  expect("C", C, nShape, describeShape(layout, "n"));
  expect("D", o.D, [channels], "(d)");
  expect("deltaBias", o.deltaBias, [channels], "(d)");
  for (const [key, v] of Object.entries(o.tuning ?? {})) {
    const max = { interval: 64, channelSteps: 32 }[key] ?? Infinity;
    const power = max < Infinity;
    if (
      v !== undefined &&
      !(Number.isInteger(v) && v >= 1 && v <= max && (!power || (v & (v - 1)) === 0))
    ) {
      throw new RangeError(
        `${OP}: tuning.${key} must be an integer ≥ 1${
          power ? `, a power of two up to ${max}` : ""
        }, got ${v}`,
      );
    }
  }
  return {
    batch,
    channels,
    length,
    states,
    hasD: o.D !== undefined,
    hasZ: o.z !== undefined,
    hasBias: o.deltaBias !== undefined,
    softplus: o.deltaSoftplus === true,
    channelsLast: layout === "bld",
  };
}

/**
 * The selective scan of Mamba (mamba_ssm `selective_scan_fn`, v1.1.4 semantics), recorded on the
 * tape with gradients for every tensor argument.
 *
 * Per (b, c): Δ_t = delta[b,c,t] + deltaBias[c] (softplus'd when `deltaSoftplus`), h_t[s] =
 * exp(Δ_t·A[c,s])·h_{t−1}[s] + Δ_t·B[b,s,t]·u[b,c,t] from h_{−1} = 0, y_t = Σ_s C[b,s,t]·h_t[s] +
 * D[c]·u[b,c,t], and the output is y·SiLU(z) when z is given.
 *
 * For the backward it keeps the state entering every interval of 16 steps (b·d·n·l/16 floats)
 * and, with z, y before the gate (b·d·l floats).
 *
 * @param u input (batch, d, length); (batch, length, d) with `layout: "bld"`
 * @param delta step sizes before bias/softplus, shaped like u
 * @param A state matrix (d, n), real (negative in practice); n ≤ 256
 * @param B input-dependent input matrix (batch, n, length); (batch, length, n) with "bld"
 * @param C input-dependent output matrix, shaped like B
 * @param options D, z, deltaBias, deltaSoftplus, layout, tuning
 * @returns the output, shaped like u
 */
export function selectiveScan(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  options: SelectiveScanOptions = {},
): Tensor {
  const spec = validate(u, delta, A, B, C, options);
  const { D, z, deltaBias } = options;
  const inputs = [u, delta, A, B, C, D, z, deltaBias].filter((t): t is Tensor => t !== undefined);
  const save = gradEnabled() && inputs.some((t) => t.requiresGrad);
  const plan = planScan(spec.channels, spec.states, spec.length, options.tuning ?? {});
  const { batch, channels, states } = spec;
  const { ch } = plan;
  const { segs, ips } = segmentsFor(
    plan,
    ch.threads * ch.cblocks * batch,
    options.tuning?.segments,
  );
  const ck = Tensor.empty(
    save || segs > 1 ? [batch, plan.intervals, channels, states] : [1],
    "f32",
    `${OP} checkpoints`,
  );
  const ysave = save && spec.hasZ ? Tensor.empty(u.shape, "f32", OP) : undefined;
  const opt = (t: Tensor | undefined) => (t ? [t] : []);
  if (segs > 1) {
    // Local pass over every segment but the last, then the carry into the checkpoints.
    const { state, decay } = localPass(spec, plan, "forward-local", segs, ips, [
      u,
      delta,
      A,
      B,
      ...opt(deltaBias),
    ]);
    carry(spec, segs, state, decay, ck, plan.intervals, ips, 0, false);
    state.dispose();
    decay.dispose();
  }
  const out = Tensor.empty(u.shape, "f32", OP);
  const f = fold(ch.cblocks * batch * segs);
  launch(
    OP,
    channelShader(spec, plan, "forward", save),
    params(spec, plan, { segs, seg_count: segs, ips, gx: f.gx }),
    [u, delta, A, B, C, ...opt(D), ...opt(z), ...opt(deltaBias), out, ck, ...opt(ysave)],
    f.groups,
  );
  if (!save) {
    ck.dispose();
    return out;
  }
  return record(
    out,
    OP,
    inputs,
    (gout) => scanBackward(spec, plan, options, [u, delta, A, B, C], gout, ck, ysave),
    [ck, ...opt(ysave)],
  );
}

/** A local pass over segments (all but the last forward, all but the first backward). */
function localPass(
  spec: ScanSpec,
  plan: ScanPlan,
  role: "forward-local" | "adjoint-local",
  segs: number,
  ips: number,
  tensors: Tensor[],
): { state: Tensor; decay: Tensor } {
  const shape = [spec.batch, segs, spec.channels, spec.states];
  const state = Tensor.empty(shape, "f32", OP);
  const decay = Tensor.empty(shape, "f32", OP);
  const f = fold(plan.ch.cblocks * spec.batch * (segs - 1));
  const offset = role === "forward-local" ? 0 : 1;
  launch(
    OP,
    channelShader(spec, plan, role),
    params(spec, plan, { segs, seg_count: segs - 1, seg_offset: offset, ips, gx: f.gx }),
    [...tensors, state, decay],
    f.groups,
  );
  return { state, decay };
}

function carry(
  spec: ScanSpec,
  segs: number,
  segState: Tensor,
  segDecay: Tensor,
  out: Tensor,
  outM: number,
  outS: number,
  outOff: number,
  backward: boolean,
): void {
  const n = spec.batch * spec.channels * spec.states;
  const groups = Math.ceil(n / 64);
  const gy = Math.ceil(groups / 65535);
  launch(
    `${OP} carry`,
    CARRY,
    packParams([
      spec.batch,
      spec.channels,
      spec.states,
      segs,
      outM,
      outS,
      outOff,
      backward ? 1 : 0,
      n,
    ]),
    [segState, segDecay, out],
    [Math.ceil(groups / gy), gy],
  );
}

function scanBackward(
  spec: ScanSpec,
  plan: ScanPlan,
  o: SelectiveScanOptions,
  [u, delta, A, B, C]: Tensor[],
  gout: Tensor,
  ck: Tensor,
  ysave: Tensor | undefined,
): (Tensor | null)[] {
  const name = `${OP} backward`;
  const { batch, channels, states, hasD, hasZ, hasBias } = spec;
  const { D, z, deltaBias } = o;
  const { ch, st } = plan;
  const opt = (t: Tensor | undefined) => (t ? [t] : []);
  const { segs, ips } = segmentsFor(plan, ch.threads * ch.cblocks * batch, o.tuning?.segments);
  // λ entering every interval from the right (its last step's exp(ΔA)·λ of the next step).
  const lam = Tensor.empty([batch, plan.intervals, channels, states], "f32", name);
  if (segs > 1) {
    const { state, decay } = localPass(spec, plan, "adjoint-local", segs, ips, [
      gout,
      delta,
      A,
      C,
      ...opt(z),
      ...opt(deltaBias),
    ]);
    carry(spec, segs, state, decay, lam, plan.intervals, ips, ips - 1, true);
    state.dispose();
    decay.dispose();
  }
  const du = Tensor.empty(u.shape, "f32", name);
  const ddelta = Tensor.empty(u.shape, "f32", name);
  const dz = hasZ ? Tensor.empty(u.shape, "f32", name) : undefined;
  const adj = Tensor.empty([batch * segs, 2 * channels * ch.tpc], "f32", name);
  const fa = fold(ch.cblocks * batch * segs);
  launch(
    name,
    channelShader(spec, plan, "adjoint"),
    params(spec, plan, { segs, seg_count: segs, ips, gx: fa.gx }),
    [
      gout,
      delta,
      u,
      A,
      B,
      C,
      ...opt(D),
      ...opt(z),
      ...opt(ysave),
      ...opt(deltaBias),
      lam,
      du,
      ddelta,
      ...opt(dz),
      adj,
    ],
    fa.groups,
  );
  const dB = Tensor.empty(B.shape, "f32", name);
  const dC = Tensor.empty(C.shape, "f32", name);
  const groups = Math.ceil(plan.intervals / st.rows);
  const spart = Tensor.empty([batch * groups, 2 * channels * states], "f32", name);
  const fs = fold(batch * groups);
  launch(
    name,
    stateShader(spec, plan),
    params(spec, plan, { gx: fs.gx }),
    [gout, delta, u, A, B, C, ...opt(z), ...opt(deltaBias), ck, lam, ddelta, dB, dC, spart],
    fs.groups,
  );
  lam.dispose();
  const adjSum = sumLeading(adj, [adj.shape[1]]);
  const stSum = sumLeading(spart, [spart.shape[1]]);
  adj.dispose();
  spart.dispose();
  const dA = Tensor.empty(A.shape, "f32", name);
  const dD = hasD ? Tensor.empty([channels], "f32", name) : undefined;
  const dbias = hasBias ? Tensor.empty([channels], "f32", name) : undefined;
  launch(
    name,
    finishShader(hasD, hasBias, ch.tpc),
    packParams([channels, states]),
    [adjSum, stSum, dA, ...opt(dD), ...opt(dbias)],
    [Math.ceil((channels * states + channels) / 64)],
  );
  adjSum.dispose();
  stSum.dispose();
  return [du, ddelta, dA, dB, dC, ...opt(dD), ...opt(dz), ...opt(dbias)];
}
