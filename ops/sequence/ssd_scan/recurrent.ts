/**
 * The SSD scan's forward as its recurrence, for states small enough to live in registers
 * (N ≤ `RECURRENT_MAX_STATES`, 64): invocations per (segment, head, block of channels p) walk the
 * segment's tokens holding up to 4 rows S[p, ·] of the state, at most 16 states of each (so that
 * every B_t and C_t value read from workgroup memory serves four channels; the invocations sharing
 * the rows meet in workgroup memory once per round of tokens),
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

/** Invocations a workgroup aims at. */
const TARGET_THREADS = 128;
/** Most states of a row one invocation keeps (more: several invocations share the rows). */
const STATES_PER_THREAD = 16;
/** Most channels (rows of the state) one invocation keeps, each reusing the staged B and C. */
const CHANNELS_PER_THREAD = 4;
/** Tokens staged per round. */
const TOKENS = 8;

/** How a workgroup is laid out: heads, channels and states per invocation. */
interface Layout {
  /** Heads per workgroup (divides the heads of a group). */
  heads: number;
  /** Channels per invocation (divides P): rows p0 … p0 + rows − 1 of the state. */
  rows: number;
  /** Invocations sharing those rows, each holding `spt` states of them. */
  parts: number;
  /** States per invocation and row, a multiple of 4 (rows are zero-padded to `parts · spt`). */
  spt: number;
  /** Invocations per workgroup: heads × (P / rows) × parts. */
  threads: number;
}

function layoutOf(spec: SsdSpec): Layout {
  const P = spec.headDim;
  const rows = [CHANNELS_PER_THREAD, 2, 1].find((r) => P % r === 0)!;
  const parts = Math.ceil(spec.states / STATES_PER_THREAD);
  const spt = 4 * Math.ceil(spec.states / parts / 4);
  const perHead = (P / rows) * parts;
  const perGroup = spec.heads / spec.groups;
  const cap = Math.max(1, Math.floor(TARGET_THREADS / perHead));
  let heads = 1;
  for (let d = 1; d <= Math.min(cap, perGroup); d++) if (perGroup % d === 0) heads = d;
  return { heads, rows, parts, spt, threads: heads * perHead };
}

/**
 * The recurrence's shader. Each round stages, for `TOKENS` tokens, B and C as zero-padded rows of
 * vec4 (so that padded states stay 0 and add nothing), and per head Δ, x and the decay. In the
 * token loop an invocation reads its states' B and C once for all its channels, at constant
 * offsets from the round's row; the parts' sums of ŷ meet in workgroup memory after the round.
 */
