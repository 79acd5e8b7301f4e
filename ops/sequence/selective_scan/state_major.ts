/**
 * The state-major backward kernel of the selective scan and its launcher: one invocation per
 * (batch, interval, state); a workgroup holds `rows` consecutive intervals × n states of one
 * batch row and loops over all channels. Every per-step value an invocation needs only for
 * itself lives in registers (the step code is unrolled): its B_t and C_t, the re-run's h_t and
 * exp(Δ_t·A), and the dB_t and dC_t sums over channels. Per channel it re-runs each interval from
 * its checkpoint, then walks it back from the adjoint saved at the interval's end: dB_t =
 * Σ_c λ·Δu, dC_t = Σ_c gy·h_t, and dA. Workgroup memory holds only what invocations share: the
 * staged per-channel step values, and the terms λ·A·exp(ΔA)·h_{t−1} whose sum over states is the
 * rest of dΔ. That sum is split over all invocations (each sums a slice of the states of one
 * step) and finished one channel later, so each channel costs one barrier; the term tiles and
 * the dA and d deltaBias row partials are double-buffered for that.
 *
 * With positions (`selectiveScanAt`) a workgroup whose steps all lie past its row's position
 * writes zeros and returns, and an interval starting past it starts from zero (its checkpoint
 * and adjoint were never written; with no gradient there its results are zero either way).
 *
 * @module
 */
import { launch } from "../../core/launch.ts";
import { foldWorkgroups } from "../../wgsl/grid.ts";
import { Tensor } from "../../core/tensor.ts";
import { listed, OP, type ScanSpec } from "./options.ts";
import { odd, type ScanPlan, stateParts } from "./plan.ts";
import {
  bind,
  type Binding,
  gradOut,
  prelude,
  scanParams,
  STOP_CODE,
  STOP_DECL,
} from "./prelude.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/**
 * Whether the state pass writes its row partials over the adjoint's interval-end values `lam`: a
 * workgroup's partials ([dA | d deltaBias], 2 · d · n) fit in the `lam` rows of its own intervals
 * (rows · d · n, the intervals padded to whole workgroups) once two or more intervals share a
 * workgroup, and the workgroup alone reads those rows, each before its partials are written.
 */
export function partialsInAdjoint(plan: ScanPlan): boolean {
  return plan.st.rows >= 2;
}

/** Storage bindings of the state-major kernel, in binding order. */
function stateBindings(spec: ScanSpec, plan: ScanPlan): Binding[] {
  const list: Binding[] = [
    ["read", "gout"],
    ["read", "delta"],
    ["read", "u"],
    ["read", "A"],
    [spec.gradsOverBC ? "read_write" : "read", "Bm"],
    [spec.gradsOverBC ? "read_write" : "read", "Cm"],
  ];
  if (spec.hasZ) list.push(["read", "z"]);
  if (spec.hasBias) list.push(["read", "delta_bias"]);
  if (spec.deltaRank > 0) list.push(["read", "delta_weight"]);
  list.push(
    ["read", "ck"],
    [partialsInAdjoint(plan) ? "read_write" : "read", "lam"],
    ["read_write", "ddelta"],
  );
  if (!spec.gradsOverBC) list.push(["read_write", "dB"], ["read_write", "dC"]);
  if (!partialsInAdjoint(plan)) list.push(["read_write", "spart"]);
  if (spec.atPositions) list.push(["read", "last", "i32"]);
  return list;
}

/**
 * The code unrolled over the TS steps of an interval, every per-step value in registers; dB and
 * dC are written to the bindings named `gradB` and `gradC` (B's and C's own with `gradsOverBC`:
 * each invocation writes exactly the elements it alone has read).
 */
function stateStepCode(ts: number, gradB: string, gradC: string) {
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
  // h_t of step k: the next step's h_{t−1}, or the running state after the last step.
  const stateAfter = (k: number) => (k + 1 < ts ? `h${k + 1}` : "h");
  const reverse = [...K].reverse().map((k) =>
    `{
      let q = sQ[qb + ${k}u];
      let lm = q.z * cv${k} + lc;
      dB${k} += lm * q.y;
      dC${k} += q.z * ${stateAfter(k)};
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
      ${gradB}[g] = dB${k};
      ${gradC}[g] = dC${k};
    }`
  ).join("\n    ");
  const zeroGrads = K.map((k) =>
    `if (m * TS + ${k}u < p.length) {
        let g = nidx(b, s, m * TS + ${k}u);
        ${gradB}[g] = 0.0;
        ${gradC}[g] = 0.0;
      }`
  ).join("\n      ");
  return { perStep, rerun, reverse, writeGrads, zeroGrads };
}

/** The WGSL of the state-major kernel. */
const stateShader = shaderGenerator("selectiveScan states", stateShaderSource);

