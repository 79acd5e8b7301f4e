/**
 * The Mamba4Rec paper's efficiency table from `deno task efficiency` files: SASRec, BERT4Rec and
 * Mamba4Rec on ML-1M, each with its peak GPU memory, training seconds per epoch and inference
 * seconds per batch, ours beside the paper's ({@link MAMBA4REC_PAPER_EFFICIENCY}) with each
 * model's ratio to Mamba4Rec on both sides; a smoke table for measurements on a slice (never
 * beside the paper's); and a bar chart of the ratios.
 *
 * Ours and the paper's absolute figures come from other hardware and other memory accounting (ours:
 * the runtime's storage buffers of live tensors; the paper's: not stated), so the ratios to
 * Mamba4Rec are what compares.
 *
 * @module
 */
import { type PlotlyFigure, plotlyFigure, type RichTable, richTable } from "../viz/mod.ts";
import { type EfficiencyMeasurement, layoutText, trainingTimingText } from "./efficiency_file.ts";
import { datasetLabel, modelLabel } from "./paper_values.ts";

/** One model's row of a paper's efficiency table. */
export interface PaperEfficiencyRow {
  /** Registered model name. */
  readonly model: string;
  /** GPU memory, GB. */
  readonly memoryGB: number;
  /** Training seconds per epoch. */
  readonly trainSecondsPerEpoch: number;
  /** Inference seconds per batch. */
  readonly inferenceSecondsPerBatch: number;
}

/** A paper's efficiency table, with where its numbers were read and how far they are confirmed. */
export interface PaperEfficiency {
  /** The rows. */
  readonly rows: readonly PaperEfficiencyRow[];
  /** The dataset and window the numbers are taken to be of. */
  readonly dataset: string;
  /** The window length L. */
  readonly maxLength: number;
  /** The readable source that quotes them. */
  readonly source: string;
  /** How far the numbers, the dataset and the hardware are confirmed, for people. */
  readonly status: string;
}

/**
 * The Mamba4Rec paper's efficiency table as a third-party summary quotes it (the paper's own text
 * could not be read): the numbers are unverified, and so are the dataset (most likely ML-1M with
 * L = 200) and the GPU (the author mentions an Nvidia A5000 elsewhere).
 */
export const MAMBA4REC_PAPER_EFFICIENCY: PaperEfficiency = Object.freeze({
  rows: Object.freeze([
    {
      model: "sasrec",
      memoryGB: 14.98,
      trainSecondsPerEpoch: 131.24,
      inferenceSecondsPerBatch: 0.27,
    },
    {
      model: "bert4rec",
      memoryGB: 15.48,
      trainSecondsPerEpoch: 207.6,
      inferenceSecondsPerBatch: 0.9,
    },
    {
      model: "mamba4rec",
      memoryGB: 4.82,
      trainSecondsPerEpoch: 75.52,
      inferenceSecondsPerBatch: 0.14,
    },
  ]),
  dataset: "ml-1m",
  maxLength: 200,
  source:
    "https://linnk.ai/insight/recommendation-systems/mamba4rec-towards-efficient-sequential-" +
    "recommendation-with-selective-state-space-models-LyJ203th",
  status: "unverified: quoted by a third-party summary of the paper, which states neither the " +
    "dataset (most likely ML-1M, L = 200) nor the GPU",
});

/** The figures of one row, ours or the paper's. */
interface Figures {
  readonly memoryGB: number;
  readonly trainSecondsPerEpoch: number;
  readonly inferenceSecondsPerBatch: number;
}

/** The three figures of the table, with their printed names and decimals. */
const FIGURES: readonly { key: keyof Figures; label: string; decimals: number }[] = [
  { key: "memoryGB", label: "GPU memory (GB)", decimals: 2 },
  { key: "trainSecondsPerEpoch", label: "training s / epoch", decimals: 2 },
  { key: "inferenceSecondsPerBatch", label: "inference s / batch", decimals: 4 },
];

/** The reference model every ratio is taken to. */
const REFERENCE_MODEL = "mamba4rec";

/** Our figures of a measurement. */
function oursOf(m: EfficiencyMeasurement): Figures {
  return {
    memoryGB: m.training.peakLiveBytes / 1e9,
    trainSecondsPerEpoch: m.training.secondsPerEpoch,
    inferenceSecondsPerBatch: m.inference.secondsPerBatch,
  };
}

/** A number rounded to `decimals`, or "—". */
function rounded(value: number | undefined, decimals: number): number | string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

/**
 * Ours beside the paper's: a row per measured model, each figure ours and the paper's, and each
 * side's ratio to Mamba4Rec (— where Mamba4Rec or the paper's row is missing).
 */
