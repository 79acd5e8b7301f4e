/**
 * The selective scan of Mamba (mamba_ssm `selective_scan_fn` semantics), forward and backward.
 *
 * Per batch row b and channel c, with Δ_t = softplus(delta[b,c,t] + deltaBias[c]) (softplus
 * optional):
 *
 *     h_t[s] = exp(Δ_t·A[c,s])·h_{t−1}[s] + Δ_t·B[b,s,t]·u[b,c,t]        (h_{−1} = 0)
 *     y_t    = Σ_s C[b,s,t]·h_t[s] + D[c]·u[b,c,t],    out = y · SiLU(z)  (z optional)
 *
 * Work layout. One invocation owns one (batch, channel, state) recurrence; a workgroup holds CPG
 * channels × n states of one batch row. Time runs in intervals of TS steps: B_t and C_t of the
 * interval (shared by every channel of the row) and Δ, u of the workgroup's channels are staged
 * in workgroup memory, the steps run without barriers, and the n-sums (y, and in the backward du
 * and dΔ) and the channel sums (dB, dC) are done in workgroup memory once per few steps, never
 * per step. The state entering every interval is saved as a checkpoint (b·d·n·l/TS floats, not
 * the b·d·n·l history); the backward re-runs each interval from its checkpoint, keeps that
 * interval's states in a private array and walks it in reverse. Where batch × channels alone cannot
 * fill the GPU, the length is split into segments scanned in parallel: a local pass gives each
 * segment's end state from zero and its decay Π exp(Δ·A), a short pass carries the true states
 * across segments (the recurrence is linear), and the main pass starts every segment from its
 * true state. The backward's adjoint recurrence λ_t = C_t·gy_t + exp(Δ_{t+1}·A)·λ_{t+1} is split
 * the same way. Parameter gradients (dA, dD, d deltaBias) are per-row partial sums reduced by
 * `sumLeading`; nothing uses atomics, so every result is deterministic.
 *
 * Floor on an H200 at batch 2048, d 128, l 200, n 32: b·d·l·n = 1.68e9 state steps. Forward:
 * one exp each (≈ 4e12 exp/s on the special-function units → 0.4 ms) and ≈ 1 GB of u, Δ, z and
 * out traffic (0.25 ms at 4 TB/s), plus checkpoints (b·d·n·l/TS · 4 B = 0.2 GB at TS 32). The
 * backward does two exps per state step (re-run and reverse) and moves ≈ 2.5 GB, ≈ 1.5 ms. The
 * workgroup-memory traffic of the sums (about five words per state step in the backward) is the
 * practical limit above these floors.
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
/** Most channels per workgroup (small n would otherwise give very wide workgroups). */
const MAX_CHANNELS_PER_GROUP = 32;
/** Largest state size: one invocation per state, and a workgroup holds at least one channel. */
export const SELECTIVE_SCAN_MAX_STATES = MAX_THREADS;
/** Workgroups wanted in flight on a discrete GPU before the length is split into segments. */
const TARGET_WORKGROUPS = 2048;

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

/** Workgroup shape and time blocking, fixed per (n, d, device). */
interface ScanPlan {
  /** Channels per workgroup. */
  cpg: number;
  /** Invocations per workgroup: cpg × n. */
  threads: number;
  /** Steps per interval (the checkpoint spacing). */
  ts: number;
  /** Steps per n-sum in the forward. */
  trf: number;
  /** Steps per sum in the backward. */
  trb: number;
  /** Intervals covering the length. */
  intervals: number;
  /** Channel blocks: ceil(d / cpg). */
  cblocks: number;
}

const odd = (v: number) => (v % 2 === 0 ? v + 1 : v);

/** Workgroup-memory words of the forward and backward kernels. */
function sharedWords(n: number, cpg: number, ts: number, trf: number, trb: number) {
  const tsp = odd(ts), npad = odd(n), cpad = odd(cpg);
  return {
    forward: 2 * ts * n + 2 * cpg * tsp + trf * cpg * npad,
    backward: 4 * ts * n + 3 * cpg * tsp + trb * (3 * cpg * npad + 2 * n * cpad),
  };
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
      if (t <= trbCap && sharedWords(states, cpg, ts, 1, t).backward <= budget) {
        trb = t;
        break;
      }
    }
    if (!fixed && (trb === 0 || (trb < Math.min(2, trbCap) && ts > 4))) continue;
    if (trb === 0) break;
    let trf = 1;
    for (const t of [32, 16, 8, 4, 2, 1]) {
      if (t <= ts && sharedWords(states, cpg, ts, t, trb).forward <= budget) {
        trf = t;
        break;
      }
    }
    return {
      cpg,
      threads: cpg * states,
      ts,
      trf,
      trb,
      intervals: Math.ceil(length / ts),
      cblocks: Math.ceil(channels / cpg),
    };
  }
  throw new RangeError(
    `${OP}: n = ${states} states with ${cpg} channels per workgroup do not fit this device's ` +
      `workgroup memory (${info.maxWorkgroupBytes} bytes; tuning ${JSON.stringify(tuning)})`,
  );
}

