/**
 * One epoch of training: every step of the epoch's batches encoded without waiting on the GPU,
 * each step's loss written into a GPU buffer that is read back every `lossCheckEvery` steps
 * (NaN/Inf checks, {@link TrainingDivergedError}; each readback looked at one check later, see
 * `loss_checks.ts`) and at the epoch's end (its mean loss).
 *
 * @module
 */
import { pathExists } from "../../host/mod.ts";
import type { SequentialDataset } from "../../data/dataset.ts";
import { zeroGrad } from "../../ops/core/autograd.ts";
import { writeAt, zeros } from "../../ops/pointwise/elementwise.ts";
import type { Adam } from "../../ops/training/optimizer.ts";
import { tidy } from "../../ops/core/tensor.ts";
import type { TrainConfig } from "../config.ts";
import type { TrainableModel } from "../model.ts";
import { type TrainingStep, trainingSteps } from "./layouts.ts";
import { type MicroBatchPlan, stepGradients } from "./step_gradients.ts";
import type { TrainerState } from "./training_state.ts";
import type { TrainingObserver } from "./training_observer.ts";
import { LossChecks } from "./loss_checks.ts";

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

/** What one epoch's training gives the epoch's record. */
export interface TrainedEpoch {
  /** Mean training loss. */
  readonly loss: number;
  /** Tokens trained (as `EpochRecord.tokens`). */
  readonly tokens: number;
}

/**
 * Tokens a step trains, as `EpochRecord.tokens` counts them: a packed batch's history
 * tokens, or B × L of a padded batch's windows (padding included).
 */
function stepTokens(model: TrainableModel, step: TrainingStep, config: TrainConfig): number {
  return model.layout === "packed" ? step.tokens ?? 0 : step.size * config.maxLength;
}

/** The optimizer and the micro-batch plan every step of a run uses. */
export interface StepTools {
  /** The optimizer. */
  readonly adam: Adam;
  /** How steps are cut into micro-batches. */
  readonly microBatches: MicroBatchPlan;
}

/**
 * Trains `model` for the epoch `state.epoch` (advancing `state.step`), telling `observer` of each
 * step queued. Throws {@link TrainingDivergedError} for a loss that is not finite, naming
 * `lastGood` when it exists.
 */
export async function trainEpoch(
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
  let i = 0, samples = 0, tokens = 0, maskedTokens = 0, epochTokens = 0;
  const packed = model.layout === "packed";
  const start = performance.now();
  // Each loss finite, or the error naming its step.
  const checks = new LossChecks(losses, config.lossCheckEvery, async (host, from, upTo) => {
    for (let k = from; k < upTo; k++) {
      if (!Number.isFinite(host[k])) {
        losses.dispose();
        const kept = lastGood && (await pathExists(lastGood)) ? lastGood : null;
        throw new TrainingDivergedError(state.step - i + k + 1, state.epoch, kept);
      }
    }
  });
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
    await checks.afterStep(i);
  }
  const host = await checks.finish(i);
  losses.dispose();
  let sum = 0;
  for (const v of host) sum += v;
  return { loss: sum / Math.max(host.length, 1), tokens: epochTokens };
}
