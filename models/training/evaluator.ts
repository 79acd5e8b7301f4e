/**
 * Full-ranking evaluation with RecBole v1.2.0's protocol: every item scored, PAD set to −inf,
 * history not masked, one target per user, Hit/NDCG/MRR/Recall/Precision@K averaged over users and
 * rounded to 4 decimals. Ranks and metric sums stay on the GPU; one readback per evaluation.
 * Scores are taken in parts of users where a batch's would exceed one storage binding.
 * Padded models rank from `[B, L]` windows, packed models from whole (or `varLen: false`:
 * truncated) histories, never masked.
 *
 * ## What an evaluation batch holds
 *
 * A batch runs inside one `tidy` scope, so every tensor of its forward pass stays live until the
 * batch's metrics are summed: the peak is the batch's whole forward, not one layer of it
 * (measured tensor by tensor on a small slice; `memoryStats().byPurpose` splits it). For
 * padded Mamba4Rec (hidden d = 64, inner 2d = 128, state N = 32, Δ rank 4) a batch of B users
 * and windows of L holds, per token, the embedding and its layer norm (2 × 64 floats), the
 * input projection's two halves, the convolution and Δ (4 × 128 floats) and x_proj's Δ, B and C
 * (4 + 2 × 32 floats), and the item ids (1 int): 709 words, 2,836 bytes. The scan keeps only the last position, so the
 * rest ([B, d] rows, [B, items] scores) is small beside it. Each tensor is rounded up to its
 * pool size class (a quarter of a power of two, so up to 25% more).
 *
 * ML-1M, B = 4096 (the default), L = 200: 819,200 tokens.
 * - forward: 819,200 × 2,836 B = 2.32 GB; with size classes (4 × 448 MiB, 2 × 224 MiB,
 *   2 × 112 MiB, 14 MiB, 3.5 MiB) 2,481.5 MiB = 2.60 GB;
 * - scores: 4096 users × 3,417 items × 4 B = 56 MB (one part: under the binding limit);
 * - parameters 290,944 × 4 B = 1.2 MB, Adam's moments 2.3 MB (kept from training).
 *
 * So an evaluation's live peak is ≈ 2.6 GB and scales with B × L; a smaller `batchSize`
 * (`evalBatchSize`) lowers it in proportion (2048 users: ≈ 1.3 GB). The sizes differ from every
 * training tensor's, so none of training's free pooled buffers serve them: without a release of
 * the pool between the phases, validation's ≈ 2.6 GB of buffers would be allocated beside
 * training's free ones, and stay pooled through the next epoch's training (the pool keeps up to
 * its most live bytes plus its slack) — what made epochs from the first validation on hold
 * ≈ 3 GB more than the first. The trainer releases the pool before and after each validation.
 *
 * @module
 */
import type { SequentialDataset } from "../../data/dataset.ts";
import { noGrad } from "../../ops/core/autograd.ts";
import { accumulateInto, zeros } from "../../ops/pointwise/elementwise.ts";
import { sliceRows } from "../../ops/core/unrecorded.ts";
import { matmul } from "../../ops/dense/matmul/mod.ts";
import { runtime } from "../../ops/core/runtime.ts";
import { logitSlabRows } from "../../ops/training/item_cross_entropy_slabs.ts";
import { RANKING_METRICS, rankingMetrics, targetRanks } from "../../ops/training/ranking.ts";
import { Tensor, tidy } from "../../ops/core/tensor.ts";
import type { TrainableModel } from "../model.ts";
import { rankingBatches } from "./layouts.ts";

export { uploadSequences } from "./layouts.ts";

/** The metric families, in the order the GPU kernel sums them (the kernel's own list). */
export const METRIC_NAMES: readonly string[] = RANKING_METRICS;

/** Metric values keyed like RecBole's results, e.g. `"ndcg@10"`. */
export type Metrics = Record<string, number>;

/** Options of {@link evaluateRanking}. */
export interface EvaluationOptions {
  /** Window length L (padded models), or the history kept with `varLen: false` (packed models). */
  readonly maxLength: number;
  /**
   * Users per batch (RecBole's `eval_batch_size`; default `DEFAULT_EVAL_BATCH_SIZE` (4096) for
   * padded models, 2048 for packed ones as SSD4Rec ships).
   */
  readonly batchSize?: number;
  /** Packed models: whole histories (true, the default) or the last `maxLength` items (false). */
  readonly varLen?: boolean;
  /** Packed models: windows of exactly this many tokens, left-padded (`packedBatches`' `padTo`). */
  readonly padTo?: number;
  /** Cut-offs (RecBole's `topk`, [10]). */
  readonly ks?: readonly number[];
  /** Decimal places of the reported values (RecBole's `metric_decimal_place`, 4). */
  readonly decimals?: number;
  /**
   * Most bytes of scores `[users, items]` taken at once (default: the device's storage binding
   * limit); a batch over it is scored in parts of fewer users.
   */
  readonly maxScoreBytes?: number;
}

/** Result of {@link evaluateRanking}. */
export interface EvaluationResult {
  /** Rounded metric values. */
  readonly metrics: Metrics;
  /** Unrounded averages. */
  readonly raw: Metrics;
  /** Number of users evaluated. */
  readonly users: number;
  /** Wall time, in seconds. */
  readonly seconds: number;
}

/**
 * Ranks every validation or test user's target among all items and averages the metrics. A
 * batch whose scores `[users, items]` would exceed the device's storage binding limit is scored
 * in parts of fewer users, with the same ranks.
 */
export async function evaluateRanking(
  model: TrainableModel,
  dataset: SequentialDataset,
  split: "valid" | "test",
  options: EvaluationOptions,
): Promise<EvaluationResult> {
  const start = performance.now();
  const ks = options.ks ?? [10];
  const decimals = options.decimals ?? 4;
  const maxScoreBytes = options.maxScoreBytes ?? runtime().info.maxBindingBytes;
  const batches = rankingBatches(model, dataset, split, {
    maxLength: options.maxLength,
    batchSize: options.batchSize,
    varLen: options.varLen,
    padTo: options.padTo,
  });
  const sums = zeros([ks.length, METRIC_NAMES.length]);
  noGrad(() => {
    for (const batch of batches) {
      try {
        tidy(() => {
          const h = batch.represent();
          const table = model.itemTable;
          // Scores `[users, items]` in parts of users that each fit one storage binding.
          const part = logitSlabRows(batch.size, table.shape[0], maxScoreBytes);
          for (let start = 0; start < batch.size; start += part) {
            const end = Math.min(batch.size, start + part);
            tidy(() => {
              const rows = end - start === batch.size ? h : sliceRows(h, start, end - start);
              const scores = matmul(rows, table, { transB: true });
              const targets = Tensor.from(batch.targets.subarray(start, end), [end - start], "i32");
              accumulateInto(sums, rankingMetrics(targetRanks(scores, targets), ks));
            });
          }
        });
      } finally {
        batch.release();
      }
    }
  });
  const host = await sums.toArray();
  sums.dispose();
  const users = batches.sampleCount;
  const raw: Metrics = {}, metrics: Metrics = {};
  const factor = 10 ** decimals;
  ks.forEach((k, i) => {
    METRIC_NAMES.forEach((m, j) => {
      const v = users > 0 ? host[i * METRIC_NAMES.length + j] / users : 0;
      raw[`${m}@${k}`] = v;
      metrics[`${m}@${k}`] = Math.round(v * factor) / factor;
    });
  });
  return { metrics, raw, users, seconds: (performance.now() - start) / 1000 };
}
