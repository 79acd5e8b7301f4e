/**
 * The states carried between the chunks of a segment, forward and backward: one linear
 * recurrence over a segment's chunks, x ← exp(cs_end)·x + local, in either direction.
 *
 * - `chunkStates`: a chunk product per (slotted chunk, group) sums a chunk's local contribution,
 *   an outer product over its tokens: forward, the state the chunk leaves from zero,
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
import { type ChunkGemm, runChunkGemm } from "./chunk_gemm.ts";
import type { Decays } from "./forward.ts";
import { bind, type Binding, launchPerInvocation, prelude } from "./prelude.ts";

/** Invocations per workgroup of `carryStates`. */
const CARRY_THREADS = 64;

/** Forward (E from x, B) or backward (ρ from ∂y, C). */
export type Direction = "forward" | "backward";

/**
 * A slotted chunk's local contribution per (slot, group), rows the group's channels, columns the
 * states, summed over the chunk's tokens.
 */
function statesGemm(spec: SsdSpec, dir: Direction): ChunkGemm {
  const tok = "th_at(start + kk, hb + mm / P)";
  const weight = dir === "forward" ? `eend[${tok}] * dtv[${tok}]` : `ecs[${tok}]`;
  return {
    label: `chunk states (${dir})`,
    bindings: [
      ["read", "chunks", "i32"],
      ["read", "slot_chunks", "i32"],
      ["read", "v"],
      ["read", "kv"],
      ["read", "dtv"],
      ["read", "ecs"],
      ["read", "eend"],
      ["read_write", "out"],
    ],
    tiles: "wide",
    setup: `let slot = item / G;
  let g = item % G;
  let hb = g * HG;
  let k = u32(slot_chunks[slot]);
  let start = chunk_start(k);
  let len = chunk_len(k);
  let rows = HG * P;
  let cols = N;`,
    maxRows: (spec.heads / spec.groups) * spec.headDim,
    maxCols: spec.states,
    phases: [{
      lo: "0u",
      hi: "len",
      a: `v[hp_at(start + kk, hb, mm)] * ${weight}`,
      b: "kv[bc_at(start + kk, g, nn)]",
      aAlong: "m",
      bAlong: "n",
    }],
    emit: "out[st_at(slot, hb, m, n)] = v;",
  };
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
  decays: Decays,
): Tensor {
  const { heads: H, headDim: P, states: N } = spec;
  const out = Tensor.empty([tables.slots, H, P, N], "f32", `ssdScan chunk states`);
  runChunkGemm(spec, statesGemm(spec, dir), tables.slots * spec.groups, [
    tables.chunks,
    tables.slotChunks!,
    v,
    kv,
    decays.dtv,
    decays.ecs,
    decays.eend,
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
