/**
 * The ring of parameter blocks: each dispatch's uniform block (u32/i32/f32 words, at most 256
 * bytes) takes the next slot of one host array, uploaded into one uniform buffer when the
 * encoder is submitted. Every bind group binds a single slot of that buffer, and each dispatch
 * picks its own slot with a dynamic offset, so one bind group serves every dispatch over the
 * same buffers.
 *
 * @module
 */

/** Bytes per dispatch in the ring: the uniform buffer offset alignment. */
const PARAM_SLOT = 256;

/** The host array of parameter blocks and the uniform buffer they are uploaded to. */
export class ParameterRing {
  readonly #device: GPUDevice;
  #host = new ArrayBuffer(PARAM_SLOT * 256);
  #count = 0;
  #buffer: GPUBuffer;

  /** A ring of 256 slots on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
    this.#buffer = this.#newBuffer(this.#host.byteLength);
  }

  #newBuffer(bytes: number): GPUBuffer {
    return this.#device.createBuffer({
      label: "ssmrec params",
      size: bytes,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /** Whether every slot is taken: {@link grow} (after submitting) before the next {@link push}. */
  get full(): boolean {
    return this.#count * PARAM_SLOT >= this.#host.byteLength;
  }

  /** One slot of the uniform buffer, for binding 0 of a bind group (offset set per dispatch). */
  binding(): GPUBufferBinding {
    return { buffer: this.#buffer, offset: 0, size: PARAM_SLOT };
  }

  /** Copies `params` (or nothing) into the next slot; returns its byte offset. */
  push(params: ArrayBufferView | null): number {
    const offset = this.#count++ * PARAM_SLOT;
    if (params) {
      new Uint8Array(this.#host, offset, params.byteLength).set(
        new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
      );
    }
    return offset;
  }

  /**
   * Doubles the ring. The old uniform buffer is destroyed: submit the work that reads it first,
   * and drop every bind group that binds it.
   */
  grow(): void {
    const bigger = this.#host.byteLength * 2;
    this.#host = new ArrayBuffer(bigger);
    this.#buffer.destroy();
    this.#buffer = this.#newBuffer(bigger);
  }

  /** Writes the taken slots into the uniform buffer (in queue order, before the next submit). */
  upload(): void {
    if (this.#count > 0) {
      this.#device.queue.writeBuffer(this.#buffer, 0, this.#host, 0, this.#count * PARAM_SLOT);
    }
  }

  /** Frees every slot for the next encoder. */
  clear(): void {
    this.#count = 0;
  }
}