/** Segments and intervals per segment for a pass that already has `workgroups` per segment. */
function segmentsFor(plan: ScanPlan, workgroups: number, wanted?: number) {
  const auto = runtime().info.isCpu ? 1 : Math.ceil(TARGET_WORKGROUPS / workgroups);
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

/** Declarations every scan kernel shares. */
function prelude(spec: ScanSpec, plan: ScanPlan): string {
  return /* wgsl */ `
struct P { ${FIELDS.map((f) => `${f}: u32`).join(", ")} }
@group(0) @binding(0) var<uniform> p: P;
const N: u32 = ${spec.states}u;
const CPG: u32 = ${plan.cpg}u;
const WG: u32 = ${plan.threads}u;
const TS: u32 = ${plan.ts}u;
const TSP: u32 = ${odd(plan.ts)}u;      // row pitch of [channel][step] tiles (odd: no bank clash)
const NPAD: u32 = ${odd(spec.states)}u;  // row pitch of per-channel sums over states
const CPAD: u32 = ${odd(plan.cpg)}u;     // row pitch of per-state sums over channels
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
  want: { B: boolean; C: boolean; u: boolean; gy: boolean },
): string {
  const last = spec.channelsLast;
  const stateDecls = [want.B ? "sB" : "", want.C ? "sC" : ""].filter(Boolean);
  const chanDecls = ["sD", want.u ? "sU" : "", want.gy ? "sG" : ""].filter(Boolean);
  return /* wgsl */ `
${stateDecls.map((v) => `var<workgroup> ${v}: array<f32, ${plan.ts * spec.states}>;`).join("\n")}
${chanDecls.map((v) => `var<workgroup> ${v}: array<f32, ${plan.cpg * odd(plan.ts)}>;`).join("\n")}
fn stage_states(b: u32, t0: u32, len: u32, lid: u32) {
  for (var i = lid; i < TS * N; i += WG) {
    ${last ? "let t = i / N; let s = i % N;" : "let s = i / TS; let t = i % TS;"}
    ${stateDecls.map((v) => `var ${v}v = 0.0;`).join(" ")}
    if (t < len) {
      let g = nidx(b, s, t0 + t);
      ${stateDecls.map((v) => `${v}v = ${v === "sB" ? "Bm" : "Cm"}[g];`).join(" ")}
    }
    ${stateDecls.map((v) => `${v}[t * N + s] = ${v}v;`).join(" ")}
  }
}
fn stage_channels(b: u32, cb: u32, t0: u32, len: u32, lid: u32) {
  for (var i = lid; i < CPG * TS; i += WG) {
    ${last ? "let cl = i % CPG; let t = i / CPG;" : "let cl = i / TS; let t = i % TS;"}
    let c = cb * CPG + cl;
    var dt = 0.0;
    ${want.u ? "var uu = 0.0;" : ""}
    ${want.gy ? "var gg = 0.0;" : ""}
    if (c < p.channels && t < len) {
      let g = didx(b, c, t0 + t);
      dt = step_size(g, c);
      ${want.u ? "uu = u[g];" : ""}
      ${want.gy ? `gg = gout[g]${spec.hasZ ? " * z[g] * sigmoid_(z[g])" : ""};` : ""}
    }
    sD[cl * TSP + t] = dt;
    ${want.u ? "sU[cl * TSP + t] = uu;" : ""}
    ${want.gy ? "sG[cl * TSP + t] = gg;" : ""}
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
 * Forward kernel. `local`: scan each segment from a zero state and write its end state and
 * decay (no output). Otherwise: scan from the true segment start, write the output and, with
 * `save`, the checkpoint entering every interval.
 */
function forwardShader(spec: ScanSpec, plan: ScanPlan, local: boolean, save: boolean): string {
  const ck = !local && save;
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
  const tr = plan.trf;
  return /* wgsl */ `
${bind(list)}
${prelude(spec, plan)}
${staging(spec, plan, { B: true, C: !local, u: true, gy: false })}
const TR: u32 = ${tr}u;
${local ? "" : `var<workgroup> part: array<f32, ${tr * plan.cpg * odd(spec.states)}>;`}
@compute @workgroup_size(${plan.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
${DECODE_BLOCK}
  var h = 0.0;
  ${local ? "var decay = 1.0;" : "if (seg > 0u && live) { h = ck[ckidx(b, m0, c, s)]; }"}
  for (var m = m0; m < m1; m++) {
    let t0 = m * TS;
    let len = min(TS, p.length - t0);
    ${ck ? "if (live) { ck[ckidx(b, m, c, s)] = h; }" : ""}
    workgroupBarrier();
    stage_states(b, t0, len, lid);
    stage_channels(b, cb, t0, len, lid);
    workgroupBarrier();
    let subs = (len + TR - 1u) / TR;
    for (var j = 0u; j < subs; j++) {
      for (var r = 0u; r < TR; r++) {
        let k = j * TR + r;
        let dt = sD[cl * TSP + k];
        let da = exp(dt * a);
        h = da * h + dt * sB[k * N + s] * sU[cl * TSP + k];
        ${local ? "decay *= da;" : "part[(r * CPG + cl) * NPAD + s] = sC[k * N + s] * h;"}
      }
      ${local ? "" : forwardSums(spec)}
    }
  }
  ${
    local
      ? `if (live) {
    seg_state[segidx(b, seg, c, s)] = h;
    seg_decay[segidx(b, seg, c, s)] = decay;
  }`
      : ""
  }
}`;
}

/** The forward's per-channel sums over states for TR steps: y, then D·u and the gate. */
function forwardSums(spec: ScanSpec): string {
  const last = spec.channelsLast;
  return /* wgsl */ `workgroupBarrier();
      for (var i = lid; i < TR * CPG; i += WG) {
        ${last ? "let cl2 = i % CPG; let r = i / CPG;" : "let cl2 = i / TR; let r = i % TR;"}
        let k = j * TR + r;
        let c2 = cb * CPG + cl2;
        if (c2 < p.channels && k < len) {
          var y = 0.0;
          let base = (r * CPG + cl2) * NPAD;
          for (var q = 0u; q < N; q++) { y += part[base + q]; }
          let g = didx(b, c2, t0 + k);
          ${spec.hasD ? "y += Dv[c2] * sU[cl2 * TSP + k];" : ""}
          ${spec.hasZ ? "let zz = z[g]; y *= zz * sigmoid_(zz);" : ""}
          out[g] = y;
        }
      }
      workgroupBarrier();`;
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
${staging(spec, plan, { B: false, C: true, u: false, gy: true })}
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
    for (var kk = len; kk > 0u; kk--) {
      let k = kk - 1u;
      let da = exp(sD[cl * TSP + k] * a);
      carry = da * (sG[cl * TSP + k] * sC[k * N + s] + carry);
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

  // One reverse step per r of a group of TRB steps (r is a constant: tile rows are fixed).
  const steps: string[] = [];
  for (let r = trb - 1; r >= 0; r--) {
    const ci = `(${r * cpg}u + cl) * NPAD + s`;
    const si = `(${r * n}u + s) * CPAD + cl`;
    steps.push(`{
          let k = j * TRB + ${r}u;
          let dt = sD[dbase + k];
          let uu = sU[dbase + k];
          let gg = sG[dbase + k];
          let bb = sB[k * N + s];
          let cc = sC[k * N + s];
          let hp = hist[k];
          let da = exp(dt * a);
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
${staging(spec, plan, { B: true, C: true, u: true, gy: true })}
const TRB: u32 = ${trb}u;
var<workgroup> part: array<f32, ${partWords}>;
var<workgroup> accB: array<f32, ${ts * n}>;
var<workgroup> accC: array<f32, ${ts * n}>;

// Sums of TRB steps (j-th group of the interval). Channel tasks (one per invocation from the
// front) finish du, dΔ, dz and return (dD, d deltaBias) terms; state tasks (from the back) add
// the block's channel sums into accB/accC.
fn sums(j: u32, b: u32, cb: u32, t0: u32, len: u32, lid: u32) -> vec2<f32> {
  var ret = vec2<f32>(0.0, 0.0);
  if (lid < TRB * CPG) {
    ${last ? "let cl2 = lid % CPG; let r = lid / CPG;" : "let cl2 = lid / TRB; let r = lid % TRB;"}
    let k = j * TRB + r;
    let c2 = cb * CPG + cl2;
    if (c2 < p.channels && k < len) {
      let base = (r * CPG + cl2) * NPAD;
      var y = 0.0;
      var dus = 0.0;
      var dts = 0.0;
      for (var q = 0u; q < N; q++) {
        ${hasZ ? `y += part[${PY}u + base + q];` : ""}
        dus += part[${PU}u + base + q];
        dts += part[${PT}u + base + q];
      }
      let g = didx(b, c2, t0 + k);
      let gg = sG[cl2 * TSP + k];
      ${
    hasD
      ? `let dd = Dv[c2];
      let uu = sU[cl2 * TSP + k];
      y += dd * uu;
      dus += dd * gg;
      ret.x = gg * uu;`
      : ""
  }
      du[g] = dus;
      ${
    hasZ
      ? `let zz = z[g];
      let sz = sigmoid_(zz);
      dz[g] = gout[g] * y * sz * (1.0 + zz * (1.0 - sz));`
      : ""
  }
      ${
    spec.softplus
      ? `let ddt = dts * sigmoid_(delta[g]${hasBias ? " + delta_bias[c2]" : ""});`
      : "let ddt = dts;"
  }
      ddelta[g] = ddt;
      ret.y = ddt;
    }
  }
  let sl = WG - 1u - lid;
  if (sl < TRB * N) {
    let r = sl % TRB;
    let s2 = sl / TRB;
    let k = j * TRB + r;
    let base = (r * N + s2) * CPAD;
    let nc = min(CPG, p.channels - cb * CPG);
    var sb = 0.0;
    var sc = 0.0;
    for (var q = 0u; q < nc; q++) {
      sb += part[${PB}u + base + q];
      sc += part[${PC}u + base + q];
    }
    accB[k * N + s2] += sb;
    accC[k * N + s2] += sc;
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
  // This invocation's channel task (see sums), for its dD and d deltaBias slots.
  ${last ? "let tcl = lid % CPG; let tr = lid / CPG;" : "let tcl = lid / TRB; let tr = lid % TRB;"}
  let dslot = row + p.channels * N + tr * p.channels;
  let bias_slot = dslot + TRB * p.channels;
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
      for (var k = 0u; k < len; k++) {
        hist[k] = h;
        let dt = sD[dbase + k];
        h = exp(dt * a) * h + dt * sB[k * N + s] * sU[dbase + k];
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
      let c3 = cb * CPG + tcl;
      if (lid < TRB * CPG && c3 < p.channels) {
        if (first) {
          dpart[dslot + c3] = dD_acc;
          dpart[bias_slot + c3] = dbias_acc;
        } else {
          dpart[dslot + c3] += dD_acc;
          dpart[bias_slot + c3] += dbias_acc;
        }
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
    const power = key === "interval" || key === "backwardSumSteps";
    const max = key === "interval" ? 64 : key === "backwardSumSteps" ? 8 : Infinity;
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
  const { segs, ips } = segmentsFor(plan, plan.cblocks * batch, options.tuning?.segments);

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
    const f = fold(plan.cblocks * batch * (segs - 1));
    launch(
      OP,
      forwardShader(spec, plan, true, false),
      params(spec, plan, { segs, seg_count: segs - 1, ips, gx: f.gx }),
      [u, delta, A, B, ...opt(deltaBias), segState, segDecay],
      f.groups,
    );
    carry(spec, segs, segState, segDecay, ck, plan.intervals, ips, false);
    segState.dispose();
    segDecay.dispose();
  }
  const out = Tensor.empty(u.shape, "f32", OP);
  const f = fold(plan.cblocks * batch * segs);
  launch(
    OP,
    forwardShader(spec, plan, false, save),
    params(spec, plan, { segs, seg_count: segs, ips, gx: f.gx }),
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
  const { segs, ips } = segmentsFor(plan, batch, tuning.segments);
  const groups = Math.min(plan.cblocks, tuning.channelGroups ?? 1);
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
    const s = sumLeading(t, shape);
    t.dispose();
    return s;
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