function stateShaderSource(spec: ScanSpec, plan: ScanPlan): string {
  const { st, ts } = plan;
  const n = spec.states;
  const span = st.rows * ts; // steps covered by a workgroup
  const parts = stateParts(n, ts);
  const code = spec.gradsOverBC ? stateStepCode(ts, "Bm", "Cm") : stateStepCode(ts, "dB", "dC");
  // Where the row partials go, and the width of a workgroup's row of them: its own rows of lam
  // (rows · d · n, the part past 2 · d · n zeroed once every row of lam is read), or spart.
  const shared = partialsInAdjoint(plan);
  const part = shared ? "lam" : "spart";
  const width = `${shared ? "R" : "2u"} * p.channels * N`;
  const zeroTail = shared && st.rows > 2
    ? `for (var i = 2u * p.channels * N + lid; i < PW; i += WG) { lam[prow + i] = 0.0; }`
    : "";
  const chunkIndex = spec.channelsLast
    ? "let c2 = i % CC; let t = i / CC;"
    : "let c2 = i / SPAN; let t = i % SPAN;";
  const gate = spec.hasZ ? "gy *= z[g] * sigmoid_(z[g]);" : "";
  // With positions a workgroup wholly past its row's position only writes zeros, and intervals
  // past it start from zero (their checkpoints and adjoints were never written).
  const stopCode = spec.atPositions
    ? `${STOP_CODE}
  if (tbase >= stop) {
    if (valid) {
      ${code.zeroGrads}
    }
    for (var i = lid; i < PW; i += WG) { ${part}[prow + i] = 0.0; }
    return;
  }
  let loaded = valid && m * TS < stop;`
    : "let loaded = valid;";
  return /* wgsl */ `
${bind(stateBindings(spec, plan))}
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
${spec.atPositions ? STOP_DECL : ""}
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
  let PW = ${width};
  let prow = (b * groups + mg) * PW;
  ${stopCode}
  ${code.perStep}
  // The next channel's A, checkpoint and adjoint, loaded one channel ahead.
  var na = 0.0;
  var nh = 0.0;
  var nl = 0.0;
  if (loaded) {
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
        ${chunkIndex}
        var q = vec4<f32>(0.0, 0.0, 0.0, 0.0);
        var pd = 0.0;
        if (c + c2 < p.channels && t < wlen) {
          let g = didx(b, c + c2, tbase + t);
          let ds = step_size(g, c + c2);
          var gy = ${gradOut(spec, "g", "c + c2", "tbase + t")};
          ${gate}
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
    if (loaded && c + 1u < p.channels) {
      na = A[(c + 1u) * N + s];
      nh = ck[ckidx(b, m, c + 1u, s)];
      nl = lam[ckidx(b, m, c + 1u, s)];
    }
    let qb = cc * SPAN + r * TS;
    let tb = buf * SPAN * NPAD;
    ${code.rerun}
    var dA_c = 0.0;
    var w = 0.0;
    ${code.reverse}
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
      ${part}[prow + c * N + s2] = va;
      ${part}[prow + (p.channels + c) * N + s2] = vb;
    }
  }
  workgroupBarrier();
  ${zeroTail}
  finish_ddelta((p.channels - 1u) % 2u, b, p.channels - 1u, tbase, wlen, lid);
  if (valid) {
    ${code.writeGrads}
  }
}`;
}

/** The state pass' results: dB, dC, the rest of dΔ (written into the adjoint's), and row partials. */
export interface StateResult {
  /** ∂L/∂B, like B (a view of B's storage with `gradsOverBC`). */
  dB: Tensor;
  /** ∂L/∂C, like C (a view of C's storage with `gradsOverBC`). */
  dC: Tensor;
  /**
   * Per-row partials (batch · workgroup rows, 2 · d · n): [dA | d deltaBias]. Where
   * {@link partialsInAdjoint} holds, a view of `lam`'s storage (batch · workgroup rows,
   * rows · d · n), its columns past 2 · d · n zero: `lam`'s values are gone.
   */
  spart: Tensor;
}

/**
 * Launches the state-major pass. It completes `ddelta` in place (the adjoint wrote its first
 * part) from the checkpoints `ck` and the adjoint's interval-end values `lam` (whose storage then
 * holds the row partials where {@link partialsInAdjoint} holds); with `positions`
 * (`spec.atPositions`) `gout` is the `[batch, d]` gradient at those steps.
 */
export function scanStates(
  spec: ScanSpec,
  plan: ScanPlan,
  inputs: { gout: Tensor; delta: Tensor; u: Tensor; A: Tensor; B: Tensor; C: Tensor },
  optional: Tensor[],
  saved: { ck: Tensor; lam: Tensor; ddelta: Tensor },
  positions?: Tensor,
): StateResult {
  const name = `${OP} backward`;
  const { gout, delta, u, A, B, C } = inputs;
  const { ck, lam, ddelta } = saved;
  const inPlace = spec.gradsOverBC;
  const dB = inPlace ? new Tensor(B.storage, B.shape) : Tensor.empty(B.shape, "f32", name);
  const dC = inPlace ? new Tensor(C.storage, C.shape) : Tensor.empty(C.shape, "f32", name);
  const rowGroups = Math.ceil(plan.intervals / plan.st.rows);
  const shared = partialsInAdjoint(plan);
  const width = (shared ? plan.st.rows : 2) * spec.channels * spec.states;
  const spart = shared
    ? new Tensor(lam.storage, [spec.batch * rowGroups, width])
    : Tensor.empty([spec.batch * rowGroups, width], "f32", name);
  const groups = foldWorkgroups(spec.batch * rowGroups);
  launch(
    `${name} (states)`,
    stateShader(spec, plan),
    scanParams(spec, plan, { gx: groups[0] }),
    [
      gout,
      delta,
      u,
      A,
      B,
      C,
      ...optional,
      ck,
      lam,
      ddelta,
      ...(inPlace ? [] : [dB, dC]),
      ...(shared ? [] : [spart]),
      ...listed(positions),
    ],
    groups,
  );
  return { dB, dC, spart };
}
