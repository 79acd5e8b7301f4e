/**
 * The GPU runtime's state and operations: a pipeline cache, a buffer pool (`./buffer_pool.ts`),
 * a single command encoder that collects every dispatch until the next flush, a ring of
 * parameter blocks, and batched readback.
 *
 * Ops never wait on the GPU: they append dispatches to the open compute pass. Work is submitted
 * by {@link Runtime.flush} (called by readback) and results come back with
 * {@link Runtime.readBuffers}, which maps every requested buffer in one wait (each `mapAsync`
 * round trip costs about 11 ms in Deno).
 *
 * @module
 */
import { MAX_WORKGROUPS_PER_DIMENSION } from "../wgsl/grid.ts";
import { type MemoryPurpose, MIN_ALLOC, pad4, type PooledBuffer, sizeClass } from "./buffers.ts";
import { BufferPool } from "./buffer_pool.ts";
import type { MemoryByPurpose } from "./memory_ledger.ts";
import type { GpuInfo } from "./device.ts";
import { describeOps, GpuErrorLog } from "./gpu_errors.ts";
import { bindingsOf, checkStorageBindings, type Kernel } from "./kernels.ts";
import { ParameterRing } from "./parameter_ring.ts";
import { DispatchProfiler, type ProfiledDispatch } from "./profiler.ts";

export { GpuError } from "./gpu_errors.ts";

const MAX_BIND_GROUPS = 8192;

/**
 * The process's GPU state: the device, compiled kernels, the buffer pool, the open command
 * encoder and the parameter ring. Get it with {@link runtime} after {@link initGpu}.
 */
export class Runtime {
  /** The WebGPU device. */
  readonly device: GPUDevice;
  /** What the adapter and device offer. */
  readonly info: GpuInfo;
  readonly #kernels = new Map<string, Kernel>();
  readonly #buffers = new BufferPool();
  readonly #readPool = new Map<number, GPUBuffer[]>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #encoderId = 1;
  #opsInEncoder: string[] = [];
  readonly #params: ParameterRing;
  readonly #errors = new GpuErrorLog();
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  #destroyedSinceSync = 0;
  /** Dispatches encoded since the runtime started (for benchmarks). */
  dispatchCount = 0;
  /**
   * Bind groups created since the runtime started (for benchmarks): a dispatch over a kernel and
   * buffers met before reuses its bind group, so in steady training this stays put.
   */
  bindGroupsCreated = 0;
  /**
   * Command buffers submitted since the runtime started (for benchmarks): one per flush, which
   * a host write into a buffer the open encoder uses also forces.
   */
  submitCount = 0;
  /** Host-to-GPU buffer writes since the runtime started (for benchmarks). */
  writeCount = 0;
  /** Whether each op runs inside its own error scope (exact op names in errors). */
  errorScopes = true;
  #profiler: DispatchProfiler | null = null;

  /** Wraps an opened device (see {@link openRuntime}). */
  constructor(device: GPUDevice, info: GpuInfo) {
    this.device = device;
    this.info = info;
    this.#params = new ParameterRing(device);
  }

