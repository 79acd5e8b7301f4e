/**
 * What the SSD scan kernels share: storage binding declarations, the compile-time sizes, index
 * helpers over the flat layouts, the chunk table accessors, the step size Δ and the launch of a
 * kernel with one workgroup per work item.
 *
 * Layouts (flat, row-major): x, y (tokens, H, P); dt, Δ and the within-chunk cumulative log decay
 * cs (tokens, H); B, C (tokens, G, N); states (slot or segment, H, P, N); a token is b·length + t.
 *
 * @module
 */
import { launch, packParams } from "../../core/launch.ts";
import type { Tensor } from "../../core/tensor.ts";
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

/** The parameter block of every SSD kernel: a work-item count and the folded grid's width. */
const PARAMS = `struct U { count: u32, width: u32 }
@group(0) @binding(0) var<uniform> u: U;`;

/**
 * Declarations every SSD kernel shares: the parameter block, the sizes as constants, the index
 * helpers, the chunk table accessors (the table must be bound as `chunks`) and, where the kernel
 * binds `dt` (and `dt_bias`), `step_size`.
 */
export function prelude(spec: SsdSpec, withStepSize = false): string {
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
fn chunk_start(k: u32) -> u32 { return u32(chunks[k * CW]); }
fn chunk_len(k: u32) -> u32 { return u32(chunks[k * CW + 1u]); }
fn chunk_segment(k: u32) -> u32 { return u32(chunks[k * CW + 2u]); }
fn chunk_flags(k: u32) -> u32 { return u32(chunks[k * CW + 3u]); }
fn chunk_slot(k: u32) -> i32 { return chunks[k * CW + 4u]; }
// Start of chunk k's C·Bᵀ block of group g: (G · Σ earlier length²) + g · length², stored [s][l].
fn chunk_block(k: u32, g: u32) -> u32 {
  let len = chunk_len(k);
  return G * u32(chunks[k * CW + 5u]) + g * len * len;
}
${stepSize}
`;
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

/** A per-(token, head) input a kernel reads for many tokens of its chunk. */
export interface TokenInput {
  /** The storage binding read. */
  source: string;
  /** Values per (token, head): P for x-like inputs, 1 for Δ and cs. */
  width: "P" | "1";
}

/**
 * WGSL reads of per-(token, head) inputs of one chunk and head, `<source>_at(l[, p])` for the
 * chunk's token l (and `<source>_at4(l, q)`, channels 4q … 4q + 3, for the P-wide ones): from workgroup memory that `stage_tokens(start, len, h, lid)` fills (where
 * `staged`, coalesced, once per workgroup), or straight from storage. Both need `begin_chunk`
 * (module-private chunk start and head) called first.
 */
export function tokenReads(
  inputs: readonly TokenInput[],
  staged: boolean,
  threads: number,
  chunk: number,
  headDim: number,
): string {
  const vec = headDim % 4 === 0;
  const index = (i: TokenInput, l: string, p: string) =>
    i.width === "P"
      ? `((t_start + ${l}) * H + t_head) * P + ${p}`
      : `(t_start + ${l}) * H + t_head`;
  const fns = inputs.map((i) => {
    const src = i.source;
    if (i.width === "1") {
      return `fn ${src}_at(l: u32) -> f32 { return ${
        staged ? `s_${src}[l]` : `${src}[${index(i, "l", "0u")}]`
      }; }`;
    }
    const scalar = !staged
      ? `${src}[${index(i, "l", "p")}]`
      : vec
      ? `s_${src}[l * ${headDim / 4}u + p / 4u][p % 4u]`
      : `s_${src}[l * P + p]`;
    const word = staged && vec
      ? `s_${src}[l * ${headDim / 4}u + q]`
      : `vec4<f32>(${src}_at(l, 4u * q), ${src}_at(l, 4u * q + 1u), ${src}_at(l, 4u * q + 2u), ${src}_at(l, 4u * q + 3u))`;
    return `fn ${src}_at(l: u32, p: u32) -> f32 { return ${scalar}; }
fn ${src}_at4(l: u32, q: u32) -> vec4<f32> { return ${word}; }`;
  }).join("\n");
  const decls = staged
    ? inputs.map((i) =>
      i.width === "1"
        ? `var<workgroup> s_${i.source}: array<f32, ${chunk}>;`
        : vec
        ? `var<workgroup> s_${i.source}: array<vec4<f32>, ${(chunk * headDim) / 4}>;`
        : `var<workgroup> s_${i.source}: array<f32, ${chunk * headDim}>;`
    ).join("\n")
    : "";
  const fills = inputs.map((i) => {
    if (i.width === "1") {
      return `for (var e = lid; e < len; e += ${threads}u) { s_${i.source}[e] = ${i.source}[${
        index(i, "e", "0u")
      }]; }`;
    }
    const target = vec ? `s_${i.source}[e / 4u][e % 4u]` : `s_${i.source}[e]`;
    return `for (var e = lid; e < len * P; e += ${threads}u) { ${target} = ${i.source}[${
      index(i, "e / P", "e % P")
    }]; }`;
  }).join("\n  ");
  return /* wgsl */ `
var<private> t_start: u32;
var<private> t_head: u32;
${decls}
fn begin_chunk(start: u32, h: u32) { t_start = start; t_head = h; }
${fns}
// Fills the staged copies (a no-op when reads go to storage); every invocation must call it.
fn stage_tokens(len: u32, lid: u32) {
  ${staged ? fills : ""}
}`;
}

/** Bytes of workgroup memory `tokenReads` stages for these inputs. */
export function stagedBytes(inputs: readonly TokenInput[], spec: SsdSpec): number {
  return 4 *
    inputs.reduce((n, i) => n + (i.width === "P" ? spec.chunk * spec.headDim : spec.chunk), 0);
}

/**
 * `count` copies of a WGSL statement with `#` replaced by 0, 1, …: loops over the head dimension
 * written out, so that per-channel values live in named registers (`acc#`), never in an indexed
 * array that a driver may put in local memory.
 */
export function unrolled(count: number, statement: string): string {
  return Array.from({ length: count }, (_, i) => statement.replaceAll("#", String(i))).join("\n");
}

/**
 * `statement` for every element c of a row of `count` values, written out, with `#` replaced by c
 * and `@` by the value: loaded as vec4 words by `load4(q)` (words q = 0, 1, …) when `count` is a
 * multiple of 4, else one by one by `load1(c)`. `name` prefixes the temporaries (unique per scope).
 */
export function eachOfRow(
  name: string,
  count: number,
  load4: (q: number) => string,
  load1: (c: number) => string,
  statement: string,
): string {
  if (count % 4 !== 0) {
    return Array.from(
      { length: count },
      (_, c) => statement.replaceAll("#", String(c)).replaceAll("@", `(${load1(c)})`),
    ).join("\n");
  }
  return Array.from({ length: count / 4 }, (_, q) => {
    const uses = [0, 1, 2, 3].map((c) =>
      statement.replaceAll("#", String(4 * q + c)).replaceAll("@", `${name}_${q}.${"xyzw"[c]}`)
    );
    return [`let ${name}_${q} = ${load4(q)};`, ...uses].join("\n");
  }).join("\n");
}

/**
 * A rows × cols matrix in workgroup memory, row-major, read a whole row at a time: as vec4 words
 * when cols is a multiple of 4 (a quarter of the loads), else as scalars.
 */
export class WorkgroupMatrix {
  /** The WGSL array name. */
  readonly name: string;
  /** Rows. */
  readonly rows: number;
  /** Columns. */
  readonly cols: number;

  /** A matrix named `name` of `rows` × `cols` values. */
  constructor(name: string, rows: number, cols: number) {
    this.name = name;
    this.rows = rows;
    this.cols = cols;
  }

  get #vec(): boolean {
    return this.cols % 4 === 0;
  }

  /** The declaration. */
  declare(): string {
    const size = this.rows * this.cols;
    return this.#vec
      ? `var<workgroup> ${this.name}: array<vec4<f32>, ${size / 4}>;`
      : `var<workgroup> ${this.name}: array<f32, ${size}>;`;
  }

  /** Stores `value` at (`row`, `col`) (WGSL u32 expressions). */
  store(row: string, col: string, value: string): string {
    const at = `(${row}) * ${this.cols}u + (${col})`;
    return this.#vec
      ? `${this.name}[(${at}) / 4u][(${at}) % 4u] = ${value};`
      : `${this.name}[${at}] = ${value};`;
  }

  /**
   * `statement` for every column c of row `row`, written out, with `#` replaced by c and `@` by
   * the value at (row, c).
   */
  eachInRow(row: string, statement: string): string {
    const n = this.name;
    return eachOfRow(
      n,
      this.cols,
      (q) => `${n}[(${row}) * ${this.cols / 4}u + ${q}u]`,
      (c) => `${n}[(${row}) * ${this.cols}u + ${c}u]`,
      statement,
    );
  }
}
