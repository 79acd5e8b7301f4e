/**
 * The RecBole v1.2.0 training loop for any {@link TrainableModel}: Adam, shuffled prefix
 * samples, cross-entropy over all items with the tied item table, full-ranking validation every
 * epoch, early stopping on the validation metric with the "≥ best" rule, and the test with the
 * best checkpoint. The model's input layout picks the batches: padded `[B, L]` windows, or
 * packed whole histories masked with probability ρ in training (`./layouts.ts`).
 *
 * A step encodes its whole forward, backward and update without waiting on the GPU; each step's
 * loss is written into a GPU buffer that is read back a few times per epoch (NaN/Inf checks) and
 * at its end (the learning curve).
 *
 * Micro-batches: a step whose batch would bind a tensor larger than the device's storage binding
 * limit is cut into micro-batches (`./micro_batches.ts`), run forward and backward one after
 * another with their gradients summed in the parameters' `grad`, then one optimizer step: the
 * update is the whole batch's to rounding, and the step's loss (the micro-batches' weighted
 * losses summed) is the whole batch's mean. How many is not estimated from the model (each model
 * binds its own intermediates, which only it knows): the runtime refuses such a tensor when it is
 * allocated, before any work that reads it is encoded, and the trainer catches that refusal,
 * drops what the attempt built (its tensors, its gradients, its dropout draws) and runs the step
 * again in micro-batches of half as many samples, until one fits. The size found holds for the
 * rest of the run, so only the first step too large for the device is repeated; a run resumed
 * in another process finds it again. A step that fits runs whole, exactly as without
 * micro-batches. `microBatchSize` in the configuration fixes the size instead. Models with their
 * own objective (`trainingLoss`) are never cut: their steps fail with a `ConfigError`.
 *
 * The trainer prints nothing: a {@link TrainingObserver} passed by the caller is told of the steps
 * queued within an epoch (on the host clock, no GPU wait), each finished epoch and the result.
 *
 * @module
 */
import { join } from "node:path";
import { pathExists } from "../../host/mod.ts";
import type { SequentialDataset } from "../../data/dataset.ts";
import { backward, zeroGrad } from "../../ops/core/autograd.ts";
import { accumulateInto, writeAt, zeros } from "../../ops/pointwise/elementwise.ts";
import { DropoutRng } from "../../ops/pointwise/dropout.ts";
import { Adam } from "../../ops/training/optimizer.ts";
import {
  type MemoryStats,
  memoryStats,
  releasePooledMemory,
  resetPeakMemory,
  runtime,
} from "../../ops/core/runtime.ts";
import { type Tensor, tidy } from "../../ops/core/tensor.ts";
import { loadTensors, readCheckpoint, runSettings } from "./checkpoint.ts";
import {
  type EpochRecord,
  prefixed,
  resume,
  saveCheckpoint,
  snapshot,
  type TrainerState,
} from "./training_state.ts";
import { ConfigError, packedTrainSettings, type TrainConfig } from "../config.ts";
import { evaluateRanking, type EvaluationOptions, type Metrics } from "./evaluator.ts";
import type { TrainableModel } from "../model.ts";
import { checkLayoutSettings, type TrainingStep, trainingSteps } from "./layouts.ts";
import { isBindingLimitError, tidyOrThrow } from "./micro_batches.ts";

export type { EpochRecord } from "./training_state.ts";

/** What {@link train} returns. */
export interface TrainResult {
  /** Every epoch run, in order (resumed runs include the earlier epochs). */
  readonly history: EpochRecord[];
  /** The epoch whose weights were tested, from 0 (as {@link EpochRecord.epoch}). */
  readonly bestEpoch: number;
  /** Validation metrics of the best epoch. */
  readonly bestValid: Metrics;
  /** Test metrics with the best epoch's weights. */
  readonly test: Metrics;
  /** Whether early stopping ended the run. */
  readonly stoppedEarly: boolean;
  /**
   * Whether training is over (early stopping, or the epoch limit reached). False when this call
   * stopped at `maxEpochsThisRun` or `maxSecondsThisRun`: resume from `last.safetensors` to go on.
   */
  readonly complete: boolean;
  /** Mean training time per epoch (seconds) over this run's epochs. */
  readonly secondsPerEpoch: number;
  /** Epochs trained by this call (0 when it resumed a finished run). */
  readonly epochsThisRun: number;
}

