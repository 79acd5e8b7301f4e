/**
 * The pieces both shaders of `ssdScanLast` share (`last_shaders.ts`): the workgroup's size and
 * its block of staged tokens, the bindings, the walk over a segment's blocks newest first, the
 * staging of B_t·C_τ, and the sums over a block's tokens whose loads wait together.
 *
 * @module
 */
import { runtime } from "../../core/runtime.ts";
import type { SsdSpec } from "./options.ts";
import { OP } from "./pieces.ts";
import type { Binding } from "./prelude.ts";
import { bindingIf } from "./prelude.ts";

/** Invocations per workgroup. */
export const THREADS = 128;
/** Most tokens staged per block. */
const MAX_BLOCK = 32;

/** Workgroup-memory floats of a kernel for blocks of `tb` tokens. */
function sharedFloats(spec: SsdSpec, tb: number, backward: boolean): number {
  const { heads: H, headDim: P, groups: G, states: N } = spec;
  const parts = tb * G * splitOf(tb, G);
  return backward
    ? G * N + H * P + 4 * H + 3 * tb * H + 2 * tb * G + parts
    : G * N + H + tb * H + tb * G + parts;
}

/** Invocations sharing one B_t·C_τ dot product. */
function splitOf(tb: number, groups: number): number {
  return Math.max(1, Math.floor(THREADS / (tb * groups)));
}

/** The longest block (a power of two up to 32) whose staging fits the device's workgroup memory. */
export function blockOf(spec: SsdSpec, backward: boolean): number {
  const limit = runtime().info.maxWorkgroupBytes;
  for (let tb = MAX_BLOCK; tb >= 1; tb /= 2) {
    if (4 * sharedFloats(spec, tb, backward) <= limit) return tb;
  }
  throw new RangeError(
    `${OP}Last: heads ${spec.heads} × headDim ${spec.headDim} with ${spec.groups} groups of ` +
      `${spec.states} states need ${4 * sharedFloats(spec, 1, backward)} bytes of workgroup ` +
      `memory, more than this device's ${limit}; use fewer heads or states`,
  );
}

/** A WGSL statement per channel block k of `count` values spread over the invocations. */
export function perSlot(count: number, body: (k: number) => string): string {
  const slots = Math.ceil(count / THREADS);
  return Array.from({ length: slots }, (_, k) => body(k)).join("\n  ");
}

/** Entries of a block one invocation takes at once in {@link entryBatches}. */
export const ENTRIES_AT_ONCE = 4;

/** Entries of B one invocation loads before it multiplies them by C_τ's in `bc_stage`. */
const BC_LOADS = 8;

/** Values one invocation loads at most before it multiplies them ({@link tokenSums}). */
const LOADS_IN_FLIGHT = 32;

/**
 * WGSL adding, for each of `slots` accumulators `acc{k}`, `weight(k, l)·value(k, l)` over the
 * block's tokens l = 0 … n − 1 in token order. The values (read from storage) of several tokens
 * and all slots are loaded before their products, so that up to {@link LOADS_IN_FLIGHT} loads
 * wait together instead of one after another; each sum runs in the same order as one token at a
 * time would, so the results are the same to the bit.
 */
export function tokenSums(
  slots: number,
  tb: number,
  acc: (k: number) => string,
  weight: (k: number, l: string) => string,
  value: (k: number, l: string) => string,
): string {
  const unroll = Math.max(1, Math.min(tb, Math.floor(LOADS_IN_FLIGHT / slots)));
  const ks = Array.from({ length: slots }, (_, k) => k);
  const us = Array.from({ length: unroll }, (_, u) => u);
  const at = (u: number) => `l + ${u}u`;
  return `{
      var l = 0u;
      for (; l + ${unroll}u <= n; l += ${unroll}u) {
        ${
    ks.flatMap((k) => us.map((u) => `let v${k}_${u} = ${value(k, at(u))};`)).join("\n        ")
  }
        ${
    ks.flatMap((k) => us.map((u) => `${acc(k)} = fma(${weight(k, at(u))}, v${k}_${u}, ${acc(k)});`))
      .join("\n        ")
  }
      }
      for (; l < n; l++) {
        ${
    ks.map((k) => `${acc(k)} = fma(${weight(k, "l")}, ${value(k, "l")}, ${acc(k)});`).join(
      "\n        ",
    )
  }
      }
    }`;
}

/**
 * WGSL of a loop over a block's `count` entries (a WGSL expression) that takes
 * {@link ENTRIES_AT_ONCE} entries an invocation at once, `WG` apart: their indices `e0 …` (an
 * index past the end stands at the last entry, whose results it does not store), then `body`,
 * which computes every entry's values (so that all their loads are in flight together), then
 * each entry's `store(u)` statements.
 */
