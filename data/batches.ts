/**
 * Seeded, reproducible batchers over a {@link SequentialDataset}. Batches are plain typed arrays,
 * ready to upload; they are built lazily, one batch at a time.
 *
 * - {@link prefixBatches}: RecBole's training samples (every prefix, last L items, right-padded).
 * - {@link evaluationBatches}: the validation or test samples in the same layout, unshuffled.
 * - {@link packedBatches}: SSD4Rec's packed variable-length layout with segment ids.
 * - {@link allPositionsBatches}: whole (windowed) training sequences with a target per position.
 *
 * @module
 */
import type { SequentialDataset } from "./dataset.ts";
import type { SampleSet } from "./split.ts";
import { DEFAULT_SEED, seededPermutation, SeededRandom } from "./random.ts";

/** The three parts of the leave-one-out split. */
export type SplitName = "train" | "valid" | "test";

/** Training samples per batch by default (RecBole's `train_batch_size` in the papers' configs). */
export const DEFAULT_TRAIN_BATCH_SIZE = 2048;

/** Evaluation samples per batch by default (RecBole's `eval_batch_size`). */
export const DEFAULT_EVAL_BATCH_SIZE = 4096;

/** Training samples per packed batch by default, as SSD4Rec ships. */
const PACKED_TRAIN_BATCH_SIZE = 1024;

/** Evaluation samples per packed batch by default, as SSD4Rec ships. */
const PACKED_EVAL_BATCH_SIZE = 2048;

/** Stream numbers that keep the generators of different batchers apart. */
const STREAM = { prefix: 1, packedOrder: 2, packedMask: 3, allPositions: 4 } as const;

/** An iterable of batches that knows how many batches and samples it will yield. */
export interface BatchStream<T> extends Iterable<T> {
  /** Number of batches one iteration yields. */
  readonly batchCount: number;
  /** Number of samples (rows) over all batches. */
  readonly sampleCount: number;
}

/** Makes a re-iterable {@link BatchStream} from a batch-producing generator function. */
function batchStream<T>(
  sampleCount: number,
  batchSize: number,
  generate: () => Generator<T>,
): BatchStream<T> {
  return {
    batchCount: Math.ceil(sampleCount / batchSize),
    sampleCount,
    [Symbol.iterator]: generate,
  };
}

/** Checks a positive integer option. */
function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** The sample set of a split. */
function samplesOf(dataset: SequentialDataset, split: SplitName): SampleSet {
  const samples = dataset.split[split];
  if (!samples) throw new RangeError(`unknown split ${JSON.stringify(split)}`);
  return samples;
}

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
        new SeededRandom(options.seed ?? DEFAULT_SEED, options.epoch ?? 0, STREAM.prefix),
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
// Packed variable-length batches

/** A batch in SSD4Rec's packed layout: all histories concatenated, no padding. */
export interface PackedBatch {
  /** Number of samples (segments) `B`. */
  readonly size: number;
  /** Number of tokens `T = Σ lengths`. */
  readonly tokens: number;
  /** `[T]` the histories concatenated in sample order, oldest first; masked tokens are 0. */
  readonly items: Int32Array;
  /** `[T]` the segment (sample) index `0 … B−1` of every token. */
  readonly seqIdx: Int32Array;
  /** `[B]` the index in `items` of each segment's last token (cumulative lengths − 1). */
  readonly lastIndex: Int32Array;
  /**
   * `[T]` the permutation that reverses every segment in place: for segment `[s, e]`,
   * `flipIndex[p] = s + e − p`. Gathering `items` with it gives each history newest first.
   */
  readonly flipIndex: Int32Array;
  /** `[B]` history length of each sample. */
  readonly lengths: Int32Array;
  /** `[B]` target item ids. */
  readonly targets: Int32Array;
  /** `[B]` user ids. */
  readonly users: Int32Array;
  /** Number of tokens replaced by 0 by the Bernoulli masking. */
  readonly maskedTokens: number;
}

