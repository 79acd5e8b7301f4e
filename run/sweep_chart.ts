/**
 * How a notebook shows a sweep's cells (`run/grid_runs.ts`): each cell's value of the swept
 * setting (its row's, else its model's preset for the dataset), and a chart of a measure of the
 * recorded runs (a test metric, seconds per training epoch) against that value, a line per
 * dataset at the mean over the recorded seeds with a band of ± the sample standard deviation
 * (`viz/sweep_chart.ts`), and optionally each dataset's run outside the sweep as a dashed line.
 *
 * @module
 */
import type { TrainResult } from "../models/training/training_observer.ts";
import { modelPreset } from "../models/registry.ts";
import { type PlotlyFigure, sweepChart, type SweepSeries } from "../viz/mod.ts";
import type { GridCell } from "./grid_runs.ts";
import { datasetLabel } from "./paper_values.ts";
import { meanEpochSeconds } from "./run_record.ts";
import { summarizeSeeds } from "./seed_summary.ts";

/** The setting a sweep varies. */
export interface SweptSetting {
  /** Whether it is a model setting or a training setting. */
  readonly scope: "model" | "train";
  /** Its configuration key (`beta`, `maskRatio`, `maxLength`). */
  readonly key: string;
  /** How the chart's axis names it (`β`). */
  readonly title: string;
  /** The x axis type (default `linear`). */
  readonly axis?: "linear" | "log";
}

/** What a sweep chart draws of each recorded run. */
export interface RunMeasure {
  /** How the chart's axis names it (`NDCG@10`). */
  readonly label: string;
  /** The measure of one run's result; `undefined` where the run has none. */
  readonly of: (result: TrainResult) => number | undefined;
}

/** A test metric (`ndcg@10`, printed `NDCG@10`) as a {@link RunMeasure}. */
export function testMetric(metric: { key: string; label: string }): RunMeasure {
  return { label: metric.label, of: (result) => result.test[metric.key] };
}

/** Seconds of training per epoch (the mean over the run's epochs) as a {@link RunMeasure}. */
export const SECONDS_PER_EPOCH: RunMeasure = Object.freeze({
  label: "seconds per training epoch",
  of: (result: TrainResult) => (result.history.length === 0 ? undefined : meanEpochSeconds(result)),
});

/**
 * The value of `setting` in the runs of `cell`: its row's, else the preset's of its model on its
 * dataset. Fails naming the cell when neither gives it.
 */
export function sweptValue(cell: GridCell, setting: SweptSetting): number {
  const own = setting.scope === "model" ? cell.variant?.model : cell.variant?.train;
  const value = own?.[setting.key] ?? modelPreset(cell.model, cell.dataset)?.[setting.scope][
    setting.key
  ];
  if (typeof value !== "number") {
    throw new Error(
      `${cell.model} on ${cell.dataset}${cell.variant ? ` (${cell.variant.label})` : ""}: ` +
        `neither the row nor the preset gives the ${setting.scope} setting '${setting.key}' a ` +
        "number; a sweep's rows must set it, or leave it to a preset that does",
    );
  }
  return value;
}

/** The mean and spread of `measure` over the recorded runs of `cell`; `undefined` for none. */
function cellSummary(cell: GridCell, measure: RunMeasure) {
  const values = cell.runs.map((r) => measure.of(r.record.result)).filter((v) =>
    v !== undefined
  ) as number[];
  return summarizeSeeds(values);
}

/** Options of {@link sweepFigure}. */
export interface SweepFigureOptions {
  /**
   * Cells outside the sweep, drawn as a dashed line across it on their dataset's line where
   * recorded (the runs of the paper's settings beside a sweep of a setting they do not use).
   */
  readonly references?: readonly GridCell[];
  /** How the references are named in the legend (default `reference`). */
  readonly referenceLabel?: string;
}

/**
 * A chart of `measure` against `setting` over the recorded runs of `cells`: a line per dataset
 * (in the cells' order) at the mean over the recorded seeds of each row, a band of ± the sample
 * standard deviation, and each dataset's reference (see {@link SweepFigureOptions}); rows without
 * records have no point.
 */
export function sweepFigure(
  title: string,
  cells: readonly GridCell[],
  setting: SweptSetting,
  measure: RunMeasure,
  options: SweepFigureOptions = {},
): PlotlyFigure {
  const datasets = [...new Set(cells.map((c) => c.dataset))];
  const series: SweepSeries[] = datasets.map((dataset) => {
    const points = cells.filter((c) => c.dataset === dataset).flatMap((cell) => {
      const summary = cellSummary(cell, measure);
      return summary
        ? [{ x: sweptValue(cell, setting), mean: summary.mean, std: summary.std, n: summary.n }]
        : [];
    });
    const reference = (options.references ?? []).filter((c) => c.dataset === dataset)
      .map((c) => cellSummary(c, measure)).find((s) => s !== undefined);
    return {
      name: datasetLabel(dataset),
      points,
      ...(reference
        ? { reference: { label: options.referenceLabel ?? "reference", mean: reference.mean } }
        : {}),
    };
  });
  return sweepChart(series, {
    title: `${title}: ${measure.label} (mean over recorded seeds ± std)`,
    xTitle: setting.title,
    yTitle: measure.label,
    xType: setting.axis,
    sweptValues: cells.map((cell) => sweptValue(cell, setting)),
  });
}
