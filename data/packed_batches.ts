/**
 * SSD4Rec's packed variable-length batches: histories concatenated without padding, with segment
 * ids, last-token indices, the per-segment reversal permutation and Bernoulli masking. With
 * `padTo: L` every segment is instead a window of exactly L tokens, left-padded with id 0, so that
 * a packed model trains on the padded windows of a padded model (an efficiency comparison).
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

/** Training samples per packed batch by default, as SSD4Rec ships. */
const PACKED_TRAIN_BATCH_SIZE = 1024;

/** Evaluation samples per packed batch by default, as SSD4Rec ships. */
const PACKED_EVAL_BATCH_SIZE = 2048;

/** A batch in SSD4Rec's packed layout: all histories concatenated, no padding. */
export interface PackedBatch {
  /** Number of samples (segments) `B`. */
  readonly size: number;
  /** Number of tokens `T = Σ lengths` (with `padTo`, padding included: `B × padTo`). */
  readonly tokens: number;
  /**
   * `[T]` the histories concatenated in sample order, oldest first; masked tokens are 0, and so
   * is the padding in front of each history with `padTo`.
   */
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
  /** `[B]` tokens of each segment: its history's length, or `padTo` (padding included). */
  readonly lengths: Int32Array;
  /** `[B]` target item ids. */
  readonly targets: Int32Array;
  /** `[B]` user ids. */
  readonly users: Int32Array;
  /** Number of history tokens replaced by 0 by the Bernoulli masking (padding not counted). */
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
  /**
   * Make every segment exactly this many tokens: the last `padTo` history items (or fewer, when
   * `maxLength` is smaller), left-padded with id 0 (PAD). The padding belongs to its segment
   * (`seqIdx`, `flipIndex`, `lengths`); each `lastIndex` stays on the newest real item; masking
   * draws over the real items only, exactly as without `padTo`. Default: no padding.
   */
  readonly padTo?: number;
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
 * Bernoulli masking of history tokens to 0 with probability ρ. With `padTo` every segment is a
 * left-padded window of that many tokens. Seeded and reproducible.
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
  const padTo = options.padTo === undefined ? undefined : positiveInteger("padTo", options.padTo);
  const maxLength = Math.min(
    options.maxLength === undefined ? Infinity : positiveInteger("maxLength", options.maxLength),
    padTo ?? Infinity,
  );
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
      ? seededPermutation(n, new SeededRandom(seed, epoch, BATCHER_STREAMS.packedOrder))
      : undefined;
    const maskRandom = new SeededRandom(seed, epoch, BATCHER_STREAMS.packedMask);
    const logKeep = Math.log1p(-rho);
    for (let base = 0; base < n; base += batchSize) {
      const size = Math.min(batchSize, n - base);
      const lengths = new Int32Array(size);
      const starts = new Int32Array(size);
      const ends = new Int32Array(size); // each history's end (its target's position)
      const targets = new Int32Array(size);
      const users = new Int32Array(size);
      let tokens = 0, realTokens = 0;
      for (let r = 0; r < size; r++) {
        const k = order ? order[base + r] : base + r;
        const u = samples.users[k];
        const t = samples.targetPositions[k];
        const start = Math.max(offsets[u], t - maxLength);
        starts[r] = start;
        ends[r] = t;
        lengths[r] = padTo ?? t - start;
        targets[r] = items[t];
        users[r] = u;
        tokens += lengths[r];
        realTokens += t - start;
      }
      const packed = new Int32Array(tokens);
      const seqIdx = new Int32Array(tokens);
      const flipIndex = new Int32Array(tokens);
      const lastIndex = new Int32Array(size);
      // Where each real (history) token lies in `packed`, when padding separates them.
      const realAt = padTo === undefined || rho === 0 ? null : new Int32Array(realTokens);
      let at = 0, real = 0;
      for (let r = 0; r < size; r++) {
        const end = at + lengths[r] - 1;
        const history = items.subarray(starts[r], ends[r]);
        const first = end + 1 - history.length; // the padding, if any, fills [at, first)
        packed.set(history, first);
        if (realAt) { for (let p = first; p <= end; p++) realAt[real++] = p; }
        seqIdx.fill(r, at, end + 1);
        for (let p = at; p <= end; p++) flipIndex[p] = at + end - p;
        lastIndex[r] = end;
        at = end + 1;
      }
      let maskedTokens = 0;
      if (rho >= 1) {
        packed.fill(0);
        maskedTokens = realTokens;
      } else if (rho > 0) {
        // Gaps between masked tokens are geometric: the same distribution as an independent
        // Bernoulli(ρ) draw per token, with one random number per masked token.
        let q = Math.floor(Math.log1p(-maskRandom.nextFloat()) / logKeep);
        while (q < realTokens) {
          packed[realAt ? realAt[q] : q] = 0;
          maskedTokens++;
          q += 1 + Math.floor(Math.log1p(-maskRandom.nextFloat()) / logKeep);
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

/**
 * Histories packed into one batch as {@link packedBatches} lays them out (one row, each history
 * its own segment, oldest item first, no padding or masking), for inference over given
 * histories; `targets` defaults to item 0 for each.
 * @param histories non-empty histories of item ids
 * @param targets one target item per history
 */
export function packHistories(
  histories: readonly ArrayLike<number>[],
  targets?: ArrayLike<number>,
): PackedBatch {
  const size = histories.length;
  const lengths = Int32Array.from(histories, (h) => h.length);
  if (size === 0 || lengths.some((n) => n < 1)) {
    throw new RangeError(
      `packHistories: give at least one history, each of at least one item (lengths ` +
        `${Array.from(lengths).join(", ") || "none"})`,
    );
  }
  if (targets && targets.length !== size) {
    throw new RangeError(`packHistories: ${targets.length} targets for ${size} histories`);
  }
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const items = new Int32Array(tokens), seqIdx = new Int32Array(tokens);
  const flipIndex = new Int32Array(tokens), lastIndex = new Int32Array(size);
  let at = 0;
  histories.forEach((h, r) => {
    const end = at + h.length - 1;
    items.set(Array.from(h), at);
    seqIdx.fill(r, at, end + 1);
    for (let p = at; p <= end; p++) flipIndex[p] = at + end - p;
    lastIndex[r] = end;
    at = end + 1;
  });
  return {
    size,
    tokens,
    items,
    seqIdx,
    lastIndex,
    flipIndex,
    lengths,
    targets: targets ? Int32Array.from(targets) : new Int32Array(size),
    users: new Int32Array(size),
    maskedTokens: 0,
  };
}
