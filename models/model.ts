/**
 * What the trainer and the evaluator need from a sequential recommender.
 *
 * @module
 */
import type { DropoutRng } from "../ops/pointwise/dropout.ts";
import type { Tensor } from "../ops/core/tensor.ts";
import type { ParameterSet } from "./parameters.ts";

/** A batch on the GPU. */
export interface ModelInputs {
  /** Item ids `[B, L]` (i32), left-aligned, right-padded with 0. */
  readonly items: Tensor;
  /** Each row's last real position, `length − 1` (i32 `[B]`); absent for every-position output. */
  readonly positions?: Tensor;
}

/** A sequential recommender scored against a (tied) item table. */
export interface SequentialModel {
  /** Model name, as checkpoints record it. */
  readonly name: string;
  /** The hyperparameters, as checkpoints record them. */
  readonly config: object;
  /** Trainable parameters by name. */
  readonly params: ParameterSet;
  /** The dropout stream, whose state checkpoints keep (replaced when resuming). */
  dropoutRng: DropoutRng;
  /** The item table `[numItems, d]` that scores are taken against: `h · tableᵀ`. */
  readonly itemTable: Tensor;
  /** `[B, d]` with `positions`, else `[B, L, d]`. */
  forward(inputs: ModelInputs, training: boolean): Tensor;
}