export function paperEfficiencyTable(
  measurements: readonly EfficiencyMeasurement[],
  paper: PaperEfficiency = MAMBA4REC_PAPER_EFFICIENCY,
): RichTable {
  const reference = measurements.find((m) => m.model === REFERENCE_MODEL);
  const paperReference = paper.rows.find((r) => r.model === REFERENCE_MODEL);
  const rows = measurements.map((m) => {
    const ours = oursOf(m);
    const theirs = paper.rows.find((r) => r.model === m.model);
    const row: Record<string, string | number> = {
      model: modelLabel(m.model),
      adapter: m.adapter,
    };
    for (const { key, label: name, decimals } of FIGURES) {
      row[`${name} ours`] = rounded(ours[key], decimals);
      row[`${name} paper`] = rounded(theirs?.[key], decimals);
      row[`${name} ours ÷ Mamba4Rec`] = rounded(
        reference ? ours[key] / oursOf(reference)[key] : undefined,
        2,
      );
      row[`${name} paper ÷ Mamba4Rec`] = rounded(
        theirs && paperReference ? theirs[key] / paperReference[key] : undefined,
        2,
      );
    }
    row.timing = trainingTimingText(m);
    row["inference batch (users)"] = m.inference.users;
    return row;
  });
  const where = `${datasetLabel(paper.dataset)}, L = ${paper.maxLength}`;
  return richTable(rows.length > 0 ? rows : [{ model: "no measurement yet" }], {
    caption: `Efficiency on ${where}: ours beside the paper's`,
    note: `Paper: ${paper.status} (${paper.source}). Ours: the peak of the runtime's storage ` +
      "buffers held by live tensors during training (not the driver's memory), training seconds " +
      "per epoch with the kernels compiled (GPU wait included), and the median seconds of the full " +
      "ranking of one test batch of the evaluation batch size. The hardware differs from the " +
      "paper's, so compare the ratios to Mamba4Rec rather than the absolute figures.",
  });
}

/** A smoke measurement's table: ours only, on the slice, never beside the paper's. */
export function smokeEfficiencyTable(measurements: readonly EfficiencyMeasurement[]): RichTable {
  const rows = measurements.map((m) => {
    const ours = oursOf(m);
    const contents = m.slice?.contents;
    return {
      model: modelLabel(m.model),
      adapter: m.adapter,
      slice: contents
        ? `${contents.users} users, ${contents.items} items, ${contents.interactions} interactions`
        : "whole dataset",
      L: m.histories.length ?? "whole",
      "memory (MB)": rounded(ours.memoryGB * 1000, 1),
      "training s / epoch": rounded(ours.trainSecondsPerEpoch, 2),
      "inference s / batch": rounded(ours.inferenceSecondsPerBatch, 4),
      timing: trainingTimingText(m),
    };
  });
  const none = [{ "smoke measurements": "none: every model has a measurement" }];
  return richTable(rows.length > 0 ? rows : none, {
    caption: "Smoke measurement (a tiny slice on this adapter): it only shows that the " +
      "measurement runs, and is not comparable with the paper",
  });
}

/**
 * A grouped bar chart: each model's figures as a multiple of Mamba4Rec's, ours and (where given)
 * the paper's, one group per figure.
 */
export function efficiencyRatioChart(
  measurements: readonly EfficiencyMeasurement[],
  paper?: PaperEfficiency,
): PlotlyFigure {
  const reference = measurements.find((m) => m.model === REFERENCE_MODEL);
  const x = FIGURES.map((f) => f.label);
  const data = measurements.flatMap((m) => {
    const name = modelLabel(m.model);
    const ours = {
      type: "bar" as unknown as "scatter",
      mode: "markers",
      name: `${name} (ours)`,
      x,
      y: FIGURES.map(({ key }) => reference ? oursOf(m)[key] / oursOf(reference)[key] : null),
    };
    const theirs = paper?.rows.find((r) => r.model === m.model);
    const paperReference = paper?.rows.find((r) => r.model === REFERENCE_MODEL);
    if (!theirs || !paperReference) return [ours];
    return [ours, {
      type: "bar" as unknown as "scatter",
      mode: "markers",
      name: `${name} (paper)`,
      x,
      y: FIGURES.map(({ key }) => theirs[key] / paperReference[key]),
    }];
  });
  return plotlyFigure({
    data,
    layout: {
      title: `Each model as a multiple of Mamba4Rec (${
        measurements[0]?.adapter ?? "no measurement"
      })`,
      barmode: "group",
      xaxis: { title: "figure" },
      yaxis: { title: "× Mamba4Rec" },
    },
  });
}

/** The purposes of the memory table, in order, and the free pool. */
const PURPOSES = ["parameters", "gradients", "optimizer", "activations", "workspace"] as const;

/**
 * What each measurement's peaks were made of, a row per measurement and phase (training,
 * inference): the peak and each purpose's part of it, in MB, and the free pooled buffers then.
 */
export function memoryByPurposeTable(measurements: readonly EfficiencyMeasurement[]): RichTable {
  const mb = (bytes: number | undefined) => Math.round(((bytes ?? 0) / 1e6) * 10) / 10;
  const rows = measurements.flatMap((m) =>
    (["training", "inference"] as const).map((phase) => {
      const figures = m[phase];
      return {
        model: modelLabel(m.model),
        dataset: datasetLabel(m.dataset),
        histories: layoutText(m.histories),
        phase,
        "peak (MB)": mb(figures.peakLiveBytes),
        ...Object.fromEntries(PURPOSES.map((p) => [p, mb(figures.peakByPurpose[p])])),
        "free pool then": mb(figures.peakByPurpose.pool),
      };
    })
  );
  return richTable(rows.length > 0 ? rows : [{ model: "no measurement yet" }], {
    caption: "What each peak was made of (MB, the runtime's storage buffers by purpose)",
    note: "The purposes add up to the peak; the free pool (released buffers kept for reuse) is " +
      "allocated beside it but holds no live tensor.",
  });
}
