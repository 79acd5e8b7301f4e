/**
 * Mamba4Rec in step form, for streaming recommendation: each user keeps a fixed-size state in a
 * slot of GPU pools (per layer the convolution's last `d_conv − 1` inputs and the SSM state
 * `d_inner × d_state`, plus the latest representation), and a new event advances it with O(1)
 * work per user instead of rerunning the user's whole history.
 *
 * After a user's n events the representation equals the last position of the full model's
 * forward over those n items (dropout off): the Mamba block's convolution and scan are the only
 * parts that look back in time, and the step carries exactly their state; the embedding,
 * LayerNorms, residuals and feed-forward act on the new token alone, through the model's own
 * layer classes bound to its trained tensors. Per Mamba layer an event costs one product for the
 * block's x and z and one kernel for the rest of its core up to the output projection
 * (`mambaStep`: convolution, x_proj, dt_proj, state update and gate), which reads and writes each
 * user's window and state once.
 *
 * A user with a known history need not be stepped through it:
 * {@link Mamba4RecStream.initFromHistories} runs the layers' full forward once over a
 * right-padded batch of histories, one parallel pass, and writes what stepping would have left:
 * per layer the convolution's inputs at the last `d_conv − 1` positions of each history (zeros
 * before its first item) and the selective scan's state after the history's last item
 * (`selectiveScanWithFinalState`), plus the representation there. Later events step on from
 * these states as from stepped ones.
 *
 * An SSD4Rec of one Bi-SSD layer has its own step form (`ssd4rec_stream.ts`); one of two or more
 * layers cannot be stepped, since every input of its second layer changes with each event.
 *
 * @module
 */
import { noGrad } from "../../ops/core/autograd.ts";
import { type Tensor, tidy } from "../../ops/core/tensor.ts";
import { checkLayerTailTuning, type LayerTailTuning } from "../../ops/dense/layer_tail.ts";
import { checkMambaStepTuning, type MambaStepTuning } from "../../ops/sequence/mamba_step.ts";
import { LayerNorm } from "../layers.ts";
import type { Mamba4Rec } from "../mamba4rec.ts";
import { type EventRound, SlotStream } from "./slot_stream.ts";
import { checkHistories, checkUserSlots } from "./checks.ts";
import { forwardHistories, stepEvents, type StreamNetwork } from "./mamba4rec_forward.ts";
import {
  disposeStepLayer,
  type StepLayer,
  stepLayer,
  TrainedParameters,
} from "./mamba4rec_layers.ts";

export { type Recommendations, topKRows } from "./top_k.ts";

/**
 * Most tokens (users × padded history length) one forward pass of
 * {@link Mamba4RecStream.initFromHistories} takes by default; more are split by users. At
 * Mamba4Rec's default width (d_inner 128) a pass' largest activation is then 128 MiB, WebGPU's
 * default limit of one storage binding.
 */
export const INIT_TOKENS_PER_PASS = 1 << 18;

/** Options of {@link Mamba4RecStream}. */
export interface Mamba4RecStreamOptions {
  /** Number of user slots in the pools; users are slot numbers `0 … capacity − 1`. */
  readonly capacity: number;
  /**
   * How the fused step kernel waits for memory (`MambaStepTuning`; benchmarks compare settings).
   * The results are the same whatever it says.
   */
  readonly stepTuning?: MambaStepTuning;
  /**
   * Whether each layer's output projection, LayerNorm and feed-forward network run as one kernel
   * (`layerTail`) or as the model's own ops, one dispatch each (the default, which
   * `bench/serve.ts --fused-tail` measured the faster). The scores agree to rounding either way.
   */
  readonly fusedTail?: boolean;
  /**
   * How the fused tail shares its products among invocations (`LayerTailTuning`; benchmarks
   * compare settings). The results are the same whatever it says.
   */
  readonly tailTuning?: LayerTailTuning;
  /**
   * Whether the fused step makes each layer's input projection itself (`mambaStepFromHidden`)
   * instead of reading a product made before it (default false; `bench/serve.ts
   * --fused-in-projection` times both). The scores are the same bit for bit either way.
   */
  readonly fusedInProjection?: boolean;
}

