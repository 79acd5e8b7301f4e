/**
 * The backward of the scan read at one step per row (`selectiveScanAt`) in one kernel that runs
 * forward in time, re-scanning the states from zero: no checkpoints, no adjoint pass.
 *
 * With the output read only at step P of a row, the adjoint has a closed form: λ_t = C_P·gy ·
 * exp(A·R_t), R_t = Σ_{k=t+1..P} Δ_k (zero past P). So λ at any step is one exponential of a
 * per-channel suffix sum, and the states h_t can be re-run forward beside it. Per step and state:
 *
 *     v = λ_t·exp(Δ_t·A)·h_{t−1}            (= λ_{t−1}·h_{t−1})
 *     dA += Δ_t·v,   dΔ_t = softplus'·(u_t·Σ_s λ_t·B_t + Σ_s A·v),   du_t = Δ_t·Σ_s λ_t·B_t
 *     dB_t = Σ_c λ_t·Δ_t·u_t,               dC_P = Σ_c gy·h_P
 *
 * One workgroup owns a batch row and all its channels (one invocation per channel and ≤ 32 states,
 * as the forward) and walks the row one step at a time, so dB's sum over channels is a workgroup
 * sum and is written whole, over B where the caller allows. Each state's column of λ·Δu is summed
 * over the channels in slices by all invocations, then the slices added (one invocation per column,
 * or two steps staged at a time, measured slower: `bench/selective_scan.ts` says by how much).
 * Numerics: R_t is never a difference of two long sums. The forward, which forms every Δ anyway,
 * sums each interval's Δ (TS steps) and, at the row's position, turns those sums into suffix sums
 * from each interval's first step (a (batch, d, intervals) tensor); the re-scan subtracts from it
 * the sum of the interval's steps so far. λ_t's relative error is then that of a sum of the steps'
 * Δ (times |A|), as the adjoint recurrence's is that of a product of as many exponentials
 * (`tests/mamba4rec_prefix_scan.test.ts` holds both to float64 alike).
 *
 * It applies where one length segment fills the GPU, the whole row's channels fit a workgroup and
 * the device allows its storage bindings ({@link rescanShape}); elsewhere `selectiveScanAt` keeps
 * the adjoint and state passes.
 *
 * @module
 */
import { launch } from "../../core/launch.ts";
import { runtime } from "../../core/runtime.ts";
import { Tensor } from "../../core/tensor.ts";
import { foldWorkgroups } from "../../wgsl/grid.ts";
import { listed, OP, type ScanSpec } from "./options.ts";
import { odd, type ScanPlan } from "./plan.ts";
import { bind, type Binding, prelude, scanParams, STOP_CODE, STOP_DECL } from "./prelude.ts";
import type { ScanTensors } from "./channel_major.ts";
import type { BackwardParts } from "./finish.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/** Most invocations of a re-scan workgroup (a row's channels × invocations per channel). */
const RESCAN_THREADS = 256;

/** Workgroup of the re-scan backward: one batch row, every channel, one step at a time. */
export interface RescanShape {
  /** Invocations per channel (the forward's, ceil(n / 32)). */
  tpc: number;
  /** States per invocation. */
  spt: number;
  /** Invocations per workgroup: channels × tpc. */
  threads: number;
  /** Invocations summing each state's column of the step's λ·Δu, each over a slice of channels. */
  split: number;
}

/** Workgroup-memory words of a re-scan workgroup. */
function rescanWords(channels: number, np: number, threads: number, split: number): number {
  return 2 * np + 4 * channels + 2 * threads + channels * odd(np) + split * np;
}

/**
 * The re-scan's workgroup for a plan, or undefined where a row's channels do not fit one
 * workgroup (invocations or workgroup memory) or its bindings exceed the device's storage-buffer
 * limit: the caller then runs the adjoint and state passes.
 */
export function rescanShape(spec: ScanSpec, plan: ScanPlan): RescanShape | undefined {
  const info = runtime().info;
  const { tpc, spt } = plan.ch;
  const threads = spec.channels * tpc;
  if (threads > Math.min(RESCAN_THREADS, info.maxInvocations)) return undefined;
  if (rescanBindings(spec).length > info.maxStorageBuffers) return undefined;
  const np = tpc * spt;
  const split = Math.max(1, Math.floor(threads / np));
  const words = rescanWords(spec.channels, np, threads, split);
  return words <= Math.floor(info.maxWorkgroupBytes / 4) ? { tpc, spt, threads, split } : undefined;
}

