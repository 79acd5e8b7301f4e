/**
 * The runtime's pool of storage buffers and its memory accounting: free buffers kept per size
 * class for reuse, bytes live and at their peak (overall and per {@link MemoryPurpose}), and the
 * bound on free pooled bytes that evicts the size classes used longest ago.
 *
 * The pool never creates buffers: the runtime creates one when {@link BufferPool.reuse} finds
 * none free, after {@link BufferPool.makeRoomFor}, and hands it over with
 * {@link BufferPool.adopt}.
 *
 * @module
 */
import type { MemoryPurpose, PooledBuffer } from "./buffers.ts";
import { type MemoryByPurpose, MemoryLedger } from "./memory_ledger.ts";

/** Free pooled bytes always allowed (see {@link BufferPool.poolSlackBytes}). */
const POOL_SLACK_BYTES = 2 ** 30;

/**
 * How much larger than asked a free buffer may be and still serve an allocation whose size class
 * has none free (see {@link BufferPool.reuse}): about two size classes up.
 */
export const REUSE_LARGER_FACTOR = 1.5;

/**
 * The smallest size class served by a larger free buffer: below it creating a buffer is cheap
 * and exact classes keep the accounting of small tensors exact.
 */
export const REUSE_LARGER_FROM_BYTES = 2 ** 20;

/** Free storage buffers by size class, and the bytes held, live and at peak. */
export class BufferPool {
  /** Bytes of storage buffers currently allocated: held by live tensors plus pooled (free). */
  allocatedBytes = 0;
  /**
   * Free pooled bytes allowed besides the most bytes ever live at once: an allocation the pool
   * cannot serve first destroys pooled buffers of the size classes used longest ago until the
   * pool holds no more than that. Without a bound, batches of varying sizes (packed histories)
   * leave a full set of buffers in every size class they touch.
   */
  poolSlackBytes: number = POOL_SLACK_BYTES;
  /** The purpose buffers handed out now are counted under. */
  purpose: MemoryPurpose = "activations";
  readonly #free = new Map<number, PooledBuffer[]>();
  readonly #ledger = new MemoryLedger();
  readonly #classUse = new Map<number, number>();
  #allocations = 0;
  #bufferIds = 0;
  #liveBytes = 0;
  #peakLiveBytes = 0;
  #mostLiveBytes = 0;

