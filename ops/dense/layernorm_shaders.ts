/**
 * The WGSL of the LayerNorm kernels (`layernorm.ts` launches them and documents what they
 * compute): the team layout of a row length, the forward with its optional row maps (a gather of
 * table rows, a scatter into target rows), the backward, and the column sums of the parameter
 * gradients.
 *
 * @module
 */
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

/** Invocations per workgroup. */
export const WG = 256;
/** Units (f32 or vec4) per invocation kept in registers; bounds the row length. */
export const MAX_K = 16;

/** How a workgroup's invocations share rows. */
export interface Layout {
  /** Values per unit: 4 (rows read as vec4) when D is a multiple of 4, else 1. */
  unit: 1 | 4;
  /** Invocations per row. */
  t: number;
  /** Rows per workgroup. */
  teams: number;
  /** Units per invocation. */
  k: number;
}

/**
 * The team layout for rows of `cols` values. Measured on an H200 (Deno's WebGPU) at 409,600 rows:
 * with vec4 rows one unit per invocation is best (D = 64: 16 invocations per row, ~135 µs forward
 * and ~115 µs backward kernel time, against ~250 µs and ~210 µs for scalar rows); with scalar
 * rows about four values per invocation (more spill the private arrays to memory, fewer add
 * barrier levels).
 */
export function layoutFor(cols: number): Layout {
  const unit = cols % 4 === 0 ? 4 : 1;
  const units = cols / unit;
  const perThread = unit === 4 ? 1 : 4;
  const t = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(units / perThread)))));
  return { unit, t, teams: WG / t, k: Math.max(1, Math.ceil(units / t)) };
}

/**
 * Where the forward reads and writes its rows: `gather` reads row `ids[r]` of a table as row r,
 * `scatter` writes row r into row `rows[r]` of a target. Either form is inference only, so it
 * writes no means and reciprocal deviations for a backward.
 */
export interface RowMap {
  readonly gather: boolean;
  readonly scatter: boolean;
}

export const PLAIN: RowMap = { gather: false, scatter: false };

/** The forward or backward kernel for a layout (the forward for a row map), generated once. */
export const shaderFor: (
  kind: "forward" | "backward",
  layout: Layout,
  map?: RowMap,
) => string = shaderGenerator(
  "layerNorm",
  (kind: "forward" | "backward", layout: Layout, map: RowMap = PLAIN) =>
    kind === "forward" ? forwardShader(layout, map) : backwardShader(layout),
  (kind, layout, map = PLAIN) =>
    `${kind} ${layout.unit} ${layout.t} ${layout.k} ${map.gather} ${map.scatter}`,
);

/** Shared WGSL: the layout constants, the unit type and its horizontal sum. */
function prelude({ unit, t, k }: Layout): string {
  return /* wgsl */ `
const T = ${t}u;
const K = ${k}u;
alias U = ${unit === 4 ? "vec4f" : "f32"};
const UNIT = ${unit}.0;
fn hsum(v: U) -> f32 { return ${unit === 4 ? "dot(v, vec4f(1.0))" : "v"}; }`;
}

