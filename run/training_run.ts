/**
 * One training command (`deno task train`) as the run layer carries it out: every cheap check
 * first (model, settings, dataset file, output paths, the resumed checkpoint's settings), then
 * the GPU, the data and the model ({@link setupRun}), training with progress, and the run record.
 *
 * @module
 */
import { join } from "node:path";
import { pathExists } from "../host/mod.ts";
import { ConfigError, packedTrainSettings } from "../models/config.ts";
import { train, type TrainResult } from "../models/training/trainer.ts";
import { checkOutputDirectory, checkOutputFile } from "./outputs.ts";
import { TrainingProgress } from "./progress.ts";
import { checkResume } from "./resume.ts";
import { RUN_RECORD_FORMAT, writeRunRecord } from "./run_record.ts";
import { planRun, type RunPlan, type RunRequest, type RunSetup, setupRun } from "./setup.ts";

/** Options of {@link prepareTraining} and {@link runTraining}. */
export interface TrainingRunOptions {
  /** What to train. Its `train.checkpointDir` is where checkpoints go. */
  readonly request: RunRequest;
  /** Resume from this checkpoint. */
  readonly resume?: string;
  /** Resume from `<checkpointDir>/last.safetensors` when it exists (needs a checkpoint dir). */
  readonly continue?: boolean;
  /** Settings keys (`train.epochs`, …) the user set explicitly: safe ones may change on resume. */
  readonly explicit?: readonly string[];
  /** Stop after this many epochs in this call. */
  readonly maxEpochsThisRun?: number;
  /** Stop before an epoch that would end after this many seconds of this call. */
  readonly maxSecondsThisRun?: number;
  /** When training is over, save the run record here. */
  readonly record?: string;
  /** The command that trains this run again, for the record. */
  readonly command?: string;
  /** How errors name a settings key (e.g. with its command-line flag). */
  readonly label?: (key: string) => string;
  /** What a settings mismatch error advises. */
  readonly resumeAdvice?: string;
  /** Receives the lines for people (the run's summary); progress follows `train.verbose`. */
  readonly log?: (line: string) => void;
}

/** A checked training command, before any GPU or data work. */
export interface PreparedTraining {
  /** The checked request. */
  readonly plan: RunPlan;
  /** The checkpoint to resume from, if any. */
  readonly resumeFrom: string | undefined;
  /** Settings keys allowed to differ from the resumed checkpoint's. */
  readonly resumeChanges: readonly string[];
}

/** What {@link runTraining} returns. */
export interface TrainingRun {
  /** The model, the data and the configuration trained with. */
  readonly setup: RunSetup;
  /** The checkpoint this call resumed from, if any. */
  readonly resumedFrom: string | undefined;
  /** The outcome. */
  readonly result: TrainResult;
  /** Where the run record was written by this call, if it was. */
  readonly recordWritten: string | undefined;
}

/**
 * Every check that needs neither the GPU nor the data: the request ({@link planRun}), the output
 * paths, which checkpoint to resume from and whether its settings match.
 */
export async function prepareTraining(options: TrainingRunOptions): Promise<PreparedTraining> {
  const plan = planRun(options.request);
  const dir = plan.config.checkpointDir;
  if (options.continue && !dir) {
    throw new ConfigError(
      "continuing needs a checkpoint directory (it resumes from DIR/last.safetensors)",
      "checkpointDir",
    );
  }
  if (dir) {
    await checkOutputDirectory(options.label?.("train.checkpointDir") ?? "checkpoint dir", dir);
  }
  if (options.record) await checkOutputFile(options.label?.("record") ?? "record", options.record);
  let resumeFrom = options.resume;
  if (options.continue && dir && resumeFrom === undefined) {
    const last = join(dir, "last.safetensors");
    if (await pathExists(last)) resumeFrom = last;
  }
  if (resumeFrom !== undefined && !(await pathExists(resumeFrom))) {
    throw new Deno.errors.NotFound(`checkpoint ${resumeFrom} not found`);
  }
  const resumeChanges = resumeFrom === undefined ? [] : await checkResume(plan, resumeFrom, {
    explicit: options.explicit ?? [],
    label: options.label,
    advice: options.resumeAdvice,
  });
  return { plan, resumeFrom, resumeChanges };
}

/**
 * How a run's histories reach the model: the window length L (padded models), or whole, cut or
 * padded histories and the masking ratio ρ (packed models).
 */
function historyText({ model, config }: RunSetup): string {
  if (model.layout !== "packed") return `L = ${config.maxLength}`;
  const { maskRatio, varLen } = packedTrainSettings(config);
  const histories = config.padTo !== undefined
    ? `windows padded to ${config.padTo} tokens`
    : varLen
    ? "whole histories"
    : `histories cut to L = ${config.maxLength}`;
  return `${histories}, ρ = ${maskRatio}`;
}

/** The one-line summary of a set-up run: model, data, parameters, histories, adapter. */
function setupLine(setup: RunSetup): string {
  const { model, dataset } = setup;
  return `${model.name} on ${dataset.name} (${dataset.numUsers - 1} users, ${
    dataset.numItems - 1
  } items; ${setup.fromCache ? "from cache" : "processed"} in ${
    setup.loadSeconds.toFixed(2)
  } s), ${model.params.count()} parameters, ${historyText(setup)}, on ${setup.adapter}`;
}

/**
 * Prepares ({@link prepareTraining}), sets up ({@link setupRun}) and trains, then writes the run
 * record when training is over (a call that only resumed a finished run leaves an existing
 * record as it is).
 */
export async function runTraining(options: TrainingRunOptions): Promise<TrainingRun> {
  const { plan, resumeFrom, resumeChanges } = await prepareTraining(options);
  const setup = await setupRun(plan);
  const { model, dataset, config } = setup;
  options.log?.(setupLine(setup));
  if (resumeFrom && options.continue) options.log?.(`continuing from ${resumeFrom}`);
  const result = await train(model, dataset, config, {
    resumeFrom,
    resumeChanges,
    maxEpochsThisRun: options.maxEpochsThisRun,
    maxSecondsThisRun: options.maxSecondsThisRun,
    observer: new TrainingProgress(config.verbose, config.validMetric),
  });
  let recordWritten: string | undefined;
  const record = options.record;
  if (record && result.complete && (result.epochsThisRun > 0 || !(await pathExists(record)))) {
    await writeRunRecord(record, {
      format: RUN_RECORD_FORMAT,
      model: model.name,
      dataset: dataset.name,
      users: dataset.numUsers - 1,
      items: dataset.numItems - 1,
      adapter: setup.adapter,
      finishedAt: new Date().toISOString(),
      command: options.command ?? "",
      modelConfig: { ...model.config },
      trainConfig: config,
      parameters: model.params.count(),
      result,
    });
    recordWritten = record;
    options.log?.(`run recorded in ${record}`);
  }
  return { setup, resumedFrom: resumeFrom, result, recordWritten };
}
