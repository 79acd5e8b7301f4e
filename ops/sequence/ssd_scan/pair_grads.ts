/**
 * dB and dC of the SSD scan, the gradients summed over the heads of a group. Inside a chunk both
 * come from one matrix per (chunk, group) over the chunk's token pairs,
 *
 *     W[l, s] = Σ_h exp(cs_l − cs_s) · Δ_s · (∂y_l · x_s)        (s ≤ l, h in the group)
 *
 * and across chunks from the state S_in entering the chunk and the gradient U leaving it:
 *
 *     dC_l = Σ_{s≤l} W[l, s]·B_s + Σ_h exp(cs_l) · ∂y_lᵀ·S_in
 *     dB_s = Σ_{l≥s} W[l, s]·C_l + Σ_h exp(cs_end − cs_s) · Δ_s · x_sᵀ·U
 *
 * - `pairWeights`: one workgroup per 64 × 64 tile of pairs (and group); every invocation sums a
 *   4 × 4 block of pairs over the heads, with the tile's ∂y and x rows staged in workgroup memory a
 *   slice of the head dimension at a time. W is stored like C·Bᵀ, [s][l] per chunk.
 * - `pairGrads`: one workgroup per (chunk, group), one invocation per token, once for dC and once
 *   for dB; the loops over the other token of a pair run in step across the workgroup, so every
 *   B or C row read is one broadcast.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import type { SsdSpec } from "./options.ts";
import { PAIR_TILE } from "./pieces.ts";
import { bind, launchPerItem, prelude, unrolled, WorkgroupMatrix } from "./prelude.ts";

/** Invocations per `pairWeights` workgroup: 16 × 16, each a 4 × 4 block of a 64 × 64 tile. */
const WEIGHT_THREADS = 256;
/** Head-dimension slice staged at a time by `pairWeights`. */
const SLICE = 16;

function weightShader(spec: SsdSpec): string {
  return /* wgsl */ `
${
    bind([
      ["read", "chunks", "i32"],
      ["read", "tiles", "i32"],
      ["read", "x"],
      ["read", "gy"],
      ["read", "dtv"],
      ["read", "cs"],
      ["read_write", "w"],
    ])
  }
${prelude(spec)}
const TB: u32 = ${PAIR_TILE}u;
const PS: u32 = ${SLICE}u;
var<workgroup> gl: array<f32, ${PAIR_TILE * SLICE}>;  // ∂y of the tile's rows l, [p][l]
var<workgroup> xs: array<f32, ${PAIR_TILE * SLICE}>;  // x of its columns s, [p][s]
var<workgroup> csl: array<f32, TB>;
var<workgroup> css: array<f32, TB>;
var<workgroup> dts: array<f32, TB>;
@compute @workgroup_size(${WEIGHT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let tile = item / G;
  let g = item % G;
  let k = u32(tiles[tile * 4u]);
  let l0 = u32(tiles[tile * 4u + 1u]) * TB;
  let s0 = u32(tiles[tile * 4u + 2u]) * TB;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let tl = lid / 16u;
  let ts = lid % 16u;
  // The invocation's 4 × 4 pairs: rows l = 4·tl + i (vec4 i), columns s = 4·ts + (x, y, z, w).
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var hh = 0u; hh < HG; hh++) {
    let h = g * HG + hh;
    workgroupBarrier();
    if (lid < TB) {
      let l = l0 + lid;
      csl[lid] = select(0.0, cs[(start + min(l, len - 1u)) * H + h], l < len);
    } else if (lid < 2u * TB) {
      let r = lid - TB;
      let s = min(s0 + r, len - 1u);
      css[r] = cs[(start + s) * H + h];
      dts[r] = dtv[(start + s) * H + h];
    }
    var d0 = vec4<f32>();
    var d1 = vec4<f32>();
    var d2 = vec4<f32>();
    var d3 = vec4<f32>();
    for (var p0 = 0u; p0 < P; p0 += PS) {
      workgroupBarrier();
      for (var e = lid; e < TB * PS; e += ${WEIGHT_THREADS}u) {
        let r = e / PS;
        let pp = e % PS;
        let p = p0 + pp;
        let l = l0 + r;
        let s = s0 + r;
        gl[pp * TB + r] = select(0.0, gy[((start + min(l, len - 1u)) * H + h) * P + min(p, P - 1u)], l < len && p < P);
        xs[pp * TB + r] = select(0.0, x[((start + min(s, len - 1u)) * H + h) * P + min(p, P - 1u)], s < len && p < P);
      }
      workgroupBarrier();
      for (var pp = 0u; pp < PS; pp++) {
        let a = vec4<f32>(gl[pp * TB + tl * 4u], gl[pp * TB + tl * 4u + 1u], gl[pp * TB + tl * 4u + 2u], gl[pp * TB + tl * 4u + 3u]);
        let b = vec4<f32>(xs[pp * TB + ts * 4u], xs[pp * TB + ts * 4u + 1u], xs[pp * TB + ts * 4u + 2u], xs[pp * TB + ts * 4u + 3u]);
        d0 += a.x * b;
        d1 += a.y * b;
        d2 += a.z * b;
        d3 += a.w * b;
      }
    }
    let sc = vec4<f32>(css[ts * 4u], css[ts * 4u + 1u], css[ts * 4u + 2u], css[ts * 4u + 3u]);
    let sd = vec4<f32>(dts[ts * 4u], dts[ts * 4u + 1u], dts[ts * 4u + 2u], dts[ts * 4u + 3u]);
    let col = vec4<u32>(s0 + ts * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let row = l0 + tl * 4u;
    acc0 += select(vec4<f32>(), exp(vec4<f32>(csl[tl * 4u]) - sc) * sd * d0, col <= vec4<u32>(row));
    acc1 += select(vec4<f32>(), exp(vec4<f32>(csl[tl * 4u + 1u]) - sc) * sd * d1, col <= vec4<u32>(row + 1u));
    acc2 += select(vec4<f32>(), exp(vec4<f32>(csl[tl * 4u + 2u]) - sc) * sd * d2, col <= vec4<u32>(row + 2u));
    acc3 += select(vec4<f32>(), exp(vec4<f32>(csl[tl * 4u + 3u]) - sc) * sd * d3, col <= vec4<u32>(row + 3u));
  }
  var acc: array<vec4<f32>, 4>;
  acc[0] = acc0;
  acc[1] = acc1;
  acc[2] = acc2;
  acc[3] = acc3;
  let off = chunk_block(k, g);
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let l = l0 + tl * 4u + i;
      let s = s0 + ts * 4u + j;
      if (s <= l && l < len) { w[off + s * len + l] = acc[i][j]; }
    }
  }
}`;
}

