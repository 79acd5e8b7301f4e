/**
 * The loss checks of a training loop ({@link LossChecks}): every `lossCheckEvery` steps a
 * readback of the steps' losses starts (its copy encoded and submitted at once), and the one
 * started at the check before is looked at. The GPU never runs dry at a check, since the values
 * looked at were written long before, and the host stays at most two checks ahead of the GPU.
 * The trainer checks each loss for NaN/Inf this way; the efficiency measurement paces its timed
 * steps the same way. After every step the host also waits for the GPU where the buffer pool has
 * destroyed more than its slack since the last wait (`settleDestroyedBuffers`): two checks of
 * queued steps whose sizes vary (packed histories) would otherwise hold the destroyed buffers of
 * every one of them.
 *
 * @module
 */
import { settleDestroyedBuffers } from "../../ops/core/runtime.ts";
import type { HostArray, Tensor } from "../../ops/core/tensor.ts";

/** Looks at the losses of steps `from … upTo − 1` (indices into the losses buffer). */
export type LossInspector = (host: HostArray, from: number, upTo: number) => void | Promise<void>;

/** Loss readbacks every `every` steps, each looked at one check later (see the module doc). */
export class LossChecks {
  #pending: { read: Promise<HostArray>; upTo: number } | null = null;
  #inspected = 0;

  /**
   * @param losses the buffer the steps write their losses into, one entry a step
   * @param every steps between checks
   * @param inspect what looks at each readback's new entries (throwing stops the loop)
   */
  constructor(
    readonly losses: Tensor,
    readonly every: number,
    readonly inspect: LossInspector = () => {},
  ) {}

  /**
   * After the step that wrote entry `steps − 1`: settle the destroyed buffers; at a check, look
   * at the last readback and start one.
   */
  async afterStep(steps: number): Promise<void> {
    await settleDestroyedBuffers();
    if (steps % this.every !== 0) return;
    await this.#inspectPending();
    const read = this.losses.toArray();
    // A failure surfaces at the next check, or nowhere if the loop throws first.
    read.catch(() => {});
    this.#pending = { read, upTo: steps };
  }

  /**
   * Waits for every step's loss (the first `steps` entries), looks at them and returns them: the
   * readback a check just started when it covers them all, else a new one.
   */
  async finish(steps: number): Promise<HostArray> {
    if (this.#pending?.upTo !== steps) {
      await this.#inspectPending();
      this.#pending = { read: this.losses.toArray(), upTo: steps };
    }
    const { read } = this.#pending!;
    this.#pending = null;
    const host = await read;
    await this.#inspect(host, steps);
    return host;
  }

  async #inspectPending(): Promise<void> {
    if (!this.#pending) return;
    const { read, upTo } = this.#pending;
    this.#pending = null;
    await this.#inspect(await read, upTo);
  }

  async #inspect(host: HostArray, upTo: number): Promise<void> {
    await this.inspect(host, this.#inspected, upTo);
    this.#inspected = upTo;
  }
}
