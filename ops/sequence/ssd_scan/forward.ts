/**
 * The SSD scan's per-chunk forward kernels. Within a chunk (tokens of one segment, at most Q of
 * them) with cumulative log decay cs_l = Σ_{r≤l} Δ_r·A and the state S_in entering it:
 *
 *     y_l = Σ_{s≤l} (C_l·B_s) · exp(cs_l − cs_s) · Δ_s · x_s  +  exp(cs_l) · S_in · C_l  +  D · x_l
 *
 * - `prepare`: one invocation per (chunk, head) walks the chunk and writes Δ and cs.
 * - the chunk's C·Bᵀ (shared by the heads of a group and by the backward) is `pair_tiles.ts`'s.
 * - `chunkOutput`: one workgroup per (chunk, head), one invocation per token: the sum above, with
 *   S_in staged in workgroup memory.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { listed, type SsdSpec } from "./options.ts";
import {
  bind,
  type Binding,
  bindingIf,
  eachOfRow,
  launchPerInvocation,
  launchPerItem,
  prelude,
  stagedBytes,
  type TokenInput,
  tokenReads,
  unrolled,
  WorkgroupMatrix,
} from "./prelude.ts";
import { runtime } from "../../core/runtime.ts";

/** Invocations per workgroup of `prepare`. */
const PREPARE_THREADS = 64;

function prepareShader(spec: SsdSpec): string {
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "dt"],
    ["read", "A"],
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
    ["read_write", "dtv"],
    ["read_write", "cs"],
  ];
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true)}
@compute @workgroup_size(${PREPARE_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let id = grid_index(gid, u.width);
  if (id >= u.count) { return; }
  let k = id / H;
  let h = id % H;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let a = A[h];
  var c = 0.0;
  for (var l = 0u; l < len; l++) {
    let j = (start + l) * H + h;
    let d = step_size(j, h).x;
    c += d * a;
    dtv[j] = d;
    cs[j] = c;
  }
}`;
}

/** Δ and the within-chunk cumulative log decay cs, both (tokens, H). */
export function prepare(
  spec: SsdSpec,
  chunks: Tensor,
  count: number,
  dt: Tensor,
  A: Tensor,
  dtBias: Tensor | undefined,
): { dtv: Tensor; cs: Tensor } {
  const shape = [spec.batch * spec.length, spec.heads];
  const dtv = Tensor.empty(shape, "f32", "ssdScan Δ");
  const cs = Tensor.empty(shape, "f32", "ssdScan cs");
  launchPerInvocation(
    "prepare",
    prepareShader(spec),
    count * spec.heads,
    PREPARE_THREADS,
    [chunks, dt, A, ...listed(dtBias), dtv, cs],
  );
  return { dtv, cs };
}

/** The chunk's per-token inputs `chunkOutput` reads for every pair. */
const OUTPUT_INPUTS: TokenInput[] = [
  { source: "x", width: "P" },
  { source: "cs", width: "1" },
  { source: "dtv", width: "1" },
];

function outputShader(spec: SsdSpec, staged: boolean): string {
  const skip = spec.hasD ? "D[h]" : "0.0";
  const P = spec.headDim;
  const ST = new WorkgroupMatrix("st", spec.states, P); // S_in, [n][p]
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "x"],
    ["read", "B"],
    ["read", "C"],
    ["read", "dtv"],
    ["read", "cs"],
    ["read", "cb"],
    ["read", "sin"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ["read_write", "y"],
  ];
  return /* wgsl */ `
${bind(list)}
${prelude(spec)}
const Q: u32 = ${spec.chunk}u;
${tokenReads(OUTPUT_INPUTS, staged, spec.chunk, spec.chunk, P)}
${ST.declare()}
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
  let off = chunk_block(k, g);
  begin_chunk(start, h);
  stage_tokens(len, lid);
  if (slot >= 0) {
    for (var e = lid; e < PN; e += Q) {
      ${ST.store("e % N", "e / N", "sin[(u32(slot) * H + h) * PN + e]")}
    }
  }
  workgroupBarrier();
  if (lid >= len) { return; }
  let i = start + lid;
  let j = i * H + h;
  let csl = cs[j];
  ${unrolled(P, "var acc# = 0.0;")}
  if (slot >= 0) {
    let bc = (i * G + g) * N;
    for (var n = 0u; n < N; n++) {
      let c = C[bc + n];
      ${ST.eachInRow("n", "acc# += @ * c;")}
    }
    let e = exp(csl);
    ${unrolled(P, "acc# *= e;")}
  }
  for (var s = 0u; s <= lid; s++) {
    let w = cb[off + s * len + lid] * exp(csl - cs_at(s)) * dtv_at(s);
    ${eachOfRow("xs", P, (q) => `x_at4(s, ${q}u)`, (c) => `x_at(s, ${c}u)`, "acc# += w * @;")}
  }
  let skip = ${skip};
  ${unrolled(P, "y[j * P + #u] = acc# + skip * x[j * P + #u];")}
}`;
}

/** The output y, (tokens, H, P). `sin` holds the state entering every chunk with a slot. */
export function chunkOutput(
  spec: SsdSpec,
  t: { chunks: Tensor; count: number; x: Tensor; B: Tensor; C: Tensor; D?: Tensor },
  saved: { dtv: Tensor; cs: Tensor; cb: Tensor; sin: Tensor },
): Tensor {
  const { batch, length, heads, headDim } = spec;
  const y = Tensor.empty([batch, length, heads, headDim], "f32", "ssdScan");
  const own = 4 * spec.headDim * spec.states;
  const staged = own + stagedBytes(OUTPUT_INPUTS, spec) <= runtime().info.maxWorkgroupBytes;
  launchPerItem("output", outputShader(spec, staged), t.count * heads, [
    t.chunks,
    t.x,
    t.B,
    t.C,
    saved.dtv,
    saved.cs,
    saved.cb,
    saved.sin,
    ...listed(t.D),
    y,
  ]);
  return y;
}
