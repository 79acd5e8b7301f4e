/**
 * Gated RMS normalization over the last dimension, as mamba_ssm's `RMSNormGated`: the
 * statistics are taken per group of `groupSize` consecutive features, and an optional gate `z`
 * enters through SiLU either before the normalization (`normBeforeGate = false`, the SSD4Rec
 * block's `RMSNorm(y ⊙ SiLU(z)) ⊙ w`) or after it (`RMSNorm(x) ⊙ w ⊙ SiLU(z)`).
 *
 * A group of `G` values is handled by a team of `T` invocations (`T` a power of two, at most
 * 256), so a 256-invocation workgroup normalizes `256/T` groups at once. Each invocation holds
 * its `K = ⌈G/T⌉` values in registers and the team adds the squares with a fixed-order tree.
 * The backward writes `dx`, `dz` and the per-row weight-gradient terms in one dispatch; the
 * weight gradient is their column sum by `sumLeading` (fixed order, no atomics), so every result
 * is repeatable bit for bit.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { sumLeading } from "../pointwise/reduce.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { MATH_WGSL } from "../wgsl/math.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const WG = 256;
/** Values per invocation kept in registers; bounds the group size. */
const MAX_K = 16;
/** Values per invocation the team layout aims for. */
const PER_THREAD = 4;

/** The largest normalization group {@link gatedRmsNorm} accepts: 4,096 features. */
export const GATED_RMS_NORM_MAX_GROUP: number = WG * MAX_K;

/** Options of {@link gatedRmsNorm}. */
export interface GatedRmsNormOptions {
  /** Gate `[..., D]`, the shape of x; without it the op is a plain (grouped) RMSNorm. */
  z?: Tensor;
  /** Added to the mean square (default 1e-5, as mamba_ssm). */
  eps?: number;
  /** Features per normalization group; must divide D (default D: one group per row). */
  groupSize?: number;
  /** Normalize x, then multiply by SiLU(z) (default false: normalize x ⊙ SiLU(z)). */
  normBeforeGate?: boolean;
  /**
   * Hands x and z over to the op: it frees them once its backward has run (at once when nothing
   * is recorded). Pass tensors that nothing reads after this op.
   */
  releaseInputs?: boolean;
}

/** Where the gate enters: none, SiLU(z) applied before the normalization, or after it. */
type Gate = "none" | "before" | "after";

/** How a workgroup's invocations share groups, and which variant of the kernels runs. */
interface Spec {
  /** Invocations per group. */
  t: number;
  /** Groups per workgroup. */
  teams: number;
  /** Values per invocation. */
  k: number;
  /** Where the gate enters. */
  gate: Gate;
}

/** The team layout for groups of `size` values: about {@link PER_THREAD} values per invocation. */
function specFor(size: number, gate: Gate): Spec {
  const t = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(size / PER_THREAD)))));
  return { t, teams: WG / t, k: Math.max(1, Math.ceil(size / t)), gate };
}

/** The forward or backward kernel for a spec, generated once. */
const shaderFor = shaderGenerator(
  "gatedRmsNorm",
  (kind: "forward" | "backward", s: Spec, weightGrad: boolean = false) =>
    kind === "forward" ? forwardShader(s) : backwardShader(s, weightGrad),
  (kind, s, weightGrad = false) => `${kind} ${s.t} ${s.k} ${s.gate} ${weightGrad}`,
);

/**
 * Shared WGSL: the layout constants, the parameter block and the indexing of a team's group.
 * `p.size` is the group size, `p.groups` the number of (row, group) pairs and `p.per_row` the
 * groups per row; group `g` is the contiguous range `g·size ..` of x, and column `c` of it uses
 * weight `(g mod per_row)·size + c`.
 */
function prelude({ t, k, teams }: Spec): string {
  return /* wgsl */ `
struct P { groups: u32, size: u32, per_row: u32, gx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
const T = ${t}u;
const K = ${k}u;
const TEAMS = ${teams}u;
var<workgroup> red: array<f32, ${WG}>;
${MATH_WGSL}
${GRID_WGSL}
// Sums v over the T invocations of the caller's team; every invocation gets the total.
fn team_sum(v: f32, lid: u32) -> f32 {
  let lane = lid % T;
  ${workgroupReduceWgsl({ array: "red", size: "T", rank: "lane", combine: "sum", value: "v" })}
  let s = red[lid - lane];
  workgroupBarrier();
  return s;
}
// d/dz of z · sigmoid(z).
fn dsilu_(z: f32) -> f32 {
  let s = sigmoid_(z);
  return s * (1.0 + z * (1.0 - s));
}`;
}

