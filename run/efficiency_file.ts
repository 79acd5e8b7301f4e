/**
 * The efficiency file: what `deno task efficiency` (`run/efficiency_measure.ts`) writes for one
 * model on one dataset with one history layout ({@link EfficiencyMeasurement}), its file name
 * ({@link efficiencyFileName}), and writing and reading it.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../host/mod.ts";
import { packedTrainSettings, type TrainConfig } from "../models/config.ts";
import type { InputLayout } from "../models/model.ts";
import type { CodeVersion } from "./code_version.ts";
import type { SliceContents } from "./grid_runs.ts";
import { median } from "./number_format.ts";

/** The format tag of an efficiency file. */
export const EFFICIENCY_FORMAT = "ssmrec-efficiency-1";

/** The folder efficiency files go to, relative to the project root. */
export const EFFICIENCY_DIRECTORY = "results/efficiency";

/** The training part of an {@link EfficiencyMeasurement}. */
export interface TrainingEfficiency {
  /** Steps of one epoch. */
  readonly stepsPerEpoch: number;
  /** Steps timed (all of {@link epochsTimed} epochs, or the first `maxSteps`). */
  readonly stepsTimed: number;
  /** Whole epochs timed; 0 when only the first steps were. */
  readonly epochsTimed: number;
  /** Untimed warm-up steps run before. */
  readonly warmupSteps: number;
  /** Whether {@link secondsPerEpoch} is projected from the first steps rather than measured. */
  readonly projected: boolean;
  /** Wall seconds of the timed steps, GPU wait included. */
  readonly seconds: number;
  /** Seconds per training epoch: measured, or projected (seconds per step × steps per epoch). */
  readonly secondsPerEpoch: number;
  /**
   * Seconds of each timed epoch, each ended by a wait for the GPU, when two or more whole epochs
   * were timed: the first pays for the buffers the pool makes again after the warm-up (it starts
   * empty, so that the peak is the timed steps' own), the later ones show the steady state.
   */
  readonly epochSeconds?: readonly number[];
  /** Samples of the timed steps. */
  readonly samples: number;
  /** Tokens of the timed steps, as the trainer counts them (padding included). */
  readonly tokens: number;
  /** {@link tokens} per second. */
  readonly tokensPerSecond: number;
  /** Mean loss of the timed steps (a finite number shows the steps trained). */
  readonly meanLoss: number;
  /** Samples per micro-batch where steps had to be cut to fit the device; absent otherwise. */
  readonly microBatchSize?: number;
  /** The most bytes live tensors held at once during the timed steps. */
  readonly peakLiveBytes: number;
  /** What that peak was made of, bytes by purpose (`pool`: free pooled buffers, not in the peak). */
  readonly peakByPurpose: Readonly<Record<string, number>>;
}

/** The inference part of an {@link EfficiencyMeasurement}. */
export interface InferenceEfficiency {
  /** The split the batch came from. */
  readonly split: "test";
  /** Users in the batch (the evaluation batch size, or the split's users when fewer). */
  readonly users: number;
  /** Median wall seconds of one batch's full ranking, GPU wait included. */
  readonly secondsPerBatch: number;
  /** Every timed repeat, seconds. */
  readonly repeats: readonly number[];
  /** The most bytes live tensors held at once during the repeats. */
  readonly peakLiveBytes: number;
  /** What that peak was made of, bytes by purpose. */
  readonly peakByPurpose: Readonly<Record<string, number>>;
}

/** One efficiency file: a model on a dataset with one history layout. */
export interface EfficiencyMeasurement {
  /** {@link EFFICIENCY_FORMAT}. */
  readonly format: typeof EFFICIENCY_FORMAT;
  /** The code that measured it. */
  readonly code: CodeVersion;
  /** The Deno version. */
  readonly deno: string;
  /** When it was measured (ISO 8601). */
  readonly measuredAt: string;
  /** The command that measures it again. */
  readonly command: string;
  /** The adapter it ran on. */
  readonly adapter: string;
  /** Model name. */
  readonly model: string;
  /** Canonical dataset name (of the whole dataset, also for a slice). */
  readonly dataset: string;
  /** For a smoke measurement on the first users: how many were asked for and what they held. */
  readonly slice?: { readonly maxUsers: number; readonly contents: SliceContents };
  /** Trainable parameters. */
  readonly parameters: number;
  /** The training configuration. */
  readonly trainConfig: TrainConfig;
  /** The model configuration. */
  readonly modelConfig: Readonly<Record<string, unknown>>;
  /** How histories reach the model: see {@link historyLayout}. */
  readonly histories: HistoryLayout;
  /** Training figures. */
  readonly training: TrainingEfficiency;
  /** Inference figures. */
  readonly inference: InferenceEfficiency;
  /**
   * SSD4Rec: the matrix-product work of one training epoch's projections and feed-forward
   * networks (`run/projection_flops.ts`) and, when a rate was given, the epoch's floor at it;
   * absent for other models and in files measured before it was counted.
   */
  readonly projections?: {
    /** Packed tokens of one epoch's training batches (padding included, with `padTo`). */
    readonly tokens: number;
    /** Training samples of one epoch. */
    readonly samples: number;
    /** Forward operations of one epoch, by projection. */
    readonly forwardFlops: {
      /** The Mamba-2 blocks' input projections, both directions. */
      readonly inProjection: number;
      /** Their output projections, both directions (the last layer at last tokens only). */
      readonly outProjection: number;
      /** The feed-forward networks (the last layer at last tokens only). */
      readonly feedForward: number;
    };
    /** Operations of one epoch, forward and backward. */
    readonly flops: number;
    /** The floor at a measured matrix-product rate (`--matmul-tflops`), when one was given. */
    readonly floor?: {
      /** The rate, TFLOP/s (`deno task bench --only matmul,ssd4rec`). */
      readonly matmulTflops: number;
      /** Seconds {@link flops} take at that rate. */
      readonly seconds: number;
      /** Seconds per epoch measured over the floor's. */
      readonly epochRatio: number;
    };
  };
}

