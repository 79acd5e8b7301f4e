/**
 * The role-dependent WGSL pieces of the channel-major kernels (`channel_major.ts` assembles
 * them): the per-state register code unrolled over an invocation's states, the time loop's
 * direction and what it saves at interval boundaries, what is staged per channel and step, and
 * what is written back.
 *
 * @module
 */
import type { ScanSpec } from "./options.ts";
import type { ScanPlan } from "./plan.ts";
import { gradOut } from "./prelude.ts";

/** What a channel-major kernel computes. */
export type ChannelRole = "forward" | "forward-local" | "adjoint" | "adjoint-local";

/** Role-dependent code of the per-invocation time loop. */
export interface ChannelLoopCode {
  /** Workgroup array of per-invocation sums (absent for the local roles). */
  sumsDecl: string;
  /** Register declarations and starting values of the states (or adjoints) and A. */
  init: string;
  /** The adjoint's dD and d deltaBias accumulators, or the forward's sum of Δ. */
  accumulatorsDecl: string;
  /** Index of the block of steps the loop iteration `qq` covers (reversed for the adjoint). */
  blockIndex: string;
  /** Checkpoint writes entering an interval (forward, when saving). */
  saveBlockEntry: string;
  /** λ writes at an interval's end (adjoint). */
  saveBlockExit: string;
  /** Head of the loop over a block's steps, forward or backward in time. */
  stepLoop: string;
  /** Declares the step's sum over states. */
  sumInit: string;
  /** One step for every state in registers. */
  step: string;
  /** Writes the states after a row's last real token (forward with the final-state output). */
  finalWrite: string;
  /**
   * Stores the step's sum (and, for the adjoint, accumulates dD and d deltaBias; for the forward
   * with Δ sums, adds the step's Δ and writes the interval's sum at its end).
   */
  sumStore: string;
  /** Writes a segment's end values and decays (local roles). */
  finishLocal: string;
  /**
   * Writes the adjoint's dD and d deltaBias row partials, or turns the forward's interval sums of
   * Δ into suffix sums.
   */
  writePartials: string;
}

/** Role-dependent code of the staging and write-back loops. */
export interface ChannelStagingCode {
  /** (s, t) of a staged (B, C) pair from the loop index. */
  stateIndex: string;
  /** The B staged (or 0.0 where the role needs none). */
  bValue: string;
  /** The C staged (or 0.0). */
  cValue: string;
  /** (cl2, t) of a staged channel value from the loop index. */
  channelIndex: string;
  /** Computes the four values staged per channel and step into `v`. */
  stageValue: string;
  /** The loop writing the per-channel results (absent for the local roles). */
  writeBack: string;
  /** The adjoint's zero gradients past each row's position (with positions only). */
  zeroTail: string;
}

/** The code unrolled over the ≤ 32 states an invocation keeps in registers. */
function perStateCode(plan: ScanPlan, role: ChannelRole) {
  const forward = role === "forward" || role === "forward-local";
  const local = role.endsWith("local");
  const J = Array.from({ length: plan.ch.spt }, (_, j) => j);
  const own = (j: number) => `live && s0 + ${j}u < N`;
  // Where a segment's starting value comes from: the checkpoint entering its first interval
  // (forward), or the adjoint entering its last interval from the right (adjoint).
  const start = (j: number) => {
    if (local) return "";
    if (forward) return `if (seg > 0u) { x${j} = ck[ckidx(b, m0, c, s0 + ${j}u)]; }`;
    return `if (seg + 1u < p.segs) { x${j} = lam[ckidx(b, m1 - 1u, c, s0 + ${j}u)]; }`;
  };
  const decayInit = (j: number) => (local ? `var q${j} = 1.0;` : "");
  const init = J.map((j) =>
    `var x${j} = 0.0;
  var a${j} = 0.0;
  ${decayInit(j)}
  if (${own(j)}) {
    a${j} = A[c * N + s0 + ${j}u] * LOG2E;
    ${start(j)}
  }`
  ).join("\n  ");
  const forwardTail = (j: number) => (local ? `q${j} *= da;` : `y += bc.y * x${j};`);
  const stepForward = J.map((j) =>
    `{
          let bc = sBC[row + ${j}u];
          let da = exp2(ch.x * a${j});
          x${j} = da * x${j} + ch.y * bc.x;
          ${forwardTail(j)}
        }`
  ).join("\n        ");
  const adjointSum = (j: number) => (local ? `q${j} *= da;` : "y += lm * bc.x;");
  const stepAdjoint = J.map((j) =>
    `{
          let bc = sBC[row + ${j}u];
          let da = exp2(ch.x * a${j});
          let lm = ch.z * bc.y + x${j};
          ${adjointSum(j)}
          x${j} = da * lm;
        }`
  ).join("\n        ");
  const writeState = (target: string, m: string) =>
    J.map((j) => `if (${own(j)}) { ${target}[ckidx(b, ${m}, c, s0 + ${j}u)] = x${j}; }`)
      .join("\n      ");
  const finalWrite = `if (t0 + k + 1u == fin) {
        ${
    J.map((j) => `if (${own(j)}) { final_state[(b * p.channels + c) * N + s0 + ${j}u] = x${j}; }`)
      .join("\n        ")
  }
      }`;
  const finishLocal = J.map((j) =>
    `if (${own(j)}) {
    seg_state[segidx(b, seg, c, s0 + ${j}u)] = x${j};
    seg_decay[segidx(b, seg, c, s0 + ${j}u)] = q${j};
  }`
  ).join("\n  ");
  return {
    init,
    step: forward ? stepForward : stepAdjoint,
    writeState,
    finalWrite,
    finishLocal,
  };
}

