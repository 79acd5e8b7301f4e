/**
 * WGSL shared by the fused attention kernels (`flash_attention_shaders.ts`): the sizes of a
 * {@link FlashPlan}, the parameters, row access, the span of unpadded keys, which scores a row
 * sees, the dropout factors of four probabilities, the staging of rows in workgroup memory and
 * the prologue of every entry point, plus the code generators that unroll an invocation's
 * register tile.
 *
 * @module
 */
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { ATTENTION_DROP_FACTOR_WGSL, ATTENTION_DROPOUT_FIELDS_WGSL } from "./attention_options.ts";
import {
  FLASH_INVOCATIONS,
  FLASH_ROWS_PER_INVOCATION,
  type FlashPlan,
} from "./flash_attention_plan.ts";

/** `f(0) … f(n − 1)` joined by newlines: a loop unrolled by the generator. */
export function unroll(n: number, f: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => f(i)).join("\n");
}

/**
 * WGSL source re-indented by its braces (two spaces a level), so the generated kernels read
 * like written ones whatever the indentation of the pieces pasted together.
 */
export function indentWgsl(src: string): string {
  let depth = 0;
  const out: string[] = [];
  for (const raw of src.split("\n")) {
    const line = raw.trim();
    if (line === "") {
      if (out.length > 0 && out[out.length - 1] !== "") out.push("");
      continue;
    }
    const opens = (line.match(/[{(]/g) ?? []).length;
    const closes = (line.match(/[})]/g) ?? []).length;
    const lead = /^[})]/.test(line) ? 1 : 0;
    out.push("  ".repeat(Math.max(0, depth - lead)) + line);
    depth = Math.max(0, depth + opens - closes);
  }
  return out.join("\n").trim() + "\n";
}

/** The lanes of a vec4 by index. */
export const LANE = ["x", "y", "z", "w"] as const;

/**
 * WGSL functions reading and writing rows of a `[rows, D]` tensor as vec4s: `ld_<name>(row, c4)`
 * (zero past D) and, with `write`, `st_<name>(row, c4, value)`. With D a multiple of 4 the
 * binding is an `array<vec4f>`, otherwise `array<f32>`.
 */
export function rowAccess(name: string, binding: number, dim: number, write: boolean): string {
  const vec = dim % 4 === 0;
  const mode = write ? "read_write" : "read";
  const decl = `@group(0) @binding(${binding}) var<storage, ${mode}> ${name}: array<${
    vec ? "vec4f" : "f32"
  }>;`;
  const load = vec ? `return ${name}[row * D4 + c4];` : `var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c4 + e < D) { r[e] = ${name}[row * D + 4u * c4 + e]; }
  }
  return r;`;
  const store = vec ? `${name}[row * D4 + c4] = x;` : `for (var e = 0u; e < 4u; e++) {
    if (4u * c4 + e < D) { ${name}[row * D + 4u * c4 + e] = x[e]; }
  }`;
  return `${decl}
fn ld_${name}(row: u32, c4: u32) -> vec4f {
  ${load}
}${
    write
      ? `
fn st_${name}(row: u32, c4: u32, x: vec4f) {
  ${store}
}`
      : ""
  }`;
}

