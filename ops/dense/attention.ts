/**
 * Multi-head scaled dot-product attention as RecBole's `MultiHeadAttention` computes it between
 * its Q/K/V projections and its output projection (SASRec, BERT4Rec):
 * `softmax(scale · Q·Kᵀ + mask) · V` per head, with an additive mask of −10,000 on masked
 * entries (RecBole's `get_attention_mask`, not −∞) and dropout on the probabilities.
 *
 * Two forms give the same results to rounding. The fused form (`flash_attention.ts`, the
 * default only where the unfused probabilities would not fit in one storage binding and the head
 * size is at most {@link FLASH_ATTENTION_MAX_DIM}) computes each block
 * of scores, its softmax and its product with V in workgroup memory, and keeps only the output
 * and per-row statistics for the backward, which recomputes the probabilities: memory grows
 * with L. The unfused form (`fused: false`, this module) writes the probabilities: the scores
 * `Q·Kᵀ` come from the batched {@link matmul}; one row kernel applies the scale and mask, takes
 * the softmax over keys and applies dropout (the keyed hash of {@link dropout}, recomputed in
 * the backward instead of stored); a second {@link matmul} multiplies by V. The gradients of q,
 * k and v follow from the tape: the row kernel's backward is `dS = scale · P ⊙ (dP − Σ_j dP ⊙ P)`
 * with `dP` the incoming gradient passed through the same dropout mask. Both forms drop bit for
 * bit what {@link dropout} applied to the probabilities with the same counter would. The scores
 * are freed as soon as the row kernel has read them (no backward reads them); for the backward
 * the unfused form keeps the `[B, H, L, L]` probabilities after dropout (the left operand of the
 * product with V) and, with dropout, those before it: 4·B·H·L² bytes each, e.g. 2048 × 2 × 200²
 * is 655 MB per tensor, and the backward makes two more of that size (the gradients of the
 * probabilities and of the scores).
 *
 * Masked entries: with one unmasked key or more in a row, the masked ones get exp(s − 10,000 −
 * max) = 0 in f32, as in RecBole. A row whose keys are all masked (every row of a sequence of
 * pads only; with the causal mask also any row whose sequence starts with a pad) gets, as in
 * RecBole, the softmax of its raw scores: the −10,000 shifts every entry equally. The row
 * kernel keeps the mask term apart from the scores when taking the row's maximum, so that row is the
 * softmax of the raw scores without rounding `s − 10,000` to f32 (an error of up to 2⁻¹¹ in
 * every score of the row).
 *
 * Deterministic: the unfused form reduces every row by a fixed-order tree in workgroup memory,
 * the fused form sums in a fixed order; neither uses atomics.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { grid, launch, packParams } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { matmul } from "./matmul/mod.ts";
import { ATTENTION_MASKED_SCORE } from "./attention_reference.ts";
import {
  ATTENTION_DROP_FACTOR_WGSL,
  ATTENTION_DROPOUT_FIELDS_WGSL,
  type AttentionOptions,
  attentionScale,
  checkAttentionShapes,
  dropoutWords,
  FLASH_ATTENTION_MAX_DIM,
  padTensor,
  queryPositionsTensor,
} from "./attention_options.ts";
import { fusedAttention } from "./flash_attention.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

export type { AttentionDropout, AttentionOptions } from "./attention_options.ts";

const WG = 256;
/** The most invocations sharing one row of scores. */
const MAX_TEAM = 64;
/** Scores per invocation kept in registers; bounds the sequence length. */
const MAX_K = 32;

/** The longest sequence {@link attention} accepts: 2,048 keys per row. */
export const ATTENTION_MAX_LENGTH: number = MAX_TEAM * MAX_K;

/** How a workgroup's invocations share rows of L scores. */
interface Layout {
  /** Invocations per row (a power of two). */
  t: number;
  /** Rows per workgroup. */
  teams: number;
  /** Scores per invocation. */
  k: number;
}

function layoutFor(length: number): Layout {
  const t = Math.min(MAX_TEAM, 2 ** Math.ceil(Math.log2(length)));
  return { t, teams: WG / t, k: Math.ceil(length / t) };
}

/** WGSL shared by both kernels: the layout, the parameters and the dropout keep test. */
function prelude({ t, k }: Layout): string {
  return /* wgsl */ `
const T = ${t}u;
const K = ${k}u;
struct P {
  rows: u32, cols: u32, gx: u32, per_batch: u32, queries: u32, causal: u32, has_pad: u32,
  has_qpos: u32,
  ${ATTENTION_DROPOUT_FIELDS_WGSL}
  scale: f32, keep_scale: f32, masked: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> qpos: array<i32>;
${ATTENTION_DROP_FACTOR_WGSL}
${GRID_WGSL}
// Of score row \`row\` (row < p.rows): its query's position among the keys (its index i, or the
// given position), and the index of its first entry in the full [B, H, L, L] probabilities.
fn query_of(row: u32) -> vec2u {
  let i = row % p.queries;
  var pos = i;
  if (p.has_qpos != 0u) {
    pos = u32(clamp(qpos[row / p.per_batch * p.queries + i], 0, i32(p.cols) - 1));
  }
  return vec2u(pos, ((row / p.queries) * p.cols + pos) * p.cols);
}`;
}

