/**
 * BERT4Rec's training inputs, drawn on the host as RecBole v1.2's `MaskItemSequence` transform
 * draws them for each training batch, and its evaluation window (`reconstruct_test_data`).
 *
 * Training (one draw per batch):
 *
 * - with probability `ftRatio` the whole batch takes the "fine-tune" branch: each window's last
 *   real item (position `length − 1`, the history's, not the target after it) becomes the mask
 *   token and is the row's one masked item;
 * - otherwise every real position is masked independently with probability `maskRatio`, always
 *   replaced by the mask token (no 80/10/10 scheme).
 *
 * Every masked position is masked in the input, but RecBole keeps at most
 * `mask_item_length = int(maskRatio · L)` of a row's masked positions for the loss, the last ones
 * (its sequences are left-padded with 0 to that length, then cut to their last entries), and its
 * loss weight `masked_index > 0` drops a masked position 0 as if it were padding. The loss
 * positions here are exactly the ones RecBole's loss counts, listed compactly (no padding slots).
 * The draw comes from a {@link SeededRandom} keyed by the run's seed, the epoch and the batch, so
 * the same batch of a resumed run is masked the same way. RecBole's one random negative per
 * masked position feeds only its BPR loss and is not drawn.
 *
 * @module
 */
import { SeededRandom } from "../data/random.ts";
import { ConfigError } from "./config.ts";
import type { PaddedTrainingBatch, TrainingBatchPosition } from "./model.ts";

/** The stream number that keys BERT4Rec's masking draw apart from the batchers' draws. */
const MASKING_STREAM = 0xb4e7;

/** How to mask a batch. */
export interface MaskingOptions {
  /** The mask token's id (RecBole's `n_items`: the item count including PAD). */
  readonly maskToken: number;
  /** Probability that a real position is masked (`mask_ratio`, 0.2). */
  readonly maskRatio: number;
  /** Probability that a batch takes the fine-tune branch (`ft_ratio`, 0.5). */
  readonly ftRatio: number;
}

/** One training batch after masking. */
export interface MaskedBatch {
  /** Input ids `[size, L]`: the batch's windows with every masked position set to the mask token. */
  readonly items: Int32Array;
  /** Flat positions `b · L + t` that enter the loss, by row and then by position. */
  readonly lossPositions: Int32Array;
  /** The original item at each loss position (the loss's targets). */
  readonly lossTargets: Int32Array;
  /** Whether the batch took the fine-tune branch (each row's last real item masked). */
  readonly fineTune: boolean;
  /** Positions masked in the input, loss positions or not. */
  readonly maskedCount: number;
}

/**
 * RecBole's `mask_item_length = int(maskRatio · L)`: the most masked positions of a row that
 * enter the loss. Fails with a {@link ConfigError} naming `maskRatio` when that is below 1
 * (RecBole's batches cannot be built then either).
 */
export function maskItemLength(maskRatio: number, maxLength: number): number {
  const m = Math.trunc(maskRatio * maxLength);
  if (m < 1) {
    throw new ConfigError(
      `bert4rec: maskRatio ${maskRatio} × window length ${maxLength} keeps no masked item for ` +
        `the loss (int(maskRatio · L) = ${m}); raise 'maskRatio' or the window length`,
      "maskRatio",
    );
  }
  return m;
}

/** The generator of the masking draw of the batch at `at` (its seed, epoch and batch index). */
export function maskingRandom(at: TrainingBatchPosition): SeededRandom {
  return new SeededRandom(at.seed, at.epoch, at.batch, MASKING_STREAM);
}

/**
 * Masks a training batch as RecBole's `MaskItemSequence` does (see the module documentation),
 * drawing from the seed, epoch and batch of `at`. `batch.items` is not modified.
 */