/** WGSL shared by the three kernels: sizes, parameters, dropout, pads and visibility. */
export function flashPrelude(plan: FlashPlan): string {
  return /* wgsl */ `
const WG = ${FLASH_INVOCATIONS}u;
const OWN = ${plan.own}u;
const TILE = ${plan.tile}u;
const GROUPS = ${plan.groups}u;
// vec4s between the tile rows of weights over own groups: one more than the groups, so the
// invocations of one own group writing different tile rows start in different banks.
const WSTRIDE = ${plan.ownGroups + 1}u;
const D = ${plan.dim}u;
const D4 = ${plan.dim4}u;
const STRIDE = ${plan.stride}u;
const LOWEST = -3.4028235e38;
struct P {
  groups: u32, tiles: u32, gx: u32, length: u32, heads: u32, causal: u32, has_pad: u32,
  ${ATTENTION_DROPOUT_FIELDS_WGSL}
  scale: f32, keep_scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> pad: array<i32>;
var<workgroup> span_red: array<vec2u, WG>;
// Per staged tile row: for keys 0 unpadded, 1 pad; for queries 0 open, 1 closed; 2 past L.
var<workgroup> tstate: array<u32, TILE>;
${ATTENTION_DROP_FACTOR_WGSL}
${GRID_WGSL}
fn merge_span(a: vec2u, b: vec2u) -> vec2u {
  return vec2u(min(a.x, b.x), max(a.y, b.y));
}
// (first unpadded key, last unpadded key + 1) of sequence b, the same in every invocation:
// (0, L) without pads, (L, 0) for a sequence of pads only.
fn unpadded_span(b: u32, lid: u32) -> vec2u {
  var s = vec2u(0u, p.length);
  if (p.has_pad != 0u) {
    s = vec2u(p.length, 0u);
    for (var j = lid; j < p.length; j += WG) {
      if (pad[b * p.length + j] == 0) { s = vec2u(min(s.x, j), j + 1u); }
    }
  }
  ${
    workgroupReduceWgsl({
      array: "span_red",
      size: FLASH_INVOCATIONS,
      combine: { merge: "merge_span" },
      value: "s",
    })
  }
  return workgroupUniformLoad(&span_red[0]);
}
// Whether query i has an unmasked key.
fn row_open(i: u32, first: u32) -> bool {
  if (p.causal != 0u) { return first <= i; }
  return first < p.length;
}
// The state of key j of sequence b: 0 unpadded, 1 pad, 2 past L.
fn key_state(b: u32, j: u32) -> u32 {
  if (j >= p.length) { return 2u; }
  return select(0u, 1u, p.has_pad != 0u && pad[b * p.length + j] != 0);
}
// Lane by lane, whether query i (open or closed) sees key j in state st: an open row sees its
// unpadded keys (up to itself under the causal mask), a closed row every key.
fn sees(i: vec4u, open: vec4<bool>, j: vec4u, st: vec4u) -> vec4<bool> {
  let hidden = (vec4<bool>(p.causal != 0u) & (j > i)) | (st == vec4u(1u));
  return (st != vec4u(2u)) & (!open | !hidden);
}
// The dropout factors of four probabilities by their [B, H, L, L] indices (0 where not seen).
fn drop4(index: vec4u, seen: vec4<bool>) -> vec4f {
  if (p.drop == 0u) { return vec4f(1.0); }
  var f = vec4f(0.0);
  for (var r = 0u; r < 4u; r++) {
    if (seen[r]) { f[r] = drop_factor(index[r]); }
  }
  return f;
}
// The keys [start, end) rows r0 … r0 + OWN − 1 may see, start a multiple of TILE: with every
// row open, the tiles from the first unpadded key to the last (and under the causal mask to the
// block's last row); else every key.
fn key_range(r0: u32, span: vec2u) -> vec2u {
  let all_open = select(span.x < p.length, span.x <= r0, p.causal != 0u);
  if (!all_open) { return vec2u(0u, p.length); }
  var end = span.y;
  if (p.causal != 0u) { end = min(end, r0 + OWN); }
  return vec2u(span.x / TILE * TILE, end);
}
`;
}

/** One array staged in workgroup memory from a row-access binding. */
export interface StagedRows {
  /** The workgroup array. */
  array: string;
  /** The binding name (read with `ld_<name>`). */
  from: string;
  /** vec4s between rows, a WGSL expression (`STRIDE` or `D4`). */
  stride: string;
}

/** Declarations of staged arrays of `rows` rows (a WGSL constant). */
export function stagedDecls(rows: string, staged: readonly StagedRows[]): string {
  return staged.map((s) => `var<workgroup> ${s.array}: array<vec4f, ${rows} * ${s.stride}>;`)
    .join("\n");
}

