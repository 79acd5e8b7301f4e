/**
 * The batches of each input layout, as the trainer and the evaluator use them: which batcher
 * yields them, how they are uploaded, and how a step's loss or a batch's representation is built.
 *
 * - Padded models: RecBole's prefix samples in `[B, L]` windows (or every position of each
 *   user's windows, `trainingMode: "all-positions"`), uploaded with {@link uploadSequences}.
 * - Packed models: SSD4Rec's packed batches (`packedBatches`): whole histories (or the last
 *   `maxLength` items with `varLen: false`), training histories masked to id 0 with probability
 *   ρ (`maskRatio`), uploaded with `packedInputs` at the model's scan chunk; the scan's chunk
 *   tables outlive `tidy`, so every step and batch is released after use. With `padTo` every
 *   history, in training and evaluation, is a left-padded window of that many tokens.
 *
 * Every training step can also be cut into micro-batches of consecutive samples whose weighted
 * losses sum to the step's (`./micro_batches.ts`; the trainer decides when), except the steps of
 * a model with its own objective. An evaluation batch whose forward would bind more than the
 * device's storage binding limit is represented in parts of fewer users.
 *
 * @module
 */
import type { SequentialDataset } from "../../data/dataset.ts";
import {
  type AllPositionsBatch,
  allPositionsBatches,
  evaluationBatches,
  type PrefixBatch,
  prefixBatches,
} from "../../data/batches.ts";
import type { BatchStream } from "../../data/batch_stream.ts";
import { type PackedBatch, packedBatches } from "../../data/packed_batches.ts";
import { itemCrossEntropy } from "../../ops/training/cross_entropy.ts";
import { embedding } from "../../ops/dense/embedding.ts";
import { reshape } from "../../ops/pointwise/elementwise.ts";
import { Tensor } from "../../ops/core/tensor.ts";
import {
  ConfigError,
  PACKED_TRAIN_KEYS,
  packedTrainSettings,
  type TrainConfig,
} from "../config.ts";
import {
  type InputLayout,
  layoutOf,
  type PackedModel,
  type PaddedModel,
  type TrainableModel,
} from "../model.ts";
import { packedInputs, type PackedModelInputs } from "../ssd4rec.ts";
import {
  allPositionsSlice,
  microBatchRanges,
  packedSlice,
  prefixSlice,
  rowsInParts,
  weighted,
} from "./micro_batches.ts";

/** One training step's batch. */
export interface TrainingStep {
  /** Training samples. */
  readonly size: number;
  /** History tokens of a packed batch (absent for padded batches). */
  readonly tokens?: number;
  /** Of those, the tokens masked to id 0 (absent for padded batches). */
  readonly maskedTokens?: number;
  /** Uploads the batch and builds the step's loss; call inside `tidy`, then {@link release}. */
  loss(): Tensor;
  /**
   * The batch cut into consecutive micro-batches of at most `samples` samples, whose losses sum
   * to {@link loss}'s and whose gradients to its gradient, to rounding (`./micro_batches.ts`):
   * each micro-batch's `loss()` is its share (its own mean loss times its part of the batch's
   * count), and its `release()` frees its upload after its backward.
   * Throws a {@link ConfigError} for a model with its own training objective (`trainingLoss`),
   * whose loss over a batch is not a weighted sum of its losses over parts of it (BERT4Rec's
   * masking is drawn for the whole batch and its loss is a mean over the masked positions).
   */
  microBatches(samples: number): Pick<TrainingStep, "size" | "loss" | "release">[];
  /** Frees what the upload keeps past `tidy` (the scan's chunk tables); call after the step. */
  release(): void;
}

/** One evaluation batch. */
export interface RankingBatch {
  /** Users. */
  readonly size: number;
  /** `[B]` target item ids. */
  readonly targets: Int32Array;
  /** Uploads the batch and builds its representations `[B, d]`; call inside `tidy`. */
  represent(): Tensor;
  /** Frees what the upload keeps past `tidy` (the scan's chunk tables); call after the batch. */
  release(): void;
}

/** What evaluation batches are built from. */
export interface RankingBatchOptions {
  /** Window length L (padded), or the history kept with `varLen: false` (packed). */
  readonly maxLength: number;
  /** Users per batch (default: the batcher's). */
  readonly batchSize?: number;
  /** Packed models: whole histories (true, the default) or the last `maxLength` items. */
  readonly varLen?: boolean;
  /** Packed models: windows of exactly this many tokens, left-padded (`packedBatches`' `padTo`). */
  readonly padTo?: number;
}

