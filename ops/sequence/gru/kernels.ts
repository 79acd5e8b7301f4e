/**
 * The GRU recurrence kernels: given the input projection gi = W_ih·x + b_ih of every step, one
 * workgroup per batch row loops over time inside the kernel.
 *
 * - Forward: the workgroup keeps h_{t−1} in workgroup memory (two buffers, one barrier per
 *   step); invocation j owns hidden unit j (and j + WG, … for wide layers), forms the three dot
 *   products W_h·h_{t−1} for its unit from W_hhᵀ (transposed once per call, so the reads of a
 *   step are contiguous across the workgroup), applies the gates and writes h_t. It can save
 *   r, z, n and W_hn·h_{t−1} + b_hn of every step for the backward.
 * - Backward: walking time backwards with ∂L/∂h_t of its unit in registers, invocation j writes
 *   the gradients of the gate pre-activations, once with respect to gi and once with respect to
 *   gh = W_hh·h_{t−1} + b_hh (they differ in the n gate), and h_{t−1}; the carried gradient
 *   ∂L/∂h_{t−1} = z ⊙ ∂L/∂h_t + W_hhᵀ·∂L/∂gh is a column product of W_hh against ∂L/∂gh shared in
 *   workgroup memory (two buffers, one barrier per step).
 *
 * @module
 */
import { launch, packParams } from "../../core/launch.ts";
import { Tensor } from "../../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL } from "../../wgsl/grid.ts";
import { MATH_WGSL } from "../../wgsl/math.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/** Name of the op in errors, kernels and the tape. */
export const OP = "gru";

/**
 * Largest hidden size: the backward keeps two buffers of 3H gate gradients in workgroup memory,
 * 24·H bytes, 12 KiB at H = 512, within WebGPU's default limit of 16 KiB per workgroup.
 */
export const GRU_MAX_HIDDEN = 512;

/** Most invocations of a recurrence workgroup. */
const MAX_THREADS = 256;

/** Gate values saved per (row, step, unit): r, z, n and W_hn·h_{t−1} + b_hn. */
const SAVED_GATES = 4;

/** Sizes and switches of one recurrence call. */
export interface RecurrenceSpec {
  /** Batch rows. */
  batch: number;
  /** Steps. */
  length: number;
  /** Hidden size H. */
  hidden: number;
  /** Whether b_hh is given. */
  bias: boolean;
  /** Whether h_0 is given. */
  h0: boolean;
}

/** Invocations of a recurrence workgroup and hidden units per invocation. */
function threadsFor(hidden: number): { threads: number; units: number } {
  const threads = Math.min(MAX_THREADS, Math.ceil(hidden / 32) * 32);
  return { threads, units: Math.ceil(hidden / threads) };
}

