/**
 * The channel-major kernels of the selective scan and their launchers: one invocation per
 * (batch, channel, group of ≤ 32 states), the states (or adjoints) and exp2-scaled A in
 * registers, the per-state code generated unrolled. Per block of FS steps the workgroup stages
 * (B, C) for its batch row and four values per channel and step, runs the steps (forward in time
 * for the forward, backward for the adjoint), then writes the per-channel results coalesced.
 *
 * - forward: h_t = exp(ΔA)·h + Δu·B, y = Σ C·h; writes out = (y + Du)·SiLU(z), the checkpoints
 *   entering each interval (when saving for the backward), with z, y + Du before the gate and,
 *   with the final-state output, h after each row's last real token.
 * - adjoint: λ = gy·C + κ, S = Σ λ·B, κ ← exp(ΔA)·λ; writes du = Δ·S + D·gy, the first part
 *   u·S of dΔ (before the softplus derivative), dz, κ at every interval end, and per-row dD and
 *   d deltaBias partial sums.
 * - the local roles scan each segment from zero and write its end value and decay only, for
 *   the carry across segments (`segments.ts`).
 *
 * With positions (`selectiveScanAt`) the main passes end each row at its position: the forward
 * writes y (and y before the gate) there only, (batch, d); the adjoint takes the (batch, d)
 * gradient there, starts at it, and writes zero gradients past it without computing. The row's
 * position is read through workgroup memory, so the shortened loops stay uniform.
 *
 * @module
 */
import { launch } from "../../core/launch.ts";
import { foldWorkgroups } from "../../wgsl/grid.ts";
import { Tensor } from "../../core/tensor.ts";
import { listed, OP, type ScanSpec } from "./options.ts";
import type { ScanPlan } from "./plan.ts";
import { bind, type Binding, prelude, scanParams, STOP_CODE, STOP_DECL } from "./prelude.ts";
import { carry } from "./segments.ts";
import { type ChannelRole, loopCode, stagingCode } from "./channel_code.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

export type { ChannelRole } from "./channel_code.ts";

/** Storage bindings of a channel-major kernel, in binding order. */
function channelBindings(
  spec: ScanSpec,
  role: ChannelRole,
  save: boolean,
  deltaSums: boolean,
): Binding[] {
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
  if (spec.deltaRank > 0) list.push(["read", "delta_weight"]);
  if (local) list.push(["read_write", "seg_state"], ["read_write", "seg_decay"]);
  else if (forward) {
    list.push(["read_write", "out"], ["read_write", "ck"]);
    if (save && hasZ) list.push(["read_write", "ysave"]);
    if (spec.finalState) list.push(["read", "lengths", "i32"], ["read_write", "final_state"]);
    if (deltaSums) list.push(["read_write", "dsums"]);
  } else {
    list.push(["read_write", "lam"], ["read_write", "du"], ["read_write", "ddelta"]);
    if (hasZ) list.push(["read_write", "dz"]);
    list.push(["read_write", "apart"]);
  }
  if (spec.atPositions && role !== "forward-local") list.push(["read", "last", "i32"]);
  return list;
}

/**
 * The WGSL of a channel-major kernel for one role; `save` keeps what the backward reads (y
 * before the gate), `checkpoints` the states entering every interval and `deltaSums` the suffix
 * sums of Δ the re-scan backward reads (the forward's).
 */
export const channelShader = shaderGenerator("selectiveScan", channelShaderSource);

function channelShaderSource(
  spec: ScanSpec,
  plan: ScanPlan,
  role: ChannelRole,
  save = false,
  checkpoints = save,
  deltaSums = false,
): string {
  const { ch } = plan;
  const np = ch.tpc * ch.spt;
  const final = spec.finalState && role === "forward";
  const code = loopCode(spec, plan, role, checkpoints, final, deltaSums);
  const staged = stagingCode(spec, role, save);
  const stops = spec.atPositions && role !== "forward-local";
  // With positions the main passes end each row at its position (the local passes need the
  // whole segment's decay).
  const stopAt = stops && !role.endsWith("local") ? "clamp(stop, tbeg, tend)" : "tend";
  return /* wgsl */ `
${bind(channelBindings(spec, role, save, deltaSums))}
${prelude(spec, plan)}
const TPC: u32 = ${ch.tpc}u;
const SPT: u32 = ${ch.spt}u;
const NP: u32 = ${np}u;
const FS: u32 = ${ch.steps}u;
const CPG: u32 = ${ch.cpg}u;
const WG: u32 = ${ch.threads}u;
var<workgroup> sBC: array<vec2<f32>, ${ch.steps * np}>;    // [step][state]: (B, C)
var<workgroup> sCh: array<vec4<f32>, ${ch.steps * ch.cpg}>; // [step][channel]
${code.sumsDecl}
${stops ? STOP_DECL : ""}
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
  ${stops ? STOP_CODE : ""}
  let tstop = ${stopAt};
  let blocks = (tstop - tbeg + FS - 1u) / FS;
  ${code.init}
  ${code.accumulatorsDecl}
  for (var qq = 0u; qq < blocks; qq++) {
    let t0 = tbeg + ${code.blockIndex} * FS;
    let len = min(FS, tstop - t0);
    ${code.saveBlockEntry}
    ${code.saveBlockExit}
    workgroupBarrier();
    for (var i = lid; i < FS * NP; i += WG) {
      ${staged.stateIndex}
      var v = vec2<f32>(0.0, 0.0);
      if (t < len && s < N) {
        let g = nidx(b, s, t0 + t);
        v = vec2<f32>(${staged.bValue}, ${staged.cValue});
      }
      sBC[t * NP + s] = v;
    }
    for (var i = lid; i < FS * CPG; i += WG) {
      ${staged.channelIndex}
      let c2 = cb * CPG + cl2;
      var v = vec4<f32>(0.0, 0.0, 0.0, 0.0);
      if (c2 < p.channels && t < len) {
        let g = didx(b, c2, t0 + t);
        let ds = step_size(g, c2);
        ${staged.stageValue}
      }
      sCh[t * CPG + cl2] = v;
    }
    workgroupBarrier();
    ${code.stepLoop}
      let ch = sCh[k * CPG + cl];
      let row = k * NP + s0;
      ${code.sumInit}
      ${code.step}
      ${code.finalWrite}
      ${code.sumStore}
    }
    ${staged.writeBack}
  }
  ${staged.zeroTail}
  ${code.finishLocal}
  ${code.writePartials}
}`;
}