/** A storage binding: its access mode and WGSL name. */
type Binding = readonly ["read" | "read_write", string];

/** WGSL binding lines for storage tensors from binding 1 on, in order. */
function bindings(list: readonly Binding[]): string {
  return list.map(([access, name], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<f32>;`
  ).join("\n");
}

/** Storage bindings of the forward, in launch order. */
function forwardBindings(gate: Gate): Binding[] {
  return [
    ["read", "x"],
    ...(gate === "none" ? [] : [["read", "z"] as const]),
    ["read", "weight"],
    ["read_write", "y"],
    ["read_write", "rstds"],
  ];
}

function forwardShader(s: Spec): string {
  const { gate } = s;
  // The normalized input v, and the factor applied after the normalization besides the weight.
  const v = gate === "after" ? "x[i] * silu_(z[i])" : "x[i]";
  const after = gate === "before" ? " * silu_(z[base + c])" : "";
  return /* wgsl */ `
${bindings(forwardBindings(gate))}
${prelude(s)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let group = grid_index(wid, p.gx) * TEAMS + lid / T;
  let live = group < p.groups;
  let base = group * p.size;
  var v: array<f32, K>;
  var q = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.size) { let i = base + c; v[k] = ${v}; q += v[k] * v[k]; }
  }
  let rstd = inverseSqrt(team_sum(q, lid) / f32(p.size) + p.eps);
  if (!live) { return; }
  let wbase = (group % p.per_row) * p.size;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.size) { y[base + c] = v[k] * rstd * weight[wbase + c]${after}; }
  }
  if (lane == 0u) { rstds[group] = rstd; }
}`;
}

/** Storage bindings of the backward, in launch order. */
function backwardBindings(gate: Gate, weightGrad: boolean): Binding[] {
  const gated = gate !== "none";
  return [
    ["read", "x"],
    ...(gated ? [["read", "z"] as const] : []),
    ["read", "weight"],
    ["read", "dy"],
    ["read", "rstds"],
    ["read_write", "dx"],
    ...(gated ? [["read_write", "dz"] as const] : []),
    ...(weightGrad ? [["read_write", "dw_terms"] as const] : []),
  ];
}

/**
 * The backward. With n = v · rstd the normalized values and dn = ∂L/∂n:
 * ∂L/∂v = rstd · (dn − n · mean(dn ⊙ n)). Gate after (v = x ⊙ SiLU(z)): dn = dy ⊙ w,
 * dx = ∂L/∂v ⊙ SiLU(z), dz = ∂L/∂v ⊙ x ⊙ SiLU′(z), dw terms dy ⊙ n. Gate before (v = x):
 * dn = dy ⊙ w ⊙ SiLU(z), dx = ∂L/∂v, dz = dy ⊙ n ⊙ w ⊙ SiLU′(z), dw terms dy ⊙ n ⊙ SiLU(z).
 */
function backwardShader(s: Spec, weightGrad: boolean): string {
  const { gate } = s;
  const dnExpr = gate === "before" ? "g * wc * silu_(zc)" : "g * wc";
  const dwExpr = gate === "before" ? "g * n[k] * silu_(zc)" : "g * n[k]";
  const loadV = gate === "after" ? "x[i] * silu_(zc)" : "x[i]";
  let finish = "dx[i] = dv;";
  if (gate === "after") finish = "dx[i] = dv * silu_(zc); dz[i] = dv * x[i] * dsilu_(zc);";
  return /* wgsl */ `
