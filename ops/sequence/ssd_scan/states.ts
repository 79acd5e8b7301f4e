/**
 * The states carried between the chunks of a segment, forward and backward: one linear
 * recurrence over a segment's chunks, x ← exp(cs_end)·x + local, in either direction.
 *
 * - `chunkStates`: one workgroup per (slotted chunk, head) sums a chunk's local contribution, an
 *   outer product over its tokens: forward, the state the chunk leaves from zero,
 *   E = Σ_l exp(cs_end − cs_l)·Δ_l · x_l ⊗ B_l; backward, the gradient it sends to the state
 *   entering it, ρ = Σ_l exp(cs_l) · ∂y_l ⊗ C_l.
 * - `carryStates`: one invocation per (carried segment, state element) walks the segment's chunks:
 *   forward from the initial state (or zero), writing the state entering every chunk and the final
 *   state; backward from zero after the last chunk, writing the gradient leaving every chunk and,
 *   at the front, the initial state's gradient.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { CARRY_WORDS, type PieceTables } from "./pieces.ts";
import type { SsdSpec } from "./options.ts";
import { bind, type Binding, launchPerInvocation, launchPerItem, prelude } from "./prelude.ts";

/** Invocations per workgroup of `chunkStates`, each a 4 × 4 block of a state (64: P 16, N 64). */
const STATE_THREADS = 64;
/** Invocations per workgroup of `carryStates`. */
const CARRY_THREADS = 64;

/** Forward (E from x, B) or backward (ρ from ∂y, C). */
export type Direction = "forward" | "backward";

function statesShader(spec: SsdSpec, dir: Direction): string {
  const weight = dir === "forward" ? "exp(cend - cs[j]) * dtv[j]" : "exp(cs[j])";
  return /* wgsl */ `
${
    bind([
      ["read", "chunks", "i32"],
      ["read", "slot_chunks", "i32"],
      ["read", "v"],
      ["read", "kv"],
      ["read", "dtv"],
      ["read", "cs"],
      ["read_write", "out"],
    ])
  }
${prelude(spec)}
const WG: u32 = ${STATE_THREADS}u;
const TP: u32 = ${Math.ceil(spec.headDim / 4)}u;
const TN: u32 = ${Math.ceil(spec.states / 4)}u;
var<workgroup> wt: array<f32, ${spec.chunk}>;
@compute @workgroup_size(${STATE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let slot = item / H;
  let h = item % H;
  let g = h / HG;
  let k = u32(slot_chunks[slot]);
  let start = chunk_start(k);
  let len = chunk_len(k);
  let cend = cs[(start + len - 1u) * H + h];
  for (var l = lid; l < len; l += WG) {
    let j = (start + l) * H + h;
    wt[l] = ${weight};
  }
  workgroupBarrier();
  // Each invocation sums a 4 × 4 block (p0..p0+3) × (n0..n0+3) of the state, rows as vec4.
  for (var tile = lid; tile < TP * TN; tile += WG) {
    let p0 = (tile / TN) * 4u;
    let n0 = (tile % TN) * 4u;
    let pm = vec4<u32>(p0) + vec4<u32>(0u, 1u, 2u, 3u);
    let nm = vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u);
    var a0 = vec4<f32>();
    var a1 = vec4<f32>();
    var a2 = vec4<f32>();
    var a3 = vec4<f32>();
    for (var l = 0u; l < len; l++) {
      let i = start + l;
      let vb = (i * H + h) * P;
      let kb = (i * G + g) * N;
      let vv = wt[l] * select(vec4<f32>(), vec4<f32>(v[vb + min(pm.x, P - 1u)], v[vb + min(pm.y, P - 1u)], v[vb + min(pm.z, P - 1u)], v[vb + min(pm.w, P - 1u)]), pm < vec4<u32>(P));
      let kk = select(vec4<f32>(), vec4<f32>(kv[kb + min(nm.x, N - 1u)], kv[kb + min(nm.y, N - 1u)], kv[kb + min(nm.z, N - 1u)], kv[kb + min(nm.w, N - 1u)]), nm < vec4<u32>(N));
      a0 += vv.x * kk;
      a1 += vv.y * kk;
      a2 += vv.z * kk;
      a3 += vv.w * kk;
    }
    var rows: array<vec4<f32>, 4>;
    rows[0] = a0;
    rows[1] = a1;
    rows[2] = a2;
    rows[3] = a3;
    for (var r = 0u; r < 4u; r++) {
      for (var c = 0u; c < 4u; c++) {
        if (p0 + r < P && n0 + c < N) { out[item * PN + (p0 + r) * N + n0 + c] = rows[r][c]; }
      }
    }
  }
}`;
}

