/**
 * The selective scan of Mamba (mamba_ssm `selective_scan_fn` semantics), forward and backward.
 *
 * Per batch row b and channel c, with Δ_t = softplus(delta[b,c,t] + deltaBias[c]) (softplus
 * optional):
 *
 *     h_t[s] = exp(Δ_t·A[c,s])·h_{t−1}[s] + Δ_t·B[b,s,t]·u[b,c,t]        (h_{−1} = 0)
 *     y_t    = Σ_s C[b,s,t]·h_t[s] + D[c]·u[b,c,t],    out = y · SiLU(z)  (z optional)
 *
 * Forward. One invocation owns one (batch, channel) recurrence with up to 32 states held in
 * registers (larger n: several invocations per channel), so y_t = Σ_s C·h is summed in registers
 * and the steps need no barrier. Per block of steps the workgroup stages (B_t, C_t) of its batch
 * row (shared by all its channels) and (Δ, Δ·u, D·u, SiLU(z)) of its channels in workgroup
 * memory, then writes the outputs coalesced. The state entering every interval of TS steps is
 * saved as a checkpoint (b·d·n·l/TS floats, not the b·d·n·l history).
 *
 * Backward. One invocation owns one (batch, channel, state); a workgroup holds CPG channels × n
 * states of one batch row and walks the intervals last to first: it stages B, C once per
 * interval and, per block of CPG channels, (Δ, u, gy, the dz factor, softplus'), re-runs the
 * interval from its checkpoint keeping the states in a private array, and walks it in reverse.
 * Every few steps the sums over states (du, dΔ, y for dz) and over the block's channels (dB,
 * dC) are done by all invocations from workgroup memory (no global reads between the barriers).
 *
 * Long sequences. Where batch × channels alone cannot fill the GPU, the length is split into
 * segments scanned in parallel: a local pass gives each segment's end state from zero and its
 * decay Π exp(Δ·A), a short pass carries the true states across segments (the recurrence is
 * linear), and the main pass starts every segment from its true state. The backward's adjoint
 * recurrence λ_t = C_t·gy_t + exp(Δ_{t+1}·A)·λ_{t+1} is split the same way. Parameter gradients
 * (dA, dD, d deltaBias) are per-row partial sums reduced by `sumLeading`; nothing uses atomics,
 * so every result is deterministic.
 *
 * Floor on an H200 at batch 2048, d 128, l 200, n 32: b·d·l·n = 1.68e9 state steps. Forward:
 * one exp each (≈ 4e12 exp/s on the special-function units → 0.4 ms) and ≈ 1 GB of u, Δ, z and
 * out traffic (0.25 ms at 4 TB/s), plus checkpoints (b·d·n·l/TS · 4 B = 0.2 GB at TS 32). The
 * backward does two exps per state step (re-run and reverse) and moves ≈ 2.5 GB, ≈ 1.5 ms. Its
 * practical limit is workgroup-memory traffic: five partial products per state step are written
 * and summed (≈ 15 shared-memory accesses per state step → ≈ 3–4 ms).
 *
 * @module
 */
import { gradEnabled, record } from "./autograd.ts";
import { assertDType, launch, packParams } from "./launch.ts";
import { sumLeading } from "./reduce.ts";
import { runtime } from "./runtime.ts";
import { Tensor } from "./tensor.ts";

const OP = "selectiveScan";
/** Most invocations per workgroup. */
const MAX_THREADS = 256;
/** Most channels per backward workgroup (small n would otherwise give very wide workgroups). */
const MAX_CHANNELS_PER_GROUP = 32;
/** Most states one forward invocation keeps in registers. */
const MAX_STATES_PER_THREAD = 32;
/** Largest state size: one invocation per state, and a workgroup holds at least one channel. */
export const SELECTIVE_SCAN_MAX_STATES = MAX_THREADS;
/** Invocations wanted in flight on a discrete GPU before the length is split into segments. */
const TARGET_THREADS = 65536;

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
  /** Segments of the length scanned in parallel (forward and backward); 1 = one sequential pass. */
  segments?: number;
  /** Backward only: channel groups per batch row run by separate workgroups (≥ 1). */
  channelGroups?: number;
  /** Channels per workgroup (default: 256 invocations' worth, at most 32). */
  channelsPerGroup?: number;
  /** Steps per interval, the checkpoint spacing: 1, 2, 4, …, 64 (default: the most that fit). */
  interval?: number;
  /** Backward steps per workgroup-memory sum: 1, 2, 4 or 8, at most n and channelsPerGroup. */
  backwardSumSteps?: number;
  /** Forward invocations per workgroup (default 64). */
  forwardThreads?: number;
  /** Forward steps staged at a time: 1, 2, 4, 8 or 16 (default 16). */
  forwardSteps?: number;
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

/** The forward's workgroup: one invocation per (channel, group of up to 32 states). */
interface ForwardShape {
  /** Invocations per channel: ceil(n / 32). */
  tpc: number;
  /** States held (in registers) per invocation. */
  spt: number;
  /** Channels per workgroup. */
  cpg: number;
  /** Invocations per workgroup: cpg × tpc. */
  threads: number;
  /** Steps staged in workgroup memory at a time (divides the checkpoint interval). */
  steps: number;
  /** Channel blocks: ceil(d / cpg). */
  cblocks: number;
}