${bindings(backwardBindings(gate, weightGrad))}
${prelude(s)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let group = grid_index(wid, p.gx) * TEAMS + lid / T;
  let live = group < p.groups;
  let base = group * p.size;
  let wbase = (group % p.per_row) * p.size;
  var rstd = 0.0;
  if (live) { rstd = rstds[group]; }
  var n: array<f32, K>;
  var dn: array<f32, K>;
  var q = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.size) {
      let i = base + c;
      let g = dy[i];
      let wc = weight[wbase + c];
      ${gate === "none" ? "" : "let zc = z[i];"}
      n[k] = ${loadV} * rstd;
      dn[k] = ${dnExpr};
      q += dn[k] * n[k];
      ${weightGrad ? `dw_terms[i] = ${dwExpr};` : ""}
      ${gate === "before" ? "dz[i] = g * n[k] * wc * dsilu_(zc);" : ""}
    }
  }
  let m = team_sum(q, lid) / f32(p.size);
  if (!live) { return; }
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.size) {
      let i = base + c;
      ${gate === "after" ? "let zc = z[i];" : ""}
      let dv = rstd * (dn[k] - n[k] * m);
      ${finish}
    }
  }
}`;
}

/** Checks the operands and options; returns the group size and eps. */
function validate(op: string, x: Tensor, weight: Tensor, o: GatedRmsNormOptions) {
  assertDType(op, x, "f32");
  assertDType(op, weight, "f32");
  if (o.z) assertDType(op, o.z, "f32");
  if (x.shape.length === 0) {
    throw new RangeError(`${op}: x needs at least one dimension, got ${x.describe()}`);
  }
  const cols = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 1 || weight.shape[0] !== cols) {
    throw new RangeError(
      `${op}: weight has shape [${weight.shape.join(", ")}] but x has shape ` +
        `[${x.shape.join(", ")}]; expected [${cols}]`,
    );
  }
  if (o.z && o.z.shape.join() !== x.shape.join()) {
    throw new RangeError(
      `${op}: z has shape [${o.z.shape.join(", ")}] but x has shape [${x.shape.join(", ")}]; ` +
        "they must match",
    );
  }
  const size = o.groupSize ?? cols;
  if (!Number.isInteger(size) || size < 1 || cols % size !== 0) {
    throw new RangeError(
      `${op}: groupSize ${size} must be a positive divisor of the last dimension ${cols} of ` +
        `[${x.shape.join(", ")}]`,
    );
  }
  if (size > GATED_RMS_NORM_MAX_GROUP) {
    throw new RangeError(
      `${op}: group size ${size} of [${x.shape.join(", ")}] exceeds ` +
        `${GATED_RMS_NORM_MAX_GROUP}; pass a smaller groupSize`,
    );
  }
  const eps = o.eps ?? 1e-5;
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
  }
  return { cols, size, eps };
}

/**
 * Gated RMS normalization over the last dimension D, per group of `groupSize` consecutive
 * features, as mamba_ssm's `RMSNormGated` without bias. With RMSNorm(v) = v / sqrt(mean(v²) + eps)
 * over each group: `y = RMSNorm(x ⊙ SiLU(z)) ⊙ weight` (default), `y = RMSNorm(x) ⊙ weight ⊙
 * SiLU(z)` with `normBeforeGate`, and `y = RMSNorm(x) ⊙ weight` without `z`. Recorded on the
 * tape (gradients for `x`, `z` and `weight`); the per-group reciprocal RMS is kept for the
 * backward and freed once it has run (with x and z under `releaseInputs`).
 * @param x input `[..., D]`
 * @param weight scale `[D]`
 * @param options the gate `z` (`[..., D]`), eps (default 1e-5), groupSize (default D, must divide
 *   D, at most {@link GATED_RMS_NORM_MAX_GROUP}), normBeforeGate (default false) and releaseInputs
 * @returns `[..., D]`, the shape of x
 */
export function gatedRmsNorm(
  x: Tensor,
  weight: Tensor,
  options: GatedRmsNormOptions = {},
): Tensor {
  const op = "gatedRmsNorm";
  const { cols, size, eps } = validate(op, x, weight, options);
  const z = options.z;
  const gate: Gate = z === undefined ? "none" : options.normBeforeGate ? "before" : "after";
  const spec = specFor(size, gate);
  const groups = x.size / size;
  const y = Tensor.empty(x.shape, "f32", op);
  const rstd = Tensor.empty([groups], "f32", `${op} rstd`);
  const g = grid(Math.ceil(groups / spec.teams), 1);
  const params = packParams([groups, size, cols / size, g.groups[0]], [eps]);
  launch(op, shaderFor("forward", spec), params, [x, ...(z ? [z] : []), weight, y, rstd], g.groups);
  const inputs = z ? [x, z, weight] : [x, weight];
  return record(y, op, inputs, (dy) => {
    const bop = `${op} backward`;
    const weightGrad = weight.requiresGrad;
    const dx = Tensor.empty(x.shape, "f32", bop);
    const dz = z ? Tensor.empty(x.shape, "f32", bop) : null;
    const terms = weightGrad ? Tensor.empty(x.shape, "f32", `${bop} weight terms`) : null;
    launch(
      bop,
      shaderFor("backward", spec, weightGrad),
      params,
      [x, ...(z ? [z] : []), weight, dy, rstd, dx, ...(dz ? [dz] : []), ...(terms ? [terms] : [])],
      g.groups,
    );
    let dweight: Tensor | null = null;
    if (terms) {
      dweight = sumLeading(terms, [cols]);
      terms.dispose();
    }
    const gx = x.requiresGrad ? dx : (dx.dispose(), null);
    if (!z) return [gx, dweight];
    const gz = z.requiresGrad ? dz : (dz!.dispose(), null);
    return [gx, gz, dweight];
  }, [rstd, ...(options.releaseInputs ? inputs.filter((t) => t !== weight) : [])]);
}
