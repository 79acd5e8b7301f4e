/**
 * The RecBole v1.2.0 training loop for any {@link TrainableModel}: Adam, shuffled prefix
 * samples, cross-entropy over all items with the tied item table, full-ranking validation every
 * epoch, early stopping on the validation metric with the "≥ best" rule, and the test with the
 * best checkpoint. The model's input layout picks the batches: padded `[B, L]` windows, or
 * packed whole histories masked with probability ρ in training (`./layouts.ts`).
 *
 * A step encodes its whole forward, backward and update without waiting on the GPU
 * (`./train_epoch.ts`); a step too large for the device is cut into micro-batches
 * (`./step_gradients.ts`).
 *
 * The trainer prints nothing: a {@link TrainingObserver} passed by the caller is told of the steps
 * queued within an epoch (on the host clock, no GPU wait), each finished epoch and the result.
 *
 * @module
 */
import { join } from "node:path";
import type { SequentialDataset } from "../../data/dataset.ts";
import { Adam } from "../../ops/training/optimizer.ts";
import {
  type MemoryStats,
  memoryStats,
  releasePooledMemory,
  resetPeakMemory,
  runtime,
} from "../../ops/core/runtime.ts";
import { loadTensors, readCheckpoint, runSettings } from "./checkpoint.ts";
import {
  type EpochRecord,
  prefixed,
  resume,
  saveCheckpoint,
  snapshot,
  type TrainerState,
} from "./training_state.ts";
import { packedTrainSettings, type TrainConfig } from "../config.ts";
import { evaluateRanking, type EvaluationOptions } from "./evaluator.ts";
import type { TrainableModel } from "../model.ts";
import { checkLayoutSettings } from "./layouts.ts";
import { MicroBatchPlan } from "./step_gradients.ts";
import { trainEpoch } from "./train_epoch.ts";
import type { TrainingObserver, TrainResult } from "./training_observer.ts";

export type { EpochRecord } from "./training_state.ts";
export type { StepProgress, TrainingObserver, TrainResult } from "./training_observer.ts";
export { TrainingDivergedError } from "./train_epoch.ts";

/** Options of {@link train} beyond the configuration. */
export interface TrainOptions {
  /**
   * Resume from this checkpoint (written by an earlier run's `last.safetensors`). Its stored run
   * settings must equal this run's ({@link runSettings}), except the keys in `resumeChanges`.
   */
  readonly resumeFrom?: string;
  /**
   * Settings keys (`train.epochs`, …) allowed to differ from the resumed checkpoint's; normally
   * those of `RESUME_SAFE_SETTINGS` that the user set on purpose. Default: none.
   */
  readonly resumeChanges?: readonly string[];
  /** Told of the steps, the epochs and the result as training goes. */
  readonly observer?: TrainingObserver;
  /** Stop after this many epochs in this call (to split a long run across processes). */
  readonly maxEpochsThisRun?: number;
  /**
   * Stop before an epoch that would end more than this many seconds after the call began,
   * judged by the longest epoch (training and validation) so far: for hosts that cap a command's
   * time. Every call runs at least one epoch. Resume from `last.safetensors` to go on.
   */
  readonly maxSecondsThisRun?: number;
}

/**
 * Trains `model` on `dataset` with RecBole's protocol, then tests the best epoch's weights.
 * Checkpoints under `config.checkpointDir`: `last.safetensors` holds the weights, Adam's moments,
 * the dropout stream and the trainer state (what resuming reads); `best.safetensors` the best
 * epoch's weights and metadata, without Adam's moments. Settings the model's layout
 * cannot use (`maskRatio` for a padded model, …) fail at once with a `ConfigError`.
 */
