/**
 * One training step's forward and backward, whole or cut into micro-batches.
 *
 * A step whose batch would bind a tensor larger than the device's storage binding limit is cut
 * into micro-batches (`./micro_batches.ts`), run forward and backward one after another with
 * their gradients summed in the parameters' `grad`, then one optimizer step: the update is the
 * whole batch's to rounding, and the step's loss (the micro-batches' weighted losses summed) is
 * the whole batch's mean. How many is not estimated from the model (each model binds its own
 * intermediates, which only it knows): the runtime refuses such a tensor when it is allocated,
 * before any work that reads it is encoded, and the trainer catches that refusal, drops what the
 * attempt built (its tensors, its gradients, its dropout draws) and runs the step again in
 * micro-batches of half as many samples, until one fits. The size found holds for the rest of
 * the run, so only the first step too large for the device is repeated; a run resumed in another
 * process finds it again. A step that fits runs whole, exactly as without micro-batches.
 * `microBatchSize` in the configuration fixes the size instead. Models with their own objective
 * (`trainingLoss`) are never cut: their steps fail with a `ConfigError`.
 *
 * @module
 */
import { backward, zeroGrad } from "../../ops/core/autograd.ts";
import { accumulateInto, zeros } from "../../ops/pointwise/elementwise.ts";
import { DropoutRng } from "../../ops/pointwise/dropout.ts";
import type { Tensor } from "../../ops/core/tensor.ts";
import { ConfigError } from "../config.ts";
import type { TrainableModel } from "../model.ts";
import type { TrainingStep } from "./layouts.ts";
import { isBindingLimitError, tidyOrThrow } from "./micro_batches.ts";
import type { TrainingObserver } from "./training_observer.ts";

/**
 * How the trainer cuts steps into micro-batches (see the module documentation): not at all, until
 * a step binds more than the device allows, then into micro-batches of the samples that fitted;
 * or always into `microBatchSize` samples when the configuration fixes it.
 */
export class MicroBatchPlan {
  #samples: number | undefined;
  readonly #fixed: boolean;
  readonly #observer: TrainingObserver;

  /**
   * A plan for a run.
   * @param microBatchSize the configuration's fixed micro-batch size, if any
   * @param observer told when steps begin to be cut ({@link TrainingObserver.microBatchesChosen})
   */
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
export function stepGradients(
  model: TrainableModel,
  step: TrainingStep,
  plan: MicroBatchPlan,
): Tensor {
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
