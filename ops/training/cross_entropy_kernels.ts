/**
 * The kernels of the softmax cross-entropy and their launchers, shared by the whole-logits op
 * (`cross_entropy.ts`) and the slab-by-slab item loss (`item_cross_entropy_slabs.ts`).
 *
 * Each kernel takes `row0`, the index of its first logit row among the loss's rows: a slab of
 * rows `[row0, row0 + R)` reads and writes the per-row arrays (targets, losses, log-sum-exps,
 * weights) at those rows and its own `[R, V]` logits from row 0. The whole-logits op passes 0.
 *
 * - Rows: one workgroup per row; each invocation keeps a running (max, Σ exp(x − max)) pair over
 *   its strided columns (an online log-sum-exp, so the row is read once and nothing overflows),
 *   the pairs are merged by a tree in workgroup memory, and the row's loss is
 *   `log Σ exp − x[target]`.
 * - Mean: a deterministic one-workgroup tree over the rows' losses and weights.
 * - Gradient: `(softmax − onehot) · dLoss / count` in one elementwise pass.
 *
 * @module
 */
import { grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";

const WG = 256;

const ROWS = /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32, ignore: i32, use_ignore: u32, row0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> weights: array<f32>;
var<workgroup> red: array<vec2f, ${WG}>;
const LOWEST = -3.4028235e38;
// Merges two (max, Σ exp(x − max)) pairs.
fn merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = grid_index(wid, p.gx);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var acc = vec2f(LOWEST, 0.0);
  for (var c = lid; c < p.cols; c += ${WG}u) {
    let v = logits[base + c];
    if (v > acc.x) {
      acc = vec2f(v, acc.y * exp(acc.x - v) + 1.0);
    } else {
      acc.y += exp(v - acc.x);
    }
  }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: { merge: "merge" }, value: "acc" })}
  if (lid == 0u) {
    let total = red[0];
    let l = total.x + log(total.y);
    let at = p.row0 + row;
    let t = targets[at];
    var loss = bitcast<f32>(0x7fc00000u); // NaN flags a target outside [0, V)
    var weight = 1.0;
    if (p.use_ignore != 0u && t == p.ignore) {
      loss = 0.0;
      weight = 0.0;
    } else if (t >= 0 && u32(t) < p.cols) {
      loss = l - logits[base + u32(t)];
    }
    losses[at] = loss;
    lse[at] = l;
    weights[at] = weight;
  }
}`;

const GRADIENT = /* wgsl */ `
struct P { n: u32, stride: u32, cols: u32, ignore: i32, use_ignore: u32, row0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> dloss: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let row = p.row0 + i / p.cols;
  let t = targets[row];
  var g = exp(logits[i] - lse[row]);
  if (p.use_ignore != 0u && t == p.ignore) {
    g = 0.0;
  } else if (t < 0 || u32(t) >= p.cols) {
    g = bitcast<f32>(0x7fc00000u);
  } else if (u32(t) == i % p.cols) {
    g -= 1.0;
  }
  dlogits[i] = g * dloss[0] / max(stats[1], 1.0);
}`;

// The mean over counted rows: stats = (Σ loss, Σ weight), loss = Σ loss / max(Σ weight, 1).
// One workgroup, a fixed-order tree: deterministic.
const MEAN = /* wgsl */ `
struct P { rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> losses: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
var<workgroup> red: array<vec2f, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = vec2f(0.0, 0.0);
  for (var r = lid; r < p.rows; r += ${WG}u) { acc += vec2f(losses[r], weights[r]); }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "acc" })}
  if (lid == 0u) {
    stats[0] = red[0].x;
    stats[1] = red[0].y;
    loss[0] = red[0].x / max(red[0].y, 1.0);
  }
}`;

/** The per-row results of the loss's rows, `[N]` each, filled slab by slab. */
export interface RowLosses {
  /** Each row's loss (0 for an ignored row, NaN for a target outside [0, V)). */
  readonly losses: Tensor;
  /** Each row's log-sum-exp, kept for the gradient. */
  readonly lse: Tensor;
  /** 1 for a counted row, 0 for an ignored one. */
  readonly weights: Tensor;
}

/** The `(ignore, use_ignore)` words of the kernels' parameter blocks. */
function ignoreWords(ignoreIndex: number | undefined): [number, number] {
  return [ignoreIndex ?? 0, ignoreIndex === undefined ? 0 : 1];
}

/** Empty per-row arrays for `rows` rows of `op`'s loss. */
export function emptyRowLosses(op: string, rows: number): RowLosses {
  return {
    losses: Tensor.empty([rows], "f32", op),
    lse: Tensor.empty([rows], "f32", `${op} log-sum-exp`),
    weights: Tensor.empty([rows], "f32", `${op} weights`),
  };
}

/**
 * Writes the losses, log-sum-exps and weights of rows `[row0, row0 + R)` from their `[R, V]`
 * logits into `out`.
 */
export function launchRowLosses(
  op: string,
  logits: Tensor,
  targets: Tensor,
  row0: number,
  out: RowLosses,
  ignoreIndex: number | undefined,
): void {
  const [rows, cols] = logits.shape;
  const g = grid(rows, 1);
  launch(
    op,
    ROWS,
    packParams([rows, cols, g.groups[0], ...ignoreWords(ignoreIndex), row0]),
    [logits, targets, out.losses, out.lse, out.weights],
    g.groups,
  );
}

/**
 * The mean loss over the counted rows, `[]`, and the sums it is taken from, `[2]`:
 * `(Σ loss, Σ weight)`. Frees `rows.losses` and `rows.weights`; `rows.lse` stays.
 */
export function launchMean(op: string, rows: RowLosses): { loss: Tensor; stats: Tensor } {
  const stats = Tensor.empty([2], "f32", `${op} sums`);
  const loss = Tensor.empty([], "f32", op);
  launch(
    `${op} mean`,
    MEAN,
    packParams([rows.losses.size]),
    [rows.losses, rows.weights, stats, loss],
    [1],
  );
  rows.losses.dispose();
  rows.weights.dispose();
  return { loss, stats };
}

/**
 * The gradient of the mean loss with respect to the `[R, V]` logits of rows
 * `[row0, row0 + R)`: `(softmax − onehot) · dLoss / max(Σ weight, 1)`, 0 on ignored rows.
 */
export function launchLogitGradient(
  op: string,
  logits: Tensor,
  targets: Tensor,
  row0: number,
  lse: Tensor,
  dloss: Tensor,
  stats: Tensor,
  ignoreIndex: number | undefined,
): Tensor {
  const dlogits = Tensor.empty(logits.shape, "f32", `${op} backward`);
  const e = grid(logits.size, WG);
  launch(
    `${op} backward`,
    GRADIENT,
    packParams([logits.size, e.stride, logits.shape[1], ...ignoreWords(ignoreIndex), row0]),
    [logits, targets, lse, dloss, stats, dlogits],
    e.groups,
  );
  return dlogits;
}