/** Storage bindings of the re-scan kernel, in binding order. */
function rescanBindings(spec: ScanSpec): Binding[] {
  const list: Binding[] = [["read", "gout"], ["read", "delta"], ["read", "u"], ["read", "A"]];
  const inPlace = spec.gradsOverBC ? "read_write" : "read";
  list.push([inPlace, "Bm"], [inPlace, "Cm"]);
  if (spec.hasD) list.push(["read", "Dv"]);
  if (spec.hasZ) list.push(["read", "z"], ["read", "ysave"]);
  if (spec.hasBias) list.push(["read", "delta_bias"]);
  if (spec.deltaRank > 0) list.push(["read", "delta_weight"]);
  list.push(["read", "suffix"], ["read_write", "du"], ["read_write", "ddelta"]);
  if (spec.hasZ) list.push(["read_write", "dz"]);
  if (!spec.gradsOverBC) list.push(["read_write", "dB"], ["read_write", "dC"]);
  list.push(["read_write", "apart"], ["read_write", "spart"], ["read", "last", "i32"]);
  return list;
}

/** The WGSL of the re-scan kernel. */
const rescanShader = shaderGenerator("selectiveScan rescan", rescanShaderSource);

function rescanShaderSource(spec: ScanSpec, plan: ScanPlan, shape: RescanShape): string {
  const { tpc, spt, threads, split } = shape;
  const np = tpc * spt;
  const J = Array.from({ length: spt }, (_, j) => j);
  const own = (j: number) => `s0 + ${j}u < N`;
  const [gradB, gradC] = spec.gradsOverBC ? ["Bm", "Cm"] : ["dB", "dC"];
  // The gate at the position: the gradient reaching y, and z's own gradient.
  const gated = spec.hasZ
    ? `fn gated(b: u32, c: u32, g: u32) -> vec2<f32> {
  let go = gout[b * p.channels + c];
  let zz = z[g];
  let sz = sigmoid_(zz);
  return vec2<f32>(go * zz * sz, go * ysave[b * p.channels + c] * sz * (1.0 + zz * (1.0 - sz)));
}`
    : `fn gated(b: u32, c: u32, g: u32) -> vec2<f32> {
  return vec2<f32>(gout[b * p.channels + c], 0.0);
}`;
  const init = J.map((j) =>
    `var h${j} = 0.0;
  var a${j} = 0.0;
  var dA${j} = 0.0;
  if (${own(j)}) { a${j} = A[c * N + s0 + ${j}u] * LOG2E; }`
  ).join("\n  ");
  const step = J.map((j) =>
    `{
      let bj = sB[s0 + ${j}u];
      let da = exp2(ch.x * a${j});
      let lam = gy * sCP[s0 + ${j}u] * exp2(a${j} * r);
      let v = lam * da * h${j};
      dA${j} += ch.x * v;
      sv += a${j} * v;
      sl += lam * bj;
      sDB[c * NPAD + s0 + ${j}u] = lam * ch.z;
      h${j} = da * h${j} + ch.z * bj;
    }`
  ).join("\n    ");
  const stateAtPosition = J.map((j) => `sDB[c * NPAD + s0 + ${j}u] = gy * h${j};`).join("\n  ");
  const writeDA = J.map((j) =>
    `if (${own(j)}) { spart[(b * p.channels + c) * N + s0 + ${j}u] = dA${j}; }`
  ).join("\n  ");
  const skip = spec.hasD ? " + Dv[cl] * gg.x" : "";
  const dzWrite = spec.hasZ ? "dz[g] = gg.y;" : "";
  const dzZero = spec.hasZ ? "dz[g] = 0.0;" : "";
  const tail = (width: string, name: string) =>
    spec.channelsLast
      ? `let ${name} = i % ${width}; let t = stop + i / ${width};`
      : `let ${name} = i / (p.length - stop); let t = stop + i % (p.length - stop);`;
  return /* wgsl */ `
${bind(rescanBindings(spec))}
${prelude(spec, plan)}
const TPC: u32 = ${tpc}u;
const NP: u32 = ${np}u;
const NPAD: u32 = ${odd(np)}u;
const CH: u32 = ${spec.channels}u;
const WG: u32 = ${threads}u;
const SPLIT: u32 = ${split}u;
const SLICE: u32 = ${Math.ceil(spec.channels / split)}u;
const LN2: f32 = 0.6931471805599453;
var<workgroup> sB: array<f32, ${np}>;                 // B of the step
var<workgroup> sCP: array<f32, ${np}>;                // C at the position
var<workgroup> sCh: array<vec4<f32>, ${spec.channels}>; // per channel: (Δ, u, Δu, softplus')
var<workgroup> sY: array<vec2<f32>, ${threads}>;      // per invocation: (Σ λ·B, Σ a·v)
var<workgroup> sDB: array<f32, ${
    spec.channels * odd(np)
  }>; // [channel][state]: λ·Δu (at the end gy·h)
var<workgroup> sPart: array<f32, ${split * np}>;      // [slice][state]: sums of sDB over a slice
${STOP_DECL}
${gated}
// Sums over the channels of sDB's columns, SPLIT slices per column, into sPart.
fn slice_sums(lid: u32) {
  for (var i = lid; i < SPLIT * NP; i += WG) {
    let s = i % NP;
    let c1 = min(CH, (i / NP + 1u) * SLICE);
    var cl = (i / NP) * SLICE;
    var v = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    for (; cl + 3u < c1; cl += 4u) {
      let o = cl * NPAD + s;
      v += vec4<f32>(sDB[o], sDB[o + NPAD], sDB[o + 2u * NPAD], sDB[o + 3u * NPAD]);
    }
    for (; cl < c1; cl++) { v.x += sDB[cl * NPAD + s]; }
    sPart[i] = (v.x + v.y) + (v.z + v.w);
  }
}
fn column_sum(s: u32) -> f32 {
  var v = 0.0;
  for (var k = 0u; k < SPLIT; k++) { v += sPart[k * NP + s]; }
  return v;
}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = wid.x + wid.y * p.gx;
  if (b >= p.batch) { return; }
  ${STOP_CODE}
  let c = lid / TPC;
  let q = lid % TPC;
  let s0 = q * ${spt}u;
  for (var s = lid; s < NP; s += WG) {
    var v = 0.0;
    if (s < N) { v = Cm[nidx(b, s, stop - 1u)]; }
    sCP[s] = v;
  }
  let gy = gated(b, c, didx(b, c, stop - 1u)).x;
  // Σ Δ from the first step of every interval up to the position (the forward's).
  let srow = (b * p.channels + c) * p.intervals;
  ${init}
  var dD_acc = 0.0;
  var dbias_acc = 0.0;
  var ahead = 0.0;
  var taken = 0.0;
  for (var t = 0u; t < stop; t++) {
    workgroupBarrier();
    for (var s = lid; s < NP; s += WG) {
      var v = 0.0;
      if (s < N) { v = Bm[nidx(b, s, t)]; }
      sB[s] = v;
    }
    for (var cl = lid; cl < CH; cl += WG) {
      let g = didx(b, cl, t);
      let ds = step_size(g, cl);
      let uu = u[g];
      sCh[cl] = vec4<f32>(ds.x, uu, ds.x * uu, ds.y);
    }
    workgroupBarrier();
    let ch = sCh[c];
    // R_t: the interval's suffix sum less the sum of its steps up to t (zero at the position).
    if (t % TS == 0u) {
      ahead = suffix[srow + t / TS];
      taken = 0.0;
    }
    taken += ch.x;
    let r = select(max(ahead - taken, 0.0), 0.0, t + 1u == stop);
    var sl = 0.0;
    var sv = 0.0;
    ${step}
    sY[lid] = vec2<f32>(sl, sv);
    dbias_acc += ch.w * (ch.y * sl + LN2 * sv);
    if (q == 0u && t + 1u == stop) { dD_acc = gy * ch.y; }
    workgroupBarrier();
    for (var cl = lid; cl < CH; cl += WG) {
      var sum = vec2<f32>(0.0, 0.0);
      for (var k = 0u; k < TPC; k++) { sum += sY[cl * TPC + k]; }
      let v = sCh[cl];
      let g = didx(b, cl, t);
      var gg = vec2<f32>(0.0, 0.0);
      if (t + 1u == stop) { gg = gated(b, cl, g); }
      du[g] = v.x * sum.x${skip};
      ddelta[g] = v.w * (v.y * sum.x + LN2 * sum.y);
      ${dzWrite}
    }
    slice_sums(lid);
    workgroupBarrier();
    for (var s = lid; s < N; s += WG) {
      let g = nidx(b, s, t);
      ${gradB}[g] = column_sum(s);
      if (t + 1u < stop) { ${gradC}[g] = 0.0; }
    }
  }
  // dC at the position: Σ over channels of gy·h_P.
  workgroupBarrier();
  ${stateAtPosition}
  workgroupBarrier();
  slice_sums(lid);
  workgroupBarrier();
  for (var s = lid; s < N; s += WG) { ${gradC}[nidx(b, s, stop - 1u)] = column_sum(s); }
  // Past the position nothing is read: every gradient there is zero.
  for (var i = lid; i < (p.length - stop) * CH; i += WG) {
    ${tail("CH", "cl")}
    let g = didx(b, cl, t);
    du[g] = 0.0;
    ddelta[g] = 0.0;
    ${dzZero}
  }
  for (var i = lid; i < (p.length - stop) * N; i += WG) {
    ${tail("N", "s")}
    let g = nidx(b, s, t);
    ${gradB}[g] = 0.0;
    ${gradC}[g] = 0.0;
  }
  // Row partials: [dD | d deltaBias] per (channel, invocation of the channel), dA per state.
  let base = b * 2u * CH * TPC + lid;
  apart[base] = dD_acc;
  apart[base + CH * TPC] = dbias_acc;
  ${writeDA}
}`;
}