export function maskItemSequence(
  batch: Pick<PaddedTrainingBatch, "size" | "maxLength" | "items" | "lengths">,
  options: MaskingOptions,
  at: TrainingBatchPosition,
): MaskedBatch {
  const { size, maxLength: L, lengths } = batch;
  const keep = maskItemLength(options.maskRatio, L);
  const random = maskingRandom(at);
  const items = batch.items.slice(0, size * L);
  // At most `keep` loss positions a row; typed buffers, as this runs for every training batch.
  const positions = new Int32Array(size * keep);
  const targets = new Int32Array(size * keep);
  const masked = new Int32Array(L);
  const fineTune = random.nextFloat() < options.ftRatio;
  let maskedCount = 0, count = 0;
  for (let b = 0; b < size; b++) {
    const base = b * L;
    const len = Math.min(lengths[b], L);
    let m = 0;
    if (fineTune) {
      if (len > 0) masked[m++] = len - 1;
    } else {
      for (let t = 0; t < len; t++) {
        if (random.nextFloat() < options.maskRatio) masked[m++] = t;
      }
    }
    maskedCount += m;
    for (let j = 0; j < m; j++) {
      const t = masked[j];
      // The last `keep` masked positions enter the loss, except position 0 (RecBole's weight).
      if (j >= m - keep && t > 0) {
        positions[count] = base + t;
        targets[count++] = items[base + t];
      }
      items[base + t] = options.maskToken;
    }
  }
  return {
    items,
    lossPositions: positions.slice(0, count),
    lossTargets: targets.slice(0, count),
    fineTune,
    maskedCount,
  };
}

/**
 * A masked batch's loss positions as the encoder's output rows (`OutputRows`): the same number
 * of rows in every sequence, its loss positions first.
 */
export interface LossRows {
  /** Rows per sequence: the most loss positions in one sequence, at least 1. */
  readonly perSequence: number;
  /**
   * `[size, perSequence]` positions: each sequence's loss positions in order, then its first
   * positions that are not loss positions (distinct, so no row repeats).
   */
  readonly positions: Int32Array;
  /** `[size · perSequence]` flat positions `b · L + t` of those rows. */
  readonly flat: Int32Array;
  /** Each loss position's row `b · perSequence + slot` among them, in the loss order. */
  readonly lossRows: Int32Array;
}

/**
 * Lays out `lossPositions` (flat `b · L + t`, by row and then by position, as
 * {@link maskItemSequence} gives them) of a batch of `size` windows of `L` as {@link LossRows}.
 */
export function lossRows(lossPositions: Int32Array, size: number, L: number): LossRows {
  const counts = new Int32Array(size);
  for (const flat of lossPositions) counts[Math.floor(flat / L)]++;
  const perSequence = Math.max(1, ...counts);
  const positions = new Int32Array(size * perSequence);
  const lossRowsOut = new Int32Array(lossPositions.length);
  const filled = new Int32Array(size);
  lossPositions.forEach((flat, i) => {
    const b = Math.floor(flat / L);
    lossRowsOut[i] = b * perSequence + filled[b];
    positions[b * perSequence + filled[b]++] = flat - b * L;
  });
  for (let b = 0; b < size; b++) {
    // Fill the rest with the first positions that are not loss positions (perSequence ≤ L).
    const taken = new Set(positions.subarray(b * perSequence, b * perSequence + filled[b]));
    for (let t = 0; filled[b] < perSequence; t++) {
      if (!taken.has(t)) positions[b * perSequence + filled[b]++] = t;
    }
  }
  const flat = positions.map((t, r) => Math.floor(r / perSequence) * L + t);
  return { perSequence, positions, flat, lossRows: lossRowsOut };
}

/**
 * BERT4Rec's evaluation window, RecBole's `reconstruct_test_data`: each row's window `[L]` gets
 * a zero column appended, the mask token written at index `length`, and its first column dropped.
 * The oldest item of the window is always dropped, even when `length < L`, and the mask token
 * lands at index `length − 1`, where the representation is taken. Returns new `[size, L]` ids.
 */
export function evaluationWindow(
  items: Int32Array,
  lengths: Int32Array,
  size: number,
  maxLength: number,
  maskToken: number,
): Int32Array {
  const L = maxLength;
  const out = new Int32Array(size * L);
  for (let b = 0; b < size; b++) {
    const len = Math.min(lengths[b], L);
    // Row b of [items | 0] from index 1 on, with the mask token at index len of that row.
    out.set(items.subarray(b * L + 1, b * L + L), b * L);
    if (len > 0) out[b * L + len - 1] = maskToken;
  }
  return out;
}
