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
 * SSD4Rec cannot be streamed this way. Each of its Bi-SSD layers adds to a forward scan a
 * backward one that reads the history newest-first, so a new event is the first token the
 * backward scan reads: it changes every backward state, hence the layer's output at every
 * position, and no fixed-size state summarises the past for it. Only the forward direction can
 * be stepped, and only in the first layer: from the second layer on, the inputs at every earlier
 * position have changed too, so even the forward states must be recomputed. Serving SSD4Rec
 * therefore costs a rerun of the user's (windowed) history per event, as recomputing the window
 * does (carrying the first layer's forward state saves a fraction of that, not its order); O(1)
 * work per event needs a forward-only (causal) variant, which is a different model, trained as
 * such, whose scores are not SSD4Rec's.
 *
 * @module
 */
import { noGrad } from "../ops/core/autograd.ts";
import { keep, readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { zeros } from "../ops/core/unrecorded.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { checkMambaStepTuning, type MambaStepTuning } from "../ops/sequence/mamba_step.ts";
import { writeSlotRows } from "../ops/sequence/selective_step.ts";
import { LayerNorm } from "./layers.ts";
import type { Mamba4Rec } from "./mamba4rec.ts";
import { checkEventItems, checkHistories, checkUserSlots } from "./stream_checks.ts";
import { forwardHistories, stepEvents, type StreamNetwork } from "./stream_forward.ts";
import { disposeStepLayer, type StepLayer, stepLayer, TrainedParameters } from "./stream_layers.ts";
import { type Recommendations, topKRows } from "./top_k.ts";

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
}

/**
 * Inference-only step form of a trained {@link Mamba4Rec}: one slot per user in GPU pools,
 * advanced one event at a time ({@link observe}), queried for top-k items ({@link recommend})
 * and cleared ({@link reset}). It uses the model's parameter tensors as they are when it is
 * built (A = −exp(A_log) is taken then): build a new stream after changing the weights.
 */
export class Mamba4RecStream {
  /** Number of user slots. */
  readonly capacity: number;
  readonly #net: StreamNetwork;
  readonly #events: Float64Array;
  /** Scratch of {@link distinctRounds}, all zeros between calls. */
  readonly #occurrences: Int32Array;

  /**
   * Allocates zeroed pools for `options.capacity` users.
   * @param model the trained model (its weights are read, never changed)
   * @param options the number of user slots
   */
  constructor(model: Mamba4Rec, options: Mamba4RecStreamOptions) {
    const { capacity } = options;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Mamba4RecStream: options.capacity must be an integer ≥ 1 (user slots), got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.#events = new Float64Array(capacity);
    this.#occurrences = new Int32Array(capacity);
    const params = new TrainedParameters(model.params);
    const d = model.config.hiddenSize;
    const embNorm = new LayerNorm(params, "LayerNorm", d);
    const { expand, dState } = model.config;
    checkMambaStepTuning(options.stepTuning ?? {}, expand * d, dState);
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
      reps: keep(zeros([capacity, d])),
      stepTuning: options.stepTuning ?? {},
    };
  }

  /** Number of events observed for `user` since it was created or last reset. */
  eventCount(user: number): number {
    if (!Number.isInteger(user) || user < 0 || user >= this.capacity) {
      throw new RangeError(
        `Mamba4RecStream.eventCount: user ${user} is not a user slot 0 … ${this.capacity - 1}`,
      );
    }
    return this.#events[user];
  }

  /**
   * Advances each `users[i]` by the event `items[i]`, in order (a user listed twice gets both
   * events, in the order given). Only queues GPU work: nothing waits for the device.
   * @param users user slots
   * @param items item ids `1 … numItems − 1`, one per user entry
   */
  observe(users: Int32Array, items: Int32Array): void {
    const op = "Mamba4RecStream.observe";
    if (users.length !== items.length) {
      throw new RangeError(
        `${op}: users (${users.length}) and items (${items.length}) must have the same length, ` +
          "one item per user entry",
      );
    }
    checkUserSlots(op, "users", users, this.capacity);
    checkEventItems(op, items, this.#net.model.config.numItems);
    for (const round of distinctRounds(users, items, this.#occurrences)) {
      tidy(() =>
        noGrad(() => {
          stepEvents(
            this.#net,
            Tensor.from(round.users, [round.users.length], "i32"),
            Tensor.from(round.items, [round.items.length], "i32"),
          );
        })
      );
    }
    for (let i = 0; i < users.length; i++) this.#events[users[i]]++;
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
  initFromHistories(
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
    users.forEach((u, i) => this.#events[u] = histories[i].length);
  }

  /**
   * Every item's score for each user, `[users, numItems]` (PAD included, as the model scores
   * it); queues GPU work only. The caller disposes the result.
   * @param users user slots, each with at least one observed event
   */
  scores(users: Int32Array): Tensor {
    const op = "Mamba4RecStream.scores";
    checkUserSlots(op, "users", users, this.capacity);
    if (users.length === 0) {
      throw new RangeError(`${op}: users is empty; list at least one user slot`);
    }
    for (let i = 0; i < users.length; i++) {
      if (this.#events[users[i]] === 0) {
        throw new RangeError(
          `${op}: users[${i}] = ${users[i]} has no events since it was created or reset; ` +
            "observe() at least one before asking for scores",
        );
      }
    }
    return tidy(() =>
      noGrad(() => {
        const slots = Tensor.from(users, [users.length], "i32");
        return matmul(embedding(slots, this.#net.reps), this.#net.model.itemTable, {
          transB: true,
        });
      })
    );
  }

  /**
   * The `k` best items for each user from its current state (one GPU wait), PAD never among
   * them.
   * @param users user slots, each with at least one observed event
   * @param k items per user, `1 … numItems − 1`
   */
  recommend(users: Int32Array, k: number): Promise<Recommendations> {
    const numItems = this.#net.model.config.numItems;
    if (!Number.isInteger(k) || k < 1 || k >= numItems) {
      throw new RangeError(
        `Mamba4RecStream.recommend: k must be an integer 1 … ${numItems - 1} (the items ` +
          `besides PAD), got ${k}`,
      );
    }
    return this.#topK(users.length, this.scores(users), k);
  }

  /** Reads `scores` back (and disposes it) and picks each row's k best items. */
  async #topK(users: number, scores: Tensor, k: number): Promise<Recommendations> {
    let host: Float32Array;
    try {
      host = (await readTensors([scores]))[0] as Float32Array;
    } finally {
      scores.dispose();
    }
    return topKRows(host, users, k);
  }

  /**
   * Clears the users' states: afterwards they are as new, with no events.
   * @param users user slots
   */
  reset(users: Int32Array): void {
    checkUserSlots("Mamba4RecStream.reset", "users", users, this.capacity);
    if (users.length === 0) return;
    tidy(() => {
      const slots = Tensor.from(users, [users.length], "i32");
      for (const layer of this.#net.layers) {
        writeSlotRows(layer.window, slots, null);
        writeSlotRows(layer.state, slots, null);
      }
      writeSlotRows(this.#net.reps, slots, null);
    });
    for (const u of users) this.#events[u] = 0;
  }

  /** Frees the pools; the stream cannot be used afterwards. */
  dispose(): void {
    for (const layer of this.#net.layers) disposeStepLayer(layer);
    this.#net.reps.dispose();
  }
}

/**
 * The entries of one `observe` call in rounds of distinct users, each user's entries in their
 * order: round r holds every user's (r + 1)-th entry. The common call with distinct users is one
 * round of the arrays themselves. `occurrences` (one zero per slot) is left all zeros.
 */
function distinctRounds(
  users: Int32Array,
  items: Int32Array,
  occurrences: Int32Array,
): { users: Int32Array; items: Int32Array }[] {
  const round = new Int32Array(users.length);
  let rounds = 0;
  for (let i = 0; i < users.length; i++) {
    round[i] = occurrences[users[i]]++;
    rounds = Math.max(rounds, round[i] + 1);
  }
  for (let i = 0; i < users.length; i++) occurrences[users[i]] = 0;
  if (rounds <= 1) return users.length > 0 ? [{ users, items }] : [];
  const sizes = new Int32Array(rounds);
  for (let i = 0; i < users.length; i++) sizes[round[i]]++;
  const out = Array.from(sizes, (n) => ({ users: new Int32Array(n), items: new Int32Array(n) }));
  const filled = new Int32Array(rounds);
  for (let i = 0; i < users.length; i++) {
    const r = round[i], at = filled[r]++;
    out[r].users[at] = users[i];
    out[r].items[at] = items[i];
  }
  return out;
}
