/**
 * The process's GPU runtime: one WebGPU device per process, opened by {@link initGpu} and
 * reached by every op through {@link runtime}; {@link flush} and {@link sync} submit and await
 * its work.
 *
 * @module
 */
import type { ProfiledDispatch } from "./profiler.ts";
import { ensureRuntimeDir } from "../../host/mod.ts";
import { type GpuInfo, type InitOptions, openDevice } from "./device.ts";
import { Runtime } from "./gpu_runtime.ts";
import type { MemoryPurpose } from "./buffers.ts";
import type { MemoryByPurpose } from "./memory_ledger.ts";

let current: Runtime | null = null;
let starting: Promise<Runtime> | null = null;

/**
 * Acquires the WebGPU adapter and a device with the adapter's own maximum limits. Call once
 * before creating tensors; later calls return the same runtime.
 */
export function initGpu(options: InitOptions = {}): Promise<GpuInfo> {
  starting ??= start(options).catch((e) => {
    starting = null;
    throw e;
  });
  return starting.then((r) => r.info);
}

async function start(options: InitOptions): Promise<Runtime> {
  if (typeof navigator === "undefined" || !("gpu" in navigator)) {
    throw new Error(
      "WebGPU is not available in this runtime: ssmrec needs Deno 2 or later (navigator.gpu).",
    );
  }
  ensureRuntimeDir(); // before the GPU stack's window-system code looks for it
  current = await openRuntime(navigator.gpu, options);
  return current;
}

/**
 * Opens a device on `gpu`'s adapter with the adapter's own maximum limits. Exposed for tests;
 * applications call {@link initGpu}.
 */
export async function openRuntime(gpu: GPU, options: InitOptions = {}): Promise<Runtime> {
  const { device, info } = await openDevice(gpu, options);
  return new Runtime(device, info);
}

/** The started runtime. Throws with instructions when {@link initGpu} has not completed. */
export function runtime(): Runtime {
  if (!current) {
    throw new Error("ssmrec: the GPU is not initialised; run `await initGpu()` first");
  }
  return current;
}

/** Submits all encoded work without waiting for it. */
export function flush(): void {
  current?.flush();
}

/** Waits for all submitted GPU work and throws any WebGPU error it raised. */
export async function sync(): Promise<void> {
  if (current) await current.sync();
}

/**
 * The runtime's storage-buffer accounting, in bytes. It counts the storage buffers the runtime
 * hands out to tensors, each rounded up to its pool size class — not the driver's own memory,
 * kernels' code, uniform or readback buffers.
 */
export interface MemoryStats {
  /** Bytes of storage held by live tensors (taken from the pool and not yet released). */
  readonly liveBytes: number;
  /** The most `liveBytes` held at once since the last {@link resetPeakMemory} (or the start). */
  readonly peakLiveBytes: number;
  /** Bytes of storage buffers allocated: live plus pooled (released, kept for reuse). */
  readonly allocatedBytes: number;
  /**
   * The same bytes by {@link MemoryPurpose} (set by {@link withPurpose} or by a tensor's origin;
   * `activations` by default), and `pool`: allocated − live. The purposes' `liveBytes` add up to
   * {@link liveBytes}, their `atPeakBytes` to {@link peakLiveBytes}.
   */
  readonly byPurpose: MemoryByPurpose;
}

/**
 * The runtime's memory figures ({@link MemoryStats}): storage buffers handed out to tensors,
 * rounded to pool size classes, not the driver's own memory. All zero before {@link initGpu}.
 */
export function memoryStats(): MemoryStats {
  if (!current) {
    const none = { liveBytes: 0, peakLiveBytes: 0, atPeakBytes: 0 };
    const byPurpose = {
      parameters: none,
      gradients: none,
      optimizer: none,
      activations: none,
      workspace: none,
      pool: none,
    };
    return { liveBytes: 0, peakLiveBytes: 0, allocatedBytes: 0, byPurpose };
  }
  const { liveBytes, peakLiveBytes, allocatedBytes } = current;
  return { liveBytes, peakLiveBytes, allocatedBytes, byPurpose: current.memoryByPurpose() };
}

/**
 * Runs `fn` with every storage buffer it takes counted under `purpose` (see
 * {@link MemoryStats.byPurpose}); the previous purpose comes back afterwards, also on a throw.
 * For synchronous work only: an `await` inside would tag whatever else runs meanwhile.
 */
export function withPurpose<T>(purpose: MemoryPurpose, fn: () => T): T {
  const rt = current;
  if (!rt) return fn();
  const before = rt.purpose;
  rt.purpose = purpose;
  try {
    return fn();
  } finally {
    rt.purpose = before;
  }
}

/**
 * Waits for the submitted GPU work, then destroys every pooled (free) storage buffer, so that
 * {@link MemoryStats.allocatedBytes} falls to the live bytes. For a change of phase whose tensors
 * have other sizes (training to evaluation and back): the pool would otherwise keep the last
 * phase's buffers, up to its most live bytes plus its slack, beside the new phase's.
 */
export async function releasePooledMemory(): Promise<void> {
  if (!current) return;
  await current.sync();
  current.trimPool();
}

/**
 * Waits for the submitted GPU work once the pooled buffers destroyed since the last wait exceed
 * the pool's slack (`Runtime.destroyedSinceSync`, `Runtime.poolSlackBytes`); else returns at
 * once. WebGPU frees a destroyed buffer only when the work submitted before it is done, so a loop
 * that queues steps far ahead of the GPU and whose varying sizes make the pool evict would
 * otherwise hold many steps' worth of destroyed buffers beside the live ones, memory no count
 * shows. Call it between the steps of such a loop: it costs nothing while the pool reuses its
 * buffers.
 */
export async function settleDestroyedBuffers(): Promise<void> {
  if (current && current.destroyedSinceSync > current.poolSlackBytes) await current.sync();
}

/** Starts a new peak: {@link MemoryStats.peakLiveBytes} becomes the bytes live now. */
export function resetPeakMemory(): void {
  current?.resetPeakMemory();
}

/**
 * Starts timing every GPU dispatch (see {@link stopProfile}); for finding which kernels a call
 * spends its time in. Each dispatch gets its own pass, which adds encoding time, so profile a
 * few calls rather than a whole run. Throws where the device has no timestamp queries.
 */
export function startProfile(capacity?: number): void {
  runtime().startProfile(capacity);
}

/** Ends the profile {@link startProfile} began: the GPU milliseconds of each dispatch, in order. */
export function stopProfile(): Promise<ProfiledDispatch[]> {
  return runtime().stopProfile();
}

export type { MemoryByPurpose, MemoryPurpose, Runtime };
export type { PurposeBytes } from "./memory_ledger.ts";
