/**
 * The SSD scan's forward as its recurrence, for states small enough to live in registers
 * (N ≤ `RECURRENT_MAX_STATES`, 64): one invocation per (segment, head, channel p) walks the
 * segment's tokens holding the whole row S[p, ·] of the state,
 *
 *     S ← a_t·S + Δ_t·x_t[p]·B_t,    a_t = exp(Δ_t·A_h) = exp(cs_t − cs_{t−1})
 *     ŷ_t[p] = (a_t·S_{t−1})·C_t,    y_t[p] = ŷ_t[p] + (C_t·B_t·Δ_t + D_h)·x_t[p]
 *
 * (ŷ, y without its own token's term and D·x, is what the backward needs; the pair (t, t), C_t·B_t,
 * is read from the chunk's C·Bᵀ; the decays come from the chunk's cumulative cs, so that their
 * rounding is the backward's). It does the least arithmetic of any form, 3·N operations per
 * (token, head, channel), and no quadratic work inside chunks. A workgroup takes a block of heads
 * of one group of one segment, stages B_t, C_t (shared by its heads) a few tokens at a time in
 * workgroup memory, and writes the state entering every slotted chunk for the backward, the final
 * state when asked, and y and ŷ. Segments are taken longest first (`SsdPieces.segmentTable`), so
 * the last workgroups to finish are short ones.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { zeros } from "../../core/unrecorded.ts";
import type { Decays } from "./forward.ts";
import { listed, sizeFreeKey, type SsdSpec } from "./options.ts";
import { bind, type Binding, bindingIf, launchPerItem, prelude } from "./prelude.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/** Invocations a workgroup aims at: heads × P. */
const TARGET_THREADS = 128;
/** Tokens staged per round. */
const TOKENS = 8;

/**
 * Heads per workgroup: the most that divide the heads of a group with at most `TARGET_THREADS`
 * invocations (one head at least).
 */
function headsPerWorkgroup(spec: SsdSpec): number {
  const perGroup = spec.heads / spec.groups;
  const cap = Math.max(1, Math.floor(TARGET_THREADS / spec.headDim));
  let heads = 1;
  for (let d = 1; d <= Math.min(cap, perGroup); d++) if (perGroup % d === 0) heads = d;
  return heads;
}

/**
 * The recurrence's shader. Each round stages, for `TOKENS` tokens, B and C as zero-padded rows of
 * vec4 (so that padded states stay 0 and add nothing), and per head Δ, x and the decay; the token
 * loop then reads workgroup memory only at constant offsets from a round's row.
 */
const recurrentShader = shaderGenerator("ssdScan", recurrentShaderSource, sizeFreeKey);