/**
 * A local pass over segments (all but the last forward, all but the first backward); the adjoint
 * takes each row's position where the spec has them.
 */
function localPass(
  spec: ScanSpec,
  plan: ScanPlan,
  role: "forward-local" | "adjoint-local",
  segs: number,
  ips: number,
  tensors: Tensor[],
  positions?: Tensor,
): { state: Tensor; decay: Tensor } {
  const shape = [spec.batch, segs, spec.channels, spec.states];
  const state = Tensor.empty(shape, "f32", OP);
  const decay = Tensor.empty(shape, "f32", OP);
  const groups = foldWorkgroups(plan.ch.cblocks * spec.batch * (segs - 1));
  const offset = role === "forward-local" ? 0 : 1;
  launch(
    `${OP} (${role})`,
    channelShader(spec, plan, role),
    scanParams(spec, plan, { segs, seg_count: segs - 1, seg_offset: offset, ips, gx: groups[0] }),
    [...tensors, state, decay, ...(role === "adjoint-local" ? listed(positions) : [])],
    groups,
  );
  return { state, decay };
}

/** The inputs of a scan: the five tensors and the optional ones. */
export interface ScanTensors {
  /** Input (batch, d, l) or (batch, l, d). */
  u: Tensor;
  /** Step sizes before bias and softplus, like u. */
  delta: Tensor;
  /** (d, n). */
  A: Tensor;
  /** (batch, n, l) or (batch, l, n). */
  B: Tensor;
  /** Like B. */
  C: Tensor;
  /** (d). */
  D?: Tensor;
  /** Like u. */
  z?: Tensor;
  /** (d). */
  deltaBias?: Tensor;
  /** The low-rank Δ's weight (d, R), where delta is (batch, length, R). */
  deltaWeight?: Tensor;
  /** i32 (batch): the step each row is read at, where the spec has positions. */
  positions?: Tensor;
}

/** What the forward pass leaves: the output and, for the backward, the saved tensors. */
export interface ForwardResult {
  /** The output, shaped like u; with positions (batch, d), each row at its position. */
  out: Tensor;
  /** States entering every interval, (batch, ckIntervals, d, n), or a 1-element placeholder. */
  ck: Tensor;
  /** y + D·u before the gate, when saving with z (shaped like the output). */
  ysave?: Tensor;
}

/** The final-state output of a forward: each row's length and the state tensor written. */
export interface FinalStateTarget {
  /** i32 (batch): real tokens per row. */
  lengths: Tensor;
  /** (batch, d, n), zeroed by the caller: rows whose length is out of range stay zero. */
  state: Tensor;
}

/** What a forward writes besides its output and, when saving, y before the gate. */
export interface ForwardExtras {
  /** Receives each row's state after its last real token (exactly when `spec.finalState`). */
  final?: FinalStateTarget;
  /**
   * Keep the states entering every interval for the backward (default: when saving). A backward
   * that re-scans from zero needs none.
   */
  checkpoints?: boolean;
  /**
   * With positions, (batch, d, intervals): receives each channel's sum of Δ from every interval's
   * first step to the row's position (what the re-scan backward reads).
   */
  deltaSums?: Tensor;
}

/**
 * Runs the forward: where the length is split, the local pass and the carry into the
 * checkpoints first, then the main pass over every segment. `save` keeps what the backward
 * reads (the checkpoints unless `extras` says otherwise, and y before the gate); `extras` names
 * the other outputs.
 */
