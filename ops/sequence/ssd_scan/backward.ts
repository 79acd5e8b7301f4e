/**
 * The SSD scan's backward for x, dt, A, D and dtBias, given ∂y, the state S_in entering each
 * chunk and the gradient U leaving it (both from `states.ts`; zero for chunks without a slot).
 *
 * With u the gradient of the product Δ_k·x_k,
 *
 *     u_k  = Σ_{l≥k} (C_l·B_k)·exp(cs_l − cs_k)·∂y_l  +  exp(cs_end − cs_k)·U·B_k
 *     dx_k = Δ_k·u_k + D·∂y_k
 *
 * one chunk product per (chunk, head) gives u without its pair (k, k), û: the leaving-gradient
 * term over the states, then the pairs l > k over the chunk's tokens. One
 * workgroup per (chunk, head) then finishes: adds the pair (k, k), and since every factor
 * exp(cs_k) in y_k and exp(−cs_k) in the later pairs and in U's term makes the gradient of the
 * cumulative decay
 *
 *     dcs_k = ∂y_k·ŷ_k − Δ_k·(x_k·û_k)      (+ ⟨U, S_out⟩ at the chunk's last token)
 *
 * (ŷ is y without its pair (k, k) and D·x, kept by the forward; the pair (k, k) carries no decay,
 * so leaving it out of both terms avoids subtracting values that cancel), the suffix sums
 * da_k = Σ_{t≥k} dcs_t give ∂Δ_k = x_k·u_k + A·da_k, and ∂A gets Σ_k Δ_k·da_k. Per (chunk, head)
 * partial sums of dA, dD and d dtBias are reduced by `sumLeading` afterwards (no atomics).
 *
 * dB and dC, summed over the heads of a group, are `pair_grads.ts`'s.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { workgroupReduceWgsl } from "../../wgsl/reduce.ts";
import { type ChunkGemm, runChunkGemm } from "./chunk_gemm.ts";
import { listed, sizeFreeKey, type SsdSpec } from "./options.ts";
import type { Decays } from "./forward.ts";
import {
  bind,
  type Binding,
  bindingIf,
  headTokens,
  itemSetup,
  launchPerItem,
  prelude,
} from "./prelude.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/**
 * û per (chunk, head), written to `du`: a product over the states for U's term,
 * exp(cs_end − cs_k)·(U·B_k), then one over the chunk's tokens for the pairs l > k,
 * Σ_{l>k} CB[l, k]·exp(cs_l − cs_k)·∂y_l.
 */
function inputGemm(spec: SsdSpec): ChunkGemm {
  const tokens = headTokens(spec, ["cs", "eend"]);
  return {
    label: "input gradient",
    bindings: [
      ["read", "chunks", "i32"],
      ["read", "B"],
      ["read", "gy"],
      ["read", "cs"],
      ["read", "eend"],
      ["read", "cb"],
      ["read", "ub"],
      ["read_write", "du"],
    ],
    tiles: "narrow",
    setup: itemSetup("CHUNK_HEAD", "len", "P"),
    declarations: tokens.declarations,
    prologue: tokens.fill,
    maxRows: spec.chunk,
    maxCols: spec.headDim,
    phases: [{
      lo: "0u",
      hi: "select(0u, N, slot >= 0)",
      a: "B[bc_at(start + mm, g, kk)] * t_eend[mm]",
      b: "ub[st_at(u32(slot), h, nn, kk)]",
      aAlong: "k",
      bAlong: "k",
    }, {
      lo: "m0",
      hi: "len",
      a: "cb[off + kk * len + mm] * exp(t_cs[kk] - t_cs[mm])",
      aWhere: "kk > mm",
      b: "gy[th_at(start + kk, h) * P + nn]",
      aAlong: "m",
      bAlong: "n",
    }],
    emit: "du[th_at(start + m, h) * P + n] = v;",
  };
}

/** Invocations per workgroup of the finishing kernel (≥ the longest chunk). */
const FINISH_THREADS = 256;
/** Invocations that share one token's P channels in the finishing kernel. */
const LANES = 16;

const finishShader = shaderGenerator("ssdScan finish", finishShaderSource, sizeFreeKey);

