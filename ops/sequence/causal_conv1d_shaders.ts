/**
 * The WGSL of the depthwise causal convolution: forward, backward and the pass that finishes the
 * weight and bias gradients, generated for one convolution width (2–4), layout, bias, fused SiLU
 * and segment ids.
 *
 * Every invocation walks one channel, or 4 adjacent channels as a vec4 (channels-last with a
 * multiple of 4 channels), along a run of consecutive positions (positions of all rows flattened)
 * and keeps a sliding window of the last `W` inputs, their segment starts and, in the backward,
 * their pre-activation gradients in registers, so each element of x, dy and the segment ids is
 * read once (plus a halo of `W − 1` positions at either end of a run) and each output is written
 * once. A tap from position `u` back to `u − j` is live when `u − j` is at or after the
 * start of `u`'s segment; a segment starts at every row start and wherever the id differs from the
 * previous position's, which is causal-conv1d's `seq_idx` rule for non-decreasing ids.
 *
 * The arithmetic per output is the same as an invocation per element would do (the bias, then the
 * live taps in order; `dx` from its own tap, then the later taps in order), so outputs and `dx`
 * do not depend on the run length. The weight and bias gradients are sums over all positions: each
 * invocation sums its run, a workgroup tree sums its lanes' runs, and the finishing pass adds the
 * workgroups' partials (strided sums, then a tree) in a fixed order; the result depends on the
 * run length and the lanes per workgroup, never on scheduling.
 *
 * @module
 */
import { GRID_WGSL } from "../wgsl/grid.ts";
import { MATH_WGSL } from "../wgsl/math.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

/** Invocations per workgroup of the forward kernel and of the scalar backward kernel. */
export const CONV_WG = 256;
/** Invocations per workgroup of the vec4 backward kernel (its tree of vec4 sums fits in 16 kB). */
const CONV_WG_VEC4 = 128;
/** Invocations per workgroup of the finishing pass. */
export const FINISH_WG = 64;

/** What selects one compiled convolution kernel. */
export interface ConvSpec {
  /** Taps per channel, 2–4. */
  width: number;
  /** A bias is added before the activation. */
  bias: boolean;
  /** SiLU is fused after the bias. */
  silu: boolean;
  /** Segment ids (i32, one per position) cut the taps. */
  segments: boolean;
  /** x is (batch, length, channels) rather than (batch, channels, length). */
  channelsLast: boolean;
  /**
   * Each invocation takes 4 adjacent channels as one vec4 (channels-last with a multiple of 4
   * channels): the same arithmetic per channel, a quarter of the loads.
   */
  vec4: boolean;
}

/** The WGSL type of one invocation's values. */
function valueType(s: ConvSpec): string {
  return s.vec4 ? "vec4f" : "f32";
}

/** Workgroup size of the backward kernel. */
function backwardWorkgroup(s: ConvSpec): number {
  return s.vec4 ? CONV_WG_VEC4 : CONV_WG;
}

/**
 * The uniform block of the forward and backward kernels: sizes (`channels` counts channel groups
 * of one invocation: channels / 4 for vec4), the positions per run and, for the forward's folded
 * grid, the invocations per grid row.
 */
const PARAMS = /* wgsl */ `
struct P {
  batch: u32, channels: u32, length: u32, positions: u32, runs: u32, run: u32, stride: u32,
}
@group(0) @binding(0) var<uniform> p: P;`;

/** Storage bindings from 1 on; the tensors shaped like x hold vec4s in vec4 kernels. */
function bindings(s: ConvSpec, names: [string, string][]): string {
  const shapedLikeX = ["x", "gy", "dx", "out"];
  return names.map(([access, name], i) => {
    const type = name === "seq" ? "i32" : shapedLikeX.includes(name) ? valueType(s) : "f32";
    return `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${type}>;`;
  }).join("\n");
}