/** The stream `stream` with `f` applied to each batch. */
function mapStream<T, U>(stream: BatchStream<T>, f: (batch: T) => U): BatchStream<U> {
  return {
    batchCount: stream.batchCount,
    sampleCount: stream.sampleCount,
    *[Symbol.iterator]() {
      for (const batch of stream) yield f(batch);
    },
  };
}

/**
 * Uploads a prefix-layout batch: item ids `[B, L]`, last positions `length − 1`, and each row's
 * user id when `users` is given.
 */
export function uploadSequences(
  items: Int32Array,
  lengths: Int32Array,
  size: number,
  maxLength: number,
  users?: Int32Array,
): { items: Tensor; positions: Tensor; users?: Tensor } {
  const positions = new Int32Array(size);
  for (let i = 0; i < size; i++) positions[i] = Math.max(lengths[i] - 1, 0);
  return {
    items: Tensor.from(items.subarray(0, size * maxLength), [size, maxLength], "i32"),
    positions: Tensor.from(positions, [size], "i32"),
    ...(users ? { users: Tensor.from(users.subarray(0, size), [size], "i32") } : {}),
  };
}

/**
 * Fails with a {@link ConfigError} naming the key, its value and the model when `config` asks
 * for what the model's layout cannot do: packed-batch settings (`maskRatio`, `varLen`, `padTo`)
 * for a padded model, or `trainingMode: "all-positions"` for a packed one, one that represents
 * a window at its last real item only (`lastItemOnly`) or one with its own training objective
 * (a model's `trainingLoss`, a registry entry's `ownTrainingLoss`: it takes whole prefix
 * batches, so no `microBatchSize` either).
 */
export function checkLayoutSettings(
  model: {
    readonly name: string;
    readonly layout?: InputLayout;
    readonly lastItemOnly?: boolean;
    readonly trainingLoss?: unknown;
    readonly ownTrainingLoss?: boolean;
  },
  config: Pick<
    TrainConfig,
    "trainingMode" | "maskRatio" | "varLen" | "padTo" | "microBatchSize" | "targetsPerStep"
  >,
): void {
  if (config.targetsPerStep !== undefined && config.trainingMode !== "all-positions") {
    throw new ConfigError(
      `training config: 'targetsPerStep' is ${config.targetsPerStep}, but 'trainingMode' is ` +
        `${JSON.stringify(config.trainingMode)}: it sets the steps of all-positions training ` +
        `only; leave it out or set trainingMode "all-positions"`,
      "targetsPerStep",
    );
  }
  const layout = layoutOf(model);
  if (layout === "padded") {
    if ((model.trainingLoss || model.ownTrainingLoss) && config.microBatchSize !== undefined) {
      throw new ConfigError(
        `training config: 'microBatchSize' is ${config.microBatchSize}, but ${model.name} ` +
          `trains with its own objective on whole batches, which are never cut into ` +
          `micro-batches; leave it out`,
        "microBatchSize",
      );
    }
    const key = PACKED_TRAIN_KEYS.find((k) => config[k] !== undefined);
    if (key !== undefined) {
      throw new ConfigError(
        `training config: '${key}' is ${JSON.stringify(config[key])}, but ${model.name} takes ` +
          `padded batches and has no '${key}' (a setting of packed-batch models); leave it out` +
          (key === "padTo" ? ` (its windows are padded to maxLength already)` : ""),
        key,
      );
    }
    if ((model.trainingLoss || model.ownTrainingLoss) && config.trainingMode === "all-positions") {
      throw new ConfigError(
        `training config: 'trainingMode' is "all-positions", but ${model.name} trains with ` +
          `its own objective on prefix batches; use trainingMode "prefix"`,
        "trainingMode",
      );
    }
    if (model.lastItemOnly && config.trainingMode === "all-positions") {
      throw new ConfigError(
        `training config: 'trainingMode' is "all-positions", but ${model.name} represents a ` +
          `window at its last real item only; use trainingMode "prefix"`,
        "trainingMode",
      );
    }
  } else if (config.trainingMode !== "prefix") {
    throw new ConfigError(
      `training config: 'trainingMode' is ${JSON.stringify(config.trainingMode)}, but ` +
        `${model.name} takes packed batches, which train on "prefix" samples only`,
      "trainingMode",
    );
  }
}

