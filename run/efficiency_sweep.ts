/**
 * SSD4Rec's efficiency against the window length and against padding, from `deno task efficiency`
 * files: training seconds per epoch and peak memory of each model at each L (SSD4Rec on histories
 * cut to their last L items, the padded models on windows of L), as a table and as charts; and
 * SSD4Rec on packed whole histories against the same model on left-padded windows.
 *
 * @module
 */
import { type PlotlyFigure, plotlyFigure, type RichTable, richTable } from "../viz/mod.ts";
import { type EfficiencyMeasurement, layoutText } from "./efficiency_file.ts";
import type { EfficiencyRequest } from "./efficiency_measure.ts";
import { datasetLabel, modelLabel } from "./paper_values.ts";
import { rounded } from "./number_format.ts";

/** The window lengths of the SSD4Rec paper's length experiment. */
export const SWEEP_LENGTHS: readonly number[] = Object.freeze([50, 100, 200, 400]);

/** Steps the length sweep times at each point; each epoch's time is projected from them. */
export const SWEEP_TIMED_STEPS = 40;

/** The window lengths of the sweep's smoke measurement on a tiny slice (quick mode). */
export const SMOKE_SWEEP_LENGTHS: readonly number[] = Object.freeze([10, 20]);

/** The models of the length sweep: SSD4Rec (histories cut to L) and two padded baselines. */
export const SWEEP_MODELS: readonly string[] = Object.freeze(["ssd4rec", "sasrec", "mamba4rec"]);

/** The sweep's length of a measurement: L of windows and of cut histories, else `undefined`. */
function sweepLength(m: EfficiencyMeasurement): number | undefined {
  const { kind, length } = m.histories;
  return kind === "window" || kind === "cut" ? length : undefined;
}

/**
 * The requests of the length sweep on `dataset`: each of {@link SWEEP_MODELS} at each of
 * `lengths`, SSD4Rec on histories cut to L (`varLen: false`), each timing its first `maxSteps`
 * steps when given (the epoch's time projected from them).
 */
export function sweepRequests(
  dataset: string,
  lengths: readonly number[],
  maxSteps?: number,
): EfficiencyRequest[] {
  return SWEEP_MODELS.flatMap((model) =>
    lengths.map((maxLength) => ({
      model,
      dataset,
      maxLength,
      ...(model === "ssd4rec" ? { varLen: false } : {}),
      ...(maxSteps !== undefined ? { maxSteps } : {}),
    }))
  );
}

/** The datasets of the padding comparison: the two whose whole epochs take seconds. */
export const LAYOUT_DATASETS: readonly string[] = Object.freeze([
  "amazon-beauty",
  "amazon-video-games",
]);

/** The padded windows' length in the padding comparison: the Amazon presets' window. */
export const LAYOUT_PAD_TO = 50;

/**
 * The requests of the padding comparison: SSD4Rec on `dataset` on packed whole histories, then
 * on every history's last `padTo` items left-padded to `padTo` tokens; whole epochs.
 */
export function layoutRequests(dataset: string, padTo: number): EfficiencyRequest[] {
  return [
    { model: "ssd4rec", dataset },
    { model: "ssd4rec", dataset, padTo },
  ];
}

/** Tokens of one epoch: counted over whole epochs, or projected from the steps timed. */
function tokensPerEpoch(m: EfficiencyMeasurement): number {
  const t = m.training;
  return t.projected ? (t.tokens / t.stepsTimed) * t.stepsPerEpoch : t.tokens / t.epochsTimed;
}

/** How an epoch's time was taken. */
function timing(m: EfficiencyMeasurement): string {
  const t = m.training;
  return t.projected ? `projected from ${t.stepsTimed} of ${t.stepsPerEpoch} steps` : "measured";
}

/**
 * The length sweep as a table: a row per model and L, with seconds per epoch, tokens per second,
 * peak memory during training and inference seconds per batch; the models or lengths of
 * `expected` without a measurement are listed in the note.
 */