function finishShaderSource(spec: SsdSpec): string {
  const threads = FINISH_THREADS;
  const rows = threads / LANES;
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "x"],
    ["read", "dt"],
    ["read", "A"],
    ["read", "gy"],
    ["read", "yh"],
    ["read", "dtv"],
    ["read", "cb"],
    ["read", "sin"],
    ["read", "ub"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
    ["read_write", "du"],
    ["read_write", "ddt"],
    ["read_write", "parts"],
  ];
  const skip = spec.hasD ? "D[h]" : "0.0";
  const reduce = (arrays: string[]) =>
    workgroupReduceWgsl({ array: arrays, size: threads, combine: "sum" });
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true)}
const Q: u32 = ${spec.chunk}u;
// Per token of the chunk: dcs, x·u and x·∂y; per (token of a pass, lane): partial sums.
var<workgroup> dcs: array<f32, Q>;
var<workgroup> xu_t: array<f32, Q>;
var<workgroup> xdy_t: array<f32, Q>;
var<workgroup> part: array<vec3f, ${threads}>;
var<workgroup> r0: array<f32, ${threads}>;
var<workgroup> r1: array<f32, ${threads}>;
var<workgroup> r2: array<f32, ${threads}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let k = item / H;
  let h = item % H;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let off = chunk_block(k, h / HG);
  let skip = ${skip};
  // ⟨U, S_out⟩: the gradient leaving the chunk against the state leaving it, which is the state
  // entering the next chunk of the segment (both slotted when the segment has a next chunk).
  var edge = 0.0;
  if ((chunk_flags(k) & 2u) == 0u) {
    let us = (u32(chunk_slot(k)) * H + h) * PN;
    let ss = (u32(chunk_slot(k + 1u)) * H + h) * PN;
    for (var e = lid; e < PN; e += ${threads}u) { edge += ub[us + e] * sin[ss + e]; }
  }
  r0[lid] = edge;
  workgroupBarrier();
  ${reduce(["r0"])}
  let state_term = r0[0];
  // dx = Δ·(û + CB[l, l]·∂y) + D·∂y over (token, channel), ${LANES} invocations per token so that
  // neighbours read neighbouring channels; the per-token sums x·û, ∂y·ŷ, x·∂y via workgroup memory.
  let lane = lid % ${LANES}u;
  for (var base = 0u; base < len; base += ${rows}u) {
    let l = base + lid / ${LANES}u;
    var acc = vec3f(0.0);
    if (l < len) {
      let j = th_at(start + l, h);
      let d = dtv[j];
      let diag = cb[off + l * (len + 1u)];
      for (var p = lane; p < P; p += ${LANES}u) {
        let at = j * P + p;
        let xv = x[at];
        let g = gy[at];
        let us = du[at];
        acc += vec3f(xv * us, g * yh[at], xv * g);
        du[at] = d * (us + diag * g) + skip * g;
      }
    }
    part[lid] = acc;
    workgroupBarrier();
    if (lid < ${rows}u && base + lid < len) {
      let l2 = base + lid;
      var sum = vec3f(0.0);
      for (var q = 0u; q < ${LANES}u; q++) { sum += part[lid * ${LANES}u + q]; }
      let d = dtv[th_at(start + l2, h)];
      dcs[l2] = sum.y - d * sum.x;
      xu_t[l2] = sum.x + cb[off + l2 * (len + 1u)] * sum.z;
      xdy_t[l2] = sum.z;
    }
    workgroupBarrier();
  }
  var pa = 0.0;
  var pd = 0.0;
  var pb = 0.0;
  if (lid < len) {
    let j = th_at(start + lid, h);
    var da = state_term;
    for (var t = lid; t < len; t++) { da += dcs[t]; }
    let draw = (xu_t[lid] + A[h] * da) * step_size(j, h).y;
    ddt[j] = draw;
    pa = dtv[j] * da;
    pd = xdy_t[lid];
    pb = draw;
  }
  r0[lid] = pa;
  r1[lid] = pd;
  r2[lid] = pb;
  workgroupBarrier();
  ${reduce(["r0", "r1", "r2"])}
  if (lid == 0u) {
    parts[k * 3u * H + h] = r0[0];
    parts[k * 3u * H + H + h] = r1[0];
    parts[k * 3u * H + 2u * H + h] = r2[0];
  }
}`;
}

/**
 * dx, ∂dt and the per-(chunk, head) partial sums of dA, dD and d dtBias, side by side in one
 * (chunks, 3, H) tensor.
 */
export function headGrads(
  spec: SsdSpec,
  t: {
    chunks: Tensor;
    count: number;
    x: Tensor;
    dt: Tensor;
    A: Tensor;
    B: Tensor;
    D?: Tensor;
    dtBias?: Tensor;
  },
  s: Decays & { gy: Tensor; yh: Tensor; cb: Tensor; sin: Tensor; ub: Tensor },
): { dx: Tensor; ddt: Tensor; parts: Tensor } {
  const { heads: H } = spec;
  const dx = Tensor.empty(t.x.shape, "f32", "ssdScan dx");
  runChunkGemm(spec, inputGemm(spec), t.count * H, [
    t.chunks,
    t.B,
    s.gy,
    s.cs,
    s.eend,
    s.cb,
    s.ub,
    dx,
  ]);
  const ddt = Tensor.empty(t.dt.shape, "f32", "ssdScan ddt");
  const parts = Tensor.empty([t.count, 3, H], "f32", "ssdScan partial sums");
  launchPerItem("head gradients", finishShader(spec), t.count * H, [
    t.chunks,
    t.x,
    t.dt,
    t.A,
    s.gy,
    s.yh,
    s.dtv,
    s.cb,
    s.sin,
    s.ub,
    ...listed(t.D),
    ...listed(t.dtBias),
    dx,
    ddt,
    parts,
  ]);
  return { dx, ddt, parts };
}
