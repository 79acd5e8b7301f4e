/**
 * The SSD scan's per-chunk backward kernels, given ∂y, the state S_in entering each chunk and the
 * gradient U leaving it (both from `states.ts`; zero for chunks without a slot).
 *
 * `headGrads`, one workgroup per (chunk, head), one invocation per token k:
 *
 *     dX_k  = Σ_{l≥k} (C_l·B_k)·exp(cs_l − cs_k)·∂y_l + exp(cs_end − cs_k)·U·B_k   (X = Δ·x)
 *     dx_k  = Δ_k·dX_k + D·∂y_k,     ∂Δ_k = x_k·dX_k + A·da_k
 *     da_t  = Σ_{k≥t} dcs_k + exp(cs_end)·⟨U, S_in⟩ + Σ_{s<t} exp(cs_end − cs_s)·Δ_s·x_s·(U·B_s)
 *
 * where dcs_k, the gradient of the within-chunk cumulative decay cs_k through the pairs (l, s)
 * inside the chunk and through exp(cs_k)·S_in·C_k, is ∂y_k·ŷ_k − Δ_k·x_k·d̂X_k + exp(cs_k)·∂y_k·(S_in·C_k),
 * the hats leaving out the diagonal pair. Per (chunk, head) partial sums of dA = Σ Δ·da, dD and
 * d dtBias are reduced by `sumLeading` afterwards (no atomics).
 *
 * `groupGrads`, one workgroup per (chunk, group), one invocation per token, once for C and once
 * for B (W summed over the group's heads):
 *
 *     W[l, s] = Σ_h exp(cs_l − cs_s)·Δ_s·(∂y_l·x_s)               (s ≤ l)
 *     dC_l    = Σ_{s≤l} W[l, s]·B_s + Σ_h exp(cs_l)·∂y_lᵀ·S_in
 *     dB_s    = Σ_{l≥s} W[l, s]·C_l + Σ_h exp(cs_end − cs_s)·Δ_s·x_sᵀ·U
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { workgroupReduceWgsl } from "../../wgsl/reduce.ts";
import { listed, type SsdSpec } from "./options.ts";
import { bind, type Binding, launchPerItem, prelude } from "./prelude.ts";

function headShader(spec: SsdSpec): string {
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "x"],
    ["read", "dt"],
    ["read", "A"],
    ["read", "B"],
    ["read", "C"],
    ["read", "gy"],
    ["read", "dtv"],
    ["read", "cs"],
    ["read", "cb"],
    ["read", "sin"],
    ["read", "ub"],
  ];
  if (spec.hasD) list.push(["read", "D"]);
  if (spec.hasBias) list.push(["read", "dt_bias"]);
  list.push(["read_write", "dx"], ["read_write", "ddt"]);
  list.push(["read_write", "part_a"], ["read_write", "part_d"], ["read_write", "part_b"]);
  const skip = spec.hasD ? "D[h]" : "0.0";
  const reduce = (arrays: string[]) =>
    workgroupReduceWgsl({ array: arrays, size: spec.chunk, combine: "sum" });
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true)}
const Q: u32 = ${spec.chunk}u;
var<workgroup> ssh: array<f32, PN>;
var<workgroup> ush: array<f32, PN>;
var<workgroup> dcs: array<f32, Q>;
var<workgroup> qv: array<f32, Q>;
var<workgroup> r0: array<f32, Q>;
var<workgroup> r1: array<f32, Q>;
var<workgroup> r2: array<f32, Q>;
@compute @workgroup_size(${spec.chunk})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let k = item / H;
  let h = item % H;
  let g = h / HG;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let slot = chunk_slot(k);
  let has = slot >= 0;
  let off = chunk_block(k, g);
  let cend = cs[(start + len - 1u) * H + h];
  var us = 0.0;
  if (has) {
    for (var e = lid; e < PN; e += Q) {
      let a = sin[(u32(slot) * H + h) * PN + e];
      let b = ub[(u32(slot) * H + h) * PN + e];
      ssh[e] = a;
      ush[e] = b;
      us += a * b;
    }
  }
  r0[lid] = us;
  workgroupBarrier();
  ${reduce(["r0"])}
  let state_term = exp(cend) * r0[0];
  let live = lid < len;
  let i = start + min(lid, len - 1u);
  let j = i * H + h;
  let csk = cs[j];
  let dk = dtv[j];
  var gk: array<f32, P>;
  var xk: array<f32, P>;
  var dX: array<f32, P>;
  var dc = 0.0;
  var q = 0.0;
  if (live) {
    for (var p = 0u; p < P; p++) { gk[p] = gy[j * P + p]; xk[p] = x[j * P + p]; }
    // The pairs (l ≥ k) that read x_k, and the pairs (s < k) that write y_k.
    for (var l = lid; l < len; l++) {
      let jl = (start + l) * H + h;
      let m = cb[off + lid * len + l] * exp(cs[jl] - csk);
      for (var p = 0u; p < P; p++) { dX[p] += m * gy[jl * P + p]; }
    }
    var yd: array<f32, P>;
    for (var s = 0u; s < lid; s++) {
      let js = (start + s) * H + h;
      let w = cb[off + s * len + lid] * exp(csk - cs[js]) * dtv[js];
      for (var p = 0u; p < P; p++) { yd[p] += w * x[js * P + p]; }
    }
    let mkk = cb[off + lid * len + lid];
    for (var p = 0u; p < P; p++) { dc += gk[p] * yd[p] - dk * xk[p] * (dX[p] - mkk * gk[p]); }
    if (has) {
      var yo = 0.0;
      var ubk: array<f32, P>;
      let bc = (i * G + g) * N;
      for (var n = 0u; n < N; n++) {
        let c = C[bc + n];
        let bv = B[bc + n];
        for (var p = 0u; p < P; p++) {
          yo += gk[p] * ssh[p * N + n] * c;
          ubk[p] += ush[p * N + n] * bv;
        }
      }
      dc += exp(csk) * yo;
      let sc = exp(cend - csk);
      var xu = 0.0;
      for (var p = 0u; p < P; p++) {
        xu += xk[p] * ubk[p];
        dX[p] += sc * ubk[p];
      }
      q = sc * dk * xu;
    }
  }
  dcs[lid] = dc;
  qv[lid] = q;
  workgroupBarrier();
  var pa = 0.0;
  var pd = 0.0;
  var pb = 0.0;
  if (live) {
    var da = state_term;
    for (var t = lid; t < len; t++) { da += dcs[t]; }
    for (var t = 0u; t < lid; t++) { da += qv[t]; }
    let skip = ${skip};
    var direct = 0.0;
    for (var p = 0u; p < P; p++) {
      dx[j * P + p] = dk * dX[p] + skip * gk[p];
      direct += xk[p] * dX[p];
      pd += gk[p] * xk[p];
    }
    let sz = step_size(j, h);
    let draw = (direct + A[h] * da) * sz.y;
    ddt[j] = draw;
    pa = dk * da;
    pb = draw;
  }
  r0[lid] = pa;
  r1[lid] = pd;
  r2[lid] = pb;
  workgroupBarrier();
  ${reduce(["r0", "r1", "r2"])}
  if (lid == 0u) {
    part_a[item] = r0[0];
    part_d[item] = r1[0];
    part_b[item] = r2[0];
  }
}`;
}

/** dx, ∂dt and the per-(chunk, head) partial sums of dA, dD and d dtBias, each (chunks, H). */
export function headGrads(
  spec: SsdSpec,
  t: {
    chunks: Tensor;
    count: number;
    x: Tensor;
    dt: Tensor;
    A: Tensor;
    B: Tensor;
    C: Tensor;
    D?: Tensor;
    dtBias?: Tensor;
  },
  s: { gy: Tensor; dtv: Tensor; cs: Tensor; cb: Tensor; sin: Tensor; ub: Tensor },
): { dx: Tensor; ddt: Tensor; parts: [Tensor, Tensor, Tensor] } {
  const { heads: H } = spec;
  const dx = Tensor.empty(t.x.shape, "f32", "ssdScan dx");
  const ddt = Tensor.empty(t.dt.shape, "f32", "ssdScan ddt");
  const part = () => Tensor.empty([t.count, H], "f32", "ssdScan partial sums");
  const parts: [Tensor, Tensor, Tensor] = [part(), part(), part()];
  launchPerItem("head gradients", headShader(spec), t.count * H, [
    t.chunks,
    t.x,
    t.dt,
    t.A,
    t.B,
    t.C,
    s.gy,
    s.dtv,
    s.cs,
    s.cb,
    s.sin,
    s.ub,
    ...listed(t.D),
    ...listed(t.dtBias),
    dx,
    ddt,
    ...parts,
  ]);
  return { dx, ddt, parts };
}