/**
 * WGSL statements staging `count` rows from `first` (rows past L as zeros) into the arrays;
 * `base` is the (batch, head)'s first row.
 */
export function stageRows(count: string, first: string, staged: readonly StagedRows[]): string {
  return `for (var e = lid; e < ${count} * D4; e += WG) {
    let r = e / D4;
    let c = e % D4;
    let live = ${first} + r < p.length;
    ${
    staged.map((s) =>
      `${s.array}[r * ${s.stride} + c] = select(vec4f(0.0), ld_${s.from}(base + min(${first} + r, p.length - 1u), c), live);`
    ).join("\n    ")
  }
  }`;
}

/**
 * A WGSL expression for vec4 column `c` of own row `r` (0 … 3) of the invocation: from the
 * staged array, or from the binding (rows past L clamped) when the plan does not stage them.
 */
export function ownRow(plan: FlashPlan, s: StagedRows, r: number, c: string): string {
  return plan.stageOwn
    ? `${s.array}[(4u * og + ${r}u) * ${s.stride} + ${c}]`
    : `ld_${s.from}(base + min(o0 + ${r}u, p.length - 1u), ${c})`;
}

/**
 * A WGSL loop over the vec4 columns adding to `<into><n>` (n below the plan's `perInvocation`)
 * the dot products of the invocation's four own rows of `own` (one per lane) with its tile rows
 * `tg + n · GROUPS` of the workgroup array `tile` (stride STRIDE): each staged vec4 is read once
 * for four rows.
 */
export function dotLoop(plan: FlashPlan, into: string, own: StagedRows, tile: string): string {
  const rows = unroll(4, (r) => `let ro${r} = ${ownRow(plan, own, r, "c")};`);
  const dots = unroll(
    plan.perInvocation,
    (n) =>
      `let rt${n} = ${tile}[(tg + ${n}u * GROUPS) * STRIDE + c];
  ${into}${n} += ${overRows((r) => `dot(ro${r}, rt${n})`)};`,
  );
  return `for (var c = 0u; c < D4; c++) {
  ${rows.split("\n").join("\n  ")}
  ${dots}
}`;
}

/** The invocation's vec4 column `n` of a tile product, clamped into the row. */
export function column(plan: FlashPlan, n: number): string {
  const c = `tg + ${n}u * GROUPS`;
  return plan.columns * plan.groups > plan.dim4 ? `min(${c}, D4 - 1u)` : c;
}

/** Whether the invocation's column `n` exists (WGSL condition), or null when it always does. */
export function columnExists(plan: FlashPlan, n: number): string | null {
  return plan.columns * plan.groups > plan.dim4 ? `tg + ${n}u * GROUPS < D4` : null;
}

/** WGSL `vec4f(f(0), f(1), f(2), f(3))` over the four own rows. */
export function overRows(f: (r: number) => string): string {
  return `vec4f(${Array.from({ length: FLASH_ROWS_PER_INVOCATION }, (_, r) => f(r)).join(", ")})`;
}

/** The entry point's header and prologue: this workgroup's (batch, head), block and tile. */
export const FLASH_ENTRY = /* wgsl */ `@compute @workgroup_size(${FLASH_INVOCATIONS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = grid_index(wid, p.gx);
  if (w >= p.groups) { return; }
  let bh = w / p.tiles;
  let r0 = (w % p.tiles) * OWN;
  let b = bh / p.heads;
  let base = bh * p.length;
  let span = unpadded_span(b, lid);
  let og = lid / GROUPS;
  let tg = lid % GROUPS;
  let o0 = r0 + 4u * og;
  let own4 = vec4u(o0) + vec4u(0u, 1u, 2u, 3u);
  // Which own rows lie before L; an invocation with none skips the products.
  let live4 = own4 < vec4u(p.length);`;