/**
 * Launches the re-scan backward of `selectiveScanAt` for the (batch, d) gradient `gout` at the
 * rows' positions, with `ysave` (y before the gate at the positions) where z is given and the
 * forward's suffix sums of Δ, (batch, d, intervals): from each interval's first step to the
 * row's position.
 */
export function rescanBackward(
  spec: ScanSpec,
  plan: ScanPlan,
  shape: RescanShape,
  x: ScanTensors,
  gout: Tensor,
  ysave: Tensor | undefined,
  suffix: Tensor,
): BackwardParts {
  const name = `${OP} backward`;
  const { u, delta, A, B, C, D, z, deltaBias, deltaWeight, positions } = x;
  if (!positions) throw new Error(`${OP}: the re-scan backward needs the rows' positions`);
  const { batch, channels, states } = spec;
  const inPlace = spec.gradsOverBC;
  const du = Tensor.empty(u.shape, "f32", name);
  const ddelta = Tensor.empty(u.shape, "f32", name);
  const dz = spec.hasZ ? Tensor.empty(u.shape, "f32", name) : undefined;
  const dB = inPlace ? new Tensor(B.storage, B.shape) : Tensor.empty(B.shape, "f32", name);
  const dC = inPlace ? new Tensor(C.storage, C.shape) : Tensor.empty(C.shape, "f32", name);
  const adj = Tensor.empty([batch, 2 * channels * shape.tpc], "f32", name);
  const spart = Tensor.empty([batch, channels * states], "f32", name);
  const groups = foldWorkgroups(batch);
  launch(
    `${name} (re-scan)`,
    rescanShader(spec, plan, shape),
    scanParams(spec, plan, { gx: groups[0] }),
    [
      gout,
      delta,
      u,
      A,
      B,
      C,
      ...listed(D),
      ...listed(z),
      ...(z ? [ysave!] : []),
      ...listed(deltaBias),
      ...listed(deltaWeight),
      suffix,
      du,
      ddelta,
      ...listed(dz),
      ...(inPlace ? [] : [dB, dC]),
      adj,
      spart,
      positions,
    ],
    groups,
  );
  return { du, ddelta, dz, dB, dC, adj, spart };
}
