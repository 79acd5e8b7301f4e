/**
 * The buffer pool's accounting by purpose: live, peak and at-peak bytes of each
 * {@link MemoryPurpose}, and of the pool's free buffers.
 *
 * @module
 */
import { MEMORY_PURPOSES, type MemoryPurpose } from "./buffers.ts";

/** Bytes of one purpose (or of the pool's free buffers), as {@link MemoryLedger.report} gives. */
export interface PurposeBytes {
  /** Bytes held now. */
  readonly liveBytes: number;
  /** The most bytes held at once since the last peak reset. */
  readonly peakLiveBytes: number;
  /** Bytes held at the moment all live bytes peaked (the parts of that peak add up to it). */
  readonly atPeakBytes: number;
}

/** Live and peak bytes per {@link MemoryPurpose}, plus `pool`: allocated − live (free, kept). */
export type MemoryByPurpose = Readonly<Record<MemoryPurpose | "pool", PurposeBytes>>;

type PurposeCounts = Record<MemoryPurpose, number>;

function noBytes(): PurposeCounts {
  return { parameters: 0, gradients: 0, optimizer: 0, activations: 0, workspace: 0 };
}

/**
 * Live bytes per purpose, their peaks, and what each held when the total peaked. The runtime
 * tells it every buffer taken, released or retagged, and the totals at that moment.
 */
export class MemoryLedger {
  #live: PurposeCounts = noBytes();
  #peak: PurposeCounts = noBytes();
  #atPeak: PurposeCounts = noBytes();
  #pooledAtPeak = 0;
  #peakPooled = 0;

  /** Counts `capacity` bytes taken for `purpose`; `newPeak` when the total just peaked. */
  take(capacity: number, purpose: MemoryPurpose, newPeak: boolean, pooled: number): void {
    const held = this.#live[purpose] += capacity;
    if (held > this.#peak[purpose]) this.#peak[purpose] = held;
    if (newPeak) {
      this.#atPeak = { ...this.#live };
      this.#pooledAtPeak = pooled;
    }
  }

  /** Counts `capacity` bytes of `purpose` given back; `pooled` is the pool's free bytes now. */
  release(capacity: number, purpose: MemoryPurpose, pooled: number): void {
    this.#live[purpose] -= capacity;
    if (pooled > this.#peakPooled) this.#peakPooled = pooled;
  }

  /** Moves `capacity` live bytes from one purpose to another. */
  move(capacity: number, from: MemoryPurpose, to: MemoryPurpose): void {
    this.#live[from] -= capacity;
    const held = this.#live[to] += capacity;
    if (held > this.#peak[to]) this.#peak[to] = held;
  }

  /** Starts new peaks at what is held now (`pooled`: the pool's free bytes now). */
  resetPeak(pooled: number): void {
    this.#peak = { ...this.#live };
    this.#atPeak = { ...this.#live };
    this.#pooledAtPeak = this.#peakPooled = pooled;
  }

  /** The figures per purpose, and the pool's (`pooled`: its free bytes now). */
  report(pooled: number): MemoryByPurpose {
    const out = {} as Record<MemoryPurpose | "pool", PurposeBytes>;
    for (const p of MEMORY_PURPOSES) {
      out[p] = {
        liveBytes: this.#live[p],
        peakLiveBytes: this.#peak[p],
        atPeakBytes: this.#atPeak[p],
      };
    }
    out.pool = {
      liveBytes: pooled,
      peakLiveBytes: Math.max(this.#peakPooled, pooled),
      atPeakBytes: this.#pooledAtPeak,
    };
    return out;
  }
}
