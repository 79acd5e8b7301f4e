/**
 * What the scan kernels share: the parameter block (one layout for the channel-major and the
 * state-major kernels), storage binding declarations, and the WGSL prelude with the index
 * helpers of both layouts, the shared sigmoid and softplus (`MATH_WGSL`) and the step size Δ.
 *
 * @module
 */
import { packParams } from "../../core/launch.ts";
import { MATH_WGSL } from "../../wgsl/math.ts";
import type { ScanSpec } from "./options.ts";
import type { ScanPlan } from "./plan.ts";

/** Fields of the parameter block, all u32, in order. */
const FIELDS = [
  "batch",
  "channels",
  "length",
  "segs",
  "seg_count",
  "seg_offset",
  "ips",
  "intervals",
  "ck_intervals",
  "cblocks",
  "gx",
  "ds_b",
  "ds_c",
  "ds_t",
  "ns_b",
  "ns_c",
  "ns_t",
] as const;

/** Values of the parameter block, by field. */
export type ScanParams = Record<(typeof FIELDS)[number], number>;

/**
 * The parameter block of one scan kernel launch: sizes, strides of the layout, one segment pass
 * over the whole length, and the overrides in `p`.
 */
export function scanParams(spec: ScanSpec, plan: ScanPlan, p: Partial<ScanParams>): Uint32Array {
  const { batch, channels: d, length: l, states: n, channelsLast } = spec;
  const full: ScanParams = {
    batch,
    channels: d,
    length: l,
    segs: 1,
    seg_count: 1,
    seg_offset: 0,
    ips: plan.intervals,
    intervals: plan.intervals,
    ck_intervals: plan.ckIntervals,
    cblocks: plan.ch.cblocks,
    gx: 1,
    ds_b: d * l,
    ds_c: channelsLast ? 1 : l,
    ds_t: channelsLast ? d : 1,
    ns_b: n * l,
    ns_c: channelsLast ? 1 : l,
    ns_t: channelsLast ? n : 1,
    ...p,
  };
  return packParams(FIELDS.map((f) => full[f]));
}

/** A storage binding: its access mode, its WGSL name and its element type (default f32). */
export type Binding = [access: "read" | "read_write", name: string, element?: "f32" | "i32"];

/** Declares the storage bindings 1, 2, … in order (binding 0 is the parameter block). */
export function bind(list: Binding[]): string {
  return list.map(([access, name, element], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${element ?? "f32"}>;`
  ).join("\n");
}

/**
 * The WGSL of `step_size`: Δ after the optional bias and softplus, and the softplus' slope. A
 * low-rank Δ (binding `delta_weight`, layout "bld": g = (b·l + t)·d + c) is summed as a matrix
 * product's entry is, one fused multiply-add per rank from zero.
 */
function stepSizeSource(spec: ScanSpec): string {
  const bias = spec.hasBias ? " + delta_bias[c]" : "";
  const value = spec.softplus ? "vec2<f32>(softplus_(raw), sigmoid_(raw))" : "vec2<f32>(raw, 1.0)";
  const R = spec.deltaRank;
  const product = Array.from(
    { length: R },
    (_, r) => `  dt = fma(delta[row + ${r}u], delta_weight[c * ${R}u + ${r}u], dt);`,
  ).join("\n");
  const raw = R > 0
    ? `let row = (g / p.channels) * ${R}u;
  var dt = 0.0;
${product}
  let raw = dt${bias};`
    : `let raw = delta[g]${bias};`;
  return `fn step_size(g: u32, c: u32) -> vec2<f32> {
  ${raw}
  return ${value};
}`;
}

/** Declarations every scan kernel shares. */
export function prelude(spec: ScanSpec, plan: ScanPlan): string {
  return /* wgsl */ `
struct P { ${FIELDS.map((f) => `${f}: u32`).join(", ")} }
@group(0) @binding(0) var<uniform> p: P;
const N: u32 = ${spec.states}u;
const TS: u32 = ${plan.ts}u;
const LOG2E: f32 = 1.4426950408889634;
fn didx(b: u32, c: u32, t: u32) -> u32 { return b * p.ds_b + c * p.ds_c + t * p.ds_t; }
fn nidx(b: u32, s: u32, t: u32) -> u32 { return b * p.ns_b + s * p.ns_c + t * p.ns_t; }
// (b, m, c, s) of a per-interval state: checkpoints h entering interval m, λ leaving it.
fn ckidx(b: u32, m: u32, c: u32, s: u32) -> u32 { return ((b * p.ck_intervals + m) * p.channels + c) * N + s; }
// Per-segment value (b, k, c, s).
fn segidx(b: u32, k: u32, c: u32, s: u32) -> u32 { return ((b * p.segs + k) * p.channels + c) * N + s; }
${MATH_WGSL}// Δ at (b, c, t) after the bias and the optional softplus, and the softplus' derivative there.
${stepSizeSource(spec)}
`;
}

/** Module-scope WGSL of a kernel that reads each row's position: the workgroup's copy of it. */
export const STOP_DECL = "var<workgroup> sStop: u32;";

/**
 * WGSL defining `stop` for batch row `b`: one past the step it is read at (its position clamped
 * to [0, length)), loaded through workgroup memory so that every invocation sees it uniform and
 * loops bounded by it may hold barriers. Needs {@link STOP_DECL} and the i32 binding `last`.
 */
export const STOP_CODE =
  "if (lid == 0u) { sStop = u32(clamp(last[b], 0, i32(p.length) - 1)) + 1u; }\n  " +
  "let stop = workgroupUniformLoad(&sStop);";

/**
 * WGSL of the output gradient at (b, channel `c`, step `t`), flat index `g`: `gout[g]`, or with
 * positions the `[batch, d]` gradient at the row's position and zero at every other step.
 */
export function gradOut(spec: ScanSpec, g: string, c: string, t: string): string {
  return spec.atPositions
    ? `select(0.0, gout[b * p.channels + ${c}], ${t} + 1u == stop)`
    : `gout[${g}]`;
}