/** Which of B and C a `groupGrads` launch differentiates. */
export type GroupRole = "B" | "C";

function groupShader(spec: SsdSpec, role: GroupRole): string {
  const forC = role === "C";
  // Off-chunk term: with S_in (dC) or U (dB) of head h staged in `st`.
  const offWeight = forC ? "exp(cs[jh])" : "exp(cend - cs[jh]) * dtv[jh]";
  const offOperand = forC ? "gy" : "x";
  // Pairs: thread l (dC) runs s = 0..l, thread s (dB) runs l = s..len−1.
  const pairLoop = forC
    ? "for (var s = 0u; s <= lid; s++) { let l = lid;"
    : "for (var l = lid; l < len; l++) { let s = lid;";
  const pairOperand = forC ? "B" : "C";
  const pairToken = forC ? "s" : "l";
  return /* wgsl */ `
${
    bind([
      ["read", "chunks", "i32"],
      ["read", "x"],
      ["read", "B"],
      ["read", "C"],
      ["read", "gy"],
      ["read", "dtv"],
      ["read", "cs"],
      ["read", "src"],
      ["read_write", "out"],
    ])
  }
${prelude(spec)}
const Q: u32 = ${spec.chunk}u;
var<workgroup> st: array<f32, PN>;
@compute @workgroup_size(${spec.chunk})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let k = item / G;
  let g = item % G;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let slot = chunk_slot(k);
  let has = slot >= 0;
  let live = lid < len;
  let i = start + min(lid, len - 1u);
  var acc: array<f32, N>;
  for (var hh = 0u; hh < HG; hh++) {
    let h = g * HG + hh;
    workgroupBarrier();
    if (has) {
      for (var e = lid; e < PN; e += Q) { st[e] = src[(u32(slot) * H + h) * PN + e]; }
    }
    workgroupBarrier();
    if (live && has) {
      let jh = i * H + h;
      let cend = cs[(start + len - 1u) * H + h];
      let wgt = ${offWeight};
      for (var p = 0u; p < P; p++) {
        let a = ${offOperand}[jh * P + p] * wgt;
        for (var n = 0u; n < N; n++) { acc[n] += a * st[p * N + n]; }
      }
    }
  }
  if (!live) { return; }
  ${pairLoop}
    var w = 0.0;
    for (var hh = 0u; hh < HG; hh++) {
      let h = g * HG + hh;
      let jl = (start + l) * H + h;
      let js = (start + s) * H + h;
      var dot = 0.0;
      for (var p = 0u; p < P; p++) { dot += gy[jl * P + p] * x[js * P + p]; }
      w += exp(cs[jl] - cs[js]) * dtv[js] * dot;
    }
    let row = ((start + ${pairToken}) * G + g) * N;
    for (var n = 0u; n < N; n++) { acc[n] += w * ${pairOperand}[row + n]; }
  }
  let o = (i * G + g) * N;
  for (var n = 0u; n < N; n++) { out[o + n] = acc[n]; }
}`;
}

/** dC (role "C", from S_in) or dB (role "B", from U), shaped like B. */
export function groupGrads(
  spec: SsdSpec,
  role: GroupRole,
  t: { chunks: Tensor; count: number; x: Tensor; B: Tensor; C: Tensor },
  s: { gy: Tensor; dtv: Tensor; cs: Tensor; src: Tensor },
): Tensor {
  const out = Tensor.empty(t.B.shape, "f32", `ssdScan d${role}`);
  launchPerItem(`d${role}`, groupShader(spec, role), t.count * spec.groups, [
    t.chunks,
    t.x,
    t.B,
    t.C,
    s.gy,
    s.dtv,
    s.cs,
    s.src,
    out,
  ]);
  return out;
}