/**
 * The time loop's role-dependent code; `checkpoints` keeps the forward's checkpoints, `final` writes
 * each row's state after its last real token, and `deltaSums` each channel's sums of Δ from every
 * interval's first step to the row's position (the forward only, with positions: what the
 * re-scan backward reads, `rescan.ts`).
 */
export function loopCode(
  spec: ScanSpec,
  plan: ScanPlan,
  role: ChannelRole,
  checkpoints: boolean,
  final = false,
  deltaSums = false,
): ChannelLoopCode {
  const { ch } = plan;
  const forward = role === "forward" || role === "forward-local";
  const local = role.endsWith("local");
  const adjoint = role === "adjoint";
  const regs = perStateCode(plan, role);
  const sumsDecl = local
    ? ""
    : `var<workgroup> sY: array<f32, ${ch.steps * ch.cpg * ch.tpc}>;  // per-invocation sums`;
  const saveBlockEntry = role === "forward" && checkpoints
    ? `if (t0 % TS == 0u) {
      ${regs.writeState("ck", "t0 / TS")}
    }`
    : "";
  // With positions λ is also saved where the row stops: the interval there gets zero from the right.
  const stopExit = spec.atPositions ? " || t0 + len == tstop" : "";
  const saveBlockExit = adjoint
    ? `if ((t0 + len) % TS == 0u || t0 + len == p.length${stopExit}) {
      ${regs.writeState("lam", "(t0 + len - 1u) / TS")}
    }`
    : "";
  const adjointAccumulate = adjoint
    ? `
      dbias_acc += ch.y * y * ch.w;
      if (lid % TPC == 0u) { dD_acc += ch.z * ch.y; }`
    : "";
  // Per interval the forward sums its steps' Δ, then, once at the position, sums the intervals'
  // sums from the last back: a suffix sum of at most TS terms plus one per interval.
  const sumDelta = deltaSums
    ? `
      dsum += ch.x;
      if (lid % TPC == 0u && live && ((t0 + k + 1u) % TS == 0u || t0 + k + 1u == tstop)) {
        dsums[(b * p.channels + c) * p.intervals + (t0 + k) / TS] = dsum;
      }
      if ((t0 + k + 1u) % TS == 0u) { dsum = 0.0; }`
    : "";
  const suffixSums = deltaSums
    ? `if (lid % TPC == 0u && live) {
    var acc = 0.0;
    for (var m = (tstop - 1u) / TS + 1u; m > 0u; m--) {
      let i = (b * p.channels + c) * p.intervals + m - 1u;
      acc += dsums[i];
      dsums[i] = acc;
    }
  }`
    : "";
  const writePartials = deltaSums ? suffixSums : adjoint
    ? `if (live) {
    // Row (b, segment): [dD | d deltaBias] per (channel, invocation of the channel).
    let base = (b * p.segs + seg) * 2u * p.channels * TPC + c * TPC + lid % TPC;
    apart[base] = dD_acc;
    apart[base + p.channels * TPC] = dbias_acc;
  }`
    : "";
  return {
    sumsDecl,
    init: final ? `let fin = u32(max(lengths[b], 0));\n  ${regs.init}` : regs.init,
    accumulatorsDecl: adjoint
      ? "var dD_acc = 0.0;\n  var dbias_acc = 0.0;"
      : deltaSums
      ? "var dsum = 0.0;"
      : "",
    blockIndex: forward ? "qq" : "(blocks - 1u - qq)",
    saveBlockEntry,
    saveBlockExit,
    stepLoop: forward
      ? "for (var k = 0u; k < len; k++) {"
      : "for (var kk = len; kk > 0u; kk--) {\n      let k = kk - 1u;",
    sumInit: local ? "" : "var y = 0.0;",
    step: regs.step,
    finalWrite: final ? regs.finalWrite : "",
    sumStore: local
      ? ""
      : `sY[(k * CPG + cl) * TPC + lid % TPC] = y;${adjointAccumulate}${sumDelta}`,
    finishLocal: local ? regs.finishLocal : "",
    writePartials,
  };
}