function forwardShader(layout: Layout, saveProbs: boolean): string {
  return /* wgsl */ `
${prelude(layout)}
@group(0) @binding(2) var<storage, read> scores: array<f32>;
@group(0) @binding(3) var<storage, read> pad: array<i32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${saveProbs ? "@group(0) @binding(5) var<storage, read_write> probs: array<f32>;" : ""}
var<workgroup> red: array<vec3f, ${WG}>;
var<workgroup> sums: array<f32, ${WG}>;
const LOWEST = -3.4028235e38;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = grid_index(wid, p.gx) * ${layout.teams}u + lid / T;
  let live = row < p.rows;
  let base = row * p.cols;
  let at = query_of(min(row, p.rows - 1u));
  let query = at.x;
  let batch = row / p.per_batch;
  // Scaled scores and mask flags; (any unmasked, max unmasked, max of all) of this invocation.
  var s: array<f32, K>;
  var masked: array<bool, K>;
  var m = vec3f(0.0, LOWEST, LOWEST);
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.cols) {
      s[k] = scores[base + c] * p.scale;
      masked[k] = (p.causal != 0u && c > query) || (p.has_pad != 0u && pad[batch * p.cols + c] != 0);
      if (masked[k]) { m.z = max(m.z, s[k]); } else { m = vec3f(1.0, max(m.y, s[k]), max(m.z, s[k])); }
    }
  }
  ${workgroupReduceWgsl({ array: "red", size: "T", rank: "lane", combine: "max", value: "m" })}
  let total = red[lid - lane];
  // With an unmasked key the row's maximum is among the unmasked scores and masked entries carry
  // the additive mask; with none, every entry carries it and it cancels.
  let open = total.x > 0.0;
  let mx = select(total.z, total.y, open);
  let penalty = select(0.0, p.masked, open);
  var e: array<f32, K>;
  var sum = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.cols) {
      e[k] = exp((s[k] - mx) + select(0.0, penalty, masked[k]));
      sum += e[k];
    }
  }
  ${workgroupReduceWgsl({ array: "sums", size: "T", rank: "lane", combine: "sum", value: "sum" })}
  let inv = 1.0 / sums[lid - lane];
  if (!live) { return; }
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.cols) {
      let prob = e[k] * inv;
      y[base + c] = prob * drop_factor(at.y + c);
      ${saveProbs ? "probs[base + c] = prob;" : ""}
    }
  }
}`;
}

function backwardShader(layout: Layout): string {
  return /* wgsl */ `
${prelude(layout)}
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> dscores: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
// dS = scale · P ⊙ (dP − Σ dP ⊙ P) with dP = dy through the forward's dropout mask.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = grid_index(wid, p.gx) * ${layout.teams}u + lid / T;
  let live = row < p.rows;
  let base = row * p.cols;
  let first = query_of(min(row, p.rows - 1u)).y;
  var dp: array<f32, K>;
  var pr: array<f32, K>;
  var t = 0.0;
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (live && c < p.cols) {
      dp[k] = dy[base + c] * drop_factor(first + c);
      pr[k] = probs[base + c];
      t += dp[k] * pr[k];
    }
  }
  ${workgroupReduceWgsl({ array: "red", size: "T", rank: "lane", combine: "sum", value: "t" })}
  let pdp = red[lid - lane];
  if (!live) { return; }
  for (var k = 0u; k < K; k++) {
    let c = lane + k * T;
    if (c < p.cols) { dscores[base + c] = p.scale * pr[k] * (dp[k] - pdp); }
  }
}`;
}

/** The kernel of `kind` for a layout, generated once. */
const shaderFor = shaderGenerator(
  "attention",
  (kind: "forward" | "forward saving" | "backward", layout: Layout) =>
    kind === "backward" ? backwardShader(layout) : forwardShader(layout, kind === "forward saving"),
  (kind, layout) => `${kind} ${layout.t} ${layout.k}`,
);

/**
 * The masked, scaled row softmax of the scores with dropout, recorded on the tape for `scores`.
 */