export function lengthSweepTable(
  measurements: readonly EfficiencyMeasurement[],
  expected: { models: readonly string[]; lengths: readonly number[] },
): RichTable {
  const rows = measurements.map((m) => ({
    model: modelLabel(m.model),
    histories: layoutText(m.histories),
    L: sweepLength(m) ?? "—",
    "s / training epoch": rounded(m.training.secondsPerEpoch, 2),
    timing: timing(m),
    "tokens / s": Math.round(m.training.tokensPerSecond),
    "peak training memory (MB)": Math.round(m.training.peakLiveBytes / 1e6),
    "inference s / batch": rounded(m.inference.secondsPerBatch, 4),
    adapter: m.adapter,
  }));
  const missing = expected.models.flatMap((model) =>
    expected.lengths
      .filter((L) => !measurements.some((m) => m.model === model && sweepLength(m) === L))
      .map((L) => `${modelLabel(model)} L = ${L}`)
  );
  const dataset = measurements[0] ? datasetLabel(measurements[0].dataset) : "";
  return richTable(rows.length > 0 ? rows : [{ model: "no measurement yet" }], {
    caption: `Training time and memory against the window length L${
      dataset ? ` (${dataset})` : ""
    }`,
    note: "SSD4Rec runs packed histories cut to their last L items (var_len false); SASRec and " +
      "Mamba4Rec run windows of L. Memory: the peak of the runtime's storage buffers held by live " +
      "tensors during training." +
      (missing.length > 0 ? ` Not measured yet: ${missing.join(", ")}.` : ""),
  });
}

/** One figure of the length sweep against L, a line per model. */
export function lengthSweepChart(
  measurements: readonly EfficiencyMeasurement[],
  figure: "secondsPerEpoch" | "peakMemory",
): PlotlyFigure {
  const models = [...new Set(measurements.map((m) => m.model))];
  const value = (m: EfficiencyMeasurement) =>
    figure === "secondsPerEpoch" ? m.training.secondsPerEpoch : m.training.peakLiveBytes / 1e6;
  const name = figure === "secondsPerEpoch" ? "seconds per training epoch" : "peak memory (MB)";
  return plotlyFigure({
    data: models.map((model) => {
      const points = measurements.filter((m) => m.model === model);
      return {
        type: "scatter",
        mode: "lines+markers",
        name: modelLabel(model),
        x: points.map((m) => sweepLength(m) ?? null),
        y: points.map(value),
      };
    }),
    layout: {
      title: `${name[0].toUpperCase()}${name.slice(1)} against L (${
        measurements[0]?.adapter ?? "no measurement"
      })`,
      xaxis: { title: "window length L", type: "log" },
      yaxis: { title: name },
    },
  });
}

/**
 * The layouts side by side, a row each, with the ratio of each row to the first row of its dataset
 * (packed whole histories where the requests put it first): seconds per epoch, tokens per epoch
 * (padding included), tokens per second and peak memory.
 */
export function layoutTable(
  caption: string,
  measurements: readonly EfficiencyMeasurement[],
): RichTable {
  const bases = new Map<string, EfficiencyMeasurement>();
  for (const m of measurements) if (!bases.has(m.dataset)) bases.set(m.dataset, m);
  const rows = measurements.map((m) => {
    const base = bases.get(m.dataset)!;
    return {
      dataset: datasetLabel(m.dataset),
      histories: layoutText(m.histories),
      adapter: m.adapter,
      "s / training epoch": rounded(m.training.secondsPerEpoch, 2),
      "× time": rounded(m.training.secondsPerEpoch / base.training.secondsPerEpoch, 2),
      timing: timing(m),
      "tokens / epoch": Math.round(tokensPerEpoch(m)),
      "tokens / s": Math.round(m.training.tokensPerSecond),
      "peak memory (MB)": Math.round(m.training.peakLiveBytes / 1e6),
      "× memory": rounded(m.training.peakLiveBytes / base.training.peakLiveBytes, 2),
      "inference s / batch": rounded(m.inference.secondsPerBatch, 4),
    };
  });
  return richTable(rows.length > 0 ? rows : [{ histories: "no measurement yet" }], { caption });
}