function inputBindings(s: ConvSpec): [string, string][] {
  const list: [string, string][] = [["read", "x"], ["read", "weight"]];
  if (s.bias) list.push(["read", "bias"]);
  if (s.segments) list.push(["read", "seq"]);
  return list;
}

/**
 * WGSL `fn at(c, u)`: the element (vec4 in vec4 kernels) of channel group `c` at flat position
 * `u` (row · length + t).
 */
function addressing(s: ConvSpec): string {
  return /* wgsl */ `
fn at(c: u32, u: u32) -> u32 {
  ${
    s.channelsLast
      ? "return u * p.channels + c;"
      : "return ((u / p.length) * p.channels + c) * p.length + u % p.length;"
  }
}`;
}

/** `f(0) f(1) … f(n − 1)` joined by `sep`. */
function each(n: number, f: (i: number) => string, sep = " "): string {
  return Array.from({ length: n }, (_, i) => f(i)).join(sep);
}

/**
 * Statements that move the window on to position `u` (an i32 in scope, with `lo` the first
 * position of the walk): the registers `x0 … x{W−1}` hold x at `u − W + 1 … u` and
 * `st0 … st{W−1}` their segment starts (positions outside `[0, positions)` read as zero inputs
 * that start a segment of their own). `prev` carries the previous position's segment id.
 */
function windowStep(s: ConvSpec): string {
  const W = s.width;
  const fresh = s.segments
    ? `let id = seq[uu];
    let fresh = u == lo || uu % p.length == 0u || id != prev;
    prev = id;`
    : "let fresh = u == lo || uu % p.length == 0u;";
  return `    ${each(W - 1, (i) => `x${i} = x${i + 1};`)}
    ${each(W - 1, (i) => `st${i} = st${i + 1};`)}
    if (u >= 0 && u < i32(p.positions)) {
      let uu = u32(u);
      x${W - 1} = x[at(c, uu)];
    ${fresh}
      st${W - 1} = select(st${W - 2}, u, fresh);
    } else {
      x${W - 1} = ${valueType(s)}(0.0);
      st${W - 1} = u;
    }
`;
}

/** The channels' values of a per-channel `array[channel · stride + offset]`, as one value. */
function perChannel(s: ConvSpec, array: string, stride: number, offset: number): string {
  if (!s.vec4) return `${array}[c * ${stride}u + ${offset}u]`;
  const at = (j: number) => `${array}[(c * 4u + ${j}u) * ${stride}u + ${offset}u]`;
  return `vec4f(${each(4, at, ", ")})`;
}

/** `sigmoid_` of every channel of `v`. */
function sigmoid(s: ConvSpec, v: string): string {
  return s.vec4 ? `vec4f(${each(4, (j) => `sigmoid_(${v}[${j}])`, ", ")})` : `sigmoid_(${v})`;
}

/** Declarations of the window registers and of the channels' weights (and bias). */
function windowDecls(s: ConvSpec): string {
  const W = s.width, T = valueType(s);
  return `  ${each(W, (k) => `let w${k} = ${perChannel(s, "weight", W, k)};`)}
  ${s.bias ? `let bc = ${perChannel(s, "bias", 1, 0)};` : ""}
  ${each(W, (i) => `var x${i} = ${T}(0.0);`)}
  ${each(W, (i) => `var st${i} = 0i;`)}
  ${s.segments ? "var prev = 0i;" : ""}
`;
}

/** The WGSL expression of the pre-activation at the window's newest position `u`. */
function preactivation(s: ConvSpec): string {
  const W = s.width;
  let code = `    var a = ${s.bias ? "bc" : `${valueType(s)}(0.0)`};\n`;
  for (let k = 0; k < W; k++) {
    const back = W - 1 - k;
    code += back === 0
      ? `    a += w${k} * x${k};\n`
      : `    if (st${W - 1} <= u - ${back}i) { a += w${k} * x${k}; }\n`;
  }
  return code;
}

