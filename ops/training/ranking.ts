/**
 * Full-ranking evaluation on the GPU, as RecBole's full-sort protocol for one target per row:
 * the rank of each target among all items, and batch sums of Hit, NDCG, MRR, Recall and
 * Precision at several cut-offs. Only the `[ks.length, 5]` sums ever need to be read back (once
 * per evaluation, after adding every batch's sums on the GPU), never the `[B, V]` scores.
 *
 * Ties: the rank is optimistic, `1 + #{j : score_j > score_target}`. RecBole ranks with
 * `torch.topk`, whose order among equal scores is unspecified; with continuous scores ties do
 * not occur in practice apart from the PAD column, which is scored −∞.
 *
 * Performance floor (H200, ~4.3 TB/s): the ranks read the B × V scores once: B = 4096,
 * V = 20,000 is 328 MB → ~76 µs. The metrics read B ranks per cut-off (negligible).
 *
 * @module
 */
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";

const WG = 256;
/** The most cut-offs {@link rankingMetrics} takes in one call. */
export const MAX_CUTOFFS = 32;

/** Column names of {@link rankingMetrics}' result, in order (RecBole's metric names). */
export const RANKING_METRICS: readonly string[] = Object.freeze([
  "hit",
  "ndcg",
  "mrr",
  "recall",
  "precision",
]);

/** Options of {@link targetRanks}. */
export interface TargetRankOptions {
  /**
   * Score column 0 (`[PAD]`) as −∞, as RecBole's full-sort evaluation does (default true):
   * it never ranks above a target.
   */
  excludeColumn0?: boolean;
}

const RANKS = /* wgsl */ `
struct P { rows: u32, cols: u32, gx: u32, first: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> ranks: array<i32>;
var<workgroup> red: array<u32, ${WG}>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = grid_index(wid, p.gx);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let t = targets[row];
  let valid = t >= 0 && u32(t) < p.cols;
  let col = u32(select(0, t, valid));
  let s = scores[base + col];
  // The target is PAD and PAD is excluded: its score is −∞, so every item that is not −∞ (or
  // NaN) ranks above it. Comparing with the lowest finite f32 avoids an infinity literal.
  let pad_target = col < p.first;
  var above = 0u;
  for (var j = p.first + lid; j < p.cols; j += ${WG}u) {
    let v = scores[base + j];
    above += select(u32(v > s), u32(v >= -3.4028235e38), pad_target);
  }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "above" })}
  if (lid == 0u) {
    // A NaN target score or an invalid target gives rank 0, which the metrics turn into NaN.
    let nan = (bitcast<u32>(s) & 0x7fffffffu) > 0x7f800000u;
    ranks[row] = select(0, i32(red[0] + 1u), valid && !nan);
  }
}`;

/**
 * The rank of each row's target among all items, optimistic on ties:
 * `1 + #{j : score_j > score_target}`, with column 0 (PAD) scored −∞ by default. A target
 * outside [0, V) or with a NaN score gets rank 0, which {@link rankingMetrics} reports as NaN.
 * @param scores `[B, V]` scores of every item
 * @param targets i32 `[B]` target item ids
 * @param options `excludeColumn0` (default true)
 * @returns i32 `[B]` ranks, 1 = best
 */
export function targetRanks(
  scores: Tensor,
  targets: Tensor,
  options: TargetRankOptions = {},
): Tensor {
  const op = "targetRanks";
  assertDType(op, scores, "f32");
  assertDType(op, targets, "i32");
  if (scores.shape.length !== 2 || scores.shape[1] === 0) {
    throw new RangeError(`${op}: scores must be [B, V] with V ≥ 1, got ${scores.describe()}`);
  }
  const [rows, cols] = scores.shape;
  if (targets.shape.length !== 1 || targets.shape[0] !== rows) {
    throw new RangeError(
      `${op}: targets have shape [${targets.shape.join(", ")}] but scores are ` +
        `[${rows}, ${cols}]; expected [${rows}]`,
    );
  }
  const first = options.excludeColumn0 ?? true ? 1 : 0;
  const ranks = Tensor.empty([rows], "i32", op);
  const g = grid(rows, 1);
  launch(
    op,
    RANKS,
    packParams([rows, cols, g.groups[0], first]),
    [scores, targets, ranks],
    g.groups,
  );
  return ranks;
}

const METRICS = /* wgsl */ `
struct P { rows: u32, cutoffs: u32, _pad0: u32, _pad1: u32, ks: array<vec4u, ${MAX_CUTOFFS / 4}> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ranks: array<i32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
var<workgroup> red: array<vec4f, ${WG}>;
// Workgroup c sums (hit, ndcg, mrr) at cut-off ks[c] over the batch.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let k = p.ks[c / 4u][c % 4u];
  var acc = vec4f(0.0);
  for (var b = lid; b < p.rows; b += ${WG}u) {
    let r = ranks[b];
    if (r <= 0) {
      acc += vec4f(bitcast<f32>(0x7fc00000u));
    } else if (u32(r) <= k) {
      let rf = f32(r);
      acc += vec4f(1.0, 1.0 / log2(rf + 1.0), 1.0 / rf, 0.0);
    }
  }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "acc" })}
  if (lid == 0u) {
    let s = red[0];
    let o = c * 5u;
    sums[o] = s.x;
    sums[o + 1u] = s.y;
    sums[o + 2u] = s.z;
    sums[o + 3u] = s.x; // Recall@K: one target per row, so hits / 1
    sums[o + 4u] = s.x / f32(k); // Precision@K: hits / K
  }
}`;

/**
 * Batch sums of the full-ranking metrics for one target per row (RecBole's definitions): per
 * cut-off K, the sums over rows of Hit@K = [r ≤ K], NDCG@K = [r ≤ K] / log2(r + 1),
 * MRR@K = [r ≤ K] / r, Recall@K = Hit@K and Precision@K = Hit@K / K. Sums, not means, so the
 * batches of an evaluation can be added on the GPU and divided by the row count once at the end.
 * A rank ≤ 0 (invalid target or NaN score, see {@link targetRanks}) makes its sums NaN.
 * @param ranks i32 `[B]` ranks from {@link targetRanks}
 * @param ks cut-offs, positive integers (at most {@link MAX_CUTOFFS})
 * @returns f32 `[ks.length, 5]`, columns as {@link RANKING_METRICS}
 */
export function rankingMetrics(ranks: Tensor, ks: readonly number[]): Tensor {
  const op = "rankingMetrics";
  assertDType(op, ranks, "i32");
  if (ranks.shape.length !== 1) {
    throw new RangeError(`${op}: ranks must be [B], got ${ranks.describe()}`);
  }
  if (ks.length === 0 || ks.length > MAX_CUTOFFS) {
    throw new RangeError(`${op}: needs 1 to ${MAX_CUTOFFS} cut-offs, got ${ks.length}`);
  }
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1 || k > 0x7fffffff) {
      throw new RangeError(`${op}: cut-off ${k} is not a positive integer (ks [${ks.join(", ")}])`);
    }
  }
  const cutoffs = new Array<number>(MAX_CUTOFFS).fill(0);
  ks.forEach((k, i) => (cutoffs[i] = k));
  const sums = Tensor.empty([ks.length, RANKING_METRICS.length], "f32", op);
  launch(op, METRICS, packParams([ranks.size, ks.length, 0, 0, ...cutoffs]), [ranks, sums], [
    ks.length,
  ]);
  return sums;
}
