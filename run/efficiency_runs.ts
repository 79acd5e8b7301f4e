/**
 * The efficiency measurements a notebook shows: for each request, the newest file of the
 * measurement under `results/efficiency/` (the same model, dataset, history layout and batch
 * sizes; whatever the mode); for the requests without one, full
 * mode measures each on this adapter and writes its file, and quick mode measures none of them but
 * runs the notebook's smoke requests instead: the same models on a tiny slice of the data, with
 * one timed step, which only show that the measurement runs and are never compared with a paper.
 *
 * @module
 */
import { join } from "node:path";
import { planRun } from "./setup.ts";
import {
  EFFICIENCY_DIRECTORY,
  type EfficiencyMeasurement,
  type HistoryLayout,
  historyLayout,
  readEfficiencyMeasurements,
  writeEfficiencyMeasurement,
} from "./efficiency_file.ts";
import { type EfficiencyRequest, measureEfficiency } from "./efficiency_measure.ts";
import { requireProjectRoot } from "./code_version.ts";
import { SMOKE_USERS, SMOKE_USERS_BY_DATASET } from "./grid_runs.ts";

/**
 * The timing of a smoke measurement, which only shows that the measurement runs: one untimed and
 * one timed step (the epoch projected from it when longer) and one timed inference repeat.
 */
export const EFFICIENCY_SMOKE: Readonly<
  Pick<EfficiencyRequest, "maxSteps" | "warmupSteps" | "inferenceRepeats">
> = Object.freeze({ maxSteps: 1, warmupSteps: 1, inferenceRepeats: 1 });

/** Options of {@link efficiencyMeasurements}. */
export interface EfficiencyRunOptions {
  /** `quick`: smoke measurements for what has no file; `full`: measure and write what is missing. */
  readonly mode: "quick" | "full";
  /**
   * Quick mode, when a request has no file: what to measure instead on a slice (each gets
   * {@link EFFICIENCY_SMOKE} and the smoke slice of its dataset unless it sets its own).
   */
  readonly smoke: readonly EfficiencyRequest[];
  /** Where files are read and written (default `results/efficiency/`). */
  readonly directory?: string;
  /** Where dataset names are looked up (default: the datasets directory). */
  readonly datasetsDirectory?: string;
  /** Receives a line per measurement made. */
  readonly log?: (line: string) => void;
}

/** What {@link efficiencyMeasurements} found and measured. */
export interface EfficiencyRuns {
  /** A measurement of the whole dataset per request that has one (read, or measured now), in order. */
  readonly measured: readonly EfficiencyMeasurement[];
  /** The requests without a measurement. */
  readonly missing: readonly EfficiencyRequest[];
  /** Quick mode, when something is missing: the smoke measurements. */
  readonly smoke: readonly EfficiencyMeasurement[];
  /** Where the files are. */
  readonly directory: string;
}

/** What a file must hold to stand for a request: its model, dataset, layout and batch sizes. */
interface PlannedMeasurement {
  readonly model: string;
  readonly dataset: string;
  readonly histories: HistoryLayout;
  readonly batchSize: number;
  readonly evalBatchSize: number | undefined;
}

/** What a request measures ({@link PlannedMeasurement}), known before any GPU work. */
function plannedLayout(
  request: EfficiencyRequest,
  datasetsDirectory: string | undefined,
): PlannedMeasurement {
  const train: Record<string, unknown> = { ...request.train };
  if (request.maxLength !== undefined) train.maxLength = request.maxLength;
  if (request.varLen !== undefined) train.varLen = request.varLen;
  if (request.padTo !== undefined) train.padTo = request.padTo;
  const plan = planRun({
    model: request.model,
    dataset: request.dataset,
    datasetsDirectory: request.datasetsDirectory ?? datasetsDirectory,
    train,
  });
  return {
    model: plan.model.name,
    dataset: plan.source.name,
    histories: historyLayout(plan.model, plan.config),
    batchSize: plan.config.batchSize,
    evalBatchSize: plan.config.evalBatchSize,
  };
}

/**
 * The newest measurement of the whole dataset with the same model, dataset, layout and batch
 * sizes.
 */
function findMeasurement(
  files: readonly EfficiencyMeasurement[],
  wanted: PlannedMeasurement,
): EfficiencyMeasurement | undefined {
  return files
    .filter((m) =>
      m.slice === undefined && m.model === wanted.model && m.dataset === wanted.dataset &&
      m.histories.kind === wanted.histories.kind &&
      m.histories.length === wanted.histories.length &&
      m.trainConfig.batchSize === wanted.batchSize &&
      m.trainConfig.evalBatchSize === wanted.evalBatchSize
    )
    .sort((a, b) => (a.measuredAt < b.measuredAt ? 1 : -1))[0];
}

/** The efficiency measurements of `requests`, as the module documentation describes. */
export async function efficiencyMeasurements(
  requests: readonly EfficiencyRequest[],
  options: EfficiencyRunOptions,
): Promise<EfficiencyRuns> {
  const directory = options.directory ?? join(requireProjectRoot(), EFFICIENCY_DIRECTORY);
  const files = await readEfficiencyMeasurements(directory);
  const measured: EfficiencyMeasurement[] = [];
  const missing: EfficiencyRequest[] = [];
  for (const request of requests) {
    let found = findMeasurement(files, plannedLayout(request, options.datasetsDirectory));
    if (!found && options.mode === "full") {
      found = await measureEfficiency({
        datasetsDirectory: options.datasetsDirectory,
        ...request,
      });
      const path = await writeEfficiencyMeasurement(directory, found);
      options.log?.(`measured ${found.model} on ${found.dataset}: ${path}`);
    }
    if (found) measured.push(found);
    else missing.push(request);
  }
  const smoke: EfficiencyMeasurement[] = [];
  if (options.mode === "quick" && missing.length > 0) {
    for (const request of options.smoke) {
      const dataset = plannedLayout(request, options.datasetsDirectory).dataset;
      smoke.push(
        await measureEfficiency({
          ...EFFICIENCY_SMOKE,
          maxUsers: SMOKE_USERS_BY_DATASET[dataset] ?? SMOKE_USERS,
          datasetsDirectory: options.datasetsDirectory,
          ...request,
        }),
      );
    }
  }
  return { measured, missing, smoke, directory };
}
