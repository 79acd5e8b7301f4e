/**
 * SSD4Rec training epochs against their floors, the efficiency bar of the model: an epoch's
 * projection and feed-forward matrix products, forward and backward, at the measured
 * matrix-product rate (`run/projection_flops.ts`), counted two ways: those this code computes
 * (the tighter floor) and those the model defines (each direction's projections and the
 * feed-forward network at every token), against which the bar of {@link EPOCH_FLOOR_BAR} times
 * is held.
 *
 * The columns of a measurement ({@link floorColumns}) serve the KuaiRand-sized epoch's table
 * (`run/kuairand_epoch.ts`) and {@link datasetFloorsTable}, one row per dataset of the papers
 * measured with whole histories ({@link DATASET_FLOOR_REQUESTS}).
 *
 * @module
 */
import { type RichTable, richTable } from "../viz/mod.ts";
import {
  EFFICIENCY_DIRECTORY,
  efficiencyFileName,
  type EfficiencyMeasurement,
  laterEpochSeconds,
  trainingTimingText,
} from "./efficiency_file.ts";
import { efficiencyCommand, type EfficiencyRequest } from "./efficiency_measure.ts";
import { rounded, significant } from "./number_format.ts";
import { datasetLabel } from "./paper_values.ts";
import {
  definedEpochFloor,
  MATMUL_RATE_COMMAND,
  type ProjectionFloor,
} from "./projection_flops.ts";

/** The bar: an SSD4Rec training epoch within this many times the model's floor. */
export const EPOCH_FLOOR_BAR = 1.5;

/** The bar's column. */
export const BAR_COLUMN: string = `bar (≤ ${EPOCH_FLOOR_BAR}× the model's floor)`;

/**
 * The column of the epochs after the first against the model's floor (their median), where
 * several whole epochs were timed; the bar is held against it there.
 */
export const LATER_EPOCHS_COLUMN = "÷ the model's floor, epochs after the first";

/** The floor columns of {@link floorColumns}, in order. */
export const FLOOR_COLUMNS: readonly string[] = [
  "tokens / epoch",
  "projection TFLOP / epoch",
  "floor (s)",
  "at (TFLOP/s)",
  "÷ floor",
  "the model's TFLOP / epoch",
  "the model's floor (s)",
  "÷ the model's floor",
  LATER_EPOCHS_COLUMN,
  BAR_COLUMN,
];

/** A table row, by column. */
export type TableRow = Record<string, string | number>;

/**
 * The floor columns of `m` ({@link FLOOR_COLUMNS}): its tokens and projection work, both floors
 * at `floor`'s rate (the measurement's own unless given; `rateNote` says where the rate came
 * from) with the epoch's ratio to each, and the bar held against the model's floor: by the
 * epochs after the first where several were timed ({@link laterEpochSeconds}: the steady epoch of
 * a training run), else by the mean epoch. A `smoke` measurement gets its floors but no ratio or
 * bar.
 */
export function floorColumns(
  m: EfficiencyMeasurement,
  options: { floor?: ProjectionFloor; rateNote?: string; smoke?: boolean } = {},
): TableRow {
  const p = m.projections;
  if (p === undefined) {
    return {
      "tokens / epoch": "—",
      "projection TFLOP / epoch": "— (a file from before they were counted: measure again)",
    };
  }
  const floor = options.floor ?? p.floor;
  const rateNote = options.rateNote ?? `measured (${MATMUL_RATE_COMMAND})`;
  const defined = definedEpochFloor(m, floor?.matmulTflops);
  const bar = defined?.floor;
  const ratio = (f: ProjectionFloor | undefined) =>
    options.smoke ? "— (smoke)" : f ? rounded(f.epochRatio, 2) : "—";
  const later = laterEpochSeconds(m.training);
  const laterRatio = bar && later !== undefined ? later / bar.seconds : undefined;
  const judged = laterRatio ?? bar?.epochRatio;
  return {
    "tokens / epoch": p.tokens,
    "projection TFLOP / epoch": significant(p.flops / 1e12),
    "floor (s)": floor ? significant(floor.seconds) : "no rate given",
    "at (TFLOP/s)": floor ? `${floor.matmulTflops}, ${rateNote}` : "add --matmul-tflops R",
    "÷ floor": ratio(floor),
    ...(defined === undefined ? { "the model's TFLOP / epoch": "— (no model settings)" } : {
      "the model's TFLOP / epoch": significant(defined.flops / 1e12),
      "the model's floor (s)": bar ? significant(bar.seconds) : "no rate given",
      "÷ the model's floor": ratio(bar),
      [LATER_EPOCHS_COLUMN]: options.smoke
        ? "— (smoke)"
        : laterRatio === undefined
        ? m.training.projected ? "— (projected from steps)" : "— (one epoch timed)"
        : rounded(laterRatio, 2),
    }),
    [BAR_COLUMN]: options.smoke
      ? "— (smoke)"
      : bar === undefined || judged === undefined
      ? "—"
      : judged <= EPOCH_FLOOR_BAR
      ? "met"
      : `missed (needs ≤ ${rounded(EPOCH_FLOOR_BAR * bar.seconds, 1)} s)`,
  };
}

/**
 * SSD4Rec with its official settings and whole histories on each dataset of the papers that it
 * trains on: Beauty and Video Games over a whole epoch, ML-1M (some 2·10⁸ tokens an epoch)
 * projected from its first 40 steps.
 */
export const DATASET_FLOOR_REQUESTS: readonly EfficiencyRequest[] = Object.freeze([
  Object.freeze({ model: "ssd4rec", dataset: "amazon-beauty" }),
  Object.freeze({ model: "ssd4rec", dataset: "amazon-video-games" }),
  Object.freeze({ model: "ssd4rec", dataset: "ml-1m", maxSteps: 40 }),
]);

/**
 * Each measured epoch of `measured` against its floors and the bar, a row per measurement, and a
 * row with the command for each request of `missing`.
 */
export function datasetFloorsTable(
  measured: readonly EfficiencyMeasurement[],
  missing: readonly EfficiencyRequest[] = [],
): RichTable {
  const rows: TableRow[] = [
    ...measured.map((m) => ({
      dataset: datasetLabel(m.dataset),
      card: m.adapter,
      "s / epoch": rounded(m.training.secondsPerEpoch, 2),
      timing: trainingTimingText(m),
      ...floorColumns(m),
      source: `${EFFICIENCY_DIRECTORY}/${efficiencyFileName(m)}`,
    })),
    ...missing.map((r) => ({
      dataset: datasetLabel(r.dataset),
      "s / epoch": "not measured yet",
      source: `on a GPU: ${efficiencyCommand(r)} --matmul-tflops R`,
    })),
  ];
  return richTable(rows, {
    columns: ["dataset", "card", "s / epoch", "timing", ...FLOOR_COLUMNS, "source"],
    caption: "SSD4Rec's training epoch on each dataset against its floors",
    note: "Whole histories with each dataset's official settings. A floor is the epoch's " +
      "projection and feed-forward matrix products, forward and backward, at the measured " +
      `matrix-product rate R (${MATMUL_RATE_COMMAND}): 'floor' counts those this code computes ` +
      "(one input projection a layer for both directions, the last layer's rows at the last " +
      "tokens only), 'the model's floor' those the model defines (each direction's projections " +
      "and the feed-forward network at every token); the bar is an epoch within " +
      `${EPOCH_FLOOR_BAR}× the model's floor, held against the epochs after the first where ` +
      "several were timed (the first rebuilds the buffer pool the measurement empties to count " +
      "its peak).",
  });
}
