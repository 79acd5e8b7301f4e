/**
 * SSD4Rec's KuaiRand-sized training epoch: our epoch on `kuairand-synthetic` (generated data of
 * KuaiRand's shape, trained with SSD4Rec's KuaiRand preset) from its `deno task efficiency` file,
 * against two floors at the measured matrix-product rate (`run/projection_flops.ts`): the
 * projection and feed-forward work this code does, and the same products as the model defines
 * them (every token, each direction), which the bar of {@link EPOCH_FLOOR_BAR} times is taken
 * against; beside the official code's epoch on KuaiRand as a third party timed it
 * ({@link SSD4REC_OFFICIAL_KUAIRAND_EPOCH}).
 *
 * Where the file is missing, quick mode measures a smoke epoch on the first users instead
 * ({@link KUAIRAND_EPOCH_SMOKE}), which only shows that the measurement runs: its floor is taken
 * at {@link EXAMPLE_MATMUL_TFLOPS}, an example rate, and it is never compared with the bar or the
 * official code.
 *
 * @module
 */
import { SYNTHETIC_KUAIRAND_NAME } from "../data/synthetic_kuairand.ts";
import { type RichTable, richTable } from "../viz/mod.ts";
import {
  EFFICIENCY_DIRECTORY,
  efficiencyFileName,
  type EfficiencyMeasurement,
  trainingTimingText,
} from "./efficiency_file.ts";
import { efficiencyCommand, type EfficiencyRequest } from "./efficiency_measure.ts";
import { efficiencyMeasurements, type EfficiencyRuns } from "./efficiency_runs.ts";
import {
  datasetLabel,
  modelLabel,
  SSD4REC_OFFICIAL_KUAIRAND_EPOCH,
  type ThirdPartyEpochTiming,
} from "./paper_values.ts";
import { EPOCH_FLOOR_BAR, FLOOR_COLUMNS, floorColumns, type TableRow } from "./epoch_floors.ts";
import { rounded } from "./number_format.ts";
import { MATMUL_RATE_COMMAND, projectionFloor } from "./projection_flops.ts";

/** The measurement: SSD4Rec's KuaiRand preset on the whole of `kuairand-synthetic`, one epoch. */
export const KUAIRAND_EPOCH_REQUEST: EfficiencyRequest = Object.freeze({
  model: "ssd4rec",
  dataset: SYNTHETIC_KUAIRAND_NAME,
});

/**
 * The GPU command that writes the measurement's file with its floor: R is the TFLOP/s that
 * {@link MATMUL_RATE_COMMAND} measured on the same card.
 */
export const KUAIRAND_EPOCH_COMMAND = `${
  efficiencyCommand(KUAIRAND_EPOCH_REQUEST)
} --matmul-tflops R`;

/**
 * The smoke measurement of quick mode: the first 20 users of `kuairand-synthetic` (after the
 * 5-core filter about a dozen), in batches of 16 samples so that the one timed step stays short
 * on a CPU adapter; the epoch's time is projected from that step.
 */
export const KUAIRAND_EPOCH_SMOKE: EfficiencyRequest = Object.freeze({
  model: "ssd4rec",
  dataset: SYNTHETIC_KUAIRAND_NAME,
  maxUsers: 20,
  train: Object.freeze({ batchSize: 16, evalBatchSize: 16 }),
});

/**
 * The matrix-product rate, TFLOP/s, at which a smoke measurement's floor is shown: an example of
 * what a data-centre GPU reaches with f32 products, not a measurement of any adapter.
 */
export const EXAMPLE_MATMUL_TFLOPS = 25;

/** Options of {@link kuairandEpochRuns}. */
export interface KuaiRandEpochRunOptions {
  /** `quick`: the smoke measurement when the file is missing; `full`: measure and write it. */
  readonly mode: "quick" | "full";
  /** Where the file is read and written (default `results/efficiency/`). */
  readonly directory?: string;
  /** Receives a line per measurement made. */
  readonly log?: (line: string) => void;
}

/**
 * The measurement's file if there is one; otherwise, by mode, the measurement made now (full) or
 * the smoke measurement (quick), as `efficiencyMeasurements` does for its requests.
 */
export function kuairandEpochRuns(options: KuaiRandEpochRunOptions): Promise<EfficiencyRuns> {
  return efficiencyMeasurements([KUAIRAND_EPOCH_REQUEST], {
    mode: options.mode,
    smoke: [KUAIRAND_EPOCH_SMOKE],
    ...(options.directory !== undefined ? { directory: options.directory } : {}),
    ...(options.log !== undefined ? { log: options.log } : {}),
  });
}

/** The table's columns, in order. */
const COLUMNS: readonly string[] = [
  "run",
  "card",
  "s / epoch",
  "timing",
  "peak memory (GB)",
  "memory counted as",
  ...FLOOR_COLUMNS,
  "s ÷ official",
  "memory ÷ official",
  "source",
];