/** Workgroup shapes and time blocking, fixed per (n, d, device). */
interface ScanPlan {
  /** Backward: channels per workgroup. */
  cpg: number;
  /** Backward: invocations per workgroup, cpg × n (one per state). */
  threads: number;
  /** Steps per interval: the checkpoint spacing. */
  ts: number;
  /** Backward steps per workgroup-memory sum. */
  trb: number;
  /** Intervals covering the length. */
  intervals: number;
  /** Backward channel blocks: ceil(d / cpg). */
  cblocks: number;
  /** The forward's shape. */
  fw: ForwardShape;
}

const odd = (v: number) => (v % 2 === 0 ? v + 1 : v);

/** Workgroup-memory words of the backward kernel. */
function backwardWords(n: number, cpg: number, ts: number, trb: number): number {
  return 4 * ts * n + 5 * cpg * odd(ts) + trb * (3 * cpg * odd(n) + 2 * n * odd(cpg));
}

/** Workgroup-memory words of the forward kernel. */
function forwardWords(f: Omit<ForwardShape, "steps" | "cblocks">, steps: number): number {
  return steps * (2 * f.tpc * f.spt + 4 * f.cpg + f.cpg * f.tpc);
}

function planScan(
  channels: number,
  states: number,
  length: number,
  tuning: SelectiveScanTuning,
): ScanPlan {
  const info = runtime().info;
  const budget = Math.floor(info.maxWorkgroupBytes / 4);
  const cpg = Math.min(
    channels,
    tuning.channelsPerGroup ?? Math.min(MAX_CHANNELS_PER_GROUP, Math.floor(MAX_THREADS / states)),
  );
  if (cpg * states > info.maxInvocations) {
    throw new RangeError(
      `${OP}: ${cpg} channels × ${states} states per workgroup exceed this device's ` +
        `${info.maxInvocations} invocations`,
    );
  }
  const fixed = tuning.interval !== undefined;
  for (const ts of fixed ? [tuning.interval!] : [32, 16, 8, 4, 2, 1]) {
    // The backward's per-step sums are shared by trb·cpg channel tasks and trb·n state tasks,
    // each at most one per invocation: trb ≤ n and trb ≤ cpg.
    const trbCap = Math.min(ts, states, cpg);
    let trb = 0;
    for (const t of tuning.backwardSumSteps ? [tuning.backwardSumSteps] : [8, 4, 2, 1]) {
      if (t <= trbCap && backwardWords(states, cpg, ts, t) <= budget) {
        trb = t;
        break;
      }
    }
    if (!fixed && (trb === 0 || (trb < Math.min(2, trbCap) && ts > 4))) continue;
    if (trb === 0) break;
    const fw = forwardShape(channels, states, ts, tuning, budget);
    return {
      cpg,
      threads: cpg * states,
      ts,
      trb,
      intervals: Math.ceil(length / ts),
      cblocks: Math.ceil(channels / cpg),
      fw,
    };
  }
  throw new RangeError(
    `${OP}: n = ${states} states with ${cpg} channels per workgroup do not fit this device's ` +
      `workgroup memory (${info.maxWorkgroupBytes} bytes; tuning ${JSON.stringify(tuning)})`,
  );
}

function forwardShape(
  channels: number,
  states: number,
  ts: number,
  tuning: SelectiveScanTuning,
  budget: number,
): ForwardShape {
  const tpc = Math.ceil(states / MAX_STATES_PER_THREAD);
  const spt = Math.ceil(states / tpc);
  const cpg = Math.max(1, Math.min(channels, Math.floor((tuning.forwardThreads ?? 64) / tpc)));
  const base = { tpc, spt, cpg, threads: cpg * tpc };
  for (const steps of [tuning.forwardSteps ?? 16, 8, 4, 2, 1]) {
    if (steps <= ts && ts % steps === 0 && forwardWords(base, steps) <= budget) {
      return { ...base, steps, cblocks: Math.ceil(channels / cpg) };
    }
  }
  throw new RangeError(`${OP}: the forward workgroup does not fit (${JSON.stringify(base)})`);
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
  "groups",
  "gx",
  "ds_b",
  "ds_c",
  "ds_t",
  "ns_b",
  "ns_c",
  "ns_t",
  "pcols",
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
    cblocks: plan.cblocks,
    groups: 1,
    gx: 1,
    ds_b: d * l,
    ds_c: channelsLast ? 1 : l,
    ds_t: channelsLast ? d : 1,
    ns_b: n * l,
    ns_c: channelsLast ? 1 : l,
    ns_t: channelsLast ? n : 1,
    pcols: d * n + 2 * plan.trb * d,
    ...p,
  };
  return packParams(FIELDS.map((f) => full[f]));
}