function recurrentShaderSource(spec: SsdSpec): string {
  const { states: N, headDim: P } = spec;
  const HB = headsPerWorkgroup(spec);
  const threads = HB * P;
  // The row is zero-padded to whole vec4s.
  const SV = Math.ceil(N / 4);
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "segs", "i32"],
    ["read", "x"],
    ["read", "B"],
    ["read", "C"],
    ["read", "dtv"],
    ["read", "cs"],
    ["read", "cb"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ...bindingIf(spec.hasInit, ["read", "init"]),
    ["read_write", "y"],
    ["read_write", "yh"],
    ["read_write", "sin"],
    ...bindingIf(spec.wantFinal, ["read_write", "fin"]),
  ];
  const vecs = Array.from({ length: SV }, (_, m) => m);
  // State 4m + c of the row; the padded ones (4m + c ≥ N) are never stored.
  const padded = 4 * SV !== N;
  const each = (f: (m: number, c: number) => string) =>
    vecs.flatMap((m) => [0, 1, 2, 3].filter((c) => 4 * m + c < N).map((c) => f(m, c)))
      .join("\n      ");
  const store = (target: string, base: string) =>
    each((m, c) => `${target}[${base} + ${4 * m + c}u] = s${m}[${c}];`);
  const declare = vecs.map((m) => `  var s${m} = vec4<f32>(0.0);`).join("\n") +
    (spec.hasInit ? `\n  ${each((m, c) => `s${m}[${c}] = init[sbase + ${4 * m + c}u];`)}` : "");
  const step = vecs.map((m) =>
    `{ let dec = a * s${m}; q${m % 2} = fma(dec, sc[i][${m}], q${m % 2}); ` +
    `s${m} = fma(dx, sb[i][${m}], dec); }`
  ).join("\n      ");
  // Staging B and C: four states of one token per invocation, zero past N and past the segment.
  const load = (name: string) =>
    padded
      ? `vec4<f32>(${
        [0, 1, 2, 3].map((c) => `select(0.0, ${name}[min(at + ${c}u, last)], n + ${c}u < N)`)
          .join(", ")
      })`
      : `vec4<f32>(${[0, 1, 2, 3].map((c) => `${name}[at + ${c}u]`).join(", ")})`;
  return /* wgsl */ `
${bind(list)}
${prelude(spec)}
const Q: u32 = ${spec.chunk}u;
const HB: u32 = ${HB}u;
const TOK: u32 = ${TOKENS}u;
const SV: u32 = ${SV}u;
const THREADS: u32 = ${threads}u;
var<workgroup> sb: array<array<vec4<f32>, SV>, TOK>;
var<workgroup> sc: array<array<vec4<f32>, SV>, TOK>;
var<workgroup> sdiag: array<f32, TOK>;
var<workgroup> sdt: array<array<f32, HB>, TOK>;
var<workgroup> sdec: array<array<f32, HB>, TOK>;
var<workgroup> sx: array<array<f32, ${HB * P}>, TOK>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let blocks = H / HB;
  let rank = item / blocks;
  let h0 = (item % blocks) * HB;
  let g = h0 / HG;
  let start = u32(segs[rank * 4u]);
  let len = u32(segs[rank * 4u + 1u]);
  let first = u32(segs[rank * 4u + 2u]);
  let seg = u32(segs[rank * 4u + 3u]);
  let hl = lid / P;
  let h = h0 + hl;
  let p = lid % P;
  let sbase = (seg * H + h) * PN + p * N;
  let skip = ${spec.hasD ? "D[h]" : "0.0"};
  let last = arrayLength(&B) - 1u;
${declare}
  for (var t0 = 0u; t0 < len; t0 += TOK) {
    workgroupBarrier();
    for (var e = lid; e < TOK * SV; e += THREADS) {
      let i = e / SV;
      let v = e % SV;
      let tok = t0 + i;
      let n = 4u * v;
      var bv = vec4<f32>(0.0);
      var cv = vec4<f32>(0.0);
      if (tok < len) {
        let at = bc_at(start + tok, g, n);
        bv = ${load("B")};
        cv = ${load("C")};
      }
      sb[i][v] = bv;
      sc[i][v] = cv;
    }
    for (var e = lid; e < TOK * HB; e += THREADS) {
      let i = e / HB;
      let tok = t0 + i;
      if (tok < len) {
        let j = th_at(start + tok, h0 + e % HB);
        sdt[i][e % HB] = dtv[j];
        // The decay from the chunk's cumulative cs, as the backward's pair terms have it.
        var c = cs[j];
        if (tok % Q != 0u) { c -= cs[j - H]; }
        sdec[i][e % HB] = exp(c);
      }
    }
    for (var e = lid; e < TOK * HB * P; e += THREADS) {
      let i = e / (HB * P);
      let tok = t0 + i;
      if (tok < len) { sx[i][e % (HB * P)] = x[hp_at(start + tok, h0, e % (HB * P))]; }
    }
    for (var i = lid; i < TOK; i += THREADS) {
      let tok = t0 + i;
      if (tok < len) {
        let k = first + tok / Q;
        sdiag[i] = cb[chunk_block(k, g) + (tok % Q) * (chunk_len(k) + 1u)];
      }
    }
    workgroupBarrier();
    for (var i = 0u; i < TOK; i++) {
      let tok = t0 + i;
      if (tok >= len) { break; }
      if (tok % Q == 0u) {
        let slot = chunk_slot(first + tok / Q);
        if (slot >= 0) {
          let ibase = (u32(slot) * H + h) * PN + p * N;
          ${store("sin", "ibase")}
        }
      }
      let a = sdec[i][hl];
      let dx = vec4<f32>(sdt[i][hl] * sx[i][lid]);
      var q0 = vec4<f32>(0.0);
      var q1 = vec4<f32>(0.0);
      ${step}
      let qs = q0 + q1;
      let yhat = (qs.x + qs.y) + (qs.z + qs.w);
      let at = hp_at(start + tok, h, p);
      yh[at] = yhat;
      y[at] = yhat + (sdiag[i] * sdt[i][hl] + skip) * sx[i][lid];
    }
  }
  ${spec.wantFinal ? store("fin", "sbase") : ""}
}`;
}

/**
 * The forward by the recurrence: y and ŷ (tokens, H, P), the state entering every slotted chunk
 * (slots, H, P, N; a 1-element placeholder without slots) and, when asked, the final states.
 */
export function recurrentForward(
  spec: SsdSpec,
  t: {
    chunks: Tensor;
    segments: Tensor;
    segmentCount: number;
    slots: number;
    x: Tensor;
    B: Tensor;
    C: Tensor;
    D?: Tensor;
    init?: Tensor;
  },
  saved: Decays & { cb: Tensor },
): { y: Tensor; yh: Tensor; sin: Tensor; finalStates?: Tensor } {
  const { batch, length, heads: H, headDim: P, states: N } = spec;
  const y = Tensor.empty([batch, length, H, P], "f32", "ssdScan");
  const yh = Tensor.empty(y.shape, "f32", "ssdScan ŷ");
  const sin = t.slots > 0
    ? Tensor.empty([t.slots, H, P, N], "f32", "ssdScan carried states")
    : zeros([1]);
  const finalStates = spec.wantFinal
    ? Tensor.empty([t.segmentCount, H, P, N], "f32", "ssdScan edge states")
    : undefined;
  const items = t.segmentCount * (H / headsPerWorkgroup(spec));
  launchPerItem("recurrent forward", recurrentShader(spec), items, [
    t.chunks,
    t.segments,
    t.x,
    t.B,
    t.C,
    saved.dtv,
    saved.cs,
    saved.cb,
    ...listed(t.D),
    ...listed(t.init),
    y,
    yh,
    sin,
    ...listed(finalStates),
  ]);
  return finalStates ? { y, yh, sin, finalStates } : { y, yh, sin };
}
