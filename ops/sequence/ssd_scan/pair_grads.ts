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
 * W comes from `pair_tiles.ts`. `pairGrads`: one workgroup per (chunk, group), one invocation per
 * token, once for dC and once for dB; the loops over the other token of a pair run in step across
 * the workgroup, so every B or C row read is one broadcast.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import type { SsdSpec } from "./options.ts";
import { bind, launchPerItem, prelude, unrolled, WorkgroupMatrix } from "./prelude.ts";

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
