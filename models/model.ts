/**
 * What the trainer and the evaluator need from a sequential recommender, for each input layout:
 * padded batches (`[B, L]` rows, right-padded with 0) or packed batches (every history
 * concatenated into one row with a segment id per token, no padding).
 *
 * @module
 */
import type { DropoutRng } from "../ops/pointwise/dropout.ts";
import type { Tensor } from "../ops/core/tensor.ts";
import type { ParameterSet } from "./parameters.ts";
import type { PackedModelInputs } from "./ssd4rec.ts";

/** How a model takes its batches: padded `[B, L]` rows, or all histories packed into one row. */
export type InputLayout = "padded" | "packed";

/** A padded batch on the GPU. */
export interface ModelInputs {
  /** Item ids `[B, L]` (i32), left-aligned, right-padded with 0. */
  readonly items: Tensor;
  /** Each row's last real position, `length − 1` (i32 `[B]`); absent for every-position output. */
  readonly positions?: Tensor;
  /**
   * Each row's user id (i32 `[B]`), for a model with a user embedding (Caser); the prefix and
   * evaluation batches upload it, every-position batches do not.
   */
  readonly users?: Tensor;
}

/**
 * What checkpoints, the optimizer and the ranking need from a model, whatever its inputs: its
 * name and configuration, its parameters, its dropout stream and the item table it scores with.
 */
export interface ModelBase {
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
}

/**
 * A sequential recommender scored against a (tied) item table, taking batches of type `Inputs`
 * (default: padded).
 */
export interface SequentialModel<Inputs = ModelInputs> extends ModelBase {
  /**
   * The representation of each sample, `[B, d]` (padded inputs: with `positions`; without them
   * every position, `[B, L, d]`).
   */
  readonly forward: (inputs: Inputs, training: boolean) => Tensor;
}

/**
 * A prefix-sample training batch on the host, as the trainer hands it to a padded model with its
 * own training objective ({@link PaddedModel.trainingLoss}).
 */
export interface PaddedTrainingBatch {
  /** Samples. */
  readonly size: number;
  /** Window length L. */
  readonly maxLength: number;
  /** Item ids `[size, L]`, left-aligned, right-padded with 0. */
  readonly items: Int32Array;
  /** Real items per window. */
  readonly lengths: Int32Array;
  /** The item that follows each window. */
  readonly targets: Int32Array;
  /** Each sample's user id. */
  readonly users: Int32Array;
}

/**
 * Where a training batch sits, for a model that draws per batch (e.g. the items it masks): the
 * run's seed, the epoch (from 0) and the batch's index in its epoch. The same triple must give
 * the same draw, so that a resumed run repeats an interrupted one.
 */
export interface TrainingBatchPosition {
  /** The run's seed. */
  readonly seed: number;
  /** Epoch, from 0. */
  readonly epoch: number;
  /** Batch index within the epoch, from 0. */
  readonly batch: number;
}

/** A model on padded batches (a model that names no layout takes padded batches). */
export interface PaddedModel extends SequentialModel<ModelInputs> {
  /** The input layout: padded (or left out). */
  readonly layout?: "padded";
  /**
   * True for a model that represents a window only at its last real item (NARM's attention reads
   * that item's state), so it cannot train on every position ("all-positions").
   */
  readonly lastItemOnly?: boolean;
  /**
   * The model's own training loss on a prefix batch (call inside `tidy`), for objectives other
   * than the cross-entropy of the item after each window (BERT4Rec's masked items, a
   * regularised loss); without it the trainer takes that cross-entropy of `forward`.
   */
  readonly trainingLoss?: (batch: PaddedTrainingBatch, at: TrainingBatchPosition) => Tensor;
  /**
   * The ids the model ranks a validation or test batch from, in place of its windows (`[size, L]`
   * ids, left-aligned, right-padded, with `lengths` real items each), for a model whose
   * evaluation input is not the window itself (BERT4Rec appends its mask token and drops the
   * oldest item). Returns a new `[size, L]` array and leaves `items` as it is; the representation
   * is still taken at each row's `length − 1`. Without it the windows are ranked as they are.
   */
  readonly rankingItems?: (
    items: Int32Array,
    lengths: Int32Array,
    size: number,
    maxLength: number,
  ) => Int32Array;
}

/** A model on packed batches. */
export interface PackedModel extends SequentialModel<PackedModelInputs> {
  /** The input layout: packed. */
  readonly layout: "packed";
  /** The hyperparameters; `chunkSize` is the SSD scan's chunk its packed inputs are built with. */
  readonly config: { readonly chunkSize: number };
}

/** Any model the trainer and the evaluator take, told apart by its `layout`. */
export type TrainableModel = PaddedModel | PackedModel;

/** The input layout of `model`. */
export function layoutOf(model: { readonly layout?: InputLayout }): InputLayout {
  return model.layout ?? "padded";
}
