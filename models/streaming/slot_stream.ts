/**
 * What every streaming form of a model shares (`mamba4rec_stream.ts` for Mamba4Rec,
 * `ssd4rec_stream.ts` for SSD4Rec): one slot per user in GPU pools, the host's count of each
 * user's events, the checks of every argument, `observe` split into rounds of distinct users,
 * the scores of the latest representations against the item table, top-k recommendations and
 * resets. A subclass says how one round of events advances its pools ({@link SlotStream.step})
 * and which pools a reset clears.
 *
 * @module
 */
import { noGrad } from "../../ops/core/autograd.ts";
import { keep, readTensors, Tensor, tidy } from "../../ops/core/tensor.ts";
import { zeros } from "../../ops/core/unrecorded.ts";
import { embedding } from "../../ops/dense/embedding.ts";
import { matmul } from "../../ops/dense/matmul/mod.ts";
import { writeSlotRows } from "../../ops/sequence/selective_step.ts";
import { checkEventItems, checkHistories, checkUserSlots } from "./checks.ts";
import { type Recommendations, topKRows } from "./top_k.ts";

/** One round of events: distinct users, one item each, and each user's events before it. */
export interface EventRound {
  /** Distinct user slots, i32 `[users]`. */
  readonly slots: Tensor;
  /** One item per user, i32 `[users]`. */
  readonly items: Tensor;
  /**
   * Each user's events before this one, i32 `[users]` (the new token's index), uploaded on the
   * first call: only a step form that reads it (SSD4Rec's) pays for the upload.
   */
  counts(): Tensor;
}

/**
 * A model in step form: per user slot a fixed-size state in GPU pools and the latest
 * representation (`reps`, `[capacity, d]`), advanced one event at a time.
 */
export abstract class SlotStream {
  /** Number of user slots. */
  readonly capacity: number;
  /** The method prefix of messages (`Mamba4RecStream`). */
  readonly #name: string;
  /** Item ids are `1 … numItems − 1`. */
  readonly #numItems: number;
  /** The tied item table `[numItems, d]` the representations are scored against. */
  readonly #itemTable: Tensor;
  /** Latest representation per slot `[capacity, d]`. */
  protected readonly reps: Tensor;
  readonly #events: Float64Array;
  /** Scratch of {@link distinctRounds}, all zeros between calls. */
  readonly #occurrences: Int32Array;
  /** Per slot, the number of the last `observe` call that listed it (repeats found in one pass). */
  readonly #listed: Uint32Array;
  #call = 0;

