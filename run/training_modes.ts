/**
 * Mamba4Rec's training objective compared: the paper's (the cross-entropy at each prefix sample's
 * last position) against every position of each window (`trainingMode: "all-positions"`), from
 * the cells of the `training_modes` grid (`run/paper_grids.ts`): the test metrics, the epochs to
 * the best validation epoch and the GPU seconds to it (training and validation of every epoch up
 * to it), each as mean ± sample standard deviation over the recorded seeds, and the ratio of
 * each mean to the paper objective's on the same dataset; and a verdict per objective: is it worse,
 * equal or better than the paper's on each metric, judged by the difference of the means against
 * its standard error over the seeds.
 *
 * @module
 */
import type { TrainResult } from "../models/training/trainer.ts";
import { type RichTable, richTable } from "../viz/mod.ts";
import type { GridCell } from "./grid_runs.ts";
import { OVERALL_METRICS, rowLabel } from "./overall_table.ts";
import { datasetLabel } from "./paper_values.ts";
import { formatSeedSummary, type SeedSummary, summarizeSeeds } from "./seed_summary.ts";

/** Epochs up to and including the best validation epoch (epochs are counted from 1). */
export function epochsToBest(result: TrainResult): number {
  return result.bestEpoch + 1;
}

/** GPU seconds up to the best validation epoch: training and validation of each epoch up to it. */
export function secondsToBest(result: TrainResult): number {
  return result.history
    .slice(0, result.bestEpoch + 1)
    .reduce((sum, e) => sum + e.trainSeconds + e.evalSeconds, 0);
}

/** The columns of the table beyond the metrics: what a run cost to its best epoch. */
const COSTS: readonly { label: string; value: (r: TrainResult) => number; decimals: number }[] = [
  { label: "epochs to best", value: epochsToBest, decimals: 1 },
  { label: "GPU s to best", value: secondsToBest, decimals: 1 },
];

/** `12.3 ± 1.2` with `decimals`, `12.3` for one seed, `—` for none. */
function formatCost(summary: SeedSummary | undefined, decimals: number): string {
  if (summary === undefined) return "—";
  const mean = summary.mean.toFixed(decimals);
  return summary.std === undefined ? mean : `${mean} ± ${summary.std.toFixed(decimals)}`;
}

/** `× 1.23`: a mean over the reference mean, or `—`. */
function ratio(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined || reference === 0) return "—";
  return `× ${(value / reference).toFixed(2)}`;
}

/** A cell's notes: its seeds recorded by other code, and an order-limited dataset file. */
function notesOf(cell: GridCell): string {
  const stale = cell.runs.filter((r) => r.staleness.stale).map((r) => r.key.seed);
  return [
    ...(stale.length > 0 ? [`stale: seed ${stale.join(", ")} recorded by other code`] : []),
    ...(cell.orderLimit ? [cell.orderLimit.note] : []),
  ].join("; ");
}

/**
 * The comparison table: a row per dataset and objective, the test metrics (mean ± std), the
 * epochs and GPU seconds to the best epoch, and each mean's ratio to the first row of its dataset
 * (the paper's objective); cells without records say so.
 */
export function trainingModesTable(cells: readonly GridCell[]): RichTable {
  const datasets = [...new Set(cells.map((c) => c.dataset))];
  const rows = datasets.flatMap((dataset) => {
    const rowsOf = cells.filter((c) => c.dataset === dataset);
    const results = (c: GridCell) => c.runs.map((r) => r.record.result);
    const reference = rowsOf[0];
    return rowsOf.map((cell) => {
      const n = cell.runs.length;
      const row: Record<string, string> = {
        dataset: datasetLabel(dataset),
        objective: rowLabel(cell),
        seeds: n === 0 ? "not recorded yet" : `${n}`,
      };
      const columns = [
        ...OVERALL_METRICS.map(({ key, label }) => ({
          label,
          value: (r: TrainResult) => r.test[key],
          format: formatSeedSummary,
        })),
        ...COSTS.map(({ label, value, decimals }) => ({
          label,
          value,
          format: (s: SeedSummary | undefined) => formatCost(s, decimals),
        })),
      ];
      for (const { label, value, format } of columns) {
        const summary = summarizeSeeds(results(cell).map(value));
        const base = summarizeSeeds(results(reference).map(value));
        row[label] = format(summary);
        row[`${label} ÷ paper's`] = cell === reference ? "" : ratio(summary?.mean, base?.mean);
      }
      row.adapter = [...new Set(cell.runs.map((r) => r.record.adapter))].join(", ");
      row.notes = notesOf(cell);
      return row;
    });
  });
  return richTable(rows, {
    caption: "Mamba4Rec: the paper's objective (last position) against every position",
    note: "Test metrics of the best validation epoch, mean ± sample standard deviation over the " +
      "recorded seeds. Epochs to best: the best validation epoch, counted from 1. GPU s to best: " +
      "training and validation seconds of every epoch up to it, from the run's record. ÷ paper's: " +
      "the mean over the paper objective's mean on the same dataset.",
  });
}