/**
 * How a measurement's histories reach the model: `window` (a padded model's `[B, L]` windows),
 * `whole` (packed whole histories), `cut` (packed, the last L items) or `padded` (packed, every
 * history a left-padded window of `padTo` tokens); with the length that applies.
 */
export interface HistoryLayout {
  /** The layout. */
  readonly kind: "window" | "whole" | "cut" | "padded";
  /** L of `window` and `cut`, `padTo` of `padded`; absent for `whole`. */
  readonly length?: number;
}

/** How a layout reads for people: `windows of 200`, `whole histories`, … */
export function layoutText(histories: HistoryLayout): string {
  switch (histories.kind) {
    case "window":
      return `windows of ${histories.length}`;
    case "whole":
      return "whole histories (packed)";
    case "cut":
      return `histories cut to ${histories.length} (packed)`;
    case "padded":
      return `windows padded to ${histories.length}`;
  }
}

/**
 * The {@link HistoryLayout} a model (or its registry entry: only its input layout counts) trains
 * with under `config`.
 */
export function historyLayout(
  model: { readonly layout?: InputLayout },
  config: TrainConfig,
): HistoryLayout {
  if (model.layout !== "packed") return { kind: "window", length: config.maxLength };
  if (config.padTo !== undefined) return { kind: "padded", length: config.padTo };
  return packedTrainSettings(config).varLen
    ? { kind: "whole" }
    : { kind: "cut", length: config.maxLength };
}

/**
 * The file name of a measurement: `<model>-<dataset>-<layout>.json`, the layout `L200` (windows),
 * `whole`, `cut200` or `pad50`, and `-first<N>users` for a smoke measurement on a slice.
 */
export function efficiencyFileName(
  m: Pick<EfficiencyMeasurement, "model" | "dataset" | "histories" | "slice">,
): string {
  const { kind, length } = m.histories;
  const layout = kind === "window"
    ? `L${length}`
    : kind === "whole"
    ? "whole"
    : kind === "cut"
    ? `cut${length}`
    : `pad${length}`;
  const slice = m.slice ? `-first${m.slice.maxUsers}users` : "";
  return `${m.model}-${m.dataset}-${layout}${slice}.json`;
}

/** Writes `m` atomically as `directory/`{@link efficiencyFileName}; returns the path. */
export async function writeEfficiencyMeasurement(
  directory: string,
  m: EfficiencyMeasurement,
): Promise<string> {
  const path = join(directory, efficiencyFileName(m));
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(m, null, 1) + "\n"));
  return path;
}

/**
 * Every efficiency file in `directory` ({@link EFFICIENCY_FORMAT}; other JSON files there, such as
 * `deno task train --json` outputs, are left out), sorted by file name; none when the folder does
 * not exist. A file of this format that does not parse fails naming it.
 */
export async function readEfficiencyMeasurements(
  directory: string,
): Promise<EfficiencyMeasurement[]> {
  let names: string[];
  try {
    names = (await Array.fromAsync(Deno.readDir(directory)))
      .filter((e) => e.isFile && e.name.endsWith(".json"))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const out: EfficiencyMeasurement[] = [];
  for (const name of names) {
    const path = join(directory, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await Deno.readTextFile(path));
    } catch (error) {
      throw new Error(`${path}: not JSON (${(error as Error).message}); measure it again`);
    }
    const m = parsed as Partial<EfficiencyMeasurement> | null;
    if (m?.format !== EFFICIENCY_FORMAT) continue;
    if (typeof m.training?.secondsPerEpoch !== "number" || !m.inference || !m.histories) {
      throw new Error(
        `${path}: an ${EFFICIENCY_FORMAT} file without its training, inference or history ` +
          "figures; measure it again with deno task efficiency",
      );
    }
    out.push(m as EfficiencyMeasurement);
  }
  return out;
}

/**
 * The median of the timed epochs after the first, where two or more whole epochs were timed
 * (undefined otherwise): the steady epoch of a training run, without the one-time costs the
 * first timed epoch pays (it rebuilds the buffer pool the measurement empties to count its peak).
 */
export function laterEpochSeconds(t: TrainingEfficiency): number | undefined {
  const later = (t.epochSeconds ?? []).slice(1);
  return later.length === 0 ? undefined : median(later);
}

/** Each timed epoch's seconds, "0.78, 0.55, 0.52 s", where two or more were timed; else "". */
export function epochSecondsText(t: TrainingEfficiency): string {
  return t.epochSeconds && t.epochSeconds.length > 1
    ? `${t.epochSeconds.map((s) => s.toFixed(2)).join(", ")} s`
    : "";
}

/**
 * How a measurement's training time was taken: over whole epochs ("1 epoch timed"; with each
 * epoch's seconds where several were), or projected from the first steps ("projected from 40 of
 * 959 steps").
 */
export function trainingTimingText(m: EfficiencyMeasurement): string {
  const t = m.training;
  if (t.projected) return `projected from ${t.stepsTimed} of ${t.stepsPerEpoch} steps`;
  const each = epochSecondsText(t);
  return `${t.epochsTimed} epoch${t.epochsTimed === 1 ? "" : "s"} timed${each ? `: ${each}` : ""}`;
}