/**
 * Every slotted chunk's local contribution, (slots, H, P, N): forward E from `v` = x and `kv` =
 * B, backward ρ from `v` = ∂y and `kv` = C.
 */
export function chunkStates(
  spec: SsdSpec,
  tables: PieceTables,
  dir: Direction,
  v: Tensor,
  kv: Tensor,
  saved: { dtv: Tensor; cs: Tensor },
): Tensor {
  const { heads: H, headDim: P, states: N } = spec;
  const out = Tensor.empty([tables.slots, H, P, N], "f32", `ssdScan chunk states`);
  launchPerItem(`chunk states (${dir})`, statesShader(spec, dir), tables.slots * H, [
    tables.chunks,
    tables.slotChunks!,
    v,
    kv,
    saved.dtv,
    saved.cs,
    out,
  ]);
  return out;
}

function carryShader(spec: SsdSpec, dir: Direction): string {
  const forward = dir === "forward";
  const start = forward ? (spec.hasInit ? "init[seg * HPN + e]" : "0.0") : "0.0";
  const finish = forward
    ? (spec.wantFinal ? "fin[seg * HPN + e] = x;" : "")
    : (spec.hasInit ? "fin[seg * HPN + e] = x;" : "");
  const order = forward ? "first + m" : "first + count - 1u - m";
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "carry", "i32"],
    ["read", "cs"],
    ["read", "local"],
    ["read_write", "entering"],
  ];
  if (forward && spec.hasInit) list.push(["read", "init"]);
  if (forward ? spec.wantFinal : spec.hasInit) list.push(["read_write", "fin"]);
  return /* wgsl */ `
${bind(list)}
${prelude(spec)}
@compute @workgroup_size(${CARRY_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let id = grid_index(gid, u.width);
  if (id >= u.count) { return; }
  let c = id / HPN;
  let e = id % HPN;
  let h = e / PN;
  let seg = u32(carry[c * ${CARRY_WORDS}u]);
  let first = u32(carry[c * ${CARRY_WORDS}u + 1u]);
  let count = u32(carry[c * ${CARRY_WORDS}u + 2u]);
  var x = ${start};
  for (var m = 0u; m < count; m++) {
    let k = ${order};
    let at = u32(chunk_slot(k)) * HPN + e;
    entering[at] = x;
    let cend = cs[(chunk_start(k) + chunk_len(k) - 1u) * H + h];
    x = exp(cend) * x + local[at];
  }
  ${finish}
}`;
}

/**
 * Carries states across the chunks of every carried segment. Forward: returns the state entering
 * each slotted chunk (slots, H, P, N) and, when asked for, the final state of every segment.
 * Backward: the gradient leaving each slotted chunk and, with initial states, their gradient.
 */
export function carryStates(
  spec: SsdSpec,
  tables: PieceTables,
  segments: number,
  dir: Direction,
  local: Tensor,
  cs: Tensor,
  init?: Tensor,
): { entering: Tensor; edge?: Tensor } {
  const { heads: H, headDim: P, states: N } = spec;
  const entering = Tensor.empty([tables.slots, H, P, N], "f32", "ssdScan carried states");
  const wantEdge = dir === "forward" ? spec.wantFinal : spec.hasInit;
  const edge = wantEdge
    ? Tensor.empty([segments, H, P, N], "f32", "ssdScan edge states")
    : undefined;
  const tensors = [tables.chunks, tables.carry!, cs, local, entering];
  if (dir === "forward" && init) tensors.push(init);
  if (edge) tensors.push(edge);
  launchPerInvocation(
    `carry (${dir})`,
    carryShader(spec, dir),
    tables.carried * H * P * N,
    CARRY_THREADS,
    tensors,
  );
  return { entering, edge };
}
