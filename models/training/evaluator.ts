/**
 * Full-ranking evaluation with RecBole v1.2.0's protocol: every item scored, PAD set to −inf,
 * history not masked, one target per user, Hit/NDCG/MRR/Recall/Precision@K averaged over users and
 * rounded to 4 decimals. Ranks and metric sums stay on the GPU; one readback per evaluation.
 * Padded models rank from `[B, L]` windows, packed models from whole (or `varLen: false`:
 * truncated) histories, never masked.
 *
 * @module
 */
import type { SequentialDataset } from "../../data/dataset.ts";
import { noGrad } from "../../ops/core/autograd.ts";
import { accumulateInto, zeros } from "../../ops/pointwise/elementwise.ts";
import { matmul } from "../../ops/dense/matmul/mod.ts";
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

/** Ranks every validation or test user's target among all items and averages the metrics. */
export async function evaluateRanking(
  model: TrainableModel,
  dataset: SequentialDataset,
  split: "valid" | "test",
  options: EvaluationOptions,
): Promise<EvaluationResult> {
  const start = performance.now();
  const ks = options.ks ?? [10];
  const decimals = options.decimals ?? 4;
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
          const scores = matmul(batch.represent(), model.itemTable, { transB: true });
          const ranks = targetRanks(scores, Tensor.from(batch.targets, [batch.size], "i32"));
          accumulateInto(sums, rankingMetrics(ranks, ks));
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