/** The training steps of one epoch for `model`, in its layout (see the module documentation). */
export function trainingSteps(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  epoch: number,
): BatchStream<TrainingStep> {
  return model.layout === "packed"
    ? packedTrainingSteps(model, dataset, config, epoch)
    : paddedTrainingSteps(model, dataset, config, epoch);
}

function paddedTrainingSteps(
  model: PaddedModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  epoch: number,
): BatchStream<TrainingStep> {
  const { maxLength, batchSize, seed } = config;
  const release = () => {};
  if (config.trainingMode === "prefix") {
    const batches = prefixBatches(dataset, {
      maxLength,
      batchSize,
      seed,
      epoch,
      reuseBuffers: true,
    });
    let index = 0;
    // RecBole's objective: the cross-entropy at each sample's last position.
    const prefixLoss = (b: PrefixBatch) => {
      const inputs = uploadSequences(b.items, b.lengths, b.size, maxLength, b.users);
      const h = model.forward(inputs, true);
      return itemCrossEntropy(h, model.itemTable, Tensor.from(b.targets, [b.size], "i32"));
    };
    return mapStream(batches, (batch) => {
      const at = { seed, epoch, batch: index++ };
      return {
        size: batch.size,
        // The model's own objective, or RecBole's.
        loss: () => model.trainingLoss ? model.trainingLoss(batch, at) : prefixLoss(batch),
        microBatches: (samples) => {
          if (model.trainingLoss) throw ownObjectiveError(model.name, batch.size, samples);
          return microBatchRanges(batch.size, samples).map(([start, end]) => {
            const part = prefixSlice(batch, start, end);
            const weight = part.size / batch.size;
            return { size: part.size, loss: () => weighted(prefixLoss(part), weight), release };
          });
        },
        release,
      };
    });
  }
  const batches = allPositionsBatches(dataset, {
    maxLength,
    batchSize: config.targetsPerStep === undefined
      ? batchSize
      : windowsPerStep(dataset, maxLength, config.targetsPerStep),
    seed,
    epoch,
  });
  // The cross-entropy at every real position of each window. Those rows are gathered before the
  // scores, the step's largest product, so padding costs no logits.
  const allPositionsLoss = (b: AllPositionsBatch) => {
    const { size } = b;
    const items = Tensor.from(b.items, [size, maxLength], "i32");
    const h = model.forward({ items }, true);
    const flat = reshape(h, [size * maxLength, h.shape[2]]);
    const { positions, targets } = targetPositions(b);
    const rows = embedding(Tensor.from(positions, [positions.length], "i32"), flat, {
      distinctIds: true,
    });
    return itemCrossEntropy(rows, model.itemTable, Tensor.from(targets, [targets.length], "i32"));
  };
  return mapStream(batches, (batch) => ({
    size: batch.size,
    loss: () => allPositionsLoss(batch),
    // Each share weighs its real positions: the batch's loss is their mean.
    microBatches: (samples) =>
      microBatchRanges(batch.size, samples).map(([start, end]) => {
        const part = allPositionsSlice(batch, start, end);
        const weight = part.targetCount / Math.max(batch.targetCount, 1);
        return { size: part.size, loss: () => weighted(allPositionsLoss(part), weight), release };
      }),
    release,
  }));
}

/**
 * Windows of `maxLength` per all-positions step that hold `targets` training targets on average:
 * the dataset's training targets over its windows, rounded, at least one.
 */
export function windowsPerStep(
  dataset: SequentialDataset,
  maxLength: number,
  targets: number,
): number {
  const windows = allPositionsBatches(dataset, { maxLength, shuffle: false }).sampleCount;
  const perWindow = dataset.split.train.users.length / Math.max(windows, 1);
  return Math.max(1, Math.round(targets / perWindow));
}

/**
 * The real targets of an all-positions batch, row by row: their flat positions `b·L + j`
 * (`j` below row b's length) in the `[B·L, H]` output, and the target items there.
 */
export function targetPositions(
  batch: AllPositionsBatch,
): { positions: Int32Array; targets: Int32Array } {
  const { size, maxLength, lengths } = batch;
  const count = lengths.reduce((n, l) => n + l, 0);
  const positions = new Int32Array(count);
  const targets = new Int32Array(count);
  let at = 0;
  for (let b = 0; b < size; b++) {
    for (let j = 0; j < lengths[b]; j++, at++) {
      positions[at] = b * maxLength + j;
      targets[at] = batch.targets[b * maxLength + j];
    }
  }
  return { positions, targets };
}

