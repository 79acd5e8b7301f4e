/**
 * GPU time per dispatch, from timestamp queries: while a profile runs, the runtime gives every
 * dispatch its own compute pass with a timestamp at its start and end (about 35 µs of encoding
 * more per dispatch, so profile a few calls, not a training run), and resolves the queries into
 * a buffer at every submit. {@link DispatchProfiler.read} returns each dispatch's kernel name
 * and duration.
 *
 * @module
 */

/** One profiled dispatch. */
export interface ProfiledDispatch {
  /** The kernel's name (op and kernel label). */
  kernel: string;
  /** GPU time between the start and end of its pass, in milliseconds. */
  ms: number;
}

/** Most dispatches one profile records: WebGPU query sets hold at most 4,096 timestamps. */
export const MAX_PROFILE_DISPATCHES = 2048;

/**
 * Dispatches per 256 bytes of resolved timestamps (two 8-byte stamps each): WebGPU resolves
 * queries only to offsets that are multiples of 256 bytes.
 */
const RESOLVE_ALIGNMENT_DISPATCHES = 16;

/** The timestamp queries of one profile. */
export class DispatchProfiler {
  readonly #device: GPUDevice;
  readonly #queries: GPUQuerySet;
  readonly #resolved: GPUBuffer;
  readonly #capacity: number;
  readonly #kernels: string[] = [];
  #resolvedCount = 0;

  /** A profile of at most `capacity` dispatches on `device` (which has "timestamp-query"). */
  constructor(device: GPUDevice, capacity = MAX_PROFILE_DISPATCHES) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_PROFILE_DISPATCHES) {
      throw new RangeError(
        `startProfile: capacity must be an integer in [1, ${MAX_PROFILE_DISPATCHES}], got ${capacity}`,
      );
    }
    this.#device = device;
    this.#capacity = capacity;
    this.#queries = device.createQuerySet({ type: "timestamp", count: 2 * capacity });
    this.#resolved = device.createBuffer({
      label: "ssmrec profile",
      size: 16 * capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** Timestamp writes for the pass of the next dispatch, or undefined once the profile is full. */
  next(kernel: string): GPUComputePassTimestampWrites | undefined {
    const i = this.#kernels.length;
    if (i >= this.#capacity) return undefined;
    this.#kernels.push(kernel);
    return {
      querySet: this.#queries,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
  }

  /**
   * Resolves the queries written since the last call; called on the encoder about to submit. A
   * resolve must land at a multiple of 256 bytes of the buffer (16 dispatches), so it starts at
   * the last such multiple at or before the first new query, resolving a few again.
   */
  resolve(encoder: GPUCommandEncoder): void {
    const to = this.#kernels.length;
    if (to === this.#resolvedCount) return;
    const from = this.#resolvedCount - (this.#resolvedCount % RESOLVE_ALIGNMENT_DISPATCHES);
    encoder.resolveQuerySet(this.#queries, 2 * from, 2 * (to - from), this.#resolved, 16 * from);
    this.#resolvedCount = to;
  }

  /**
   * The durations of the dispatches recorded, in order. Every recorded dispatch must have been
   * submitted (the runtime's flush does it) before this is called.
   */
  async read(): Promise<ProfiledDispatch[]> {
    const n = this.#resolvedCount;
    if (n === 0) return [];
    const staging = this.#device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.#device.createCommandEncoder();
    encoder.copyBufferToBuffer(this.#resolved, 0, staging, 0, 16 * n);
    this.#device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const stamps = new BigInt64Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return this.#kernels.slice(0, n).map((kernel, i) => ({
      kernel,
      ms: Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6,
    }));
  }

  /** Frees the query set and its buffer. */
  destroy(): void {
    this.#queries.destroy();
    this.#resolved.destroy();
  }
}

/**
 * Sums profiled dispatches by kernel, in order of first appearance: name, launches, total ms.
 */
export function summarizeProfile(
  dispatches: readonly ProfiledDispatch[],
): { kernel: string; launches: number; ms: number }[] {
  const rows = new Map<string, { kernel: string; launches: number; ms: number }>();
  for (const d of dispatches) {
    const row = rows.get(d.kernel) ?? { kernel: d.kernel, launches: 0, ms: 0 };
    row.launches++;
    row.ms += d.ms;
    rows.set(d.kernel, row);
  }
  return [...rows.values()];
}
