/**
 * Seeded, reproducible batchers over a {@link SequentialDataset}. Batches are plain typed arrays,
 * ready to upload; they are built lazily, one batch at a time.
 *
 * - {@link prefixBatches}: RecBole's training samples (every prefix, last L items, right-padded).
 * - {@link evaluationBatches}: the validation or test samples in the same layout, unshuffled.
 * - `packedBatches` (in `packed_batches.ts`): SSD4Rec's packed variable-length layout.
 * - {@link allPositionsBatches}: whole (windowed) training sequences with a target per position.
 *
 * @module
 */
import type { SequentialDataset } from "./dataset.ts";
import { DEFAULT_SEED, seededPermutation, SeededRandom } from "./random.ts";
import {
  BATCHER_STREAMS,
  type BatchStream,
  batchStream,
  positiveInteger,
  samplesOf,
  type SplitName,
} from "./batch_stream.ts";

/** Training samples per batch by default (RecBole's `train_batch_size` in the papers' configs). */
export const DEFAULT_TRAIN_BATCH_SIZE = 2048;

/** Evaluation samples per batch by default (RecBole's `eval_batch_size`). */
export const DEFAULT_EVAL_BATCH_SIZE = 4096;

// ---------------------------------------------------------------------------------------------
// Prefix batches

/** A batch of prefix samples in RecBole's layout. */
export interface PrefixBatch {
  /** Number of samples `B` (the last batch of an epoch may be smaller than the batch size). */
  readonly size: number;
  /** The window length `L`: each row of `items` has `L` slots. */
  readonly maxLength: number;
  /**
   * `[B × L]` row-major item ids: each row holds the last `min(t−1, L)` history items, oldest first,
   * left-aligned and right-padded with 0.
   */
  readonly items: Int32Array;
  /** `[B]` number of real items in each row. */
  readonly lengths: Int32Array;
  /** `[B]` target item ids. */
  readonly targets: Int32Array;
  /** `[B]` user ids. */
  readonly users: Int32Array;
}

/** Options of {@link prefixBatches}. */
export interface PrefixBatchOptions {
  /** The window length `L` (RecBole's `MAX_ITEM_LIST_LENGTH`). */
  readonly maxLength: number;
  /** The split to draw samples from (default `"train"`). */
  readonly split?: SplitName;
  /** Samples per batch (default {@link DEFAULT_TRAIN_BATCH_SIZE} for training, {@link DEFAULT_EVAL_BATCH_SIZE} for evaluation). */
  readonly batchSize?: number;
  /** Whether to shuffle the samples (default: only for `"train"`). */
  readonly shuffle?: boolean;
  /** The seed (default {@link DEFAULT_SEED}); with `epoch` it fixes the order. */
  readonly seed?: number;
  /** The epoch number (default 0): each epoch has its own reproducible order. */
  readonly epoch?: number;
  /**
   * Fill the same arrays for every batch instead of fresh ones (default false). The previous
   * batch's contents are overwritten when the next is requested.
   */
  readonly reuseBuffers?: boolean;
}

/**
 * RecBole's sequential samples as batches: for every sample of the split, the last `L` history
 * items, left-aligned and right-padded, with the length, the target and the user. Training samples
 * are every prefix of each training sequence; shuffled per epoch from `seed` and `epoch`; the last
 * partial batch is kept.
 */
export function prefixBatches(
  dataset: SequentialDataset,
  options: PrefixBatchOptions,
): BatchStream<PrefixBatch> {
  const split = options.split ?? "train";
  const samples = samplesOf(dataset, split);
  const L = positiveInteger("maxLength", options.maxLength);
  const batchSize = positiveInteger(
    "batchSize",
    options.batchSize ?? (split === "train" ? DEFAULT_TRAIN_BATCH_SIZE : DEFAULT_EVAL_BATCH_SIZE),
  );
  const shuffle = options.shuffle ?? split === "train";
  const n = samples.users.length;
  const { offsets, items } = dataset;
  const sampleUsers = samples.users;
  const positions = samples.targetPositions;
  return batchStream(n, batchSize, function* () {
    const order = shuffle
      ? seededPermutation(
        n,
        new SeededRandom(options.seed ?? DEFAULT_SEED, options.epoch ?? 0, BATCHER_STREAMS.prefix),
      )
      : undefined;
    let shared: PrefixBatch | undefined;
    for (let base = 0; base < n; base += batchSize) {
      const size = Math.min(batchSize, n - base);
      let batch: PrefixBatch;
      if (options.reuseBuffers) {
        shared ??= {
          size,
          maxLength: L,
          items: new Int32Array(batchSize * L),
          lengths: new Int32Array(batchSize),
          targets: new Int32Array(batchSize),
          users: new Int32Array(batchSize),
        };
        batch = size === batchSize ? shared : {
          size,
          maxLength: L,
          items: shared.items.subarray(0, size * L),
          lengths: shared.lengths.subarray(0, size),
          targets: shared.targets.subarray(0, size),
          users: shared.users.subarray(0, size),
        };
      } else {
        batch = {
          size,
          maxLength: L,
          items: new Int32Array(size * L),
          lengths: new Int32Array(size),
          targets: new Int32Array(size),
          users: new Int32Array(size),
        };
      }
      const out = batch.items;
      for (let r = 0; r < size; r++) {
        const k = order ? order[base + r] : base + r;
        const u = sampleUsers[k];
        const t = positions[k];
        const first = offsets[u];
        const start = t - L > first ? t - L : first;
        const row = r * L;
        const length = t - start;
        for (let j = 0; j < length; j++) out[row + j] = items[start + j];
        if (options.reuseBuffers) out.fill(0, row + length, row + L);
        batch.lengths[r] = length;
        batch.targets[r] = items[t];
        batch.users[r] = u;
      }
      yield batch;
    }
  });
}