/** Why a model with its own training objective cannot cut its steps into micro-batches. */
function ownObjectiveError(model: string, size: number, samples: number): ConfigError {
  return new ConfigError(
    `training: a step of ${size} samples, too large for this device's storage binding limit, ` +
      `would be cut into micro-batches of ${samples}, but ` +
      `${model} trains with its own objective (trainingLoss), which is taken over whole ` +
      `batches (BERT4Rec's masking is drawn for the batch and its loss is a mean over the ` +
      `masked positions); lower 'batchSize' (or 'maxLength') until a step fits the device`,
    "batchSize",
  );
}

function packedTrainingSteps(
  model: PackedModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  epoch: number,
): BatchStream<TrainingStep> {
  const { maskRatio, varLen } = packedTrainSettings(config);
  const batches = packedBatches(dataset, {
    split: "train",
    batchSize: config.batchSize,
    maxLength: varLen ? undefined : config.maxLength,
    padTo: config.padTo,
    maskRatio,
    seed: config.seed,
    epoch,
  });
  // The loss of a packed batch, with the uploaded inputs kept for `release`.
  const packedLoss = (b: PackedBatch, keep: (inputs: PackedModelInputs) => void) => {
    const inputs = packedInputs(b, model.config.chunkSize);
    keep(inputs);
    const h = model.forward(inputs, true);
    return itemCrossEntropy(h, model.itemTable, Tensor.from(b.targets, [b.size], "i32"));
  };
  return mapStream(batches, (batch) => {
    let inputs: PackedModelInputs | undefined;
    return {
      size: batch.size,
      tokens: batch.tokens,
      maskedTokens: batch.maskedTokens,
      loss: () => packedLoss(batch, (kept) => inputs = kept),
      microBatches: (samples) =>
        microBatchRanges(batch.size, samples).map(([start, end]) => {
          const part = packedSlice(batch, start, end);
          let partInputs: PackedModelInputs | undefined;
          return {
            size: part.size,
            loss: () =>
              weighted(packedLoss(part, (kept) => partInputs = kept), part.size / batch.size),
            release: () => partInputs?.dispose(),
          };
        }),
      release: () => inputs?.dispose(),
    };
  });
}

/**
 * Samples per part of each model's evaluation batches, once a whole batch was found to bind more
 * than the device's storage binding limit (`rowsInParts`): kept across evaluations, so that only
 * the first too large batch is tried whole.
 */
const evaluationParts = new WeakMap<TrainableModel, { samples: number }>();

/**
 * The validation or test batches for `model`, in its layout, never masked. A batch whose forward
 * would bind more than the device's storage binding limit is represented in parts of fewer
 * users (`rowsInParts`), with the same representations.
 */
export function rankingBatches(
  model: TrainableModel,
  dataset: SequentialDataset,
  split: "valid" | "test",
  options: RankingBatchOptions,
): BatchStream<RankingBatch> {
  const { maxLength, batchSize } = options;
  let limit = evaluationParts.get(model);
  if (!limit) evaluationParts.set(model, limit = { samples: Infinity });
  const parts = limit;
  if (model.layout === "packed") {
    const batches = packedBatches(dataset, {
      split,
      batchSize,
      maxLength: options.varLen === false ? maxLength : undefined,
      padTo: options.padTo,
    });
    return mapStream(batches, (batch) => {
      const uploads: PackedModelInputs[] = [];
      return {
        size: batch.size,
        targets: batch.targets,
        represent: () =>
          rowsInParts(batch.size, (start, end) => {
            const part = start === 0 && end === batch.size ? batch : packedSlice(batch, start, end);
            const inputs = packedInputs(part, model.config.chunkSize);
            uploads.push(inputs);
            return model.forward(inputs, false);
          }, parts),
        release: () => uploads.splice(0).forEach((inputs) => inputs.dispose()),
      };
    });
  }
  const batches = evaluationBatches(dataset, split, { maxLength, batchSize });
  return mapStream(batches, (batch) => ({
    size: batch.size,
    targets: batch.targets,
    represent: () => {
      // The model's own evaluation input where it has one (BERT4Rec's mask token), else the window.
      const items = model.rankingItems?.(batch.items, batch.lengths, batch.size, maxLength) ??
        batch.items;
      const { lengths, users } = batch;
      return rowsInParts(batch.size, (start, end) =>
        model.forward(
          uploadSequences(
            items.subarray(start * maxLength, end * maxLength),
            lengths.subarray(start, end),
            end - start,
            maxLength,
            users?.subarray(start, end),
          ),
          false,
        ), parts);
    },
    release: () => {},
  }));
}