/** How many standard errors of the difference of two means count as a difference. */
export const VERDICT_STANDARD_ERRORS = 2;

/** One metric of an objective against the paper objective's, over seeds. */
export interface SeedComparison {
  /** Our mean minus the paper objective's. */
  readonly difference: number;
  /** The difference in standard errors of the difference of the means. */
  readonly standardErrors: number;
  /** Beyond `VERDICT_STANDARD_ERRORS` either way: worse or better; within them: equal. */
  readonly verdict: "worse" | "equal" | "better";
}

/**
 * How `ours` compares with `paper` over seeds: the difference of the means in standard errors of
 * that difference (Welch's, √(s₁²/n₁ + s₂²/n₂)), and whether it exceeds
 * `VERDICT_STANDARD_ERRORS`; `undefined` when either side has fewer than two seeds.
 */
export function compareSeeds(
  ours: SeedSummary | undefined,
  paper: SeedSummary | undefined,
): SeedComparison | undefined {
  if (ours?.std === undefined || paper?.std === undefined) return undefined;
  const difference = ours.mean - paper.mean;
  const error = Math.sqrt(ours.std ** 2 / ours.n + paper.std ** 2 / paper.n);
  const standardErrors = error === 0
    ? (difference === 0 ? 0 : Math.sign(difference) * Infinity)
    : difference / error;
  const verdict = standardErrors < -VERDICT_STANDARD_ERRORS
    ? "worse"
    : standardErrors > VERDICT_STANDARD_ERRORS
    ? "better"
    : "equal";
  return { difference, standardErrors, verdict };
}

/**
 * The verdict table: a row per dataset and objective other than the paper's, each metric's
 * difference to the paper objective's mean with its standard errors and verdict, the GPU seconds
 * to the best epoch over the paper's (flagged where the two were timed on different cards), and
 * in words whether the objective is worse than the paper's, and where the plain all-positions
 * objective is worse, whether this one closes the gap.
 */
export function trainingModesVerdict(cells: readonly GridCell[]): RichTable {
  const datasets = [...new Set(cells.map((c) => c.dataset))];
  const metricsOf = (cell: GridCell, key: string) =>
    summarizeSeeds(cell.runs.map((r) => r.record.result.test[key]));
  const rows = datasets.flatMap((dataset) => {
    const [reference, ...others] = cells.filter((c) => c.dataset === dataset);
    const verdicts = others.map((cell) =>
      OVERALL_METRICS.map(({ key }) =>
        compareSeeds(metricsOf(cell, key), metricsOf(reference, key))
      )
    );
    const firstWorse = verdicts.findIndex((v) => v.some((m) => m?.verdict === "worse"));
    const seconds = (c: GridCell) =>
      summarizeSeeds(c.runs.map((r) => secondsToBest(r.record.result)))?.mean;
    const cards = (c: GridCell) => c.runs.map((r) => r.record.adapter);
    const referenceSeconds = seconds(reference);
    return others.map((cell, i) => {
      const row: Record<string, string> = {
        dataset: datasetLabel(dataset),
        objective: rowLabel(cell),
      };
      OVERALL_METRICS.forEach(({ label }, m) => {
        const c = verdicts[i][m];
        row[`${label} Δ`] = c === undefined
          ? "—"
          : `${c.difference >= 0 ? "+" : ""}${c.difference.toFixed(4)} (${
            c.standardErrors.toFixed(1)
          } SE): ${c.verdict}`;
      });
      const allCards = new Set([...cards(cell), ...cards(reference)]);
      row["GPU s to best ÷ paper's"] = ratio(seconds(cell), referenceSeconds) +
        (allCards.size > 1 ? ` (different cards: ${[...allCards].join(", ")})` : "");
      row.verdict = verdictText(verdicts[i], firstWorse >= 0 && firstWorse < i);
      return row;
    });
  });
  return richTable(rows, {
    caption: "Mamba4Rec: is an objective worse than the paper's?",
    note: `Δ: the objective's mean minus the paper objective's on the same dataset, in standard ` +
      `errors of that difference (√(s₁²/n₁ + s₂²/n₂) over the seeds); beyond ` +
      `${VERDICT_STANDARD_ERRORS} standard errors it counts as worse or better, within them as equal.`,
  });
}

/**
 * A row's verdict in words; `gapBefore` says whether an earlier objective of the same dataset was
 * worse than the paper's, so that this one closes that gap or does not.
 */
function verdictText(
  metrics: readonly (SeedComparison | undefined)[],
  gapBefore: boolean,
): string {
  if (metrics.some((m) => m === undefined)) return "fewer than two seeds on a side: no verdict";
  const worse = OVERALL_METRICS.filter((_, m) => metrics[m]!.verdict === "worse").map((m) =>
    m.label
  );
  const own = worse.length > 0
    ? `worse than the paper's on ${worse.join(", ")}`
    : `equal to or better than the paper's on every metric`;
  if (!gapBefore) return own;
  return worse.length > 0 ? `${own}: does not close the gap` : `${own}: closes the gap`;
}
