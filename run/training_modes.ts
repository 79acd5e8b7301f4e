/**
 * Mamba4Rec's training objective compared: the paper's (the cross-entropy at each prefix sample's
 * last position) against every position of each window (`trainingMode: "all-positions"`), from
 * the cells of the `training_modes` grid (`run/paper_grids.ts`): the test metrics, the epochs to
 * the best validation epoch and the GPU seconds to it (training and validation of every epoch up
 * to it), each as mean ± sample standard deviation over the recorded seeds, and the ratio of
 * each mean to the paper objective's on the same dataset.
 *
 * @module
 */
import type { TrainResult } from "../models/training/trainer.ts";
import { type RichTable, richTable } from "../viz/mod.ts";
import type { GridCell } from "./grid_runs.ts";
import { OVERALL_METRICS, rowLabel } from "./overall_table.ts";
import { DATASET_LABELS } from "./paper_values.ts";
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
        dataset: Object.hasOwn(DATASET_LABELS, dataset) ? DATASET_LABELS[dataset] : dataset,
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