function forwardShader(layout: Layout, map: RowMap): string {
  const mapped = map.gather || map.scatter;
  // p.limit: the table's rows (gather) or the target's (scatter).
  const bindings = [
    "var<storage, read> x: array<U>",
    ...(map.gather ? ["var<storage, read> ids: array<i32>"] : []),
    "var<storage, read> weight: array<U>",
    "var<storage, read> bias: array<U>",
    ...(map.scatter ? ["var<storage, read> out_rows: array<i32>"] : []),
    "var<storage, read_write> y: array<U>",
    ...(mapped ? [] : [
      "var<storage, read_write> means: array<f32>",
      "var<storage, read_write> rstds: array<f32>",
    ]),
  ].map((b, i) => `@group(0) @binding(${i + 1}) ${b};`).join("\n");
  // The row read (the table row, a zero row for an id outside it) and the row written (none for
  // a target row outside the target).
  const source = map.gather
    ? `let id = ids[min(row, p.rows - 1u)];
  let in_live = live && id >= 0 && u32(id) < p.limit;
  let base = select(0u, u32(id), in_live) * p.cols;`
    : "let base = row * p.cols;";
  const target = map.scatter
    ? `let out_row = out_rows[row];
  if (out_row < 0 || u32(out_row) >= p.limit) { return; }
  let obase = u32(out_row) * p.cols;`
    : map.gather
    ? "let obase = row * p.cols;"
    : "let obase = base;";
  return /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32,${mapped ? " limit: u32," : ""} eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
${bindings}
${prelude(layout)}
var<workgroup> stats: array<vec3f, ${WG}>;
// Chan et al.'s pairwise update of (count, mean, Σ(x − mean)²): stable, and one tree per row.
fn merge(a: vec3f, b: vec3f) -> vec3f {
  let n = a.x + b.x;
  if (n == 0.0) { return a; }
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}
// p.cols counts units.
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = grid_index(wid, p.gx) * ${layout.teams}u + lid / T;
  let live = row < p.rows;
  ${source}
  // This invocation's values, their count and mean, then their squared deviations.
  var v: array<U, K>;
  var count = 0.0;
  var s = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.cols) {
      v[k] = ${map.gather ? "select(U(0.0), x[base + c], in_live)" : "x[base + c]"};
      count += UNIT;
      s += hsum(v[k]);
    }
  }
  let local_mean = select(0.0, s / count, count > 0.0);
  var q = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.cols) { let d = v[k] - local_mean; q += hsum(d * d); }
  }
  ${
    workgroupReduceWgsl({
      array: "stats",
      size: "T",
      rank: "lane",
      combine: { merge: "merge" },
      value: "vec3f(count, local_mean, q)",
    })
  }
  let total = stats[lid - lane];
  if (!live) { return; }
  let mean = total.y;
  // Biased variance; eps = 1e-12 is a normal f32, so var + eps keeps it and a constant row gets
  // rstd = 1e6 and a centred value of exactly 0.
  let rstd = inverseSqrt(total.z / total.x + p.eps);
  ${target}
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.cols) { y[obase + c] = (v[k] - mean) * rstd * weight[c] + bias[c]; }
  }${
    mapped ? "" : `
  if (lane == 0u) {
    means[row] = mean;
    rstds[row] = rstd;
  }`
  }
}`;
}

/** WGSL storing the components of unit `value` (column unit `c`) as scalars at `index(col)`. */
function storeComponents(unit: 1 | 4, value: string, index: (col: string) => string): string {
  if (unit === 1) return `partials[${index("c")}] = ${value};`;
  return `for (var j = 0u; j < 4u; j++) { partials[${index("4u * c + j")}] = ${value}[j]; }`;
}

function backwardShader(layout: Layout): string {
  const { unit, teams } = layout;
  return /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32, iters: u32, groups: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<U>;
@group(0) @binding(2) var<storage, read> weight: array<U>;
@group(0) @binding(3) var<storage, read> dy: array<U>;
@group(0) @binding(4) var<storage, read> means: array<f32>;
@group(0) @binding(5) var<storage, read> rstds: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<U>;
// [2, D, groups]: per-workgroup sums of dy·x̂ (weight gradient) and of dy (bias gradient).
@group(0) @binding(7) var<storage, read_write> partials: array<f32>;
${prelude(layout)}
var<workgroup> red: array<vec2f, ${WG}>;
var<workgroup> red_w: array<U, ${WG}>;
var<workgroup> red_b: array<U, ${WG}>;
// Sums v over the T invocations of the caller's team; every invocation gets the total.
fn team_sum(v: vec2f, lid: u32) -> vec2f {
  let lane = lid % T;
  ${workgroupReduceWgsl({ array: "red", size: "T", rank: "lane", combine: "sum", value: "v" })}
  let s = red[lid - lane];
  workgroupBarrier();
  return s;
}
// p.cols counts units.
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let team = lid / T;
  let group = grid_index(wid, p.gx);
  let n = UNIT * f32(p.cols);
  var w: array<U, K>;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.cols) { w[k] = weight[c]; }
  }
  var acc_w: array<U, K>;
  var acc_b: array<U, K>;
  for (var i = 0u; i < p.iters; i++) {
    let row = (group * p.iters + i) * ${teams}u + team;
    let live = group < p.groups && row < p.rows;
    let base = row * p.cols;
    var mean = 0.0;
    var rstd = 0.0;
    if (live) { mean = means[row]; rstd = rstds[row]; }
    var xhat: array<U, K>;
    var dxhat: array<U, K>;
    var s = vec2f(0.0);
    for (var k = 0u; k < K; k++) {
      let c = lane + k * T;
      if (live && c < p.cols) {
        let g = dy[base + c];
        xhat[k] = (x[base + c] - mean) * rstd;
        dxhat[k] = g * w[k];
        s += vec2f(hsum(dxhat[k]), hsum(dxhat[k] * xhat[k]));
        acc_w[k] += g * xhat[k];
        acc_b[k] += g;
      }
    }
    // dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy ⊙ weight.
    let m = team_sum(s, lid) / n;
    if (live) {
      for (var k = 0u; k < K; k++) {
        let c = lane + k * T;
        if (c < p.cols) { dx[base + c] = rstd * (dxhat[k] - m.x - xhat[k] * m.y); }
      }
    }
  }
  // Teams of this workgroup own the same columns: add their accumulators across teams.
  for (var k = 0u; k < K; k++) {
    red_w[lid] = acc_w[k];
    red_b[lid] = acc_b[k];
    workgroupBarrier();
    ${workgroupReduceWgsl({ array: ["red_w", "red_b"], size: WG, until: "T", combine: "sum" })}
    let c = lane + k * T;
    if (team == 0u && c < p.cols && group < p.groups) {
      let sw = red_w[lid];
      let sb = red_b[lid];
      ${storeComponents(unit, "sw", (col) => `(${col}) * p.groups + group`)}
      ${storeComponents(unit, "sb", (col) => `(${unit}u * p.cols + ${col}) * p.groups + group`)}
    }
    workgroupBarrier();
  }
}`;
}

export const FINISH: string = /* wgsl */ `
struct P { cols: u32, groups: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbias: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
// Workgroup (c, which) sums the per-workgroup partials of column c: a fixed-order tree.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = (wid.y * p.cols + wid.x) * p.groups;
  var s = 0.0;
  for (var j = lid; j < p.groups; j += ${WG}u) { s += partials[base + j]; }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "s" })}
  if (lid == 0u) {
    if (wid.y == 0u) { dweight[wid.x] = red[0]; } else { dbias[wid.x] = red[0]; }
  }
}`;