/** Our row: the whole-dataset measurement, with its floor, the bar and the ratios to theirs. */
function oursRow(
  m: EfficiencyMeasurement,
  official: ThirdPartyEpochTiming,
): TableRow {
  const seconds = m.training.secondsPerEpoch;
  const memoryGB = m.training.peakLiveBytes / 1e9;
  return {
    run: `ours on ${m.dataset}`,
    card: m.adapter,
    "s / epoch": rounded(seconds, 2),
    timing: trainingTimingText(m),
    "peak memory (GB)": rounded(memoryGB, 3),
    "memory counted as": "storage buffers of live tensors (the runtime's count)",
    ...floorColumns(m),
    "s ÷ official": rounded(seconds / official.secondsPerEpoch, 2),
    "memory ÷ official": rounded(memoryGB / official.peakAllocatedGB, 2),
    source: `${EFFICIENCY_DIRECTORY}/${efficiencyFileName(m)}`,
  };
}

/** The smoke row: the slice's figures, its floor at the example rate, no bar or comparison. */
function smokeRow(m: EfficiencyMeasurement): TableRow {
  const contents = m.slice?.contents;
  const slice = contents
    ? `${contents.users} users, ${contents.items} items, ${contents.interactions} interactions`
    : "a slice";
  const seconds = m.training.secondsPerEpoch;
  const floor = m.projections
    ? projectionFloor(m.projections.flops, EXAMPLE_MATMUL_TFLOPS, seconds)
    : undefined;
  return {
    run: `smoke: first ${m.slice?.maxUsers ?? "?"} users of ${m.dataset} (${slice}), ` +
      `batches of ${m.trainConfig.batchSize}; shows that it runs, compares with nothing`,
    card: m.adapter,
    "s / epoch": rounded(seconds, 2),
    timing: trainingTimingText(m),
    "peak memory (GB)": rounded(m.training.peakLiveBytes / 1e9, 3),
    "memory counted as": "storage buffers of live tensors (the runtime's count)",
    ...floorColumns(m, { floor, rateNote: "an example rate, not measured", smoke: true }),
    "s ÷ official": "— (smoke)",
    "memory ÷ official": "— (smoke)",
    source: "measured now",
  };
}

/** The official code's row. */
function officialRow(official: ThirdPartyEpochTiming): TableRow {
  return {
    run: `official ${modelLabel(official.model)} code on ` +
      `${datasetLabel(official.dataset)} (${official.status})`,
    card: official.card,
    "s / epoch": official.secondsPerEpoch,
    timing: `epochs after the first (the first: ${official.firstEpochSeconds} s, warm-up ` +
      "included)",
    "peak memory (GB)": official.peakAllocatedGB,
    "memory counted as": `the framework's allocated peak (reserved: ${official.peakReservedGB} GB)`,
    source: official.source,
  };
}

/**
 * The KuaiRand-sized epoch as a table: our measurement of the whole of `kuairand-synthetic`
 * (`measured[0]`) with its tokens, projection work, floor, ratio to the floor against
 * {@link EPOCH_FLOOR_BAR} and ratios to the official code's; or, without it, a row saying it is
 * not measured yet with {@link KUAIRAND_EPOCH_COMMAND}, and the smoke measurement (`smoke[0]`)
 * when there is one; then the official code's row.
 */
export function kuairandEpochTable(
  runs: Pick<EfficiencyRuns, "measured" | "smoke">,
  official: ThirdPartyEpochTiming = SSD4REC_OFFICIAL_KUAIRAND_EPOCH,
): RichTable {
  const measured = runs.measured[0];
  const rows: TableRow[] = [];
  if (measured) rows.push(oursRow(measured, official));
  else {
    rows.push({
      run: `ours on ${KUAIRAND_EPOCH_REQUEST.dataset}`,
      "s / epoch": "not measured yet",
      source: `on a GPU: ${KUAIRAND_EPOCH_COMMAND} (R: the TFLOP/s of ${MATMUL_RATE_COMMAND} ` +
        "on that card)",
    });
    if (runs.smoke[0]) rows.push(smokeRow(runs.smoke[0]));
  }
  rows.push(officialRow(official));
  const cards = measured
    ? `Ours ran on ${measured.adapter}, theirs on an ${official.card}: the ratios ours ÷ ` +
      "official compare code and card together unless the cards match."
    : "No measurement of ours yet: nothing is compared.";
  return richTable(rows, {
    columns: COLUMNS,
    caption: `A KuaiRand-sized SSD4Rec training epoch: ours on ${SYNTHETIC_KUAIRAND_NAME} ` +
      `against its floor, beside the official code on ${datasetLabel(official.dataset)} ` +
      `(${official.status})`,
    note: `${cards} Ours: synthetic data of KuaiRand's shape with SSD4Rec's KuaiRand settings; ` +
      "a floor is an epoch's projection and feed-forward matrix products, forward and " +
      "backward, at the matrix-product rate: 'floor' counts those this code computes (one " +
      "input projection a layer for both directions, the last layer's rows at the last tokens " +
      "only), 'the model's floor' those the model defines (each direction's projections and " +
      "the feed-forward network at every token), and the bar is an epoch within " +
      `${EPOCH_FLOOR_BAR}× the model's floor. Memory is counted differently on each side ` +
      "(ours: the runtime's storage buffers held by live tensors; theirs: the framework's " +
      "allocated peak). " +
      `Official code: ${official.software}, ${official.source}.`,
  });
}
