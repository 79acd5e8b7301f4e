/**
 * The fused (flash-style) form of {@link attention}: `dropout(softmax(scale · Q·Kᵀ + mask)) · V`
 * per batch and head without the `[B, H, L, L]` scores or probabilities in memory. The forward
 * walks the keys in tiles with the online softmax and keeps, besides the output, the row
 * statistics (the row maximum m and the sum l of exp(s − m)) for the backward; the backward
 * recomputes each probability from them, first per query block (dq, and D = rowsum(dO ∘ O)),
 * then per key block (dk and dv). The kernels and the handling of masked and fully masked rows
 * are described in `flash_attention_shaders.ts`.
 *
 * It gives what the unfused form gives to rounding: the same additive −10,000 mask (a row whose
 * keys are all masked takes the softmax of its raw scores), and dropout bit for bit the same
 * mask for the same generator state (the keep test of {@link dropout} on the probability's index
 * in the `[B, H, L, L]` layout, one counter per call). Memory grows with L: the forward saves
 * 8 bytes per row (m and l), the backward adds 4 (D).
 *
 * Deterministic: no atomics; every sum runs in a fixed order.
 *
 * Cost at SASRec's ML-1M training size (B 2048, H 2, L 200, d 32, causal, sequences of 100 to
 * 200 items right-padded, as `bench/attention.ts` runs it). Floor: 4·B·H·L²·d = 21 GFLOP for
 * the forward and 10·B·H·L²·d = 52 GFLOP for the backward over the full L × L square, half of
 * each under the causal mask; in f32 without tensor cores (about 67 TFLOP/s on an H100) that is
 * 0.16 ms forward and 0.39 ms backward, with the bytes (Q, K, V, O, dO in, dQ, dK, dV out:
 * 1.26 GB, 0.38 ms at 3.35 TB/s) of the same order. The kernels compute whole tiles: with the
 * skipped tiles (past the diagonal, outside the unpadded keys) and the warps whose rows all lie
 * past L, they issue about 115 M score slots forward (4d FLOP each), 112 M for the query
 * gradients (6d) and 108 M for the key and value gradients (8d): 14.7 + 21.4 + 27.6 GFLOP, plus
 * per visible probability (76 M) and kernel one exp and one dropout hash (about 25 integer
 * operations). Expected on an H100, with a workgroup-memory vec4 read per 8 to 11 FMAs and 64
 * invocations in 22 to 32 KB of workgroup memory per workgroup (about 40 % of the FMA rate):
 * forward ≈ 0.6 ms and backward ≈ 2.0 ms per call (query gradients ≈ 0.9, key and value
 * gradients ≈ 1.1), within a factor of two either way, against 5.3 and 12.2 ms of the kernels
 * that held one row per invocation.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { launch, packParams } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups } from "../wgsl/grid.ts";
import {
  type AttentionOptions,
  dropoutWords,
  FLASH_ATTENTION_MAX_DIM,
  padTensor,
  shapeText,
} from "./attention_options.ts";
import {
  type FlashKernel,
  flashOwnRows,
  type FlashPlan,
  flashPlan,
} from "./flash_attention_plan.ts";
import { flashShader } from "./flash_attention_shaders.ts";

/** The most probabilities one call may index with dropout: the hash takes a u32 index. */
const MAX_DROPOUT_INDEX = 2 ** 32;

const plans = new Map<string, FlashPlan>();

/** The plan of one kernel for head size `dim` on the current device (made once per pair). */
function planFor(kernel: FlashKernel, dim: number): FlashPlan {
  const maxBytes = runtime().info.maxWorkgroupBytes;
  const key = `${kernel} ${dim} ${maxBytes}`;
  let plan = plans.get(key);
  if (plan === undefined) {
    plan = flashPlan(kernel, dim, maxBytes);
    plans.set(key, plan);
  }
  return plan;
}

/**
 * The fused attention on checked `q`, `k`, `v` of shape `[batch, heads, L, d]` (see
 * {@link attention}, which checks the shapes, mask and scale and calls this for its fused
 * form). Checks the head size, the pad keys and the dropout, and records the backward.
 * @param op the op name for errors and kernels
 * @param q queries `[batch, heads, L, d]`
 * @param k keys, the same shape
 * @param v values, the same shape
 * @param options the mask, pad keys and dropout of {@link attention}
 * @param scale the checked factor applied to Q·Kᵀ
 * @returns the context `[batch, heads, L, d]`
 */
export function fusedAttention(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions,
  scale: number,
): Tensor {
  const [batch, heads, length, dim] = q.shape;
  if (dim > FLASH_ATTENTION_MAX_DIM) {
    throw new RangeError(
      `${op}: the fused form takes a head size d ≤ ${FLASH_ATTENTION_MAX_DIM}, got q ` +
        `${shapeText(q)}; pass fused: false for the unfused form`,
    );
  }
  const pad = options.keyPadding === undefined
    ? null
    : padTensor(op, options.keyPadding, batch, length);
  const [drop, keepScale] = dropoutWords(op, options.dropout);
  if (drop[0] === 1 && batch * heads * length * length > MAX_DROPOUT_INDEX) {
    if (pad?.owned) pad.t.dispose();
    throw new RangeError(
      `${op}: dropout indexes the ${batch * heads * length * length} probabilities of q ` +
        `${shapeText(q)} by a u32, at most 2^32; split the batch`,
    );
  }
  const tiles = Math.ceil(length / flashOwnRows(dim));
  const groups = batch * heads * tiles;
  const [gx, gy] = foldWorkgroups(groups);
  const params = packParams(
    [
      groups,
      tiles,
      gx,
      length,
      heads,
      options.mask === "causal" ? 1 : 0,
      pad ? 1 : 0,
      ...drop,
    ],
    [scale, keepScale],
  );
  const padOrDummy = pad?.t ?? Tensor.empty([1], "i32", op);
  const out = Tensor.empty(q.shape, "f32", op);
  const stats = Tensor.empty([batch, heads, length, 2], "f32", `${op} row statistics`);
  launch(op, flashShader(planFor("forward", dim)), params, [q, k, v, padOrDummy, out, stats], [
    gx,
    gy,
  ]);
  // The backward reads the pad keys again: keep what this call made.
  const saved = [stats, ...(pad?.owned || !pad ? [padOrDummy] : [])];
  return record(out, op, [q, k, v], (dout) => {
    const back = `${op} backward`;
    const dq = Tensor.empty(q.shape, "f32", back);
    const delta = Tensor.empty([batch, heads, length], "f32", `${back} rowsum(dO ∘ O)`);
    launch(
      back,
      flashShader(planFor("query grads", dim)),
      params,
      [q, k, v, padOrDummy, out, dout, stats, dq, delta],
      [gx, gy],
    );
    const dk = Tensor.empty(q.shape, "f32", back);
    const dv = Tensor.empty(q.shape, "f32", back);
    launch(
      back,
      flashShader(planFor("key grads", dim)),
      params,
      [q, k, v, padOrDummy, dout, stats, delta, dk, dv],
      [gx, gy],
    );
    delta.dispose();
    return [dq, dk, dv];
  }, saved);
}
