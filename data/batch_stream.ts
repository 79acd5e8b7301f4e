/**
 * What the batchers share: the split names, the re-iterable batch stream, option checks, and the
 * stream numbers that keep their random generators apart.
 *
 * @module
 */
import type { SequentialDataset } from "./dataset.ts";
import type { SampleSet } from "./split.ts";

/** The three parts of the leave-one-out split. */
export type SplitName = "train" | "valid" | "test";

/** Stream numbers that keep the random generators of the different batchers apart. */
export const BATCHER_STREAMS = {
  prefix: 1,
  packedOrder: 2,
  packedMask: 3,
  allPositions: 4,
} as const;

/** An iterable of batches that knows how many batches and samples it will yield. */
export interface BatchStream<T> extends Iterable<T> {
  /** Number of batches one iteration yields. */
  readonly batchCount: number;
  /** Number of samples (rows) over all batches. */
  readonly sampleCount: number;
}

/** Makes a re-iterable {@link BatchStream} from a batch-producing generator function. */
export function batchStream<T>(
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

/** Checks a positive integer option named `name`; throws a `RangeError` naming it otherwise. */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** The sample set of a split. */
export function samplesOf(dataset: SequentialDataset, split: SplitName): SampleSet {
  const samples = dataset.split[split];
  if (!samples) throw new RangeError(`unknown split ${JSON.stringify(split)}`);
  return samples;
}