function bind(list: [access: "read" | "read_write", name: string][]): string {
  return list.map(([access, name], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<f32>;`
  ).join("\n");
}

/** Declarations every scan kernel shares; `shape` is the kernel's workgroup. */
function prelude(spec: ScanSpec, plan: ScanPlan, shape = { cpg: plan.cpg, threads: plan.threads }) {
  return /* wgsl */ `
struct P { ${FIELDS.map((f) => `${f}: u32`).join(", ")} }
@group(0) @binding(0) var<uniform> p: P;
const N: u32 = ${spec.states}u;
const CPG: u32 = ${shape.cpg}u;
const WG: u32 = ${shape.threads}u;
const TS: u32 = ${plan.ts}u;
const TSP: u32 = ${odd(plan.ts)}u;      // row pitch of [channel][step] tiles (odd: no bank clash)
const NPAD: u32 = ${odd(spec.states)}u;  // row pitch of per-channel sums over states
const CPAD: u32 = ${odd(plan.cpg)}u;     // row pitch of per-state sums over channels
const LOG2E: f32 = 1.4426950408889634;
fn didx(b: u32, c: u32, t: u32) -> u32 { return b * p.ds_b + c * p.ds_c + t * p.ds_t; }
fn nidx(b: u32, s: u32, t: u32) -> u32 { return b * p.ns_b + s * p.ns_c + t * p.ns_t; }
// State (b, m, c, s) of the checkpoints: the state entering interval m.
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
// Δ at (b, c, t) after the bias and the optional softplus.
fn step_size(g: u32, c: u32) -> f32 {
  let raw = delta[g]${spec.hasBias ? " + delta_bias[c]" : ""};
  return ${spec.softplus ? "softplus_(raw)" : "raw"};
}
`;
}

/**
 * Staging of one interval into workgroup memory: B and/or C rows [step][state], and Δ, u and/or
 * the gated output gradient per [channel][step]. Reads follow the layout's contiguous index.
 */
function staging(
  spec: ScanSpec,
  plan: ScanPlan,
  want: { B: boolean; u: boolean; factors?: boolean },
): string {
  const last = spec.channelsLast;
  // factors: the dz factor gout·SiLU'(z) and the softplus derivative σ(delta + bias), staged so
  // that the backward's sums never wait on global memory.
  const dzf = want.factors && spec.hasZ, spd = want.factors && spec.softplus;
  return /* wgsl */ `
var<workgroup> sBC: array<vec2<f32>, ${plan.ts * spec.states}>;  // [step][state]: (B, C)
var<workgroup> sQ: array<vec4<f32>, ${
    plan.cpg * odd(plan.ts)
  }>; // [channel][step]: (Δ, u, gy, dz factor)
${
    spd
      ? `var<workgroup> sS: array<f32, ${
        plan.cpg * odd(plan.ts)
      }>;    // [channel][step]: softplus'`
      : ""
  }
fn stage_states(b: u32, t0: u32, len: u32, lid: u32) {
  for (var i = lid; i < TS * N; i += WG) {
    ${last ? "let t = i / N; let s = i % N;" : "let s = i / TS; let t = i % TS;"}
    var v = vec2<f32>(0.0, 0.0);
    if (t < len) {
      let g = nidx(b, s, t0 + t);
      v = vec2<f32>(${want.B ? "Bm[g]" : "0.0"}, Cm[g]);
    }
    sBC[t * N + s] = v;
  }
}
fn stage_channels(b: u32, cb: u32, t0: u32, len: u32, lid: u32) {
  for (var i = lid; i < CPG * TS; i += WG) {
    ${last ? "let cl = i % CPG; let t = i / CPG;" : "let cl = i / TS; let t = i % TS;"}
    let c = cb * CPG + cl;
    var q = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    ${spd ? "var sd = 0.0;" : ""}
    if (c < p.channels && t < len) {
      let g = didx(b, c, t0 + t);
      q.x = step_size(g, c);
      ${want.u ? "q.y = u[g];" : ""}
      ${
    spec.hasZ
      ? `let zz = z[g];
      let sz = sigmoid_(zz);
      q.z = gout[g] * zz * sz;
      ${dzf ? "q.w = gout[g] * sz * (1.0 + zz * (1.0 - sz));" : ""}`
      : "q.z = gout[g];"
  }
      ${spd ? `sd = sigmoid_(delta[g]${spec.hasBias ? " + delta_bias[c]" : ""});` : ""}
    }
    sQ[cl * TSP + t] = q;
    ${spd ? "sS[cl * TSP + t] = sd;" : ""}
  }
}
`;
}

/** Workgroup of the (cblock, batch, segment) grid, or false past the end. */
const DECODE_BLOCK = /* wgsl */ `
  let wg = wid.x + wid.y * p.gx;
  if (wg >= p.cblocks * p.batch * p.seg_count) { return; }
  let cb = wg % p.cblocks;
  let rest = wg / p.cblocks;
  let seg = rest % p.seg_count + p.seg_offset;
  let b = rest / p.seg_count;
  let cl = lid / N;
  let s = lid % N;
  let c = cb * CPG + cl;
  let live = c < p.channels;
  var a = 0.0;
  if (live) { a = A[c * N + s]; }
  let m0 = seg * p.ips;
  let m1 = min(m0 + p.ips, p.intervals);
`;

/**
 * Forward kernel: one invocation per (batch, channel, group of ≤ 32 states), its states and
 * their exp2-scaled A in registers (the per-state code is generated, unrolled), so y_t = Σ C·h
 * is summed in registers with no workgroup barrier per step. Per block of `steps` steps the
 * workgroup stages (B, C) for its batch row and (Δ, Δ·u, D·u, SiLU(z)) for its channels, runs
 * the steps, then writes the gated outputs coalesced. `local`: scan each segment from zero and
 * write its end state and decay (no output). Otherwise: start from the true segment state,
 * write the output and, with `save`, the checkpoint entering every interval of TS steps.
 */
function forwardShader(spec: ScanSpec, plan: ScanPlan, local: boolean, save: boolean): string {
  const { fw } = plan;
  const np = fw.tpc * fw.spt;
  const last = spec.channelsLast;
  const list: [("read" | "read_write"), string][] = [
    ["read", "u"],
    ["read", "delta"],
    ["read", "A"],
    ["read", "Bm"],
  ];
  if (!local) list.push(["read", "Cm"]);
  if (!local && spec.hasD) list.push(["read", "Dv"]);
  if (!local && spec.hasZ) list.push(["read", "z"]);
  if (spec.hasBias) list.push(["read", "delta_bias"]);
  if (local) list.push(["read_write", "seg_state"], ["read_write", "seg_decay"]);
  else list.push(["read_write", "out"], ["read_write", "ck"]);
  const J = Array.from({ length: fw.spt }, (_, j) => j);
  const own = (j: number) => `live && s0 + ${j}u < N`;
  const init = J.map((j) =>
    `var h${j} = 0.0;
  var a${j} = 0.0;
  ${local ? `var q${j} = 1.0;` : ""}
  if (${own(j)}) {
    a${j} = A[c * N + s0 + ${j}u] * LOG2E;
    ${local ? "" : `if (seg > 0u) { h${j} = ck[ckidx(b, m0, c, s0 + ${j}u)]; }`}
  }`
  ).join("\n  ");
  const step = J.map((j) =>
    `{
          let bc = sBC[row + ${j}u];
          let da = exp2(dt * a${j});
          h${j} = da * h${j} + du * bc.x;
          ${local ? `q${j} *= da;` : `y += bc.y * h${j};`}
        }`
  ).join("\n        ");
  const saveCk = J.map((j) => `if (${own(j)}) { ck[ckidx(b, t0 / TS, c, s0 + ${j}u)] = h${j}; }`)
    .join("\n        ");
  const finish = J.map((j) =>
    `if (${own(j)}) {
    seg_state[segidx(b, seg, c, s0 + ${j}u)] = h${j};
    seg_decay[segidx(b, seg, c, s0 + ${j}u)] = q${j};
  }`
  ).join("\n  ");
  return /* wgsl */ `
${bind(list)}
${prelude(spec, plan, fw)}
const TPC: u32 = ${fw.tpc}u;
const SPT: u32 = ${fw.spt}u;
const NP: u32 = ${np}u;
const FS: u32 = ${fw.steps}u;
var<workgroup> sBC: array<vec2<f32>, ${fw.steps * np}>;   // [step][state]: (B, C)
var<workgroup> sCh: array<vec4<f32>, ${fw.steps * fw.cpg}>; // [step][channel]: (Δ, Δu, Du, gate)
${local ? "" : `var<workgroup> sY: array<f32, ${fw.steps * fw.cpg * fw.tpc}>;`}
@compute @workgroup_size(${fw.threads})
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
  let tend = min((m0 + p.ips) * TS, p.length);
  ${init}
  for (var t0 = m0 * TS; t0 < tend; t0 += FS) {
    let len = min(FS, tend - t0);
    ${save && !local ? `if (t0 % TS == 0u) {\n        ${saveCk}\n    }` : ""}
    workgroupBarrier();
    for (var i = lid; i < FS * NP; i += WG) {
      ${last ? "let t = i / NP; let s = i % NP;" : "let s = i / FS; let t = i % FS;"}
      var v = vec2<f32>(0.0, 0.0);
      if (t < len && s < N) {
        let g = nidx(b, s, t0 + t);
        v = vec2<f32>(Bm[g], ${local ? "0.0" : "Cm[g]"});
      }
      sBC[t * NP + s] = v;
    }
    for (var i = lid; i < FS * CPG; i += WG) {
      ${last ? "let cl2 = i % CPG; let t = i / CPG;" : "let cl2 = i / FS; let t = i % FS;"}
      let c2 = cb * CPG + cl2;
      var v = vec4<f32>(0.0, 0.0, 0.0, 1.0);
      if (c2 < p.channels && t < len) {
        let g = didx(b, c2, t0 + t);
        let dt = step_size(g, c2);
        let uu = u[g];
        ${
    local
      ? "v = vec4<f32>(dt, dt * uu, 0.0, 1.0);"
      : `v = vec4<f32>(dt, dt * uu, ${spec.hasD ? "Dv[c2] * uu" : "0.0"}, ${
        spec.hasZ ? "z[g] * sigmoid_(z[g])" : "1.0"
      });`
  }
      }
      sCh[t * CPG + cl2] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < len; k++) {
      let ch = sCh[k * CPG + cl];
      let dt = ch.x;
      let du = ch.y;
      let row = k * NP + s0;
      ${local ? "" : "var y = 0.0;"}
      ${step}
      ${local ? "" : "sY[(k * CPG + cl) * TPC + lid % TPC] = y;"}
    }
    ${local ? "" : forwardOutput(spec)}
  }
  ${local ? finish : ""}
}`;
}

/** The forward's write-out of one block: y (summed over the channel's invocations) + D·u, gated. */
function forwardOutput(spec: ScanSpec): string {
  const last = spec.channelsLast;
  return /* wgsl */ `workgroupBarrier();
    for (var i = lid; i < FS * CPG; i += WG) {
      ${last ? "let cl2 = i % CPG; let t = i / CPG;" : "let cl2 = i / FS; let t = i % FS;"}
      let c2 = cb * CPG + cl2;
      if (c2 < p.channels && t < len) {
        var y = 0.0;
        for (var q = 0u; q < TPC; q++) { y += sY[(t * CPG + cl2) * TPC + q]; }
        let ch = sCh[t * CPG + cl2];
        out[didx(b, c2, t0 + t)] = (y + ch.z) * ch.w;
      }
    }`;
}

/** Carries segment states across segments: x_{k+1} = decay_k·x_k + local_k (either direction). */
const CARRY = /* wgsl */ `
struct P { batch: u32, channels: u32, states: u32, segs: u32, out_m: u32, out_s: u32,
  backward: u32, n: u32 }
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
    out[((b * p.out_m + k * p.out_s) * p.channels + c) * p.states + s] = x;
    if (j + 1u < p.segs) {
      let li = ((b * p.segs + k) * p.channels + c) * p.states + s;
      x = seg_decay[li] * x + seg_state[li];
    }
  }
}`;

/**
 * Backward, local mode: the adjoint recurrence of each segment from zero at its end, giving
 * exp(Δ_start·A)·λ_start (what the segment passes to the one before) and its decay.
 */
function backwardLocalShader(spec: ScanSpec, plan: ScanPlan): string {
  const list: [("read" | "read_write"), string][] = [
    ["read", "gout"],
    ["read", "delta"],
    ["read", "A"],
    ["read", "Cm"],
  ];
  if (spec.hasZ) list.push(["read", "z"]);
  if (spec.hasBias) list.push(["read", "delta_bias"]);
  list.push(["read_write", "seg_state"], ["read_write", "seg_decay"]);
  return /* wgsl */ `