  /**
   * A free buffer of size class `capacity`, counted live under {@link purpose}, or null when
   * none is free. Either way the class counts as used now (for eviction's order).
   *
   * When a class of at least {@link REUSE_LARGER_FROM_BYTES} has none free, the smallest free
   * buffer of a class up to {@link REUSE_LARGER_FACTOR} times larger (and no larger than
   * `largest`) serves instead: a batch a few tokens shorter than the last then reuses the last
   * one's buffers rather than destroying them to make room for new ones, which thrashed the pool
   * whenever the free buffers of one step exceeded the slack.
   *
   * Of a class's free buffers the one created first serves, not the one released last: steps
   * that allocate alike then get the same buffers whatever order they released them in, so the
   * runtime's bind groups (one per kernel and set of buffers) are found again instead of created.
   */
  reuse(capacity: number, largest = Infinity): PooledBuffer | null {
    this.#classUse.set(capacity, ++this.#allocations);
    const reused = takeFirstCreated(this.#free.get(capacity)) ??
      this.#reuseLarger(capacity, largest);
    if (!reused) return null;
    reused.purpose = this.purpose;
    this.#takeLive(reused.capacity, reused.purpose);
    return reused;
  }

  /** The smallest free buffer of a class in (`capacity`, `capacity` · factor] ∩ ≤ `largest`. */
  #reuseLarger(capacity: number, largest: number): PooledBuffer | undefined {
    if (capacity < REUSE_LARGER_FROM_BYTES) return undefined;
    const bound = Math.min(largest, capacity * REUSE_LARGER_FACTOR);
    let best = Infinity;
    for (const [c, list] of this.#free) {
      if (list.length > 0 && c > capacity && c <= bound && c < best) best = c;
    }
    if (best === Infinity) return undefined;
    this.#classUse.set(best, this.#allocations);
    return takeFirstCreated(this.#free.get(best));
  }

  /** Counts a newly created `buffer` of `capacity` bytes as allocated and live. */
  adopt(buffer: GPUBuffer, capacity: number): PooledBuffer {
    this.allocatedBytes += capacity;
    const purpose = this.purpose;
    this.#takeLive(capacity, purpose);
    return { buffer, capacity, lastEncoder: 0, refs: 0, id: ++this.#bufferIds, purpose };
  }

  /** Returns a buffer to the pool. */
  release(b: PooledBuffer): void {
    this.#liveBytes -= b.capacity;
    this.#ledger.release(b.capacity, b.purpose, this.allocatedBytes - this.#liveBytes);
    let list = this.#free.get(b.capacity);
    if (!list) this.#free.set(b.capacity, list = []);
    list.push(b);
  }

  #takeLive(capacity: number, purpose: MemoryPurpose): void {
    this.#liveBytes += capacity;
    const newPeak = this.#liveBytes > this.#peakLiveBytes;
    if (newPeak) this.#peakLiveBytes = this.#liveBytes;
    this.#ledger.take(capacity, purpose, newPeak, this.allocatedBytes - this.#liveBytes);
    if (this.#liveBytes > this.#mostLiveBytes) this.#mostLiveBytes = this.#liveBytes;
  }

  /** Counts a live buffer under `purpose` from now on; a pooled (free) buffer is left alone. */
  retag(b: PooledBuffer, purpose: MemoryPurpose): void {
    if (b.refs === 0 || b.purpose === purpose) return;
    this.#ledger.move(b.capacity, b.purpose, purpose);
    b.purpose = purpose;
  }

  /** Live, peak and at-peak bytes per purpose, and of the free buffers (allocated − live). */
  memoryByPurpose(): MemoryByPurpose {
    return this.#ledger.report(this.allocatedBytes - this.#liveBytes);
  }

  /**
   * Makes room for a new buffer of `capacity` bytes (see {@link poolSlackBytes}), calling
   * `beforeDestroy` with each free buffer just before destroying it. Returns the bytes
   * destroyed (0: none).
   */
  makeRoomFor(capacity: number, beforeDestroy: (b: PooledBuffer) => void): number {
    const limit = this.#mostLiveBytes + this.poolSlackBytes;
    let pooled = this.allocatedBytes - this.#liveBytes;
    if (pooled + capacity <= limit) return 0;
    const byAge = [...this.#free.entries()]
      .filter(([c, list]) => c !== capacity && list.length > 0)
      .sort(([a], [b]) => (this.#classUse.get(a) ?? 0) - (this.#classUse.get(b) ?? 0));
    let evicted = 0;
    for (const [, list] of byAge) {
      while (list.length > 0 && pooled + capacity > limit) {
        const b = list.pop()!;
        beforeDestroy(b);
        b.buffer.destroy();
        this.allocatedBytes -= b.capacity;
        pooled -= b.capacity;
        evicted += b.capacity;
      }
      if (pooled + capacity <= limit) break;
    }
    return evicted;
  }

  /** Bytes of the buffers handed out and not yet released, each at its size class. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** The most {@link liveBytes} held at once since the pool started or {@link resetPeak}. */
  get peakLiveBytes(): number {
    return this.#peakLiveBytes;
  }

  /** The most {@link liveBytes} held at once since the pool started (never reset). */
  get mostLiveBytes(): number {
    return this.#mostLiveBytes;
  }

  /** Starts a new peak: {@link peakLiveBytes} becomes the bytes live now. */
  resetPeak(): void {
    this.#peakLiveBytes = this.#liveBytes;
    this.#ledger.resetPeak(this.allocatedBytes - this.#liveBytes);
  }

  /** Destroys every free buffer; returns the bytes destroyed. */
  trim(): number {
    let destroyed = 0;
    for (const list of this.#free.values()) {
      for (const b of list) {
        b.buffer.destroy();
        this.allocatedBytes -= b.capacity;
        destroyed += b.capacity;
      }
    }
    this.#free.clear();
    return destroyed;
  }
}

/** Removes and returns the buffer of `list` created first (the lowest id), if any. */
function takeFirstCreated(list: PooledBuffer[] | undefined): PooledBuffer | undefined {
  if (!list || list.length === 0) return undefined;
  let first = 0;
  for (let i = 1; i < list.length; i++) if (list[i].id < list[first].id) first = i;
  const taken = list[first];
  list[first] = list[list.length - 1];
  list.pop();
  return taken;
}
