/**
 * What the SSD scan kernels share: storage binding declarations, the compile-time sizes, index
 * helpers over the flat layouts, the chunk table accessors, the step size Δ, per-token values
 * staged in workgroup memory, the launches (one workgroup per work item, or one invocation), and
 * the sum of per-head partial sums written side by side.
 *
 * Layouts (flat, row-major): x, y (tokens, H, P); dt, Δ and the within-chunk cumulative log decay
 * cs (tokens, H); B, C (tokens, G, N); states (slot or segment, H, P, N); a token is b·length + t.
 *
 * @module
 */
import { launch, packParams } from "../../core/launch.ts";
import type { Tensor } from "../../core/tensor.ts";
import { sumLeading } from "../../pointwise/reduce.ts";
import { splitColumns } from "../../pointwise/split_columns.ts";
import { foldWorkgroups, GRID_WGSL } from "../../wgsl/grid.ts";
import { MATH_WGSL } from "../../wgsl/math.ts";
import { CHUNK_WORDS, OP } from "./pieces.ts";
import type { SsdSpec } from "./options.ts";

/** A storage binding: its access mode, its WGSL name and element type (default f32). */
export type Binding = [
  access: "read" | "read_write",
  name: string,
  type?: "f32" | "i32" | "vec4<f32>",
];

/** A binding where `on`, none otherwise: for the bindings of optional inputs. */
export function bindingIf(on: boolean, b: Binding): Binding[] {
  return on ? [b] : [];
}