export async function train(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  options: TrainOptions = {},
): Promise<TrainResult> {
  checkLayoutSettings(model, config);
  const params = model.params.list();
  const adam = new Adam(params, {
    lr: config.learningRate,
    weightDecay: config.weightDecay,
    maxGradNorm: config.clipGradNorm ?? undefined,
  });
  const state: TrainerState = {
    epoch: 0,
    step: 0,
    best: -Infinity,
    bestEpoch: -1,
    bestValid: {},
    stale: 0,
    history: [],
  };
  const dir = config.checkpointDir;
  const bestPath = dir ? join(dir, "best.safetensors") : null;
  const lastPath = dir ? join(dir, "last.safetensors") : null;
  let bestInMemory: Float32Array[] | null = null;
  const settings = runSettings(model, dataset.name, config);
  const resumeFrom = options.resumeFrom;
  if (resumeFrom) await resume(resumeFrom, model, adam, state, settings, options.resumeChanges);

  const observer = options.observer ?? {};
  const microBatches = new MicroBatchPlan(config.microBatchSize, observer);
  const validKey = config.validMetric.toLowerCase();
  let stoppedEarly = state.stale > config.stoppingStep;
  let epochsRun = 0, trainSecondsTotal = 0, longestEpoch = 0;
  const callStart = performance.now();
  while (!stoppedEarly && state.epoch < config.epochs) {
    if (options.maxEpochsThisRun !== undefined && epochsRun >= options.maxEpochsThisRun) break;
    const elapsed = (performance.now() - callStart) / 1000;
    // At least one epoch per call, so a run always advances.
    if (
      options.maxSecondsThisRun !== undefined && epochsRun > 0 &&
      elapsed + longestEpoch > options.maxSecondsThisRun
    ) break;
    const epoch = state.epoch;
    const t0 = performance.now();
    resetPeakMemory();
    const trained = await trainEpoch(
      model,
      dataset,
      config,
      { adam, microBatches },
      state,
      lastPath,
      observer,
    );
    const trainedMemory = memoryStats();
    const trainSeconds = (performance.now() - t0) / 1000;
    // Training's and evaluation's tensors have different sizes: each phase starts with an empty
    // pool rather than beside the other's free buffers (see the evaluator's module doc).
    await releasePooledMemory();
    resetPeakMemory();
    const valid = await evaluateRanking(model, dataset, "valid", rankingOptions(model, config));
    const validMemory = memoryStats();
    await releasePooledMemory();
    const record: EpochRecord = {
      epoch,
      loss: trained.loss,
      valid: valid.metrics,
      trainSeconds,
      evalSeconds: valid.seconds,
      peakLiveBytes: trainedMemory.peakLiveBytes,
      peakByPurpose: peakParts(trainedMemory),
      evalPeakLiveBytes: validMemory.peakLiveBytes,
      evalPeakByPurpose: peakParts(validMemory),
      tokens: trained.tokens,
      tokensPerSecond: trainSeconds > 0 ? trained.tokens / trainSeconds : 0,
    };
    state.history.push(record);
    state.epoch++;
    epochsRun++;
    trainSecondsTotal += trainSeconds;
    const score = valid.metrics[validKey];
    const improved = score >= state.best;
    if (improved) {
      state.best = score;
      state.bestEpoch = epoch;
      state.bestValid = valid.metrics;
      state.stale = 0;
      if (bestPath) {
        await saveCheckpoint(bestPath, model, adam, state, config, settings, { weightsOnly: true });
      } else bestInMemory = await snapshot(model);
    } else {
      state.stale++;
      stoppedEarly = state.stale > config.stoppingStep;
    }
    if (lastPath) await saveCheckpoint(lastPath, model, adam, state, config, settings);
    longestEpoch = Math.max(longestEpoch, (performance.now() - t0) / 1000);
    observer.epochFinished?.(record, improved, state.best);
  }
  // Test with the best epoch's weights (RecBole's load_best_model=True).
  if (bestPath && state.bestEpoch >= 0) {
    loadTensors(await readCheckpoint(bestPath), prefixed("model.", model.params.entries()));
  } else if (bestInMemory) {
    model.params.list().forEach((t, i) => runtime().write(t.storage, bestInMemory![i]));
  }
  const test = await evaluateRanking(model, dataset, "test", rankingOptions(model, config));
  const result: TrainResult = {
    history: state.history,
    bestEpoch: state.bestEpoch,
    bestValid: state.bestValid,
    test: test.metrics,
    stoppedEarly,
    complete: stoppedEarly || state.epoch >= config.epochs,
    secondsPerEpoch: epochsRun > 0 ? trainSecondsTotal / epochsRun : 0,
    epochsThisRun: epochsRun,
  };
  observer.trainingFinished?.(result);
  return result;
}

/** What a peak was made of: each purpose's bytes at that moment (`pool`: free pooled bytes). */
function peakParts(stats: MemoryStats): Record<string, number> {
  return Object.fromEntries(
    Object.entries(stats.byPurpose).map(([purpose, bytes]) => [purpose, bytes.atPeakBytes]),
  );
}

/** How validation and test rank, from the training configuration. */
function rankingOptions(model: TrainableModel, config: TrainConfig): EvaluationOptions {
  return {
    maxLength: config.maxLength,
    batchSize: config.evalBatchSize,
    ks: config.topk,
    ...(model.layout === "packed"
      ? { varLen: packedTrainSettings(config).varLen, padTo: config.padTo }
      : {}),
  };
}
