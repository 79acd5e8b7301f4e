/**
 * A one-layer SSD4Rec in step form, for streaming recommendation: each user keeps a fixed-size
 * state in a slot of GPU pools and a new event advances it with O(1) work, as
 * {@link Mamba4RecStream} does for Mamba4Rec. After a user's n events the representation equals
 * the full model's at the last of those n items (dropout off, to float32 rounding).
 *
 * Why this is possible for SSD4Rec, whose Bi-SSD layer also reads every history newest first:
 * the model reads its layer at the newest token, where the backward direction's output (not
 * reversed back) is the end of the reversed scan. That scan weights token i by the decays of the
 * tokens older than i only, so a new token adds one term and changes none of the others; the
 * convolution run newest first leaves the newest `d_conv − 1` tokens' terms open until the
 * tokens after them arrive, and those are kept with the window (`biSsdStep` has the derivation).
 * A model of two or more layers cannot be stepped: the first layer's backward direction changes
 * at every position with each new event, so every input of the second layer does too, and no
 * fixed-size state carries it.
 *
 * Per event and user: the item embedding, the block's input projection (one product), one
 * kernel for both directions' convolutions and scans (`biSsdStep`), the gated norm and output
 * projection of each direction, and the layer's sum, LayerNorm and feed-forward, through the
 * model's own modules and trained tensors. A user's state is the two directions' `[N, d_inner]`
 * states and a few rows: 69,024 floats (276 KB) at the Amazon presets' sizes.
 *
 * @module
 */
import { noGrad } from "../../ops/core/autograd.ts";
import { keep, type Tensor, tidy } from "../../ops/core/tensor.ts";
import { zeros } from "../../ops/core/unrecorded.ts";
import {
  biSsdStep,
  type BiSsdStepPools,
  type BiSsdStepWeights,
} from "../../ops/sequence/bi_ssd_step.ts";
import { writeSlotRows } from "../../ops/sequence/selective_step.ts";
import { splitColumns } from "../../ops/pointwise/split_columns.ts";
import type { SSD4Rec } from "../ssd4rec.ts";
import { type EventRound, SlotStream } from "./slot_stream.ts";

/** Options of {@link SSD4RecStream}. */
export interface SSD4RecStreamOptions {
  /** Number of user slots in the pools; users are slot numbers `0 … capacity − 1`. */
  readonly capacity: number;
}

/**
 * Inference-only step form of a trained one-layer {@link SSD4Rec}: one slot per user in GPU
 * pools, advanced one event at a time ({@link observe}), queried for top-k items
 * ({@link recommend}) and cleared ({@link reset}). It reads the model's parameter tensors at
 * every event, except A = −exp(A_log), taken when it is built: build a new stream after changing
 * the weights.
 */
export class SSD4RecStream extends SlotStream {
  readonly #model: SSD4Rec;
  readonly #pools: BiSsdStepPools;
  readonly #weights: BiSsdStepWeights;

  /**
   * Allocates zeroed pools for `options.capacity` users.
   * @param model the trained one-layer model (its weights are read, never changed)
   * @param options the number of user slots
   */
  constructor(model: SSD4Rec, options: SSD4RecStreamOptions) {
    const { numLayers, hiddenSize: d, expand, dState: N, headDim, dConv } = model.config;
    if (numLayers !== 1) {
      throw new RangeError(
        `SSD4RecStream: the model has ${numLayers} Bi-SSD layers; only a one-layer SSD4Rec can ` +
          "be stepped (from the second layer on, every position's input changes with each new " +
          "event, since the first layer's backward direction reads the history newest first); " +
          "serve it by recomputing each user's window instead",
      );
    }
    super("SSD4RecStream", options.capacity, model.itemTable);
    this.#model = model;
    const { capacity } = options;
    const inner = expand * d, heads = inner / headDim, convDim = inner + 2 * N;
    const pool = (...shape: number[]) => keep(zeros([capacity, ...shape]));
    this.#pools = {
      window: pool(dConv - 1, convDim),
      state: pool(N, inner),
      closed: pool(N, inner),
      perHead: pool(2 * dConv - 1, heads),
      oldest: pool(2 * inner + N),
    };
    this.#weights = tidy(() =>
      noGrad(() => {
        const weights = model.block(0).stepWeights();
        keep(weights.A);
        return weights;
      })
    );
  }

  /** One event for distinct users: both directions of the block stepped, then the layer's rest. */
  protected step({ slots, items, counts }: EventRound): void {
    const block = this.#model.block(0);
    const u = this.#model.embedItems(items);
    const projection = block.inputProjection(u);
    const inner = this.#pools.state.shape[2];
    const { yForward, yBackward, zBackward } = biSsdStep(
      projection,
      this.#weights,
      this.#pools,
      slots,
      counts(),
    );
    const [z] = splitColumns(projection, [inner, projection.shape[1] - inner]);
    const fwd = block.readout(yForward, z);
    const bwd = this.#model.config.beta !== 0 ? block.readout(yBackward, zBackward) : null;
    writeSlotRows(this.reps, slots, this.#model.layerOutput(0, { fwd, bwd, skip: u }));
  }

  /** Every pool of the block's step. */
  protected pools(): Tensor[] {
    return Object.values(this.#pools);
  }

  /** Frees the pools and A. */
  protected disposePools(): void {
    for (const t of [...Object.values(this.#pools), this.#weights.A]) t.dispose();
  }
}
