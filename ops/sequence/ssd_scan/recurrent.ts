/**
 * The SSD scan's forward as its recurrence, for states small enough to live in registers
 * (N ≤ `RECURRENT_MAX_STATES`, 64): invocations per (segment, head, channel p) walk the segment's
 * tokens holding the row S[p, ·] of the state, at most 32 states each (the selective scan's
 * limit; two invocations share a row of 64 and meet in workgroup memory once per round of tokens),
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
import { listed, type SsdSpec } from "./options.ts";
import { bind, type Binding, bindingIf, launchPerItem, prelude } from "./prelude.ts";

/** Invocations a workgroup aims at: heads × P × invocations per row. */
const TARGET_THREADS = 128;
/** Most states one invocation keeps in registers (more: several invocations share a row). */
const STATES_PER_THREAD = 32;
/** Tokens staged per round. */
const TOKENS = 8;
/** Partial sums of ŷ per invocation (independent chains over its states). */
const PARTIALS = 4;

/** How a workgroup is laid out: heads, invocations per state row, states per invocation. */
interface Layout {
  /** Heads per workgroup (divides the heads of a group). */
  heads: number;
  /** Invocations sharing one (head, channel) row of the state. */
  parts: number;
  /** States per invocation. */
  spt: number;
  /** Invocations per workgroup: heads × P × parts. */
  threads: number;
}

function layoutOf(spec: SsdSpec): Layout {
  const spt = Math.min(spec.states, STATES_PER_THREAD);
  const parts = Math.ceil(spec.states / spt);
  const perGroup = spec.heads / spec.groups;
  const cap = Math.max(1, Math.floor(TARGET_THREADS / (spec.headDim * parts)));
  let heads = 1;
  for (let d = 1; d <= Math.min(cap, perGroup); d++) if (perGroup % d === 0) heads = d;
  return { heads, parts, spt, threads: heads * spec.headDim * parts };
}

function recurrentShader(spec: SsdSpec): string {
  const { states: N } = spec;
  const { heads: HB, parts, spt, threads } = layoutOf(spec);
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
  // The invocation's states are n0 + m, m < spt; the last part may hold fewer.
  const ragged = N % spt !== 0;
  const each = (f: (m: number) => string) =>
    Array.from({ length: spt }, (_, m) => (ragged ? `if (n0 + ${m}u < N) { ${f(m)} }` : f(m)))
      .join("\n");
  const start = spec.hasInit ? (m: number) => `init[sbase + ${m}u]` : () => "0.0";
  const declare = Array.from(
    { length: spt },
    (_, m) =>
      ragged && spec.hasInit
        ? `  var s${m} = 0.0;\n  if (n0 + ${m}u < N) { s${m} = ${start(m)}; }`
        : `  var s${m} = ${start(m)};`,
  ).join("\n");
  const store = (target: string, base: string) =>
    each((m) => `${target}[${base} + ${m}u] = s${m};`);
  const partial = (m: number) => `q${m % PARTIALS}`;
  const sums = Array.from({ length: Math.min(PARTIALS, spt) }, (_, r) => `q${r}`).join(" + ");
  // The output of token i: alone, or the parts' sums met in workgroup memory after the round.
  const finish = (yhat: string) =>
    `{
          let j = th_at(start + tok, h);
          let at = j * P + p;
          let xv = x[at];
          yh[at] = ${yhat};
          y[at] = ${yhat} + (sdiag[i] * dtv[j] + skip) * xv;
        }`;
  const emit = parts === 1
    ? `      let yhat = ${sums};\n      ${finish("yhat")}`
    : `      spart[i * ${threads}u + lid] = ${sums};`;
  const gather = parts === 1 ? "" : `    workgroupBarrier();
    if (part == 0u) {
      for (var i = 0u; i < TOK; i++) {
        let tok = t0 + i;
        if (tok >= len) { break; }
        var yhat = 0.0;
        for (var q = 0u; q < ${parts}u; q++) { yhat += spart[i * ${threads}u + lid + q]; }
        ${finish("yhat")}
      }
    }`;
  return /* wgsl */ `
${bind(list)}
${prelude(spec)}
const Q: u32 = ${spec.chunk}u;
const HB: u32 = ${HB}u;
const TOK: u32 = ${TOKENS}u;
var<workgroup> sb: array<f32, ${TOKENS * N}>;
var<workgroup> sc: array<f32, ${TOKENS * N}>;
var<workgroup> sdiag: array<f32, ${TOKENS}>;
${parts === 1 ? "" : `var<workgroup> spart: array<f32, ${TOKENS * threads}>;`}
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
  let part = lid % ${parts}u;
  let row = lid / ${parts}u;
  let h = h0 + row / P;
  let p = row % P;
  let n0 = part * ${spt}u;
  let sbase = (seg * H + h) * PN + p * N + n0;
  let skip = ${spec.hasD ? "D[h]" : "0.0"};
  var cprev = 0.0;
${declare}
  for (var t0 = 0u; t0 < len; t0 += TOK) {
    workgroupBarrier();
    for (var e = lid; e < TOK * N; e += ${threads}u) {
      let tok = t0 + e / N;
      if (tok < len) {
        sb[e] = B[bc_at(start + tok, g, e % N)];
        sc[e] = C[bc_at(start + tok, g, e % N)];
      }
    }
    for (var i = lid; i < TOK; i += ${threads}u) {
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
          let ibase = (u32(slot) * H + h) * PN + p * N + n0;
          ${store("sin", "ibase")}
        }
      }
      let j = th_at(start + tok, h);
      let d = dtv[j];
      // The decay from the chunk's cumulative cs, as the backward's pair terms have it.
      let c = cs[j];
      let a = exp(select(c - cprev, c, tok % Q == 0u));
      cprev = c;
      let dx = d * x[j * P + p];
${Array.from({ length: Math.min(PARTIALS, spt) }, (_, r) => `      var q${r} = 0.0;`).join("\n")}
      ${
    each((m) =>
      `{ let dec = a * s${m}; ${partial(m)} = fma(dec, sc[i * N + n0 + ${m}u], ${partial(m)}); ` +
      `s${m} = fma(dx, sb[i * N + n0 + ${m}u], dec); }`
    )
  }
${emit}
    }
${gather}
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
  const items = t.segmentCount * (H / layoutOf(spec).heads);
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
