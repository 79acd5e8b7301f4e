/**
 * Layer normalization over the last dimension, as PyTorch's `nn.LayerNorm` (biased variance,
 * elementwise affine), with its backward.
 *
 * A row of `D` values is handled by a team of `T` invocations (`T` a power of two, at most 256),
 * so a 256-invocation workgroup normalizes `256/T` rows at once: 16 rows of 16 vec4s for the main
 * case D = 64. Rows are read as vec4 when D is a multiple of 4. Each invocation holds its
 * `K = ⌈D/T⌉` values in registers, so every tensor is read once. Each invocation takes the mean
 * and squared deviations of its own values, and the team merges those with Chan's pairwise
 * formula (no E[x²] − E[x]² cancellation, one tree).
 *
 * Performance floor (H200, ~4.3 TB/s): the forward moves 8·rows·D bytes (read x, write y), e.g.
 * 409,600 × 64 rows: 210 MB → ~49 µs; the backward reads x and dy and writes dx (12·rows·D bytes,
 * ~73 µs). Through Deno's WebGPU a vec4 copy of the same 210 MB takes ~100 µs, the practical
 * floor there; the kernels take ~135 µs and ~115 µs (plus ~60 µs fixed cost per dispatch). Weight and bias gradients are accumulated per workgroup in registers and finished by a
 * small deterministic column reduction, so the backward is two dispatches and has no atomics.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const WG = 256;
/** Units (f32 or vec4) per invocation kept in registers; bounds the row length. */
const MAX_K = 16;
/** Target number of workgroups for the backward (each loops over a block of rows). */
const BACKWARD_GROUPS = 1024;

/**
 * The largest last dimension {@link layerNorm} accepts: 4,096, or 16,384 when it is a multiple
 * of 4 (rows are then read as vec4).
 */
export const LAYER_NORM_MAX_DIM: number = 4 * WG * MAX_K;

/** How a workgroup's invocations share rows. */
interface Layout {
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
function layoutFor(cols: number): Layout {
  const unit = cols % 4 === 0 ? 4 : 1;
  const units = cols / unit;
  const perThread = unit === 4 ? 1 : 4;
  const t = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(units / perThread)))));
  return { unit, t, teams: WG / t, k: Math.max(1, Math.ceil(units / t)) };
}

/** The forward or backward kernel for a layout, generated once. */
const shaderFor = shaderGenerator(
  "layerNorm",
  (kind: "forward" | "backward", layout: Layout) =>
    kind === "forward" ? forwardShader(layout) : backwardShader(layout),
  (kind, layout) => `${kind} ${layout.unit} ${layout.t} ${layout.k}`,
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

function forwardShader(layout: Layout): string {
  return /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<U>;
@group(0) @binding(2) var<storage, read> weight: array<U>;
@group(0) @binding(3) var<storage, read> bias: array<U>;
@group(0) @binding(4) var<storage, read_write> y: array<U>;
@group(0) @binding(5) var<storage, read_write> means: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstds: array<f32>;
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
  let base = row * p.cols;
  // This invocation's values, their count and mean, then their squared deviations.
  var v: array<U, K>;
  var count = 0.0;
  var s = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.cols) { v[k] = x[base + c]; count += UNIT; s += hsum(v[k]); }
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
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.cols) { y[base + c] = (v[k] - mean) * rstd * weight[c] + bias[c]; }
  }
  if (lane == 0u) {
    means[row] = mean;
    rstds[row] = rstd;
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

const FINISH = /* wgsl */ `
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

/**
 * Layer normalization over the last dimension with an elementwise affine transform, as
 * `nn.LayerNorm(D, eps)`: `y = (x − mean) / sqrt(var + eps) · weight + bias` with the biased
 * variance. Recorded on the tape (gradients for `x`, `weight` and `bias`); the per-row mean and
 * reciprocal standard deviation are kept for the backward and freed once it has run.
 * @param x input `[..., D]`
 * @param weight scale `[D]`
 * @param bias shift `[D]`
 * @param eps added to the variance; the sequential recommenders use 1e-12 (PyTorch's default
 *   is 1e-5)
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const op = "layerNorm";
  assertDType(op, x, "f32");
  assertDType(op, weight, "f32");
  assertDType(op, bias, "f32");
  if (x.shape.length === 0) {
    throw new RangeError(`${op}: needs at least one dimension, got ${x.describe()}`);
  }
  const cols = x.shape[x.shape.length - 1];
  for (const [what, t] of [["weight", weight], ["bias", bias]] as const) {
    if (t.shape.length !== 1 || t.shape[0] !== cols) {
      throw new RangeError(
        `${op}: ${what} has shape [${t.shape.join(", ")}] but x has shape ` +
          `[${x.shape.join(", ")}]; expected [${cols}]`,
      );
    }
  }
  const maxDim = cols % 4 === 0 ? LAYER_NORM_MAX_DIM : LAYER_NORM_MAX_DIM / 4;
  if (cols === 0 || cols > maxDim) {
    throw new RangeError(
      `${op}: last dimension ${cols} of [${x.shape.join(", ")}] is outside 1..${maxDim}`,
    );
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
  }
  const rows = x.size / cols;
  const layout = layoutFor(cols);
  const units = cols / layout.unit;
  const y = Tensor.empty(x.shape, "f32", op);
  const mean = Tensor.empty([rows], "f32", `${op} mean`);
  const rstd = Tensor.empty([rows], "f32", `${op} rstd`);
  const g = grid(Math.ceil(rows / layout.teams), 1);
  launch(
    op,
    shaderFor("forward", layout),
    packParams([rows, units, g.groups[0]], [eps]),
    [x, weight, bias, y, mean, rstd],
    g.groups,
  );
  return record(y, op, [x, weight, bias], (dy) => {
    const bop = `${op} backward`;
    const iters = Math.max(1, Math.ceil(rows / (layout.teams * BACKWARD_GROUPS)));
    const groups = Math.max(1, Math.ceil(rows / (layout.teams * iters)));
    const bg = grid(groups, 1);
    const dx = Tensor.empty(x.shape, "f32", bop);
    const partials = Tensor.empty([2, cols, groups], "f32", bop);
    launch(
      bop,
      shaderFor("backward", layout),
      packParams([rows, units, bg.groups[0], iters, groups]),
      [x, weight, dy, mean, rstd, dx, partials],
      bg.groups,
    );
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (weight.requiresGrad || bias.requiresGrad) {
      dweight = Tensor.empty([cols], "f32", bop);
      dbias = Tensor.empty([cols], "f32", bop);
      launch(
        `${op} parameter gradients`,
        FINISH,
        packParams([cols, groups]),
        [partials, dweight, dbias],
        [cols, 2],
      );
    }
    partials.dispose();
    return [x.requiresGrad ? dx : (dx.dispose(), null), dweight, dbias];
  }, [mean, rstd]);
}