export function entryBatches(count: string, body: string, store: (u: number) => string): string {
  const us = Array.from({ length: ENTRIES_AT_ONCE }, (_, u) => u);
  return `for (var first = lid; first < ${count}; first += ${ENTRIES_AT_ONCE}u * WG) {
      ${us.map((u) => `let e${u} = min(first + ${u * THREADS}u, ${count} - 1u);`).join("\n      ")}
      ${body}
      ${
    us.map((u) => u === 0 ? store(0) : `if (first + ${u * THREADS}u < ${count}) { ${store(u)} }`)
      .join("\n      ")
  }
    }`;
}

/** `f(u)` for each entry u of {@link entryBatches}, one statement a line. */
export function eachEntry(f: (u: number) => string): string {
  return Array.from({ length: ENTRIES_AT_ONCE }, (_, u) => f(u)).join("\n      ");
}

/** The bindings both kernels read, in their order (the segment table first, longest first). */
export function inputBindings(spec: SsdSpec): Binding[] {
  return [
    ["read", "segs", "i32"],
    ["read", "x"],
    ["read", "B"],
    ["read", "C"],
    ["read", "dt"],
    ["read", "A"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
  ];
}

/** Both kernels' start: the workgroup's segment (its first token, length, number, last token τ)
 * and C_τ staged in `s_c`. */
export const SEGMENT_PROLOGUE: string = `let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let start = u32(segs[item * 4u]);
  let len = u32(segs[item * 4u + 1u]);
  let seg = u32(segs[item * 4u + 3u]);
  let tau = start + len - 1u;
  for (var e = lid; e < GN; e += WG) { s_c[e] = C[tau * GN + e]; }`;

/**
 * The head of a loop over the segment's blocks, newest first: the block's `n` tokens from `base`
 * (the loop body ends with `hi = lo;`), after a barrier that ends the previous block's reads.
 */
export const NEWEST_BLOCKS: string = `var hi = len;
  loop {
    if (hi == 0u) { break; }
    let lo = select(0u, hi - TB, hi > TB);
    let n = hi - lo;
    let base = start + lo;
    workgroupBarrier();`;

/**
 * The staging both kernels share: segment item, its bounds and C_τ, and the B_t·C_τ of a block
 * (`bc_stage(base, n)`, into `s_bc`, split over `SPLIT` invocations a dot product).
 */
export function common(spec: SsdSpec, tb: number): string {
  const { heads: H, groups: G, states: N } = spec;
  const us = Array.from({ length: BC_LOADS }, (_, u) => u);
  const bcLoads = [
    ...us.map((u) => `let b${u} = B[row + k + ${u}u * SPLIT];`),
    ...us.map((u) => `s = fma(b${u}, s_c[crow + k + ${u}u * SPLIT], s);`),
  ].join("\n      ");
  return /* wgsl */ `
const WG: u32 = ${THREADS}u;
const TB: u32 = ${tb}u;
const HP: u32 = ${H * spec.headDim}u;
const GN: u32 = ${G * N}u;
const SPLIT: u32 = ${splitOf(tb, G)}u;
const BC_LOADS: u32 = ${BC_LOADS}u;
var<workgroup> s_c: array<f32, ${G * N}>;
var<workgroup> s_bc: array<f32, ${tb * G}>;
var<workgroup> s_part: array<f32, ${tb * G * splitOf(tb, G)}>;
// B_t·C_τ of the block's n tokens from base, per group: partial dot products, then their sums.
fn bc_stage(lid: u32, base: u32, n: u32) {
  for (var e = lid; e < n * G * SPLIT; e += WG) {
    let di = e / SPLIT;
    let row = bc_at(base + di / G, di % G, 0u);
    let crow = (di % G) * N;
    var s = 0.0;
    var k = e % SPLIT;
    // BC_LOADS entries of B loaded before their products, the sum in order all the same.
    for (; k + (BC_LOADS - 1u) * SPLIT < N; k += BC_LOADS * SPLIT) {
      ${bcLoads}
    }
    for (; k < N; k += SPLIT) { s = fma(B[row + k], s_c[crow + k], s); }
    s_part[e] = s;
  }
  workgroupBarrier();
  for (var e = lid; e < n * G; e += WG) {
    var s = 0.0;
    for (var q = 0u; q < SPLIT; q++) { s += s_part[e * SPLIT + q]; }
    s_bc[e] = s;
  }
}`;
}