/**
 * The forward kernel: invocation `i` of `channels × runs` takes one channel (adjacent invocations
 * adjacent channels when channels-last, adjacent runs otherwise) and one run of positions.
 */
export const forwardShader = shaderGenerator("causalConv1d", forwardShaderSource);

function forwardShaderSource(s: ConvSpec): string {
  const split = s.channelsLast
    ? "let c = i % p.channels; let r = i / p.channels;"
    : "let r = i % p.runs; let c = i / p.runs;";
  return /* wgsl */ `
${PARAMS}
${bindings(s, [...inputBindings(s), ["read_write", "out"]])}
${addressing(s)}
${MATH_WGSL}
${GRID_WGSL}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.channels * p.runs) { return; }
  ${split}
  let s0 = i32(r * p.run);
  let s1 = min(s0 + i32(p.run), i32(p.positions));
  let lo = s0 - ${s.width - 1}i;
${windowDecls(s)}
  for (var u = lo; u < s1; u++) {
${windowStep(s)}    if (u >= s0) {
${preactivation(s)}      out[at(c, u32(u))] = ${s.silu ? `a * ${sigmoid(s, "a")}` : "a"};
    }
  }
}`;
}

/**
 * Lanes of a backward workgroup: `ct` channel groups (of one invocation each) × `pt` runs.
 * Channels-last data puts up to 32 groups side by side (one 128-byte read per position for a
 * warp, 512 bytes with vec4s); channels-first puts all lanes on runs of one channel.
 * @param groups channel groups: channels, or channels / 4 with vec4
 */
export function backwardLanes(spec: ConvSpec, groups: number): { ct: number; pt: number } {
  const wg = backwardWorkgroup(spec);
  if (!spec.channelsLast) return { ct: 1, pt: wg };
  let ct = 1;
  while (ct < 32 && ct < groups) ct *= 2;
  return { ct, pt: wg / ct };
}

/**
 * The backward kernel: workgroup (x, y) takes runs `x·pt … x·pt + pt − 1` of channels
 * `y·ct … y·ct + ct − 1`; each invocation writes `dx` over its run and its sums of
 * `dpre(u) · x(u − j)` and `dpre(u)`, which the workgroup's tree adds into one partial row per
 * workgroup: `partial[x, c, k]` for the taps k, then the bias.
 */
export const backwardShader = shaderGenerator("causalConv1d backward", backwardShaderSource);

