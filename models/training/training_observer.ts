/**
 * What the trainer reports: the result of a run ({@link TrainResult}), and the observer told of
 * the steps queued within an epoch, each finished epoch, the result, and the switch to
 * micro-batches ({@link TrainingObserver}).
 *
 * @module
 */
import type { EpochRecord } from "./training_state.ts";
import type { Metrics } from "./evaluator.ts";

/** What the trainer's `train` returns. */
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
   * queued steps; the host waits for it at each loss check (every `lossCheckEvery` steps) to have
   * finished the steps of the check before.
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
   * `stepSize` samples bound more than the device's storage binding limit (see
   * `./step_gradients.ts`); training goes on, slower.
   */
  microBatchesChosen?(samples: number, stepSize: number): void;
}