function bindings(list: [string, string][]): string {
  return list.map(([access, name], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<f32>;`
  ).join("\n");
}

/** Parameter block, constants, the loop over an invocation's units and the shared math. */
function prelude(s: RecurrenceSpec): string {
  const { threads, units } = threadsFor(s.hidden);
  return /* wgsl */ `
struct P { batch: u32, length: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
const H: u32 = ${s.hidden}u;
const WG: u32 = ${threads}u;
const UNITS: u32 = ${units}u;
// tanh of an argument clamped where f32 tanh is already ±1 (some GPUs overflow beyond).
fn tanh_(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }
// h_0[b, j] of the row, or zero without h_0.
fn initial(b: u32, j: u32) -> f32 { return ${s.h0 ? "h0[b * H + j]" : "0.0"}; }
${MATH_WGSL}
${GRID_WGSL}`;
}

const forwardShader = shaderGenerator("gru", forwardShaderSource);

function forwardShaderSource(s: RecurrenceSpec, save: boolean): string {
  const list: [string, string][] = [["read", "gi"], ["read", "wt"]];
  if (s.bias) list.push(["read", "bhh"]);
  if (s.h0) list.push(["read", "h0"]);
  list.push(["read_write", "out"]);
  if (save) list.push(["read_write", "gates"]);
  const bias = (gate: number) => (s.bias ? `bhh[${gate}u * H + j]` : "0.0");
  return /* wgsl */ `
${bindings(list)}
${prelude(s)}
var<workgroup> hs: array<f32, ${2 * s.hidden}>;
@compute @workgroup_size(${threadsFor(s.hidden).threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = grid_index(wid, p.gx);
  if (b >= p.batch) { return; }
  for (var u = 0u; u < UNITS; u++) {
    let j = lid + u * WG;
    if (j < H) { hs[j] = initial(b, j); }
  }
  workgroupBarrier();
  for (var t = 0u; t < p.length; t++) {
    let cur = (t % 2u) * H;
    let nxt = H - cur;
    let row = b * p.length + t;
    for (var u = 0u; u < UNITS; u++) {
      let j = lid + u * WG;
      if (j < H) {
        var ar = ${bias(0)};
        var az = ${bias(1)};
        var an = ${bias(2)};
        for (var k = 0u; k < H; k++) {
          let hk = hs[cur + k];
          let w = k * 3u * H + j;
          ar += wt[w] * hk;
          az += wt[w + H] * hk;
          an += wt[w + 2u * H] * hk;
        }
        let g = row * 3u * H + j;
        let r = sigmoid_(gi[g] + ar);
        let z = sigmoid_(gi[g + H] + az);
        let n = tanh_(gi[g + 2u * H] + r * an);
        let h = (1.0 - z) * n + z * hs[cur + j];
        hs[nxt + j] = h;
        out[row * H + j] = h;
        ${
    save
      ? `let sv = row * ${SAVED_GATES}u * H + j;
        gates[sv] = r;
        gates[sv + H] = z;
        gates[sv + 2u * H] = n;
        gates[sv + 3u * H] = an;`
      : ""
  }
      }
    }
    workgroupBarrier();
  }
}`;
}

const backwardShader = shaderGenerator("gru backward", backwardShaderSource);

function backwardShaderSource(s: RecurrenceSpec, dh0: boolean): string {
  const list: [string, string][] = [["read", "gy"], ["read", "out"], ["read", "gates"], [
    "read",
    "whh",
  ]];
  if (s.h0) list.push(["read", "h0"]);
  list.push(["read_write", "dgi"], ["read_write", "dgh"], ["read_write", "hprev"]);
  if (dh0) list.push(["read_write", "dh0"]);
  const { units } = threadsFor(s.hidden);
  return /* wgsl */ `
${bindings(list)}
${prelude(s)}
var<workgroup> dg: array<f32, ${6 * s.hidden}>;
@compute @workgroup_size(${threadsFor(s.hidden).threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = grid_index(wid, p.gx);
  if (b >= p.batch) { return; }
  // ∂L/∂h_t of this invocation's units, carried backwards through time.
  var carry: array<f32, ${units}>;
  for (var u = 0u; u < UNITS; u++) { carry[u] = 0.0; }
  for (var s = 0u; s < p.length; s++) {
    let t = p.length - 1u - s;
    let buf = (s % 2u) * 3u * H;
    let row = b * p.length + t;
    for (var u = 0u; u < UNITS; u++) {
      let j = lid + u * WG;
      if (j < H) {
        let d = gy[row * H + j] + carry[u];
        let sv = row * ${SAVED_GATES}u * H + j;
        let r = gates[sv];
        let z = gates[sv + H];
        let n = gates[sv + 2u * H];
        let hn = gates[sv + 3u * H];
        var hp = initial(b, j);
        if (t > 0u) { hp = out[(row - 1u) * H + j]; }
        hprev[row * H + j] = hp;
        let an = d * (1.0 - z) * (1.0 - n * n);
        let ar = an * hn * r * (1.0 - r);
        let az = d * (hp - n) * z * (1.0 - z);
        let g = row * 3u * H + j;
        dgi[g] = ar;
        dgi[g + H] = az;
        dgi[g + 2u * H] = an;
        dgh[g] = ar;
        dgh[g + H] = az;
        dgh[g + 2u * H] = an * r;
        dg[buf + j] = ar;
        dg[buf + H + j] = az;
        dg[buf + 2u * H + j] = an * r;
        carry[u] = d * z;
      }
    }
    workgroupBarrier();
    for (var u = 0u; u < UNITS; u++) {
      let k = lid + u * WG;
      if (k < H) {
        var acc = carry[u];
        for (var i = 0u; i < 3u * H; i++) { acc += whh[i * H + k] * dg[buf + i]; }
        carry[u] = acc;
      }
    }
  }
  ${
    dh0
      ? `for (var u = 0u; u < UNITS; u++) {
    let j = lid + u * WG;
    if (j < H) { dh0[b * H + j] = carry[u]; }
  }`
      : ""
  }
}`;
}

const TRANSPOSE_WG = 64;

const TRANSPOSE = /* wgsl */ `
struct P { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> at: array<f32>;
@compute @workgroup_size(${TRANSPOSE_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.rows * p.cols) { return; }
  let c = i / p.rows;
  let r = i % p.rows;
  at[i] = a[r * p.cols + c];
}`;

/** The forward recurrence's results: every h_t, and the gates for the backward when saved. */
export interface RecurrenceForward {
  /** h_t, (batch, length, H). */
  out: Tensor;
  /** r, z, n and W_hn·h_{t−1} + b_hn per (row, step), (batch, length, 4, H); when saved. */
  gates?: Tensor;
}

/**
 * Runs the recurrence over every step.
 * @param gi the input projection W_ih·x + b_ih, (batch, length, 3H)
 * @param whh weight_hh, (3H, H)
 * @param bhh bias_hh, (3H), when `s.bias`
 * @param h0 the initial state, (batch, H), when `s.h0`
 * @param save whether to save the gates for {@link recurrenceBackward}
 */
export function recurrenceForward(
  s: RecurrenceSpec,
  gi: Tensor,
  whh: Tensor,
  bhh: Tensor | undefined,
  h0: Tensor | undefined,
  save: boolean,
): RecurrenceForward {
  const H = s.hidden;
  const wt = Tensor.empty([H, 3 * H], "f32", `${OP} transpose`);
  launch(
    `${OP} transpose`,
    TRANSPOSE,
    packParams([3 * H, H]),
    [whh, wt],
    [Math.ceil((3 * H * H) / TRANSPOSE_WG)],
  );
  const out = Tensor.empty([s.batch, s.length, H], "f32", OP);
  const gates = save ? Tensor.empty([s.batch, s.length, SAVED_GATES, H], "f32", OP) : undefined;
  const [gx, gy] = foldWorkgroups(s.batch);
  const tensors = [gi, wt, ...(bhh ? [bhh] : []), ...(h0 ? [h0] : []), out];
  launch(
    OP,
    forwardShader(s, save),
    packParams([s.batch, s.length, gx]),
    gates ? [...tensors, gates] : tensors,
    [gx, gy],
  );
  wt.dispose();
  return { out, gates };
}

/** The backward recurrence's results. */
export interface RecurrenceBackward {
  /** ∂L/∂gi, (batch·length, 3H). */
  dgi: Tensor;
  /** ∂L/∂(W_hh·h_{t−1} + b_hh), (batch·length, 3H). */
  dgh: Tensor;
  /** h_{t−1} of every step, (batch·length, H): ∂L/∂W_hh = dghᵀ·hprev. */
  hprev: Tensor;
  /** ∂L/∂h_0, (batch, H), when asked for. */
  dh0?: Tensor;
}

/**
 * Backpropagates through time from ∂L/∂out.
 * @param gy ∂L/∂out, (batch, length, H)
 * @param fwd the forward's output and saved gates
 * @param whh weight_hh, (3H, H)
 * @param h0 the initial state, when `s.h0`
 * @param wantDh0 whether to return ∂L/∂h_0
 */
export function recurrenceBackward(
  s: RecurrenceSpec,
  gy: Tensor,
  fwd: Required<RecurrenceForward>,
  whh: Tensor,
  h0: Tensor | undefined,
  wantDh0: boolean,
): RecurrenceBackward {
  const name = `${OP} backward`;
  const rows = s.batch * s.length;
  const dgi = Tensor.empty([s.batch, s.length, 3 * s.hidden], "f32", name);
  const dgh = Tensor.empty([rows, 3 * s.hidden], "f32", name);
  const hprev = Tensor.empty([rows, s.hidden], "f32", name);
  const dh0 = wantDh0 ? Tensor.empty([s.batch, s.hidden], "f32", name) : undefined;
  const [gx, gyGroups] = foldWorkgroups(s.batch);
  launch(
    name,
    backwardShader(s, wantDh0),
    packParams([s.batch, s.length, gx]),
    [
      gy,
      fwd.out,
      fwd.gates,
      whh,
      ...(h0 ? [h0] : []),
      dgi,
      dgh,
      hprev,
      ...(dh0 ? [dh0] : []),
    ],
    [gx, gyGroups],
  );
  return { dgi, dgh, hprev, dh0 };
}