export function scanForward(
  spec: ScanSpec,
  plan: ScanPlan,
  x: ScanTensors,
  save: boolean,
  segments: { segs: number; ips: number },
  extras: ForwardExtras = {},
): ForwardResult {
  const { final, checkpoints = save, deltaSums } = extras;
  if (spec.finalState !== (final !== undefined)) {
    throw new Error(`${OP}: the final-state output needs both its switch and its target tensors`);
  }
  const { u, delta, A, B, C, D, z, deltaBias, deltaWeight, positions } = x;
  const { segs, ips } = segments;
  const { batch, channels, states } = spec;
  const ckShape = checkpoints || segs > 1 ? [batch, plan.ckIntervals, channels, states] : [1];
  const ck = Tensor.empty(ckShape, "f32", `${OP} checkpoints`);
  const outShape = spec.atPositions ? [batch, channels] : u.shape;
  const ysave = save && spec.hasZ ? Tensor.empty(outShape, "f32", OP) : undefined;
  if (segs > 1) {
    // Local pass over every segment but the last, then the carry into the checkpoints.
    const local = localPass(spec, plan, "forward-local", segs, ips, [
      u,
      delta,
      A,
      B,
      ...listed(deltaBias),
      ...listed(deltaWeight),
    ]);
    const target = { out: ck, outM: plan.ckIntervals, outS: ips, outOff: 0 };
    carry(spec, segs, local.state, local.decay, target, false);
    local.state.dispose();
    local.decay.dispose();
  }
  const out = Tensor.empty(outShape, "f32", OP);
  const groups = foldWorkgroups(plan.ch.cblocks * batch * segs);
  launch(
    OP,
    channelShader(spec, plan, "forward", save, checkpoints, deltaSums !== undefined),
    scanParams(spec, plan, { segs, seg_count: segs, ips, gx: groups[0] }),
    [
      u,
      delta,
      A,
      B,
      C,
      ...listed(D),
      ...listed(z),
      ...listed(deltaBias),
      ...listed(deltaWeight),
      out,
      ck,
      ...listed(ysave),
      ...(final ? [final.lengths, final.state] : []),
      ...listed(deltaSums),
      ...listed(positions),
    ],
    groups,
  );
  return { out, ck, ysave };
}

/** What the adjoint pass leaves for the state pass and the parameter gradients. */
export interface AdjointResult {
  /** λ entering every interval from the right, (batch, ckIntervals, d, n). */
  lam: Tensor;
  /** ∂L/∂u, like u. */
  du: Tensor;
  /** The adjoint's part u·Σλ·B of dΔ, like u (the state pass completes it). */
  ddelta: Tensor;
  /** ∂L/∂z, with z. */
  dz?: Tensor;
  /** Per-row partials (batch · segs, 2 · d · tpc): [dD | d deltaBias]. */
  adj: Tensor;
}

/**
 * Runs the adjoint for the output gradient `gout` (with positions, (batch, d) at those steps):
 * where the length is split, the local pass and the backward carry into λ first, then the main
 * pass over every segment.
 */
export function scanAdjoint(
  spec: ScanSpec,
  plan: ScanPlan,
  x: ScanTensors,
  gout: Tensor,
  ysave: Tensor | undefined,
  segments: { segs: number; ips: number },
): AdjointResult {
  const name = `${OP} backward`;
  const { u, delta, A, B, C, D, z, deltaBias, deltaWeight, positions } = x;
  const { segs, ips } = segments;
  const { batch, channels, states } = spec;
  const { ch } = plan;
  // λ entering every interval from the right (its last step's exp(ΔA)·λ of the next step).
  const lam = Tensor.empty([batch, plan.ckIntervals, channels, states], "f32", name);
  if (segs > 1) {
    const local = localPass(spec, plan, "adjoint-local", segs, ips, [
      gout,
      delta,
      A,
      C,
      ...listed(z),
      ...listed(deltaBias),
      ...listed(deltaWeight),
    ], positions);
    const target = { out: lam, outM: plan.ckIntervals, outS: ips, outOff: ips - 1 };
    carry(spec, segs, local.state, local.decay, target, true);
    local.state.dispose();
    local.decay.dispose();
  }
  const du = Tensor.empty(u.shape, "f32", name);
  const ddelta = Tensor.empty(u.shape, "f32", name);
  const dz = spec.hasZ ? Tensor.empty(u.shape, "f32", name) : undefined;
  const adj = Tensor.empty([batch * segs, 2 * channels * ch.tpc], "f32", name);
  const groups = foldWorkgroups(ch.cblocks * batch * segs);
  launch(
    `${name} (adjoint)`,
    channelShader(spec, plan, "adjoint"),
    scanParams(spec, plan, { segs, seg_count: segs, ips, gx: groups[0] }),
    [
      gout,
      delta,
      u,
      A,
      B,
      C,
      ...listed(D),
      ...listed(z),
      ...listed(ysave),
      ...listed(deltaBias),
      ...listed(deltaWeight),
      lam,
      du,
      ddelta,
      ...listed(dz),
      adj,
      ...listed(positions),
    ],
    groups,
  );
  return { lam, du, ddelta, dz, adj };
}