/**
 * Thrown when a step's loss is NaN or Inf; training stops and the checkpoints of the finished
 * epochs stay as they were.
 */
export class TrainingDivergedError extends Error {
  /**
   * The error for the first step whose loss was not finite.
   * @param step global step (from 1) whose loss was not finite
   * @param epoch its epoch, from 0 (the message numbers epochs from 1)
   * @param checkpoint the newest good checkpoint (`last.safetensors`, which resuming uses), if any
   */
  constructor(readonly step: number, readonly epoch: number, readonly checkpoint: string | null) {
    super(
      `training diverged: the loss of step ${step} (epoch ${epoch + 1}) is NaN or Inf; ` +
        (checkpoint
          ? `the newest good checkpoint is ${checkpoint} (end of the previous epoch)`
          : "no checkpoint was written") +
        ". Resuming would diverge the same way: train from the start with a lower learning " +
        "rate (learningRate, --lr) or with gradient clipping (clipGradNorm, --clip-grad-norm).",
    );
    this.name = "TrainingDivergedError";
  }
}

/** How far an epoch's training has got, as the host queued its steps. */
export interface StepProgress {
  /** The epoch, from 0. */
  readonly epoch: number;
  /** Steps queued so far in this epoch. */
  readonly step: number;
  /** Steps in this epoch. */
  readonly steps: number;
  /** Training samples in the steps queued so far. */
  readonly samples: number;
  /** History tokens in the steps queued so far (packed-batch models only). */
  readonly tokens?: number;
  /** Of those, the tokens masked to id 0 (packed-batch models only). */
  readonly maskedTokens?: number;
  /**
   * Seconds since the epoch began, on the host clock. The GPU may still be working on the last
   * queued steps; it catches up at each loss check (every `lossCheckEvery` steps).
   */
  readonly seconds: number;
}

/** Told of training's progress; every method is optional. */
export interface TrainingObserver {
  /** After each step is queued (no GPU wait): how far the current epoch has got. */
  stepsProgressed?(progress: StepProgress): void;
  /** After an epoch is validated and checkpointed; `best` is the best validation score so far. */
  epochFinished?(record: EpochRecord, improved: boolean, best: number): void;
  /** After the best epoch's weights were tested. */
  trainingFinished?(result: TrainResult): void;
  /**
   * When steps begin to be cut into micro-batches of `samples` samples because a step of
   * `stepSize` samples bound more than the device's storage binding limit (see the module
   * documentation); training goes on, slower.
   */
  microBatchesChosen?(samples: number, stepSize: number): void;
}

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
 * Checkpoints (`best.safetensors`, `last.safetensors` under `config.checkpointDir`) hold the
 * weights, Adam's moments, the dropout stream and the trainer state. Settings the model's layout
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
      if (bestPath) await saveCheckpoint(bestPath, model, adam, state, config, settings);
      else bestInMemory = await snapshot(model);
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

/** What one epoch's training gives the epoch's record. */
interface TrainedEpoch {
  /** Mean training loss. */
  readonly loss: number;
  /** Tokens trained ({@link EpochRecord.tokens}). */
  readonly tokens: number;
}

/**
 * Tokens a step trains, as {@link EpochRecord.tokens} counts them: a packed batch's history
 * tokens, or B × L of a padded batch's windows (padding included).
 */
function stepTokens(model: TrainableModel, step: TrainingStep, config: TrainConfig): number {
  return model.layout === "packed" ? step.tokens ?? 0 : step.size * config.maxLength;
}

/** The optimizer and the micro-batch plan every step of a run uses. */
interface StepTools {
  readonly adam: Adam;
  readonly microBatches: MicroBatchPlan;
}