/**
 * Inference-only step form of a trained {@link Mamba4Rec}: one slot per user in GPU pools,
 * advanced one event at a time ({@link observe}), queried for top-k items ({@link recommend})
 * and cleared ({@link reset}). It uses the model's parameter tensors as they are when it is
 * built (A = −exp(A_log) is taken then): build a new stream after changing the weights.
 */
export class Mamba4RecStream extends SlotStream {
  readonly #net: StreamNetwork;

  /**
   * Allocates zeroed pools for `options.capacity` users.
   * @param model the trained model (its weights are read, never changed)
   * @param options the number of user slots
   */
  constructor(model: Mamba4Rec, options: Mamba4RecStreamOptions) {
    super("Mamba4RecStream", options.capacity, model.itemTable);
    const { capacity } = options;
    const params = new TrainedParameters(model.params);
    const d = model.config.hiddenSize;
    const embNorm = new LayerNorm(params, "LayerNorm", d);
    const { expand, dState } = model.config;
    checkMambaStepTuning(options.stepTuning ?? {}, expand * d, dState);
    checkLayerTailTuning(options.tailTuning ?? {});
    const layers: StepLayer[] = [];
    for (let i = 0; i < model.config.numLayers; i++) {
      layers.push(stepLayer(params, i, model.config, capacity));
    }
    const inference = { p: 0, rng: model.dropoutRng, training: false };
    this.#net = {
      model,
      embNorm,
      layers,
      inference,
      reps: this.reps,
      stepTuning: options.stepTuning ?? {},
      fusedTail: options.fusedTail ?? false,
      tailTuning: options.tailTuning ?? {},
      fusedInProjection: options.fusedInProjection ?? false,
    };
  }

  /** One event for distinct users through the step kernels. */
  protected step(round: EventRound): void {
    stepEvents(this.#net, round.slots, round.items);
  }

  /** Each layer's windows and states. */
  protected pools(): Tensor[] {
    return this.#net.layers.flatMap((layer) => [layer.window, layer.state]);
  }

  /** Frees every layer's step weights and pools. */
  protected disposePools(): void {
    for (const layer of this.#net.layers) disposeStepLayer(layer);
  }

  /**
   * Sets each `users[i]` to the state it would have after observing `histories[i]` from a reset
   * slot (whatever it held before), in one full forward of the layers over the padded histories
   * instead of one step per event: per layer the convolution window from the history's last
   * `d_conv − 1` inputs, the SSM state from the scan's final state, and the representation at
   * the last item. Histories are taken longest first in passes of at most `tokensPerPass` padded
   * tokens (one history at least). Only queues GPU work. The states equal stepping
   * to float32 rounding (not bit for bit: the full forward sums in another order).
   * @param users distinct user slots
   * @param histories one non-empty history per user, oldest item first, item ids
   *   `1 … numItems − 1`
   * @param tokensPerPass most padded tokens per forward pass (a smaller value saves memory)
   */
  override initFromHistories(
    users: Int32Array,
    histories: readonly Int32Array[],
    tokensPerPass: number = INIT_TOKENS_PER_PASS,
  ): void {
    const op = "Mamba4RecStream.initFromHistories";
    if (users.length !== histories.length) {
      throw new RangeError(
        `${op}: users (${users.length}) and histories (${histories.length}) must have the same ` +
          "length, one history per user",
      );
    }
    checkUserSlots(op, "users", users, this.capacity);
    if (!Number.isInteger(tokensPerPass) || tokensPerPass < 1) {
      throw new RangeError(`${op}: tokensPerPass must be an integer ≥ 1, got ${tokensPerPass}`);
    }
    checkHistories(op, users, histories, this.#net.model.config.numItems);
    const order = [...users.keys()].sort((a, b) => histories[b].length - histories[a].length);
    for (let at = 0; at < order.length;) {
      const longest = histories[order[at]].length;
      const count = Math.max(1, Math.floor(tokensPerPass / longest));
      const pass = order.slice(at, at + count);
      at += pass.length;
      const items = new Int32Array(pass.length * longest);
      pass.forEach((i, b) => items.set(histories[i], b * longest));
      tidy(() =>
        noGrad(() =>
          forwardHistories(
            this.#net,
            Int32Array.from(pass, (i) => users[i]),
            items,
            Int32Array.from(pass, (i) => histories[i].length),
          )
        )
      );
    }
    users.forEach((u, i) => this.setEventCount(u, histories[i].length));
  }
}