/** W of every chunk and group, laid out like the C·Bᵀ blocks ([s][l]; entries s > l unset). */
export function pairWeights(
  spec: SsdSpec,
  chunks: Tensor,
  tiles: { table: Tensor; count: number },
  blockSize: number,
  s: { x: Tensor; gy: Tensor; dtv: Tensor; cs: Tensor },
): Tensor {
  const w = Tensor.empty([Math.max(1, blockSize * spec.groups)], "f32", "ssdScan pair weights");
  launchPerItem("pair weights", weightShader(spec), tiles.count * spec.groups, [
    chunks,
    tiles.table,
    s.x,
    s.gy,
    s.dtv,
    s.cs,
    w,
  ]);
  return w;
}

/** Which of B and C a `pairGrads` launch differentiates. */
export type PairRole = "B" | "C";

function gradShader(spec: SsdSpec, role: PairRole): string {
  const forC = role === "C";
  // Across chunks: with S_in (dC) or U (dB) of head h staged in `st`.
  const offWeight = forC ? "exp(cs[jh])" : "exp(cend - cs[jh]) * dtv[jh]";
  const offOperand = forC ? "gy" : "x";
  // Inside the chunk: thread l (dC) takes pairs s ≤ l, thread s (dB) pairs l ≥ s.
  const pair = forC
    ? "if (o <= lid) { let wv = w[off + o * len + lid];"
    : "if (o >= lid) { let wv = w[off + lid * len + o];";
  const U = (statement: string) => unrolled(spec.states, statement);
  // The other token's B (dC) or C (dB) row, read as vec4 words where N allows.
  const vec = spec.states % 4 === 0;
  const rowUpdate = vec
    ? Array.from({ length: spec.states / 4 }, (_, q) =>
      [
        `let o${q} = operand[row / 4u + ${q}u];`,
        ...[0, 1, 2, 3].map((c) => `acc${4 * q + c} += wv * o${q}.${"xyzw"[c]};`),
      ].join("\n")).join("\n")
    : U("acc# += wv * operand[row + #u];");
  const ST = new WorkgroupMatrix("st", spec.headDim, spec.states); // S_in or U, [p][n]
  return /* wgsl */ `
${
    bind([
      ["read", "chunks", "i32"],
      ["read", "x"],
      ["read", "operand", vec ? "vec4<f32>" : "f32"],
      ["read", "gy"],
      ["read", "dtv"],
      ["read", "cs"],
      ["read", "w"],
      ["read", "src"],
      ["read_write", "out"],
    ])
  }
${prelude(spec)}
const Q: u32 = ${spec.chunk}u;
${ST.declare()}
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
  let off = chunk_block(k, g);
  ${U("var acc# = 0.0;")}
  for (var hh = 0u; hh < HG; hh++) {
    let h = g * HG + hh;
    workgroupBarrier();
    if (has) {
      for (var e = lid; e < PN; e += Q) {
        ${ST.store("e / N", "e % N", "src[(u32(slot) * H + h) * PN + e]")}
      }
    }
    workgroupBarrier();
    if (live && has) {
      let jh = i * H + h;
      let cend = cs[(start + len - 1u) * H + h];
      let wgt = ${offWeight};
      for (var p = 0u; p < P; p++) {
        let a = ${offOperand}[jh * P + p] * wgt;
        ${ST.eachInRow("p", "acc# += a * @;")}
      }
    }
  }
  for (var o = 0u; o < len; o++) {
    ${pair}
      let row = ((start + o) * G + g) * N;
      ${rowUpdate}
    }
  }
  if (live) {
    let out_row = (i * G + g) * N;
    ${U("out[out_row + #u] = acc#;")}
  }
}`;
}

/** dC (role "C", with S_in as `src`) or dB (role "B", with U), shaped like B. */
export function pairGrads(
  spec: SsdSpec,
  role: PairRole,
  t: { chunks: Tensor; count: number; x: Tensor; B: Tensor; C: Tensor },
  s: { gy: Tensor; dtv: Tensor; cs: Tensor; w: Tensor; src: Tensor },
): Tensor {
  const out = Tensor.empty(t.B.shape, "f32", `ssdScan d${role}`);
  launchPerItem(`d${role}`, gradShader(spec, role), t.count * spec.groups, [
    t.chunks,
    t.x,
    role === "C" ? t.B : t.C,
    s.gy,
    s.dtv,
    s.cs,
    s.w,
    s.src,
    out,
  ]);
  return out;
}