/** Options of {@link packedBatches}. */
export interface PackedBatchOptions {
  /** The split (default `"train"`). */
  readonly split?: SplitName;
  /** Samples per batch (default 1024 for training, 2048 for evaluation, as SSD4Rec ships). */
  readonly batchSize?: number;
  /**
   * Keep only the last `maxLength` history items (SSD4Rec's `var_len: False`); by default the
   * whole history is kept (its shipped `var_len: True`).
   */
  readonly maxLength?: number;
  /**
   * ρ: each history token is replaced by id 0 with this probability, independently (training
   * only; default 0). Must be 0 for the evaluation splits.
   */
  readonly maskRatio?: number;
  /** Whether to shuffle (default: only for `"train"`). */
  readonly shuffle?: boolean;
  /** The seed (default {@link DEFAULT_SEED}). */
  readonly seed?: number;
  /** The epoch number (default 0). */
  readonly epoch?: number;
}

/**
 * SSD4Rec's packed variable-length batches: each sample's history (untruncated unless
 * `maxLength` is given) concatenated without padding, with a segment id per token, the index of
 * each segment's last token, the per-segment reversal permutation, and — for training only —
 * Bernoulli masking of history tokens to 0 with probability ρ. Seeded and reproducible.
 */
export function packedBatches(
  dataset: SequentialDataset,
  options: PackedBatchOptions = {},
): BatchStream<PackedBatch> {
  const split = options.split ?? "train";
  const samples = samplesOf(dataset, split);
  const batchSize = positiveInteger(
    "batchSize",
    options.batchSize ?? (split === "train" ? PACKED_TRAIN_BATCH_SIZE : PACKED_EVAL_BATCH_SIZE),
  );
  const maxLength = options.maxLength === undefined
    ? Infinity
    : positiveInteger("maxLength", options.maxLength);
  const rho = options.maskRatio ?? 0;
  if (!(rho >= 0 && rho <= 1)) throw new RangeError(`maskRatio must be in [0, 1], got ${rho}`);
  if (rho > 0 && split !== "train") {
    throw new RangeError(`masking is for training only; maskRatio must be 0 for "${split}"`);
  }
  const shuffle = options.shuffle ?? split === "train";
  const seed = options.seed ?? DEFAULT_SEED;
  const epoch = options.epoch ?? 0;
  const n = samples.users.length;
  const { offsets, items } = dataset;
  return batchStream(n, batchSize, function* () {
    const order = shuffle
      ? seededPermutation(n, new SeededRandom(seed, epoch, STREAM.packedOrder))
      : undefined;
    const maskRandom = new SeededRandom(seed, epoch, STREAM.packedMask);
    const logKeep = Math.log1p(-rho);
    for (let base = 0; base < n; base += batchSize) {
      const size = Math.min(batchSize, n - base);
      const lengths = new Int32Array(size);
      const starts = new Int32Array(size);
      const targets = new Int32Array(size);
      const users = new Int32Array(size);
      let tokens = 0;
      for (let r = 0; r < size; r++) {
        const k = order ? order[base + r] : base + r;
        const u = samples.users[k];
        const t = samples.targetPositions[k];
        const start = Math.max(offsets[u], t - maxLength);
        starts[r] = start;
        lengths[r] = t - start;
        targets[r] = items[t];
        users[r] = u;
        tokens += t - start;
      }
      const packed = new Int32Array(tokens);
      const seqIdx = new Int32Array(tokens);
      const flipIndex = new Int32Array(tokens);
      const lastIndex = new Int32Array(size);
      let at = 0;
      for (let r = 0; r < size; r++) {
        const length = lengths[r];
        packed.set(items.subarray(starts[r], starts[r] + length), at);
        const end = at + length - 1;
        seqIdx.fill(r, at, end + 1);
        for (let p = at; p <= end; p++) flipIndex[p] = at + end - p;
        lastIndex[r] = end;
        at = end + 1;
      }
      let maskedTokens = 0;
      if (rho >= 1) {
        packed.fill(0);
        maskedTokens = tokens;
      } else if (rho > 0) {
        // Gaps between masked tokens are geometric: the same distribution as an independent
        // Bernoulli(ρ) draw per token, with one random number per masked token.
        let p = Math.floor(Math.log1p(-maskRandom.nextFloat()) / logKeep);
        while (p < tokens) {
          packed[p] = 0;
          maskedTokens++;
          p += 1 + Math.floor(Math.log1p(-maskRandom.nextFloat()) / logKeep);
        }
      }
      yield {
        size,
        tokens,
        items: packed,
        seqIdx,
        lastIndex,
        flipIndex,
        lengths,
        targets,
        users,
        maskedTokens,
      };
    }
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
        new SeededRandom(options.seed ?? DEFAULT_SEED, options.epoch ?? 0, STREAM.allPositions),
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
