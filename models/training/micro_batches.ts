/**
 * Micro-batches: one training step's batch cut into consecutive runs of samples whose losses
 * are weighted so that they sum to the whole batch's mean loss, and their gradients to its
 * gradient (to rounding). The trainer runs forward and backward per micro-batch, the gradients
 * adding up in the parameters' `grad`, then takes one optimizer step.
 *
 * A share's weight is its part of the count the batch's mean is taken over: its samples over the
 * batch's (prefix and packed batches), or its non-PAD targets over the batch's (all-positions
 * batches, whose loss is the mean over the real positions). A share's loss is its own mean loss
 * times that weight.
 *
 * Evaluation batches are cut the same way ({@link rowsInParts}): a batch's representations are
 * built part by part into one `[B, d]` tensor when the whole batch would bind too much.
 *
 * @module
 */
import type { AllPositionsBatch, PrefixBatch } from "../../data/batches.ts";
import type { PackedBatch } from "../../data/packed_batches.ts";
import { scale, writeAt } from "../../ops/pointwise/elementwise.ts";
import { Tensor, tidy } from "../../ops/core/tensor.ts";

/** The consecutive runs `[start, end)` of at most `samples` samples covering `size` samples. */
export function microBatchRanges(size: number, samples: number): [number, number][] {
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`microBatchRanges: samples must be a positive integer, got ${samples}`);
  }
  const ranges: [number, number][] = [];
  for (let start = 0; start < size; start += samples) {
    ranges.push([start, Math.min(size, start + samples)]);
  }
  return ranges;
}

/** `loss · weight`, or `loss` itself when the weight is 1 (one micro-batch: the whole batch). */
export function weighted(loss: Tensor, weight: number): Tensor {
  return weight === 1 ? loss : scale(loss, weight);
}

/** Samples `[start, end)` of a prefix batch (views of its arrays, valid until the next batch). */
export function prefixSlice(batch: PrefixBatch, start: number, end: number): PrefixBatch {
  const L = batch.maxLength;
  return {
    size: end - start,
    maxLength: L,
    items: batch.items.subarray(start * L, end * L),
    lengths: batch.lengths.subarray(start, end),
    targets: batch.targets.subarray(start, end),
    users: batch.users.subarray(start, end),
  };
}

/** Rows `[start, end)` of an all-positions batch (views of its arrays). */
export function allPositionsSlice(
  batch: AllPositionsBatch,
  start: number,
  end: number,
): AllPositionsBatch {
  const L = batch.maxLength;
  const targets = batch.targets.subarray(start * L, end * L);
  return {
    size: end - start,
    maxLength: L,
    items: batch.items.subarray(start * L, end * L),
    targets,
    lengths: batch.lengths.subarray(start, end),
    users: batch.users.subarray(start, end),
    targetCount: targets.reduce((n, t) => n + (t !== 0 ? 1 : 0), 0),
  };
}

/**
 * Segments `[start, end)` of a packed batch: their tokens, with segment ids and token indices
 * made relative to the slice. `maskedTokens` is the whole batch's count (a statistic the models
 * never read; the masking itself is already in `items`).
 */
export function packedSlice(batch: PackedBatch, start: number, end: number): PackedBatch {
  const first = start === 0 ? 0 : batch.lastIndex[start - 1] + 1;
  const stop = batch.lastIndex[end - 1] + 1;
  const shift = (a: Int32Array, by: number) => a.map((v) => v - by);
  return {
    size: end - start,
    tokens: stop - first,
    items: batch.items.subarray(first, stop),
    seqIdx: shift(batch.seqIdx.subarray(first, stop), start),
    lastIndex: shift(batch.lastIndex.subarray(start, end), first),
    flipIndex: shift(batch.flipIndex.subarray(first, stop), first),
    lengths: batch.lengths.subarray(start, end),
    targets: batch.targets.subarray(start, end),
    users: batch.users.subarray(start, end),
    maskedTokens: batch.maskedTokens,
  };
}

/**
 * Whether `error` is the runtime's refusal of a tensor larger than the device's storage binding
 * limit (raised when the tensor is allocated, before any work that reads it is encoded): the
 * error that cutting a step into smaller micro-batches can avoid.
 */
export function isBindingLimitError(error: unknown): error is RangeError {
  return error instanceof RangeError &&
    error.message.includes("exceeds this device's storage binding limit");
}

/**
 * Runs `fn` in a `tidy` scope that frees its tensors whether it returns or throws (a plain
 * `tidy` leaves them to the caller when `fn` throws), then returns or throws as `fn` did.
 */
export function tidyOrThrow<T>(fn: () => T): T {
  const outcome = tidy((): { value: T } | { error: unknown } => {
    try {
      return { value: fn() };
    } catch (error) {
      return { error };
    }
  });
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/**
 * The rows `[0, size)` that `rows(start, end)` builds (a `[end − start, …]` tensor of those
 * samples, not recorded: evaluation), whole, or in parts of `limit.samples` samples written into
 * one tensor when the whole would bind more than the device's storage binding limit: each refusal
 * halves `limit.samples` (kept for later batches) and starts again. Throws the refusal when
 * one sample alone is too large.
 * @param size samples of the batch
 * @param rows builds the rows of samples `[start, end)`
 * @param limit samples per part, updated as parts are found too large (`Infinity`: whole)
 */
export function rowsInParts(
  size: number,
  rows: (start: number, end: number) => Tensor,
  limit: { samples: number },
): Tensor {
  for (;;) {
    const samples = Math.min(size, limit.samples);
    try {
      if (samples >= size) return tidyOrThrow(() => rows(0, size));
      return tidyOrThrow(() => {
        let out: Tensor | undefined;
        for (const [start, end] of microBatchRanges(size, samples)) {
          const part = tidyOrThrow(() => rows(start, end));
          out ??= Tensor.empty([size, ...part.shape.slice(1)], part.dtype, "rowsInParts");
          writeAt(out, part, start * (part.size / part.shape[0]));
          part.dispose();
        }
        return out!;
      });
    } catch (error) {
      if (!isBindingLimitError(error) || samples === 1) throw error;
      limit.samples = Math.ceil(samples / 2);
    }
  }
}
