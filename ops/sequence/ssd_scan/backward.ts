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
 * dB and dC, summed over the heads of a group, are `pair_grads.ts`'s.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { workgroupReduceWgsl } from "../../wgsl/reduce.ts";
import { listed, type SsdSpec } from "./options.ts";
import {
  bind,
  type Binding,
  eachOfRow,
  launchPerItem,
  prelude,
  stagedBytes,
  type TokenInput,
  tokenReads,
  unrolled,
  WorkgroupMatrix,
} from "./prelude.ts";
import { runtime } from "../../core/runtime.ts";

/** The chunk's per-token inputs `headGrads` reads for every pair. */
const HEAD_INPUTS: TokenInput[] = [
  { source: "gy", width: "P" },
  { source: "x", width: "P" },
  { source: "cs", width: "1" },
  { source: "dtv", width: "1" },
];

/** Workgroup bytes of `headGrads` without the staged inputs. */
function headBytes(spec: SsdSpec): number {
  const span = 2 ** Math.ceil(Math.log2(spec.chunk));
  return 4 * (2 * spec.headDim * spec.states + 2 * spec.chunk + 3 * span);
}

function headShader(spec: SsdSpec, staged: boolean): string {
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
    ["read", "cbt"],
    ["read", "sin"],
    ["read", "ub"],
  ];
  if (spec.hasD) list.push(["read", "D"]);
  if (spec.hasBias) list.push(["read", "dt_bias"]);
  list.push(["read_write", "dx"], ["read_write", "ddt"]);
  list.push(["read_write", "part_a"], ["read_write", "part_d"], ["read_write", "part_b"]);
  const skip = spec.hasD ? "D[h]" : "0.0";
  const P = spec.headDim;
  const U = (statement: string) => unrolled(P, statement);
  const SSH = new WorkgroupMatrix("ssh", spec.states, spec.headDim); // S_in, [n][p]
  const USH = new WorkgroupMatrix("ush", spec.states, spec.headDim); // U, [n][p]
  // Tree sums over a power-of-two span; the slots past the chunk stay zero (workgroup memory
  // starts zeroed and nothing writes there).
  const span = 2 ** Math.ceil(Math.log2(spec.chunk));
  const reduce = (arrays: string[]) =>
    workgroupReduceWgsl({ array: arrays, size: span, combine: "sum" });
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true)}
const Q: u32 = ${spec.chunk}u;
${tokenReads(HEAD_INPUTS, staged, spec.chunk, spec.chunk, spec.headDim)}
${SSH.declare()}
${USH.declare()}
var<workgroup> dcs: array<f32, Q>;
var<workgroup> qv: array<f32, Q>;
var<workgroup> r0: array<f32, ${span}>;
var<workgroup> r1: array<f32, ${span}>;
var<workgroup> r2: array<f32, ${span}>;
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
  begin_chunk(start, h);
  stage_tokens(len, lid);
  var us = 0.0;
  if (has) {
    for (var e = lid; e < PN; e += Q) {
      let a = sin[(u32(slot) * H + h) * PN + e];
      let b = ub[(u32(slot) * H + h) * PN + e];
      ${SSH.store("e % N", "e / N", "a")}
      ${USH.store("e % N", "e / N", "b")}
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
  ${U("var gk# = 0.0;")}
  ${U("var xk# = 0.0;")}
  ${U("var dX# = 0.0;")}
  var dc = 0.0;
  var q = 0.0;
  if (live) {
    ${U("gk# = gy[j * P + #u];")}
    ${U("xk# = x[j * P + #u];")}
    // The pairs (l ≥ k) that read x_k, and the pairs (s < k) that write y_k.
    for (var l = 0u; l < len; l++) {
      if (l >= lid) {
        let m = cbt[off + l * len + lid] * exp(cs_at(l) - csk);
        ${eachOfRow("gl", P, (q) => `gy_at4(l, ${q}u)`, (c) => `gy_at(l, ${c}u)`, "dX# += m * @;")}
      }
    }
    ${U("var yd# = 0.0;")}
    for (var s = 0u; s < lid; s++) {
      let w = cb[off + s * len + lid] * exp(csk - cs_at(s)) * dtv_at(s);
      ${eachOfRow("xs", P, (q) => `x_at4(s, ${q}u)`, (c) => `x_at(s, ${c}u)`, "yd# += w * @;")}
    }
    let mkk = cb[off + lid * len + lid];
    ${U("dc += gk# * yd# - dk * xk# * (dX# - mkk * gk#);")}
    if (has) {
      var yo = 0.0;
      ${U("var ub# = 0.0;")}
      let bc = (i * G + g) * N;
      for (var n = 0u; n < N; n++) {
        let c = C[bc + n];
        let bv = B[bc + n];
        ${SSH.eachInRow("n", "yo += gk# * @ * c;")}
        ${USH.eachInRow("n", "ub# += @ * bv;")}
      }
      dc += exp(csk) * yo;
      let sc = exp(cend - csk);
      var xu = 0.0;
      ${U("xu += xk# * ub#;")}
      ${U("dX# += sc * ub#;")}
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
    ${U("dx[j * P + #u] = dk * dX# + skip * gk#;")}
    ${U("direct += xk# * dX#;")}
    ${U("pd += gk# * xk#;")}
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
  s: { gy: Tensor; dtv: Tensor; cs: Tensor; cb: Tensor; cbt: Tensor; sin: Tensor; ub: Tensor },
): { dx: Tensor; ddt: Tensor; parts: [Tensor, Tensor, Tensor] } {
  const { heads: H } = spec;
  const staged =
    headBytes(spec) + stagedBytes(HEAD_INPUTS, spec) <= runtime().info.maxWorkgroupBytes;
  const dx = Tensor.empty(t.x.shape, "f32", "ssdScan dx");
  const ddt = Tensor.empty(t.dt.shape, "f32", "ssdScan ddt");
  const part = () => Tensor.empty([t.count, H], "f32", "ssdScan partial sums");
  const parts: [Tensor, Tensor, Tensor] = [part(), part(), part()];
  launchPerItem("head gradients", headShader(spec, staged), t.count * H, [
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
    s.cbt,
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