  /**
   * Checks the capacity and allocates the representations.
   * @param name the class's name, for messages
   * @param capacity user slots
   * @param itemTable the model's item table `[numItems, d]`
   */
  protected constructor(name: string, capacity: number, itemTable: Tensor) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `${name}: options.capacity must be an integer ≥ 1 (user slots), got ${capacity}`,
      );
    }
    this.#name = name;
    this.capacity = capacity;
    this.#itemTable = itemTable;
    this.#numItems = itemTable.shape[0];
    this.reps = keep(zeros([capacity, itemTable.shape[1]]));
    this.#events = new Float64Array(capacity);
    this.#occurrences = new Int32Array(capacity);
    this.#listed = new Uint32Array(capacity);
  }

  /**
   * Advances the round's users by one event each, writing their representations into `reps`;
   * runs inside `tidy` and `noGrad`.
   */
  protected abstract step(round: EventRound): void;

  /** The pools a reset clears for the slots (besides the representations). */
  protected abstract pools(): Tensor[];

  /** Frees the subclass's pools (the representations are freed by {@link dispose}). */
  protected abstract disposePools(): void;

  /** Number of events observed for `user` since it was created or last reset. */
  eventCount(user: number): number {
    if (!Number.isInteger(user) || user < 0 || user >= this.capacity) {
      throw new RangeError(
        `${this.#name}.eventCount: user ${user} is not a user slot 0 … ${this.capacity - 1}`,
      );
    }
    return this.#events[user];
  }

  /** Sets `user`'s count of events (after a subclass wrote its state some other way). */
  protected setEventCount(user: number, events: number): void {
    this.#events[user] = events;
  }

  /**
   * Advances each `users[i]` by the event `items[i]`, in order (a user listed twice gets both
   * events, in the order given). Only queues GPU work: nothing waits for the device.
   * @param users user slots
   * @param items item ids `1 … numItems − 1`, one per user entry
   */
  observe(users: Int32Array, items: Int32Array): void {
    const op = `${this.#name}.observe`;
    if (users.length !== items.length) {
      throw new RangeError(
        `${op}: users (${users.length}) and items (${items.length}) must have the same length, ` +
          "one item per user entry",
      );
    }
    checkUserSlots(op, "users", users, this.capacity);
    checkEventItems(op, items, this.#numItems);
    if (users.length === 0) return;
    if (++this.#call === 2 ** 32) {
      this.#listed.fill(0);
      this.#call = 1;
    }
    const rounds = allDistinct(users, this.#listed, this.#call)
      ? [{ users, items }]
      : distinctRounds(users, items, this.#occurrences);
    for (const round of rounds) {
      this.stepRound(round.users, round.items);
    }
  }

  /** One round of distinct users: the subclass's step, then their counts. */
  protected stepRound(users: Int32Array, items: Int32Array): void {
    let counts: Tensor | undefined;
    const uploadCounts = () => {
      // A plain loop: a typed array's `from` with a mapping function costs some 60 ns an
      // element, which at 10,000 users outweighed encoding the whole step.
      const host = new Int32Array(users.length);
      for (let i = 0; i < users.length; i++) host[i] = this.#events[users[i]];
      return Tensor.from(host, [users.length], "i32");
    };
    tidy(() =>
      noGrad(() =>
        this.step({
          slots: Tensor.from(users, [users.length], "i32"),
          items: Tensor.from(items, [items.length], "i32"),
          counts: () => counts ??= uploadCounts(),
        })
      )
    );
    for (let i = 0; i < users.length; i++) this.#events[users[i]]++;
  }

  /**
   * Sets each `users[i]` to the state it would have after observing `histories[i]` from a reset
   * slot (whatever it held before), stepping every history one event at a time: as many rounds
   * as the longest history has items, each advancing every user whose history reaches it. Only
   * queues GPU work. A model with a parallel form of this overrides it.
   * @param users distinct user slots
   * @param histories one non-empty history per user, oldest item first, item ids
   *   `1 … numItems − 1`
   */
  initFromHistories(users: Int32Array, histories: readonly Int32Array[]): void {
    const op = `${this.#name}.initFromHistories`;
    if (users.length !== histories.length) {
      throw new RangeError(
        `${op}: users (${users.length}) and histories (${histories.length}) must have the same ` +
          "length, one history per user",
      );
    }
    checkUserSlots(op, "users", users, this.capacity);
    checkHistories(op, users, histories, this.#numItems);
    this.reset(users);
    const longest = histories.reduce((m, h) => Math.max(m, h.length), 0);
    for (let t = 0; t < longest; t++) {
      const at = [...users.keys()].filter((i) => histories[i].length > t);
      this.stepRound(
        Int32Array.from(at, (i) => users[i]),
        Int32Array.from(at, (i) => histories[i][t]),
      );
    }
  }

  /**
   * Every item's score for each user, `[users, numItems]` (PAD included, as the model scores
   * it); queues GPU work only. The caller disposes the result.
   * @param users user slots, each with at least one observed event
   */
  scores(users: Int32Array): Tensor {
    const op = `${this.#name}.scores`;
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
        return matmul(embedding(slots, this.reps), this.#itemTable, { transB: true });
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
    if (!Number.isInteger(k) || k < 1 || k >= this.#numItems) {
      throw new RangeError(
        `${this.#name}.recommend: k must be an integer 1 … ${this.#numItems - 1} (the items ` +
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
    checkUserSlots(`${this.#name}.reset`, "users", users, this.capacity);
    if (users.length === 0) return;
    tidy(() => {
      const slots = Tensor.from(users, [users.length], "i32");
      for (const pool of [...this.pools(), this.reps]) writeSlotRows(pool, slots, null);
    });
    for (const u of users) this.#events[u] = 0;
  }

  /** Frees the pools; the stream cannot be used afterwards. */
  dispose(): void {
    this.disposePools();
    this.reps.dispose();
  }
}

/**
 * Whether `users` lists no slot twice (the common call), in one pass: each slot's entry of
 * `listed` is set to `call`, a number no earlier call used, so meeting it again is a repeat.
 */
function allDistinct(users: Int32Array, listed: Uint32Array, call: number): boolean {
  for (let i = 0; i < users.length; i++) {
    const u = users[i];
    if (listed[u] === call) return false;
    listed[u] = call;
  }
  return true;
}

/**
 * The entries of one `observe` call in rounds of distinct users, each user's entries in their
 * order: round r holds every user's (r + 1)-th entry. `occurrences` (one zero per slot) is left
 * all zeros.
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