/** Declares the storage bindings 1, 2, … in order (binding 0 is the parameter block). */
export function bind(list: readonly Binding[]): string {
  return list.map(([access, name, type], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${type ?? "f32"}>;`
  ).join("\n");
}

/** WGSL accessors of the chunk table, bound as `chunks`. */
const CHUNK_ACCESSORS = `fn chunk_start(k: u32) -> u32 { return u32(chunks[k * CW]); }
fn chunk_len(k: u32) -> u32 { return u32(chunks[k * CW + 1u]); }
fn chunk_segment(k: u32) -> u32 { return u32(chunks[k * CW + 2u]); }
fn chunk_flags(k: u32) -> u32 { return u32(chunks[k * CW + 3u]); }
fn chunk_slot(k: u32) -> i32 { return chunks[k * CW + 4u]; }
// Start of chunk k's C·Bᵀ block of group g: (G · Σ earlier length²) + g · length², stored [s][l].
fn chunk_block(k: u32, g: u32) -> u32 {
  let len = chunk_len(k);
  return G * u32(chunks[k * CW + 5u]) + g * len * len;
}`;

/** The parameter block of every SSD kernel: a work-item count and the folded grid's width. */
const PARAMS = `struct U { count: u32, width: u32 }
@group(0) @binding(0) var<uniform> u: U;`;

/**
 * Declarations every SSD kernel shares: the parameter block, the sizes as constants, the index
 * helpers, the chunk table accessors (unless `withChunks` is false; the table must be bound as
 * `chunks`) and, where the kernel binds `dt` (and `dt_bias`), `step_size`.
 */
export function prelude(spec: SsdSpec, withStepSize = false, withChunks = true): string {
  const { heads: H, headDim: P, states: N, groups: G } = spec;
  const bias = spec.hasBias ? " + dt_bias[h]" : "";
  const value = spec.softplus ? "vec2<f32>(softplus_(raw), sigmoid_(raw))" : "vec2<f32>(raw, 1.0)";
  const stepSize = withStepSize
    ? `// Δ of (token, head) entry j after the bias and the optional softplus, and the softplus' slope.
fn step_size(j: u32, h: u32) -> vec2<f32> {
  let raw = dt[j]${bias};
  return ${value};
}`
    : "";
  return /* wgsl */ `
${PARAMS}
const H: u32 = ${H}u;
const P: u32 = ${P}u;
const N: u32 = ${N}u;
const G: u32 = ${G}u;
const HG: u32 = ${H / G}u;
const PN: u32 = ${P * N}u;
const HPN: u32 = ${H * P * N}u;
const CW: u32 = ${CHUNK_WORDS}u;
${GRID_WGSL}
${MATH_WGSL}
${withChunks ? CHUNK_ACCESSORS : ""}
// Flat indices: B/C of token i, group g, state n; x-like (token, head) row starts; state
// (slot, head block from hb, channel c of the block, state n).
fn bc_at(i: u32, g: u32, n: u32) -> u32 { return (i * G + g) * N + n; }
fn th_at(i: u32, h: u32) -> u32 { return i * H + h; }
fn hp_at(i: u32, hb: u32, c: u32) -> u32 { return (i * H + hb) * P + c; }
fn st_at(slot: u32, hb: u32, c: u32, n: u32) -> u32 { return slot * HPN + (hb * P + c) * N + n; }
${stepSize}
`;
}

/**
 * The names a chunk product's setup defines for an item that is a (chunk, group) (`CHUNK_GROUP`:
 * k, g, hb (the group's first head)) or a (chunk, head) (`CHUNK_HEAD`: k, h, g), with the chunk's
 * start, len, slot and the offset `off` of its group's C·Bᵀ block.
 */
const ITEM_SETUP: Readonly<Record<"CHUNK_GROUP" | "CHUNK_HEAD", string>> = {
  CHUNK_GROUP: `let k = item / G;
  let g = item % G;
  let hb = g * HG;`,
  CHUNK_HEAD: `let k = item / H;
  let h = item % H;
  let g = h / HG;`,
};

/** The chunk's names every {@link ITEM_SETUP} continues with. */
const CHUNK_NAMES = `
  let start = chunk_start(k);
  let len = chunk_len(k);
  let slot = chunk_slot(k);
  let off = chunk_block(k, g);`;

/** The setup of a chunk product over items of `kind`, then `rows` and `cols` (WGSL u32). */
export function itemSetup(kind: keyof typeof ITEM_SETUP, rows: string, cols: string): string {
  return `${ITEM_SETUP[kind]}${CHUNK_NAMES}
  let rows = ${rows};
  let cols = ${cols};`;
}

/**
 * Per-token values of one (chunk, head) staged in workgroup memory for a chunk product: arrays
 * `t_<name>` of the chunk's tokens, filled from the (tokens, H) bindings `names` by a prologue
 * that needs `start`, `len`, `h` and `lid` (and the product's thread count, `THREADS`).
 */
export function headTokens(
  spec: SsdSpec,
  names: readonly string[],
): { declarations: string; fill: string } {
  return {
    declarations: names.map((n) => `var<workgroup> t_${n}: array<f32, ${spec.chunk}>;`).join("\n"),
    fill: `for (var l = lid; l < len; l += THREADS) {
    ${names.map((n) => `t_${n}[l] = ${n}[th_at(start + l, h)];`).join("\n    ")}
  }`,
  };
}

/**
 * Per-token values of all the heads of one (chunk, group): arrays `g_<name>` indexed
 * `l * HG + (h − hb)`, filled by a prologue that needs `start`, `len`, `hb` and `lid`.
 */
export function groupTokens(
  spec: SsdSpec,
  names: readonly string[],
): { declarations: string; fill: string } {
  const size = spec.chunk * (spec.heads / spec.groups);
  return {
    declarations: names.map((n) => `var<workgroup> g_${n}: array<f32, ${size}>;`).join("\n"),
    fill: `for (var e = lid; e < len * HG; e += THREADS) {
    ${names.map((n) => `g_${n}[e] = ${n}[th_at(start + e / HG, hb + e % HG)];`).join("\n    ")}
  }`,
  };
}

/** Launches `wgsl` with one workgroup per work item (`count` of them, folded past 65,535). */
export function launchPerItem(
  label: string,
  wgsl: string,
  count: number,
  tensors: readonly Tensor[],
): void {
  const [gx, gy] = foldWorkgroups(count);
  launch(`${OP} ${label}`, wgsl, packParams([count, gx]), tensors, [gx, gy]);
}

/** Launches `wgsl` with one invocation per work item in workgroups of `threads`. */
export function launchPerInvocation(
  label: string,
  wgsl: string,
  count: number,
  threads: number,
  tensors: readonly Tensor[],
): void {
  const [gx, gy] = foldWorkgroups(Math.ceil(count / threads));
  launch(`${OP} ${label}`, wgsl, packParams([count, gx * threads]), tensors, [gx, gy]);
}

/**
 * The per-head sums of `parts`, `(items, K, H)`: K partial sums of each of H heads per chunk or
 * segment, summed over the items, as K tensors `[H]`. `parts` is freed. Each column is summed over
 * the items alone (`sumLeading`'s fixed tree), so the sums equal K separate sums bit for bit.
 */
export function sumHeadParts(parts: Tensor): Tensor[] {
  const [, k, h] = parts.shape;
  const total = sumLeading(parts, [k * h]);
  parts.dispose();
  if (k === 1) return [total];
  const sums = splitColumns(total, Array(k).fill(h));
  total.dispose();
  return sums;
}