/**
 * Per channel and step: forward (Δ, Δu, Du, SiLU(z)); adjoint (Δ, u, gy, softplus'), where the
 * adjoint also writes dz and folds the gate into gy.
 */
function stageValueCode(spec: ScanSpec, role: ChannelRole): string {
  const forward = role === "forward" || role === "forward-local";
  const local = role.endsWith("local");
  const { hasD, hasZ } = spec;
  if (forward) {
    const skip = !local && hasD ? "Dv[c2] * uu" : "0.0";
    const gate = !local && hasZ ? "z[g] * sigmoid_(z[g])" : "1.0";
    return `let uu = u[g];
        v = vec4<f32>(ds.x, ds.x * uu, ${skip}, ${gate});`;
  }
  // With positions y before the gate is kept at each row's position only, (batch, d).
  const ysaveAt = spec.atPositions ? "ysave[b * p.channels + c2]" : "ysave[g]";
  const dzWrite = local ? "" : `dz[g] = gy * ${ysaveAt} * sz * (1.0 + zz * (1.0 - sz));`;
  const gateGrad = hasZ
    ? `let zz = z[g];
        let sz = sigmoid_(zz);
        ${dzWrite}
        gy *= zz * sz;`
    : "";
  const input = local ? "0.0" : "u[g]";
  return `var gy = ${gradOut(spec, "g", "c2", "t0 + t")};
        ${gateGrad}
        v = vec4<f32>(ds.x, ${input}, gy, ds.y);`;
}

/** Per channel and step, from the step's sum `y` and staged values `v`: the results written. */
function writeOutCode(spec: ScanSpec, role: ChannelRole, save: boolean): string {
  if (role === "forward" && spec.atPositions) {
    const at = "b * p.channels + c2";
    const ysaveWrite = save && spec.hasZ ? `ysave[${at}] = yd;` : "";
    return `if (t0 + t + 1u == stop) {
            let yd = y + v.z;
            out[${at}] = yd * v.w;
            ${ysaveWrite}
          }`;
  }
  if (role === "forward") {
    const ysaveWrite = save && spec.hasZ ? "ysave[g] = yd;" : "";
    return `let yd = y + v.z;
          out[g] = yd * v.w;
          ${ysaveWrite}`;
  }
  const skip = spec.hasD ? " + Dv[c2] * v.z" : "";
  return `du[g] = v.x * y${skip};
          ddelta[g] = v.y * y;`;
}

/** The staging and write-back code of a role; `save` keeps y before the gate. */
export function stagingCode(
  spec: ScanSpec,
  role: ChannelRole,
  save: boolean,
): ChannelStagingCode {
  const last = spec.channelsLast;
  const local = role.endsWith("local");
  const channelIndex = last
    ? "let cl2 = i % CPG; let t = i / CPG;"
    : "let cl2 = i / FS; let t = i % FS;";
  const writeBack = local ? "" : `workgroupBarrier();
    for (var i = lid; i < FS * CPG; i += WG) {
      ${channelIndex}
      let c2 = cb * CPG + cl2;
      if (c2 < p.channels && t < len) {
        var y = 0.0;
        for (var q = 0u; q < TPC; q++) { y += sY[(t * CPG + cl2) * TPC + q]; }
        let v = sCh[t * CPG + cl2];
        let g = didx(b, c2, t0 + t);
        ${writeOutCode(spec, role, save)}
      }
    }`;
  const zeroTail = spec.atPositions && role === "adjoint"
    ? `// Past the row's position the output is not read: every gradient there is zero.
  for (var i = lid; i < (tend - tstop) * CPG; i += WG) {
    ${
      last
        ? "let cl2 = i % CPG; let t = tstop + i / CPG;"
        : "let cl2 = i / (tend - tstop); let t = tstop + i % (tend - tstop);"
    }
    let c2 = cb * CPG + cl2;
    if (c2 < p.channels) {
      let g = didx(b, c2, t);
      du[g] = 0.0;
      ddelta[g] = 0.0;
      ${spec.hasZ ? "dz[g] = 0.0;" : ""}
    }
  }`
    : "";
  return {
    zeroTail,
    stateIndex: last ? "let t = i / NP; let s = i % NP;" : "let s = i / FS; let t = i % FS;",
    bValue: role === "adjoint-local" ? "0.0" : "Bm[g]",
    cValue: role === "forward-local" ? "0.0" : "Cm[g]",
    channelIndex,
    stageValue: stageValueCode(spec, role),
    writeBack,
  };
}