  /** Compiles (once) and returns the kernel for a WGSL source. */
  kernel(name: string, wgsl: string): Kernel {
    const cached = this.#kernels.get(wgsl);
    if (cached) return cached;
    const entries = bindingsOf(wgsl);
    checkStorageBindings(name, entries, this.info.maxStorageBuffers, this.info.description);
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ label: name, code: wgsl });
    // An explicit layout (rather than 'auto') lets the parameter block use a dynamic offset, so
    // one bind group serves every dispatch over the same buffers.
    const layout = this.device.createBindGroupLayout({ label: name, entries });
    const pipeline = this.device.createComputePipeline({
      label: name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    this.#watch(this.device.popErrorScope(), `compiling kernel '${name}'`);
    const k: Kernel = { name, pipeline, layout, id: this.#kernels.size + 1 };
    this.#kernels.set(wgsl, k);
    return k;
  }

  /** Takes a storage buffer of at least `bytes` from the pool, or allocates one. */
  alloc(bytes: number, op: string): PooledBuffer {
    if (bytes > this.info.maxBindingBytes) {
      throw new RangeError(
        `${op}: a tensor of ${bytes} bytes exceeds this device's storage binding limit of ` +
          `${this.info.maxBindingBytes} bytes (${this.info.description}); use smaller batches ` +
          `or shorter sequences`,
      );
    }
    const capacity = sizeClass(Math.max(bytes, MIN_ALLOC), this.info.maxBindingBytes);
    const reused = this.#buffers.reuse(capacity, this.info.maxBindingBytes);
    if (reused) return reused;
    this.#evictFor(capacity);
    this.device.pushErrorScope("out-of-memory");
    const buffer = this.device.createBuffer({
      label: op,
      size: capacity,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.#watch(
      this.device.popErrorScope(),
      `${op}: allocating ${capacity} bytes (${this.allocatedBytes} already held)`,
    );
    return this.#buffers.adopt(buffer, capacity);
  }

  /** Returns a buffer to the pool. Later dispatches may reuse it; ordering stays correct. */
  release(b: PooledBuffer): void {
    this.#buffers.release(b);
  }

  /**
   * Counts a live buffer under `purpose` from now on (e.g. a tensor that turns out to be a
   * parameter or a gradient after it was made). A pooled (released) buffer is left alone.
   */
  retag(b: PooledBuffer, purpose: MemoryPurpose): void {
    this.#buffers.retag(b, purpose);
  }

  /**
   * Live, peak and at-peak bytes per {@link MemoryPurpose}, and of the pool's free buffers
   * (allocated − live). The purposes' live bytes add up to {@link liveBytes}, their at-peak
   * bytes to {@link peakLiveBytes}.
   */
  memoryByPurpose(): MemoryByPurpose {
    return this.#buffers.memoryByPurpose();
  }

  /** Makes room for a new buffer of `capacity` bytes (see {@link poolSlackBytes}). */
  #evictFor(capacity: number): void {
    const evicted = this.#buffers.makeRoomFor(capacity, (b) => {
      // The open encoder may still use it: submit that work first.
      if (b.lastEncoder === this.#encoderId && this.#encoder) this.flush();
    });
    if (evicted > 0) {
      this.#bindGroups.clear();
      this.#destroyedSinceSync += evicted;
    }
  }

  /**
   * Bytes of pooled buffers destroyed since the last {@link sync}. WebGPU frees a destroyed
   * buffer's memory only once the work submitted before has finished with it, so while the host
   * runs ahead of the GPU this memory is still held, uncounted by {@link allocatedBytes}: a loop
   * whose varying sizes make the pool evict should {@link sync} before it grows past the pool's
   * slack (`settleDestroyedBuffers` in `runtime.ts`).
   */
  get destroyedSinceSync(): number {
    return this.#destroyedSinceSync;
  }

  /** Bytes of storage buffers currently allocated: held by live tensors plus pooled (free). */
  get allocatedBytes(): number {
    return this.#buffers.allocatedBytes;
  }

  /**
   * Free pooled bytes allowed besides the most bytes ever live at once: an allocation the pool
   * cannot serve first destroys pooled buffers of the size classes used longest ago until the
   * pool holds no more than that. Without a bound, batches of varying sizes (packed histories)
   * leave a full set of buffers in every size class they touch.
   */
  get poolSlackBytes(): number {
    return this.#buffers.poolSlackBytes;
  }

  set poolSlackBytes(bytes: number) {
    this.#buffers.poolSlackBytes = bytes;
  }

  /** The purpose buffers handed out now are counted under (set by `withPurpose`). */
  get purpose(): MemoryPurpose {
    return this.#buffers.purpose;
  }

  set purpose(purpose: MemoryPurpose) {
    this.#buffers.purpose = purpose;
  }

  /**
   * Bytes of the storage buffers handed out by {@link alloc} and not yet given back by
   * {@link release} (the live tensors' storage), each counted at its pool size class.
   */
  get liveBytes(): number {
    return this.#buffers.liveBytes;
  }

  /** The most {@link liveBytes} held at once since the runtime started or {@link resetPeakMemory}. */
  get peakLiveBytes(): number {
    return this.#buffers.peakLiveBytes;
  }

  /** The most {@link liveBytes} held at once since the runtime started (never reset). */
  get mostLiveBytes(): number {
    return this.#buffers.mostLiveBytes;
  }

  /** Starts a new peak: {@link peakLiveBytes} becomes the bytes live now. */
  resetPeakMemory(): void {
    this.#buffers.resetPeak();
  }

  /** Destroys every pooled (unused) buffer. */
  trimPool(): void {
    this.#destroyedSinceSync += this.#buffers.trim();
    this.#bindGroups.clear();
  }

  /** Copies host data into a buffer, in order with every dispatch encoded before this call. */
  write(b: PooledBuffer, data: ArrayBufferView, byteOffset = 0): void {
    if (data.byteLength === 0) return;
    // queue.writeBuffer runs before any command buffer not yet submitted, so work recorded
    // earlier that still reads this (reused) buffer must be submitted first.
    if (b.lastEncoder === this.#encoderId && this.#encoder) this.flush();
    this.writeCount++;
    this.device.queue.writeBuffer(
      b.buffer,
      byteOffset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  #pass_(): GPUComputePassEncoder {
    if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder({ label: "ssmrec" });
      this.#pass = this.#encoder.beginComputePass();
    }
    return this.#pass;
  }

  /**
   * Appends one dispatch to the open compute pass.
   * @param op op name for error messages
   * @param k the kernel
   * @param params the parameter block (u32/i32/f32 words, at most 64)
   * @param buffers storage buffers for bindings 1..n
   * @param groups workgroup counts
   */
  dispatch(
    op: string,
    k: Kernel,
    params: ArrayBufferView | null,
    buffers: PooledBuffer[],
    groups: readonly [number, number?, number?],
  ): void {
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const limit = MAX_WORKGROUPS_PER_DIMENSION;
    if (gx > limit || gy > limit || gz > limit) {
      throw new RangeError(
        `${op}: dispatch of ${gx}×${gy}×${gz} workgroups exceeds ${limit} in one dimension; ` +
          "fold the range with grid() or foldWorkgroups()",
      );
    }
    if (this.#params.full) this.#growParams();
    const offset = this.#params.push(params);
    let key = `${k.id}`;
    for (const b of buffers) {
      b.lastEncoder = this.#encoderId;
      key += `,${b.id}`;
    }
    let group = this.#bindGroups.get(key);
    const scoped = this.errorScopes && !group;
    if (scoped) this.device.pushErrorScope("validation");
    if (!group) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: this.#params.binding() }];
      buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b.buffer } }));
      group = this.device.createBindGroup({ label: k.name, layout: k.layout, entries });
      this.bindGroupsCreated++;
      if (this.#bindGroups.size >= MAX_BIND_GROUPS) this.#bindGroups.clear();
      this.#bindGroups.set(key, group);
    }
    if (this.#profiler) {
      // Its own pass, timed at both ends.
      this.#endPass();
      this.#encoder ??= this.device.createCommandEncoder({ label: "ssmrec" });
      const timestampWrites = this.#profiler.next(k.name);
      this.#pass = this.#encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
    }
    const pass = this.#pass_();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, group, [offset]);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (this.#profiler) this.#endPass();
    if (scoped) this.#watch(this.device.popErrorScope(), `${op} (kernel '${k.name}')`);
    this.#opsInEncoder.push(op);
    this.dispatchCount++;
  }

  #growParams(): void {
    // The ring is written at flush time; growing mid-encoder keeps earlier offsets valid
    // because bind groups already point at the old buffer. Submit first, then grow.
    this.flush();
    this.#params.grow();
    this.#bindGroups.clear();
  }

  /** Copies `bytes` from one buffer to another (ends the current compute pass). */
  copy(src: PooledBuffer, dst: PooledBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.#endPass();
    this.#encoder ??= this.device.createCommandEncoder({ label: "ssmrec" });
    src.lastEncoder = dst.lastEncoder = this.#encoderId;
    this.#encoder.copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, pad4(bytes));
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Submits everything encoded so far. Cheap; does not wait for the GPU. */
  flush(): void {
    if (!this.#encoder) return;
    this.#endPass();
    this.#params.upload();
    this.#profiler?.resolve(this.#encoder);
    const ops = this.#opsInEncoder;
    this.device.pushErrorScope("validation");
    this.device.queue.submit([this.#encoder.finish()]);
    this.submitCount++;
    this.#watch(this.device.popErrorScope(), `submitting ${describeOps(ops)}`);
    this.#encoder = null;
    this.#opsInEncoder = [];
    this.#params.clear();
    this.#encoderId++;
  }

  /** Reads several buffers back with a single wait on the GPU. */
  async readBuffers(items: { buffer: PooledBuffer; bytes: number }[]): Promise<ArrayBuffer[]> {
    const staging: GPUBuffer[] = [];
    this.#endPass();
    this.#encoder ??= this.device.createCommandEncoder({ label: "ssmrec readback" });
    for (const { buffer, bytes } of items) {
      const size = sizeClass(Math.max(pad4(bytes), MIN_ALLOC));
      const s = this.#readPool.get(size)?.pop() ?? this.device.createBuffer({
        label: "ssmrec readback",
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      buffer.lastEncoder = this.#encoderId;
      this.#encoder.copyBufferToBuffer(buffer.buffer, 0, s, 0, pad4(bytes));
      staging.push(s);
    }
    this.flush();
    await Promise.all(staging.map((s) => s.mapAsync(GPUMapMode.READ)));
    const out = staging.map((s, i) => s.getMappedRange(0, pad4(items[i].bytes)).slice(0));
    for (const s of staging) {
      s.unmap();
      let list = this.#readPool.get(s.size);
      if (!list) this.#readPool.set(s.size, list = []);
      list.push(s);
    }
    await this.checkErrors();
    return out;
  }

  /**
   * Starts timing every dispatch (each in its own pass, timestamps at both ends) until
   * {@link stopProfile}; at most `capacity` dispatches are recorded. Throws where the device has
   * no timestamp queries.
   */
  startProfile(capacity?: number): void {
    if (!this.info.timestamps) {
      throw new Error(
        `startProfile: ${this.info.description} offers no timestamp queries ("timestamp-query")`,
      );
    }
    if (this.#profiler) throw new Error("startProfile: a profile is already running");
    this.flush();
    this.#profiler = new DispatchProfiler(this.device, capacity);
  }

  /** Ends the profile and returns the GPU time of every dispatch recorded, in order. */
  async stopProfile(): Promise<ProfiledDispatch[]> {
    const profiler = this.#profiler;
    if (!profiler) throw new Error("stopProfile: no profile is running; call startProfile first");
    this.flush();
    this.#profiler = null;
    try {
      return await profiler.read();
    } finally {
      profiler.destroy();
    }
  }

  /** Waits until the GPU has finished all submitted work, then reports any captured error. */
  async sync(): Promise<void> {
    this.flush();
    // Buffers destroyed from here on may be used by work submitted after the wait began.
    const destroyed = this.#destroyedSinceSync;
    await this.device.queue.onSubmittedWorkDone();
    this.#destroyedSinceSync -= destroyed;
    await this.checkErrors();
  }

  /** Throws the first WebGPU error captured since the last check, naming the op. */
  async checkErrors(): Promise<void> {
    await this.#errors.check();
  }

  #watch(scope: Promise<GPUError | null>, where: string): void {
    this.#errors.watch(scope, where);
  }
}
