/**
 * Pooled storage buffers: the record of one allocation and the size classes the pool rounds
 * requests up to, so that buffers of nearby sizes are reused.
 *
 * @module
 */

/**
 * What a storage buffer holds, for memory accounting: `parameters` (model weights),
 * `gradients` (parameters' accumulated gradients), `optimizer` (optimizer state such as Adam's
 * moments), `activations` (everything else made inside a training step or evaluation batch, the
 * default) and `workspace` (kernels' scratch, where an op marks it).
 */
export type MemoryPurpose = "parameters" | "gradients" | "optimizer" | "activations" | "workspace";

/** Every {@link MemoryPurpose}, in the order reports list them. */
export const MEMORY_PURPOSES: readonly MemoryPurpose[] = [
  "parameters",
  "gradients",
  "optimizer",
  "activations",
  "workspace",
];

/** A pooled GPU allocation. `pendingFlush` marks buffers used by work not yet submitted. */
export interface PooledBuffer {
  /** The WebGPU buffer. */
  readonly buffer: GPUBuffer;
  /** Allocated size class in bytes (at least the requested size). */
  readonly capacity: number;
  /** Id of the last encoder that referenced this buffer. */
  lastEncoder: number;
  /** Number of live tensors viewing this buffer; it returns to the pool at zero. */
  refs: number;
  /** A unique number, part of bind-group cache keys. */
  readonly id: number;
  /** What the buffer holds while live, for the runtime's accounting by purpose. */
  purpose: MemoryPurpose;
}

/** The smallest allocation, in bytes. */
export const MIN_ALLOC = 16;

/**
 * Rounds a byte count up to a pool size class: multiples of a quarter power of two, but never past
 * `largest` (the device's binding limit: a buffer is bound whole, so a class above the limit would
 * make a tensor that fits the limit unbindable). `bytes` itself must not exceed `largest`.
 */
export function sizeClass(bytes: number, largest = Infinity): number {
  if (bytes <= 256) return Math.min(256, largest);
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  return Math.min(Math.ceil(bytes / step) * step, largest);
}

/** Rounds a byte count up to a multiple of 4 (copies move whole words). */
export function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