function recurrentShader(spec: SsdSpec): string {
  const { states: N, headDim: P } = spec;
  const { heads: HB, rows: R, parts, spt, threads } = layoutOf(spec);
  const SV = spt / 4;
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
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const vecs = range(SV);
  const channels = range(R);
  // State n0 + 4m + c of channel p0 + r is s{r}_{m}[c]; the padded ones are never stored.
  const padded = parts * spt !== N;
  const each = (f: (r: number, m: number, c: number) => string) =>
    channels.flatMap((r) =>
      vecs.flatMap((m) =>
        [0, 1, 2, 3].map((c) => {
          const body = f(r, m, c);
          return padded ? `if (n0 + ${4 * m + c}u < N) { ${body} }` : body;
        })
      )
    ).join("\n      ");
  const at = (r: number, m: number, c: number) => `${r * N + 4 * m + c}u`;
  const store = (target: string, base: string) =>
    each((r, m, c) => `${target}[${base} + ${at(r, m, c)}] = s${r}_${m}[${c}];`);
  const declare = channels.flatMap((r) => vecs.map((m) => `  var s${r}_${m} = vec4<f32>(0.0);`))
    .join("\n") +
    (spec.hasInit
      ? `\n  ${each((r, m, c) => `s${r}_${m}[${c}] = init[sbase + ${at(r, m, c)}];`)}`
      : "");
  const step = vecs.map((m) =>
    `{
        let bv = sb[i][part][${m}];
        let cv = sc[i][part][${m}];
${
      channels.map((r) =>
        `        let dec${r} = a * s${r}_${m};\n` +
        `        q${r} = fma(dec${r}, cv, q${r});\n` +
        `        s${r}_${m} = fma(dx${r}, bv, dec${r});`
      ).join("\n")
    }
      }`
  ).join("\n      ");
  const vecR = R === 1 ? "f32" : `vec${R}<f32>`;
  const sums = channels.map((r) => `(q${r}.x + q${r}.y) + (q${r}.z + q${r}.w)`);
  // Staging B and C: four states of one token per invocation, zero past N and past the segment.
  const load = (name: string) =>
    padded
      ? `vec4<f32>(${
        [0, 1, 2, 3].map((c) => `select(0.0, ${name}[min(at + ${c}u, last)], n + ${c}u < N)`)
          .join(", ")
      })`
      : `vec4<f32>(${[0, 1, 2, 3].map((c) => `${name}[at + ${c}u]`).join(", ")})`;
  const component = (v: string, r: number) => (R === 1 ? v : `${v}[${r}]`);
  return /* wgsl */ `
${bind(list)}
${prelude(spec)}
const Q: u32 = ${spec.chunk}u;
const HB: u32 = ${HB}u;
const R: u32 = ${R}u;
const TOK: u32 = ${TOKENS}u;
const PARTS: u32 = ${parts}u;
const SV: u32 = ${SV}u;
const SPT: u32 = ${spt}u;
const THREADS: u32 = ${threads}u;
var<workgroup> sb: array<array<array<vec4<f32>, SV>, PARTS>, TOK>;
var<workgroup> sc: array<array<array<vec4<f32>, SV>, PARTS>, TOK>;
var<workgroup> sdiag: array<f32, TOK>;
var<workgroup> sdt: array<array<f32, HB>, TOK>;
var<workgroup> sdec: array<array<f32, HB>, TOK>;
var<workgroup> sx: array<array<f32, ${HB * P}>, TOK>;
var<workgroup> spart: array<array<${vecR}, THREADS>, TOK>;
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
  // Invocation lid: part of the rows of channel block blk (head hl of the block, channels p0 …).
  let part = lid % PARTS;
  let blk = lid / PARTS;
  let hl = blk / (P / R);
  let h = h0 + hl;
  let p0 = (blk % (P / R)) * R;
  let n0 = part * SPT;
  let sbase = (seg * H + h) * PN + p0 * N + n0;
  let skip = ${spec.hasD ? "D[h]" : "0.0"};
  let last = arrayLength(&B) - 1u;
${declare}
  for (var t0 = 0u; t0 < len; t0 += TOK) {
    workgroupBarrier();
    for (var e = lid; e < TOK * PARTS * SV; e += THREADS) {
      let i = e / (PARTS * SV);
      let q = (e / SV) % PARTS;
      let v = e % SV;
      let tok = t0 + i;
      let n = q * SPT + 4u * v;
      var bv = vec4<f32>(0.0);
      var cv = vec4<f32>(0.0);
      if (tok < len) {
        let at = bc_at(start + tok, g, n);
        bv = ${load("B")};
        cv = ${load("C")};
      }
      sb[i][q][v] = bv;
      sc[i][q][v] = cv;
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
          let ibase = (u32(slot) * H + h) * PN + p0 * N + n0;
          ${store("sin", "ibase")}
        }
      }
      let a = sdec[i][hl];
      let d = sdt[i][hl];
${channels.map((r) => `      let dx${r} = vec4<f32>(d * sx[i][hl * P + p0 + ${r}u]);`).join("\n")}
${channels.map((r) => `      var q${r} = vec4<f32>(0.0);`).join("\n")}
      ${step}
      spart[i][lid] = ${vecR}(${sums.join(", ")});
    }
    workgroupBarrier();
    // The parts of channel block blk meet: part q finishes tokens q, q + PARTS, … of the round.
    for (var i = part; i < TOK; i += PARTS) {
      let tok = t0 + i;
      if (tok >= len) { break; }
      var yhat = spart[i][blk * PARTS];
      for (var q = 1u; q < PARTS; q++) { yhat += spart[i][blk * PARTS + q]; }
      let dd = sdiag[i] * sdt[i][hl];
      let at = hp_at(start + tok, h, p0);
${
    channels.map((r) =>
      `      yh[at + ${r}u] = ${component("yhat", r)};\n` +
      `      y[at + ${r}u] = ${component("yhat", r)} + (dd + skip) * sx[i][hl * P + p0 + ${r}u];`
    ).join("\n")
  }
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