function backwardShaderSource(spec: ConvSpec, ct: number, pt: number): string {
  const W = spec.width, sums = W + 1;
  const T = valueType(spec), WG = backwardWorkgroup(spec);
  // Only a fused SiLU makes the backward recompute the pre-activation, the one use of the bias.
  const s = { ...spec, bias: spec.bias && spec.silu };
  const dpre = s.silu
    ? `${preactivation(s)}      let sg = ${sigmoid(s, "a")};
      gn = gy[at(c, uu)] * sg * (1.0 + a * (1.0 - sg));`
    : "      gn = gy[at(c, uu)];";
  // The tree's sums, one value (f32 or vec4f) per invocation, written out channel by channel.
  const partialStores = s.vec4
    ? each(4, (j) =>
      `partial[(wid.x * p.channels * 4u + c * 4u + ${j}u) * SUMS + k] = ` +
      `tree[k * ${WG}u + cl][${j}];`, "\n      ")
    : `partial[(wid.x * p.channels + c) * SUMS + k] = tree[k * ${WG}u + cl];`;
  let weightSums = "";
  for (let k = 0; k < W; k++) {
    const back = W - 1 - k;
    weightSums += back === 0
      ? `        d${k} += gn * x${k};\n`
      : `        if (st${W - 1} <= u - ${back}i) { d${k} += gn * x${k}; }\n`;
  }
  let dx = `      var d = w${W - 1} * g0;\n`;
  for (let j = 1; j < W; j++) dx += `      if (st${j} <= v) { d += w${W - 1 - j} * g${j}; }\n`;
  return /* wgsl */ `
${PARAMS}
${
    bindings(s, [
      ...inputBindings(s),
      ["read", "gy"],
      ["read_write", "dx"],
      ["read_write", "partial"],
    ])
  }
${addressing(s)}
${MATH_WGSL}
const CT: u32 = ${ct}u;
const PT: u32 = ${pt}u;
const SUMS: u32 = ${sums}u;
var<workgroup> tree: array<${T}, ${sums * WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cl = lid % CT;
  let pl = lid / CT;
  let c = min(wid.y * CT + cl, p.channels - 1u);
  let live = wid.y * CT + cl < p.channels;
  ${each(W, (k) => `var d${k} = ${T}(0.0);`)}
  var db = ${T}(0.0);
  let r = wid.x * PT + pl;
  let s0 = i32(min(r * p.run, p.positions));
  let s1 = min(s0 + i32(p.run), i32(p.positions));
  let lo = s0 - ${W - 1}i;
${windowDecls(s)}
  ${each(W, (i) => `var g${i} = ${T}(0.0);`)}
  // dpre at u is known once u is loaded; dx at v = u − ${W - 1} needs dpre up to u.
  for (var u = lo; live && u < s1 + ${W - 1}i; u++) {
${windowStep(s)}    ${each(W - 1, (i) => `g${i} = g${i + 1};`)}
    var gn = ${T}(0.0);
    if (u >= s0 && u < i32(p.positions)) {
      let uu = u32(u);
${dpre}
      if (u < s1) {
${weightSums}        db += gn;
      }
    }
    g${W - 1} = gn;
    let v = u - ${W - 1}i;
    if (v >= s0) {
${dx}      dx[at(c, u32(v))] = d;
    }
  }
${each(W, (k) => `  tree[${k}u * ${WG}u + lid] = d${k};`, "\n")}
  tree[${W}u * ${WG}u + lid] = db;
  workgroupBarrier();
  ${
    workgroupReduceWgsl({
      array: (slot) => `tree[k * ${WG}u + ${slot}]`,
      each: "for (var k = 0u; k < SUMS; k++)",
      size: "PT",
      rank: "pl",
      spacing: "CT",
      combine: "sum",
    })
  }
  if (pl == 0u && live) {
    for (var k = 0u; k < SUMS; k++) {
      ${partialStores}
    }
  }
}`;
}

/**
 * The finishing pass: `dweight[c, k]` (and `dbias[c]`) is the sum of the backward's partial rows,
 * one workgroup per output: lane j adds rows j, j + {@link FINISH_WG}, … in order, then a tree
 * adds the lanes.
 */
export const finishShader = shaderGenerator("causalConv1d finish", finishShaderSource);

function finishShaderSource(width: number, bias: boolean): string {
  return /* wgsl */ `
struct P { channels: u32, chunks: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;
${bias ? "@group(0) @binding(3) var<storage, read_write> dbias: array<f32>;" : ""}
const SUMS: u32 = ${width + 1}u;
var<workgroup> lanes: array<f32, ${FINISH_WG}>;
${GRID_WGSL}
@compute @workgroup_size(${FINISH_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = grid_index(wid, p.gx);
  if (i >= p.channels * SUMS) { return; }
  let c = i / SUMS;
  let k = i % SUMS;
  ${bias ? "" : "if (k == SUMS - 1u) { return; }"}
  var s = 0.0;
  for (var r = lid; r < p.chunks; r += ${FINISH_WG}u) { s += partial[r * p.channels * SUMS + i]; }
  ${workgroupReduceWgsl({ array: "lanes", size: FINISH_WG, combine: "sum", value: "s" })}
  if (lid == 0u) {
    if (k < SUMS - 1u) { dweight[c * (SUMS - 1u) + k] = lanes[0]; }${
    bias ? " else { dbias[c] = lanes[0]; }" : ""
  }
  }
}`;
}