function attentionProbabilities(
  op: string,
  scores: Tensor,
  heads: number,
  pad: Tensor | null,
  qpos: { t: Tensor; owned: boolean } | null,
  options: AttentionOptions,
  scale: number,
): Tensor {
  const [, , queries, length] = scores.shape;
  const rows = scores.size / length;
  const layout = layoutFor(length);
  const [drop, keepScale] = dropoutWords(op, options.dropout);
  const g = grid(Math.ceil(rows / layout.teams), 1);
  const params = packParams(
    [
      rows,
      length,
      g.groups[0],
      heads * queries,
      queries,
      options.mask === "causal" ? 1 : 0,
      pad ? 1 : 0,
      qpos ? 1 : 0,
      ...drop,
    ],
    [scale, keepScale, ATTENTION_MASKED_SCORE],
  );
  const y = Tensor.empty(scores.shape, "f32", op);
  // With dropout the backward needs the probabilities before it; without, they are y itself.
  const saveProbs = drop[0] === 1 && scores.requiresGrad;
  const probs = saveProbs ? Tensor.empty(scores.shape, "f32", `${op} probabilities`) : null;
  const padOrDummy = pad ?? Tensor.empty([1], "i32", op);
  // The backward reads the query positions too; one made here is freed with the tape's node.
  const qposOrDummy = qpos?.t ?? Tensor.empty([1], "i32", op);
  const ownsQpos = qpos === null || qpos.owned;
  launch(
    op,
    shaderFor(saveProbs ? "forward saving" : "forward", layout),
    params,
    probs ? [qposOrDummy, scores, padOrDummy, y, probs] : [qposOrDummy, scores, padOrDummy, y],
    g.groups,
  );
  if (!pad) padOrDummy.dispose();
  return record(y, op, [scores], (dy) => {
    const dscores = Tensor.empty(scores.shape, "f32", `${op} backward`);
    launch(
      `${op} backward`,
      shaderFor("backward", layout),
      params,
      [qposOrDummy, dy, probs ?? y, dscores],
      g.groups,
    );
    return [dscores];
  }, [...(probs ? [probs] : []), ...(ownsQpos ? [qposOrDummy] : [])]);
}

/**
 * Whether {@link attention} takes the fused form when `options.fused` is unset: only where the
 * unfused form cannot run, its `[B, H, L, L]` probabilities (`entries` floats) being larger than
 * one storage binding of this device, and the head size `dim` allows it. The unfused form is the
 * faster one: at batch 2,048, 2 heads, L 200, d 32 on an H100 its forward and backward take
 * 7.1 ms against the fused kernels' 26.1 ms (`deno task bench --only attention`), for 3.6 GB of
 * memory at its peak against 0.95 GB.
 */
export function fusedByDefault(entries: number, dim: number): boolean {
  return dim <= FLASH_ATTENTION_MAX_DIM && entries * 4 > runtime().info.maxBindingBytes;
}

/**
 * Multi-head scaled dot-product attention, RecBole's `MultiHeadAttention` between its input
 * projections and its output projection: per batch and head,
 * `dropout(softmax(scale · Q·Kᵀ + mask)) · V`, with the additive mask −10,000 on entries a
 * query may not attend (later keys with `mask: "causal"`, pad keys with `keyPadding`). A row
 * whose keys are all masked gets the softmax of its raw scores, as in RecBole. Recorded on the
 * tape: gradients for q, k and v.
 *
 * Layout: the caller passes its `[B, L, H·d]` projections through {@link splitHeads}, giving
 * `[B, H, L, d]`; the result is `[B, H, L, d]`, and {@link mergeHeads} makes it `[B, L, H·d]`
 * (the heads concatenated) for the output projection. With `options.queryPositions`, q holds
 * Lq ≤ L queries per sequence (`[B, H, Lq, d]`, e.g. each sequence's last item alone) and the
 * result is `[B, H, Lq, d]`: those rows of the attention over every position.
 *
 * Form: unfused by default, fused where the unfused probabilities would not fit in one storage
 * binding and d ≤ {@link FLASH_ATTENTION_MAX_DIM}; `options.fused` picks one (`true` with a
 * larger d, or with query positions, throws). The two agree to rounding and draw the same
 * dropout mask from the same generator state.
 * @param q queries `[batch, heads, L, d]` (`[batch, heads, Lq, d]` with query positions)
 * @param k keys `[batch, heads, L, d]`
 * @param v values, the shape of k
 * @param options the mask, pad keys, scale, dropout, query positions and form
 * @returns the context, the shape of q
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor {
  const op = "attention";
  const positions = options.queryPositions;
  const selected = positions !== undefined;
  const [batch, heads, queries, length, dim] = checkAttentionShapes(
    op,
    q,
    k,
    v,
    ATTENTION_MAX_LENGTH,
    selected,
  );
  const scale = attentionScale(op, options, dim);
  if (selected && options.fused === true) {
    throw new RangeError(
      `${op}: the fused form computes every query; with queryPositions pass fused: false (or ` +
        `leave it unset)`,
    );
  }
  if (!selected && (options.fused ?? fusedByDefault(batch * heads * length * length, dim))) {
    return fusedAttention(op, q, k, v, options, scale);
  }
  const pad = options.keyPadding === undefined
    ? null
    : padTensor(op, options.keyPadding, batch, length);
  const qpos = selected ? queryPositionsTensor(op, positions, batch, queries, length) : null;
  const scores = matmul(q, k, { transB: true });
  const probs = attentionProbabilities(op, scores, heads, pad?.t ?? null, qpos, options, scale);
  if (pad?.owned) pad.t.dispose();
  // Neither backward reads the scores: the tape keeps only their node.
  scores.dispose();
  const out = matmul(probs, v);
  if (!out.requiresGrad) probs.dispose();
  return out;
}