${bind(list)}
${prelude(spec, plan)}
${staging(spec, plan, { B: false, u: false })}
@compute @workgroup_size(${plan.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
${DECODE_BLOCK}
  var carry = 0.0;
  var decay = 1.0;
  for (var mm = m1; mm > m0; mm--) {
    let m = mm - 1u;
    let t0 = m * TS;
    let len = min(TS, p.length - t0);
    workgroupBarrier();
    stage_states(b, t0, len, lid);
    stage_channels(b, cb, t0, len, lid);
    workgroupBarrier();
    let a2 = a * LOG2E;
    for (var kk = len; kk > 0u; kk--) {
      let k = kk - 1u;
      let q = sQ[cl * TSP + k];
      let da = exp2(q.x * a2);
      carry = da * (q.z * sBC[k * N + s].y + carry);
      decay *= da;
    }
  }
  if (live) {
    seg_state[segidx(b, seg, c, s)] = carry;
    seg_decay[segidx(b, seg, c, s)] = decay;
  }
}`;
}

/**
 * Backward main kernel. A workgroup owns (batch row, segment, channel group); per interval
 * (last first) it stages B and C once, then for each channel block of its group re-runs the
 * interval from its checkpoint (its states kept in a private array) and walks
 * it in reverse. Per TRB steps: per-channel sums over states (y for dz, du, dΔ) and per-state
 * sums over the block's channels (dB, dC, accumulated over blocks in workgroup memory).
 */
function backwardShader(spec: ScanSpec, plan: ScanPlan): string {
  const { states: n, hasD, hasZ, hasBias } = spec;
  const { cpg, ts, trb } = plan;
  const npad = odd(n), cpad = odd(cpg);
  const list: [("read" | "read_write"), string][] = [
    ["read", "u"],
    ["read", "delta"],
    ["read", "A"],
    ["read", "Bm"],
    ["read", "Cm"],
  ];
  if (hasD) list.push(["read", "Dv"]);
  if (hasZ) list.push(["read", "z"]);
  if (hasBias) list.push(["read", "delta_bias"]);
  list.push(
    ["read", "gout"],
    ["read", "ck"],
    ["read_write", "lam"],
    ["read_write", "du"],
    ["read_write", "ddelta"],
  );
  if (hasZ) list.push(["read_write", "dz"]);
  list.push(["read_write", "dB"], ["read_write", "dC"], ["read_write", "dpart"]);
  // Offsets of the five sum tiles in `part`.
  const chanTile = trb * cpg * npad, stateTile = trb * n * cpad;
  const PY = 0, PU = chanTile, PT = 2 * chanTile, PB = 3 * chanTile, PC = 3 * chanTile + stateTile;
  const partWords = 3 * chanTile + 2 * stateTile;
  const last = spec.channelsLast;
  const kinds = hasZ ? 3 : 2; // channel-task kinds: du, dΔ, and y for dz

  // One reverse step per r of a group of TRB steps (r is a constant: tile rows are fixed).
  const steps: string[] = [];
  for (let r = trb - 1; r >= 0; r--) {
    const ci = `(${r * cpg}u + cl) * NPAD + s`;
    const si = `(${r * n}u + s) * CPAD + cl`;
    steps.push(`{
          let k = j * TRB + ${r}u;
          let q = sQ[dbase + k];
          let bc = sBC[k * N + s];
          let dt = q.x;
          let uu = q.y;
          let gg = q.z;
          let bb = bc.x;
          let cc = bc.y;
          let hp = hist[k];
          let da = exp2(dt * a2);
          let hk = da * hp + dt * bb * uu;
          let lm = gg * cc + carry;
          ${hasZ ? `part[${PY}u + ${ci}] = cc * hk;` : ""}
          part[${PU}u + ${ci}] = lm * dt * bb;
          part[${PT}u + ${ci}] = lm * (bb * uu + a * da * hp);
          part[${PB}u + ${si}] = lm * dt * uu;
          part[${PC}u + ${si}] = gg * hk;
          dA_acc += lm * dt * da * hp;
          carry = da * lm;
        }`);
  }

  return /* wgsl */ `
${bind(list)}
${prelude(spec, plan)}
${staging(spec, plan, { B: true, u: true, factors: true })}
const TRB: u32 = ${trb}u;
const TC: u32 = ${trb * cpg}u;   // channel tasks per kind
var<workgroup> part: array<f32, ${partWords}>;
var<workgroup> accB: array<f32, ${ts * n}>;
var<workgroup> accC: array<f32, ${ts * n}>;

// (channel in block, step in group) of the i-th channel task, channels fastest when they are
// contiguous in memory.
fn task_channel(i: u32) -> vec2<u32> {
  ${last ? "return vec2<u32>(i % CPG, i / CPG);" : "return vec2<u32>(i / TRB, i % TRB);"}
}

// Sums of TRB steps (the j-th group of the interval), spread over every invocation. Channel
// tasks (du, dΔ and, with z, y for dz: one sum over states each) write their result and return
// the (dD, d deltaBias) terms; state tasks (dB, dC: one sum over channels each) add into
// accB/accC. Everything they read is in workgroup memory.
fn sums(j: u32, b: u32, cb: u32, t0: u32, len: u32, lid: u32) -> vec2<f32> {
  var ret = vec2<f32>(0.0, 0.0);
  for (var task = lid; task < ${kinds}u * TC + 2u * TRB * N; task += WG) {
    if (task < ${kinds}u * TC) {
      let kind = task / TC;
      let cr = task_channel(task % TC);
      let k = j * TRB + cr.y;
      let c2 = cb * CPG + cr.x;
      if (c2 < p.channels && k < len) {
        let tile = select(select(${PY}u, ${PT}u, kind == 1u), ${PU}u, kind == 0u);
        let base = tile + (cr.y * CPG + cr.x) * NPAD;
        var acc = 0.0;
        for (var q = 0u; q < N; q++) { acc += part[base + q]; }
        let g = didx(b, c2, t0 + k);
        let at = cr.x * TSP + k;
        if (kind == 0u) {
          ${hasD ? "acc += Dv[c2] * sQ[at].z;\n          ret.x = sQ[at].z * sQ[at].y;" : ""}
          du[g] = acc;
        } else if (kind == 1u) {
          ${spec.softplus ? "acc *= sS[at];" : ""}
          ddelta[g] = acc;
          ret.y = acc;
        }${
    hasZ
      ? ` else {
          ${hasD ? "acc += Dv[c2] * sQ[at].y;" : ""}
          dz[g] = acc * sQ[at].w;
        }`
      : ""
  }
      }
    } else {
      let i = task - ${kinds}u * TC;
      let r = i % TRB;
      let s2 = (i / TRB) % N;
      let k = j * TRB + r;
      let base = select(${PC}u, ${PB}u, i < TRB * N) + (r * N + s2) * CPAD;
      let nc = min(CPG, p.channels - cb * CPG);
      var acc = 0.0;
      for (var q = 0u; q < nc; q++) { acc += part[base + q]; }
      if (i < TRB * N) { accB[k * N + s2] += acc; } else { accC[k * N + s2] += acc; }
    }
  }
  return ret;
}

@compute @workgroup_size(${plan.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * p.gx;
  if (wg >= p.groups * p.batch * p.seg_count) { return; }
  let grp = wg % p.groups;
  let rest = wg / p.groups;
  let seg = rest % p.seg_count;
  let b = rest / p.seg_count;
  let cl = lid / N;
  let s = lid % N;
  let per = (p.cblocks + p.groups - 1u) / p.groups;
  let cb0 = grp * per;
  let cb1 = min(cb0 + per, p.cblocks);
  let m0 = seg * p.ips;
  let m1 = min(m0 + p.ips, p.intervals);
  let row = (b * p.segs + seg) * p.pcols;
  let dbase = cl * TSP;
  // This invocation's du task (index lid) and dΔ task (the one in [TC, 2·TC) it runs, if any)
  // in sums: their dD and d deltaBias terms go to fixed partial slots.
  let du_task = task_channel(lid);
  let d_slot = row + p.channels * N + du_task.y * p.channels;
  var dt_task_index = lid;
  while (dt_task_index < TC) { dt_task_index += WG; }
  let has_dt_task = dt_task_index < 2u * TC;
  let dt_task = task_channel(dt_task_index - TC);
  let bias_slot = row + p.channels * N + (TRB + dt_task.y) * p.channels;
  let out_base = grp * p.batch * N * p.length;
  for (var mm = m1; mm > m0; mm--) {
    let m = mm - 1u;
    let first = mm == m1;
    let t0 = m * TS;
    let len = min(TS, p.length - t0);
    workgroupBarrier();
    stage_states(b, t0, len, lid);
    for (var i = lid; i < TS * N; i += WG) {
      accB[i] = 0.0;
      accC[i] = 0.0;
    }
    for (var cb = cb0; cb < cb1; cb++) {
      workgroupBarrier();
      stage_channels(b, cb, t0, len, lid);
      workgroupBarrier();
      let c = cb * CPG + cl;
      let live = c < p.channels;
      var a = 0.0;
      var h = 0.0;
      var carry = 0.0;   // exp(Δ_{t+1}·A)·λ_{t+1}
      if (live) {
        a = A[c * N + s];
        h = ck[ckidx(b, m, c, s)];
        if (!first || seg + 1u < p.segs) { carry = lam[segidx(b, seg, c, s)]; }
      }
      // The interval's states h_{t-1}, re-run from the checkpoint.
      var hist: array<f32, ${ts}>;
      let a2 = a * LOG2E;
      for (var k = 0u; k < len; k++) {
        hist[k] = h;
        let q = sQ[dbase + k];
        h = exp2(q.x * a2) * h + q.x * sBC[k * N + s].x * q.y;
      }
      var dA_acc = 0.0;
      var dD_acc = 0.0;
      var dbias_acc = 0.0;
      for (var jj = (len + TRB - 1u) / TRB; jj > 0u; jj--) {
        let j = jj - 1u;
        ${steps.join("\n        ")}
        workgroupBarrier();
        let got = sums(j, b, cb, t0, len, lid);
        dD_acc += got.x;
        dbias_acc += got.y;
        workgroupBarrier();
      }
      if (live) {
        lam[segidx(b, seg, c, s)] = carry;
        let pa = row + c * N + s;
        if (first) { dpart[pa] = dA_acc; } else { dpart[pa] += dA_acc; }
      }
      let cd = cb * CPG + du_task.x;
      if (lid < TC && cd < p.channels) {
        if (first) { dpart[d_slot + cd] = dD_acc; } else { dpart[d_slot + cd] += dD_acc; }
      }
      let cs = cb * CPG + dt_task.x;
      if (has_dt_task && cs < p.channels) {
        if (first) { dpart[bias_slot + cs] = dbias_acc; } else { dpart[bias_slot + cs] += dbias_acc; }
      }
    }
    workgroupBarrier();
    for (var i = lid; i < TS * N; i += WG) {
      ${last ? "let t = i / N; let s2 = i % N;" : "let s2 = i / TS; let t = i % TS;"}
      if (t < len) {
        let g = out_base + nidx(b, s2, t0 + t);
        dB[g] = accB[t * N + s2];
        dC[g] = accC[t * N + s2];
      }
    }
  }
}`;
}

/** Adds the channel groups' partial dB (or dC): out[i] = Σ_g parts[g·n + i]. */
const SLICE_SUM = /* wgsl */ `
struct P { n: u32, slices: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * p.gx) * 256u + lid;
  if (i >= p.n) { return; }
  var s = 0.0;
  for (var g = 0u; g < p.slices; g++) { s += parts[g * p.n + i]; }
  out[i] = s;
}`;

/** Splits the summed parameter-gradient row into dA, dD and d deltaBias. */
function finishShader(hasD: boolean, hasBias: boolean, trb: number): string {
  const list: [("read" | "read_write"), string][] = [["read", "psum"], ["read_write", "dA"]];
  if (hasD) list.push(["read_write", "dD"]);
  if (hasBias) list.push(["read_write", "dbias"]);
  return /* wgsl */ `
struct P { channels: u32, states: u32 }
@group(0) @binding(0) var<uniform> p: P;
${bind(list)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let na = p.channels * p.states;
  if (i < na) { dA[i] = psum[i]; return; }
  let c = i - na;
  if (c >= p.channels) { return; }
  var sd = 0.0;
  var sb = 0.0;
  for (var r = 0u; r < ${trb}u; r++) {
    sd += psum[na + r * p.channels + c];
    sb += psum[na + (${trb}u + r) * p.channels + c];
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
    const max = { interval: 64, backwardSumSteps: 8, forwardSteps: 16 }[key] ?? Infinity;
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
  const { fw } = plan;
  const { segs, ips } = segmentsFor(
    plan,
    fw.threads * fw.cblocks * batch,
    options.tuning?.segments,
  );

  const needCk = save || segs > 1;
  const ck = Tensor.empty(
    needCk ? [batch, plan.intervals, channels, states] : [1],
    "f32",
    `${OP} checkpoints`,
  );
  const opt = (t: Tensor | undefined) => (t ? [t] : []);
  if (segs > 1) {
    // Local pass over every segment but the last, then the carry into the checkpoints.
    const segShape = [batch, segs, channels, states];
    const segState = Tensor.empty(segShape, "f32", OP);
    const segDecay = Tensor.empty(segShape, "f32", OP);
    const f = fold(fw.cblocks * batch * (segs - 1));
    launch(
      OP,
      forwardShader(spec, plan, true, false),
      params(spec, plan, { segs, seg_count: segs - 1, ips, gx: f.gx, cblocks: fw.cblocks }),
      [u, delta, A, B, ...opt(deltaBias), segState, segDecay],
      f.groups,
    );
    carry(spec, segs, segState, segDecay, ck, plan.intervals, ips, false);
    segState.dispose();
    segDecay.dispose();
  }
  const out = Tensor.empty(u.shape, "f32", OP);
  const f = fold(fw.cblocks * batch * segs);
  launch(
    OP,
    forwardShader(spec, plan, false, save),
    params(spec, plan, { segs, seg_count: segs, ips, gx: f.gx, cblocks: fw.cblocks }),
    [u, delta, A, B, C, ...opt(D), ...opt(z), ...opt(deltaBias), out, ck],
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
    (gout) => scanBackward(spec, plan, options, [u, delta, A, B, C], gout, ck),
    [ck],
  );
}

function carry(
  spec: ScanSpec,
  segs: number,
  segState: Tensor,
  segDecay: Tensor,
  out: Tensor,
  outM: number,
  outS: number,
  backward: boolean,
): void {
  const n = spec.batch * spec.channels * spec.states;
  const groups = Math.ceil(n / 64);
  const gy = Math.ceil(groups / 65535);
  launch(
    `${OP} carry`,
    CARRY,
    packParams([spec.batch, spec.channels, spec.states, segs, outM, outS, backward ? 1 : 0, n]),
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
): (Tensor | null)[] {
  const name = `${OP} backward`;
  const { batch, channels, states, hasD, hasZ, hasBias } = spec;
  const { D, z, deltaBias } = o;
  const opt = (t: Tensor | undefined) => (t ? [t] : []);
  const tuning = o.tuning ?? {};
  const groups = Math.min(plan.cblocks, tuning.channelGroups ?? 1);
  const { segs, ips } = segmentsFor(plan, plan.threads * groups * batch, tuning.segments);
  const segShape = [batch, segs, channels, states];
  const lam = Tensor.empty(segShape, "f32", name);
  if (segs > 1) {
    const segState = Tensor.empty(segShape, "f32", name);
    const segDecay = Tensor.empty(segShape, "f32", name);
    const f = fold(plan.cblocks * batch * (segs - 1));
    launch(
      name,
      backwardLocalShader(spec, plan),
      params(spec, plan, { segs, seg_count: segs - 1, seg_offset: 1, ips, gx: f.gx }),
      [gout, delta, A, C, ...opt(z), ...opt(deltaBias), segState, segDecay],
      f.groups,
    );
    carry(spec, segs, segState, segDecay, lam, segs, 1, true);
    segState.dispose();
    segDecay.dispose();
  }
  const du = Tensor.empty(u.shape, "f32", name);
  const ddelta = Tensor.empty(u.shape, "f32", name);
  const dz = hasZ ? Tensor.empty(u.shape, "f32", name) : undefined;
  const dB = Tensor.empty(groups > 1 ? [groups, ...B.shape] : B.shape, "f32", name);
  const dC = Tensor.empty(groups > 1 ? [groups, ...C.shape] : C.shape, "f32", name);
  const pcols = channels * states + 2 * plan.trb * channels;
  const dpart = Tensor.empty([batch * segs, pcols], "f32", name);
  const f = fold(groups * batch * segs);
  launch(
    name,
    backwardShader(spec, plan),
    params(spec, plan, { segs, seg_count: segs, ips, groups, gx: f.gx, pcols }),
    [
      u,
      delta,
      A,
      B,
      C,
      ...opt(D),
      ...opt(z),
      ...opt(deltaBias),
      gout,
      ck,
      lam,
      du,
      ddelta,
      ...opt(dz),
      dB,
      dC,
      dpart,
    ],
    f.groups,
  );
  lam.dispose();
  const total = (t: Tensor, shape: readonly number[]) => {
    if (groups === 1) return t;
    const sum = Tensor.empty(shape, "f32", name);
    const n = sum.size, g = fold(Math.ceil(n / 256));
    launch(name, SLICE_SUM, packParams([n, groups, g.gx]), [t, sum], g.groups);
    t.dispose();
    return sum;
  };
  const psum = sumLeading(dpart, [pcols]);
  dpart.dispose();
  const dA = Tensor.empty(A.shape, "f32", name);
  const dD = hasD ? Tensor.empty([channels], "f32", name) : undefined;
  const dbias = hasBias ? Tensor.empty([channels], "f32", name) : undefined;
  launch(
    name,
    finishShader(hasD, hasBias, plan.trb),
    packParams([channels, states]),
    [psum, dA, ...opt(dD), ...opt(dbias)],
    [Math.ceil((channels * states + channels) / 64)],
  );
  psum.dispose();
  return [
    du,
    ddelta,
    dA,
    total(dB, B.shape),
    total(dC, C.shape),
    ...opt(dD),
    ...opt(dz),
    ...opt(dbias),
  ];
}
