/**
 * The recommendation service's calls answered the RecBole way, for the load benchmark
 * (`scripts/serve_bench.ts`) to compare with streaming: an event only appends the item to the
 * user's history on the host (after the same fsynced log), and a recommendation reruns the full
 * model's forward over the user's window of its last L items. Requests are batched in rounds as
 * the streaming service batches them: one log append for the waiting events, then one forward
 * over the windows of every user asked for and one readback.
 *
 * @module
 */
import { noGrad } from "../ops/core/autograd.ts";
import { readTensors, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import type { Mamba4Rec } from "../models/mamba4rec.ts";
import { topKRows } from "../models/streaming/mamba4rec_stream.ts";
import { uploadSequences } from "../models/training/layouts.ts";
import {
  EventStore,
  FLUSH_EVENTS,
  FLUSH_INTERVAL_MS,
  type Recommender,
  ServiceError,
  type ServiceEvent,
  type ServiceHealth,
  type UserRecommendations,
} from "../run/serve/mod.ts";
import { RoundScheduler } from "../run/serve/rounds.ts";
import {
  checkEventItems,
  checkRecommendationCount,
  recommendationsAt,
  userWithoutEvents,
} from "../run/serve/service.ts";

interface PendingEvents {
  readonly events: readonly ServiceEvent[];
  readonly done: PromiseWithResolvers<void>;
}

interface PendingRecommend {
  readonly user: string;
  readonly k: number;
  readonly done: PromiseWithResolvers<UserRecommendations>;
}

/** Options of {@link RecomputeRecommender.start}. */
export interface RecomputeOptions {
  /** State directory (event log), as the streaming service's. */
  readonly stateDir: string;
  /** Items per recomputed window: a user's last `window` events. */
  readonly window: number;
}

/** Recommendations recomputed from each user's window on every request. */
export class RecomputeRecommender implements Recommender {
  /** Item ids are `1 … numItems − 1`. */
  readonly numItems: number;
  readonly #model: Mamba4Rec;
  readonly #store: EventStore;
  readonly #window: number;
  /** Each user's last `window` items, oldest first. */
  readonly #histories = new Map<string, number[]>();
  #events = 0;
  #queue: PendingEvents[] = [];
  #queuedEvents = 0;
  #asks: PendingRecommend[] = [];
  readonly #rounds = new RoundScheduler(() => this.#runRound(), FLUSH_INTERVAL_MS);
  #closed = false;

  private constructor(model: Mamba4Rec, store: EventStore, window: number) {
    this.numItems = model.config.numItems;
    this.#model = model;
    this.#store = store;
    this.#window = window;
  }

  /** Opens the state directory and reads every user's window from its log. */
  static async start(model: Mamba4Rec, options: RecomputeOptions): Promise<RecomputeRecommender> {
    if (!Number.isInteger(options.window) || options.window < 1) {
      throw new RangeError(
        `RecomputeRecommender: window must be an integer ≥ 1, got ${options.window}`,
      );
    }
    const { store, restored } = await EventStore.open(options.stateDir);
    const r = new RecomputeRecommender(model, store, options.window);
    r.#apply(restored.events);
    return r;
  }

  /** Queues `events`; resolves once they are logged and in the users' histories. */
  submit(events: readonly ServiceEvent[]): Promise<void> {
    this.#checkOpen();
    checkEventItems(events, this.numItems);
    if (events.length === 0) return Promise.resolve();
    for (const e of events) if (!this.#histories.has(e.user)) this.#histories.set(e.user, []);
    const done = Promise.withResolvers<void>();
    this.#queue.push({ events, done });
    this.#queuedEvents += events.length;
    this.#rounds.schedule(this.#queuedEvents >= FLUSH_EVENTS);
    return done.promise;
  }

  /** The `k` best items for `user` from its window, after every event acknowledged so far. */
  recommend(user: string, k: number): Promise<UserRecommendations> {
    this.#checkOpen();
    checkRecommendationCount(k, this.numItems);
    if (!this.#histories.has(user)) throw userWithoutEvents(user);
    const done = Promise.withResolvers<UserRecommendations>();
    this.#asks.push({ user, k, done });
    this.#rounds.schedule(false);
    return done.promise;
  }

  /** Known users and applied events; there are no slots, so the capacity is the user count. */
  health(): ServiceHealth {
    const users = this.#histories.size;
    return { users, events: this.#events, capacity: users };
  }

  /** Finishes the waiting requests and closes the log. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#rounds.stop();
    await this.#runRound();
    this.#store.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ServiceError(503, "the service is shutting down; retry later");
  }

  #apply(events: readonly ServiceEvent[]): void {
    for (const e of events) {
      let h = this.#histories.get(e.user);
      if (!h) this.#histories.set(e.user, h = []);
      h.push(e.item);
      if (h.length > this.#window) h.shift();
    }
    this.#events += events.length;
  }

  async #runRound(): Promise<void> {
    const queue = this.#queue, asks = this.#asks;
    this.#queue = [];
    this.#asks = [];
    this.#queuedEvents = 0;
    if (queue.length > 0) {
      const events = queue.flatMap((p) => p.events);
      try {
        await this.#store.append(events);
        this.#apply(events);
        for (const p of queue) p.done.resolve();
      } catch (e) {
        for (const p of queue) p.done.reject(e);
      }
    }
    if (asks.length > 0) await this.#answer(asks);
  }

  /** One forward over the windows of the users asked for, one readback. */
  async #answer(asks: PendingRecommend[]): Promise<void> {
    try {
      const users = [...new Set(asks.map((a) => a.user))];
      const windows = users.map((u) => this.#histories.get(u)!);
      const length = Math.max(...windows.map((w) => w.length));
      const items = new Int32Array(users.length * length);
      windows.forEach((w, b) => items.set(w, b * length));
      const lengths = Int32Array.from(windows, (w) => w.length);
      const scores = tidy(() =>
        noGrad(() => {
          const inputs = uploadSequences(items, lengths, users.length, length);
          return matmul(this.#model.forward(inputs, false), this.#model.itemTable, {
            transB: true,
          });
        })
      );
      let host: Float32Array;
      try {
        host = (await readTensors([scores]))[0] as Float32Array;
      } finally {
        scores.dispose();
      }
      const k = Math.max(...asks.map((a) => a.k));
      const recs = topKRows(host, users.length, k);
      for (const a of asks) {
        a.done.resolve(recommendationsAt(recs, users.indexOf(a.user), k, a.k));
      }
    } catch (e) {
      for (const a of asks) a.done.reject(e);
    }
  }
}