async function trainEpoch(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  { adam, microBatches }: StepTools,
  state: TrainerState,
  lastGood: string | null,
  observer: TrainingObserver,
): Promise<TrainedEpoch> {
  const steps = trainingSteps(model, dataset, config, state.epoch);
  const losses = zeros([steps.batchCount]);
  const params = model.params.list();
  let i = 0, checked = 0, samples = 0, tokens = 0, maskedTokens = 0, epochTokens = 0;
  const packed = model.layout === "packed";
  const start = performance.now();
  const check = async (upTo: number) => {
    const host = await losses.toArray();
    for (let k = checked; k < upTo; k++) {
      if (!Number.isFinite(host[k])) {
        losses.dispose();
        const kept = lastGood && (await pathExists(lastGood)) ? lastGood : null;
        throw new TrainingDivergedError(state.step - i + k + 1, state.epoch, kept);
      }
    }
    checked = upTo;
    return host;
  };
  for (const step of steps) {
    try {
      tidy(() => {
        const loss = stepGradients(model, step, microBatches);
        adam.step();
        zeroGrad(params);
        writeAt(losses, loss, i);
      });
    } finally {
      step.release();
    }
    i++;
    state.step++;
    samples += step.size;
    tokens += step.tokens ?? 0;
    maskedTokens += step.maskedTokens ?? 0;
    epochTokens += stepTokens(model, step, config);
    observer.stepsProgressed?.({
      epoch: state.epoch,
      step: i,
      steps: steps.batchCount,
      samples,
      ...(packed ? { tokens, maskedTokens } : {}),
      seconds: (performance.now() - start) / 1000,
    });
    if (i % config.lossCheckEvery === 0) await check(i);
  }
  const host = await check(i);
  losses.dispose();
  let sum = 0;
  for (const v of host) sum += v;
  return { loss: sum / Math.max(host.length, 1), tokens: epochTokens };
}

/**
 * How the trainer cuts steps into micro-batches (see the module documentation): not at all, until
 * a step binds more than the device allows, then into micro-batches of the samples that fitted;
 * or always into `microBatchSize` samples when the configuration fixes it.
 */
class MicroBatchPlan {
  #samples: number | undefined;
  readonly #fixed: boolean;
  readonly #observer: TrainingObserver;

  constructor(microBatchSize: number | undefined, observer: TrainingObserver) {
    this.#samples = microBatchSize;
    this.#fixed = microBatchSize !== undefined;
    this.#observer = observer;
  }

  /** Samples per micro-batch for a step of `size` samples (`size`: the whole batch). */
  samplesFor(size: number): number {
    return Math.min(size, this.#samples ?? size);
  }

  /**
   * After micro-batches of `samples` samples of a step of `size` bound a tensor larger than the
   * device allows (`error`): halves them, or throws when they are fixed or already one sample.
   */
  shrink(size: number, samples: number, error: RangeError): void {
    if (this.#fixed) {
      throw new ConfigError(
        `training: micro-batches of ${samples} samples ('microBatchSize') still bind more ` +
          `than this device allows: ${error.message}; lower 'microBatchSize' or leave it out`,
        "microBatchSize",
      );
    }
    if (samples === 1) {
      throw new RangeError(
        `training: a step cut into micro-batches of one sample still binds more than this ` +
          `device allows (a tensor that does not shrink with the batch): ${error.message}`,
        { cause: error },
      );
    }
    this.#samples = Math.ceil(samples / 2);
    this.#observer.microBatchesChosen?.(this.#samples, size);
  }
}

/**
 * Runs a step's forward and backward, whole or in micro-batches as `plan` says, leaving the
 * batch's gradient in the parameters' `grad`; returns the step's mean loss `[]`. A binding-limit
 * refusal drops the attempt (its tensors, the gradients it added, its dropout draws) and
 * retries with smaller micro-batches. Call inside `tidy`.
 */
function stepGradients(model: TrainableModel, step: TrainingStep, plan: MicroBatchPlan): Tensor {
  const params = model.params.list();
  for (;;) {
    const samples = plan.samplesFor(step.size);
    const dropout = model.dropoutRng.state();
    try {
      return tidyOrThrow(() => {
        if (samples >= step.size) {
          const loss = step.loss();
          backward(loss);
          return loss;
        }
        const total = zeros([]);
        for (const micro of step.microBatches(samples)) {
          try {
            tidyOrThrow(() => {
              const share = micro.loss();
              backward(share);
              accumulateInto(total, share);
            });
          } finally {
            micro.release();
          }
        }
        return total;
      });
    } catch (error) {
      if (!isBindingLimitError(error)) throw error;
      zeroGrad(params);
      model.dropoutRng = DropoutRng.fromState(dropout);
      plan.shrink(step.size, samples, error);
    }
  }
}