/** Options of {@link evaluationBatches}. */
export interface EvaluationBatchOptions {
  /** The window length `L`. */
  readonly maxLength: number;
  /** Samples per batch (default {@link DEFAULT_EVAL_BATCH_SIZE}). */
  readonly batchSize?: number;
}

/**
 * Validation or test samples for full-ranking evaluation, in order (one per user), in the prefix
 * layout: the last `L` items of the history (the test history includes the validation item).
 */
export function evaluationBatches(
  dataset: SequentialDataset,
  split: "valid" | "test",
  options: EvaluationBatchOptions,
): BatchStream<PrefixBatch> {
  return prefixBatches(dataset, {
    split,
    maxLength: options.maxLength,
    batchSize: options.batchSize ?? DEFAULT_EVAL_BATCH_SIZE,
    shuffle: false,
  });
}

// ---------------------------------------------------------------------------------------------
// All-positions batches

/** A batch of whole training sequences with a target at every position. */
export interface AllPositionsBatch {
  /** Number of rows `B`. */
  readonly size: number;
  /** The window length `L`. */
  readonly maxLength: number;
  /** `[B × L]` input items, left-aligned, right-padded with 0. */
  readonly items: Int32Array;
  /**
   * `[B × L]` the next item after each input position (`targets[j] = items[j+1]` of the underlying
   * sequence), 0 at padding.
   */
  readonly targets: Int32Array;
  /** `[B]` number of real positions in each row. */
  readonly lengths: Int32Array;
  /** `[B]` user ids. */
  readonly users: Int32Array;
  /** Number of non-zero targets in the batch. */
  readonly targetCount: number;
}

/** Options of {@link allPositionsBatches}. */
export interface AllPositionsBatchOptions {
  /** The window length `L`. */
  readonly maxLength: number;
  /** Rows per batch (default {@link DEFAULT_TRAIN_BATCH_SIZE}). */
  readonly batchSize?: number;
  /**
   * `"all"` (default): each user's training targets are cut from the end into windows of `L`, so
   * every training target appears exactly once; `"last"`: only the most recent window per user.
   */
  readonly windows?: "all" | "last";
  /** Whether to shuffle the rows (default true). */
  readonly shuffle?: boolean;
  /** The seed (default {@link DEFAULT_SEED}). */
  readonly seed?: number;
  /** The epoch number (default 0). */
  readonly epoch?: number;
}

/**
 * Batches for the fast training mode: each user's training sequence `i_1 … i_{n−2}` is read once,
 * with the next item as the target at every position (inputs `i_1 … i_{n−3}`, targets
 * `i_2 … i_{n−2}`, exactly the training targets of the split). Sequences longer than `L` are cut
 * into windows from the end; a target in a window sees only the history inside its window.
 */
export function allPositionsBatches(
  dataset: SequentialDataset,
  options: AllPositionsBatchOptions,
): BatchStream<AllPositionsBatch> {
  const L = positiveInteger("maxLength", options.maxLength);
  const batchSize = positiveInteger("batchSize", options.batchSize ?? DEFAULT_TRAIN_BATCH_SIZE);
  const windows = options.windows ?? "all";
  const { offsets, items } = dataset;
  // Training targets per user: positions offsets[u]+1 … offsets[u]+count[u].
  const trainCount = new Int32Array(dataset.numUsers);
  for (const u of dataset.split.train.users) trainCount[u]++;
  let rowCount = 0;
  for (let u = 1; u < dataset.numUsers; u++) {
    if (trainCount[u] > 0) rowCount += windows === "all" ? Math.ceil(trainCount[u] / L) : 1;
  }
  // Row r covers target pairs [rowStart[r], rowStart[r] + rowLength[r]) of user rowUser[r]:
  // inputs items[first + a …], targets items[first + a + 1 …].
  const rowUser = new Int32Array(rowCount);
  const rowStart = new Int32Array(rowCount);
  const rowLength = new Int32Array(rowCount);
  let r = 0;
  for (let u = 1; u < dataset.numUsers; u++) {
    const m = trainCount[u];
    if (m === 0) continue;
    for (let end = m; end > 0; end -= L) {
      const start = Math.max(0, end - L);
      rowUser[r] = u;
      rowStart[r] = offsets[u] + start;
      rowLength[r++] = end - start;
      if (windows === "last") break;
    }
  }
  const shuffle = options.shuffle ?? true;
  return batchStream(rowCount, batchSize, function* () {
    const order = shuffle
      ? seededPermutation(
        rowCount,
        new SeededRandom(
          options.seed ?? DEFAULT_SEED,
          options.epoch ?? 0,
          BATCHER_STREAMS.allPositions,
        ),
      )
      : undefined;
    for (let base = 0; base < rowCount; base += batchSize) {
      const size = Math.min(batchSize, rowCount - base);
      const inputs = new Int32Array(size * L);
      const targets = new Int32Array(size * L);
      const lengths = new Int32Array(size);
      const users = new Int32Array(size);
      let targetCount = 0;
      for (let b = 0; b < size; b++) {
        const k = order ? order[base + b] : base + b;
        const start = rowStart[k];
        const length = rowLength[k];
        inputs.set(items.subarray(start, start + length), b * L);
        targets.set(items.subarray(start + 1, start + 1 + length), b * L);
        lengths[b] = length;
        users[b] = rowUser[k];
        targetCount += length;
      }
      yield { size, maxLength: L, items: inputs, targets, lengths, users, targetCount };
    }
  });
}
