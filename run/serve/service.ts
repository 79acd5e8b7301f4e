/**
 * The recommendation service's core, independent of HTTP: maps user ids to stream slots, batches
 * the events of concurrent requests into one {@link SlotStream.observe} per round (after
 * logging them durably), and answers concurrent recommendation requests with one readback.
 *
 * A round runs every {@link FLUSH_INTERVAL_MS} or as soon as {@link FLUSH_EVENTS} events wait:
 * it appends the waiting events to the log (fsync), applies them, then reads the waiting
 * recommendations; so a recommendation sees every event acknowledged before it was asked.
 *
 * @module
 */
import type { SlotStream } from "../../models/streaming/slot_stream.ts";
import { openStream, type StreamableModel } from "../../models/streaming/streams.ts";
import type { Recommendations } from "../../models/streaming/top_k.ts";
import { EventStore, type LoggedEvent } from "./event_store.ts";
import { RoundScheduler } from "./rounds.ts";

/** Milliseconds between rounds while requests wait. */
export const FLUSH_INTERVAL_MS = 2;
/** Waiting events that start a round at once. */
export const FLUSH_EVENTS = 4096;
/** Events between snapshots. */
export const SNAPSHOT_EVERY_EVENTS = 10000;

/** An event as submitted: user id (string form) and item id. */
export type ServiceEvent = LoggedEvent;

/** A request the service refuses because of what it asks (the HTTP layer maps it to 4xx/5xx). */
export class ServiceError extends Error {
  /** HTTP status that fits. */
  readonly status: number;

  /**
   * A refusal with its status.
   * @param status the HTTP status that fits
   * @param message what was wrong and what to do
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "ServiceError";
    this.status = status;
  }
}

/** One user's recommendations. */
export interface UserRecommendations {
  /** Item ids, best first. */
  readonly items: number[];
  /** Their scores. */
  readonly scores: number[];
}

/**
 * Refuses (status 400) an event whose item is not an item id `1 … numItems − 1`.
 * @param events the events of one request
 * @param numItems the model's item ids, PAD included
 */
export function checkEventItems(events: readonly ServiceEvent[], numItems: number): void {
  for (let i = 0; i < events.length; i++) {
    const item = events[i].item;
    if (!Number.isInteger(item) || item < 1 || item >= numItems) {
      throw new ServiceError(
        400,
        `event ${i}: item ${item} is not an item id 1 … ${numItems - 1}`,
      );
    }
  }
}

/**
 * Refuses (status 400) a recommendation count `k` that is not an integer `1 … numItems − 1`.
 * @param k the items asked for
 * @param numItems the model's item ids, PAD included
 */
export function checkRecommendationCount(k: number, numItems: number): void {
  if (!Number.isInteger(k) || k < 1 || k >= numItems) {
    throw new ServiceError(400, `k must be an integer 1 … ${numItems - 1}, got ${k}`);
  }
}

/** The refusal (status 404) of a recommendation for a user the service has no event of. */
export function userWithoutEvents(user: string): ServiceError {
  return new ServiceError(
    404,
    `user ${JSON.stringify(user)} has no events; POST /events for it first`,
  );
}

/**
 * The first `count` recommendations of row `row` of top-`k` rows.
 * @param recs the rows' items and scores, `k` per row, best first
 * @param row the row
 * @param k the items per row
 * @param count the items wanted, at most `k`
 */
export function recommendationsAt(
  recs: Recommendations,
  row: number,
  k: number,
  count: number,
): UserRecommendations {
  const at = row * k;
  return {
    items: Array.from(recs.items.subarray(at, at + count)),
    scores: Array.from(recs.scores.subarray(at, at + count)),
  };
}

/** Counters of {@link RecommendationService.health}. */
export interface ServiceHealth {
  /** Known users. */
  readonly users: number;
  /** Events applied since the state directory was created. */
  readonly events: number;
  /** User slots. */
  readonly capacity: number;
}

interface PendingEvents {
  readonly events: readonly ServiceEvent[];
  readonly slots: Int32Array;
  readonly done: PromiseWithResolvers<void>;
}

interface PendingRecommend {
  readonly slot: number;
  readonly k: number;
  readonly done: PromiseWithResolvers<UserRecommendations>;
}

/** Options of {@link RecommendationService.start}. */
export interface ServiceOptions {
  /** User slots. */
  readonly capacity: number;
  /** State directory (event log and snapshots). */
  readonly stateDir: string;
}

/**
 * Streaming recommendation over a trained model with a step form (Mamba4Rec, a one-layer
 * SSD4Rec) with a durable event log.
 */
export class RecommendationService {
  /** User slots. */
  readonly capacity: number;
  /** Item ids are `1 … numItems − 1`. */
  readonly numItems: number;
  readonly #stream: SlotStream;
  readonly #store: EventStore;
  readonly #slots = new Map<string, number>();
  #events = 0;
  #lastSnapshot = 0;
  #queue: PendingEvents[] = [];
  #queuedEvents = 0;
  #asks: PendingRecommend[] = [];
  readonly #rounds = new RoundScheduler(() => this.#runRound(), FLUSH_INTERVAL_MS);
  /** Users with an applied event: slots `0 … appliedUsers − 1` (slots go in log order). */
  #appliedUsers = 0;
  #failure: Error | null = null;
  #closed = false;

  private constructor(model: StreamableModel, store: EventStore, capacity: number) {
    this.capacity = capacity;
    this.numItems = model.config.numItems;
    this.#stream = openStream(model, { capacity });
    this.#store = store;
  }

  /** Opens the state directory, replays its log into a new stream and returns the service. */
  static async start(
    model: StreamableModel,
    options: ServiceOptions,
  ): Promise<RecommendationService> {
    const { store, restored } = await EventStore.open(options.stateDir);
    let service: RecommendationService;
    try {
      service = new RecommendationService(model, store, options.capacity);
    } catch (e) {
      store.close();
      throw new Error(
        `cannot allocate ${options.capacity} user slots: ${(e as Error).message}; ` +
          "serve fewer users (a smaller capacity)",
      );
    }
    try {
      service.#replay(restored.events);
      for (const [user, slot] of restored.snapshot?.users ?? []) {
        if (service.#slots.get(user) !== slot) {
          throw new Error(
            `state dir ${options.stateDir}: the snapshot puts user ${JSON.stringify(user)} in ` +
              `slot ${slot} but replaying the log gives ${service.#slots.get(user)}; the files ` +
              "do not belong together",
          );
        }
      }
    } catch (e) {
      service.#stream.dispose();
      store.close();
      throw e;
    }
    service.#lastSnapshot = restored.snapshot?.events ?? 0;
    return service;
  }

  /**
   * Rebuilds the stream from the log: slots in order of first event, then every user's state
   * from its whole logged history ({@link SlotStream.initFromHistories}: for Mamba4Rec in one
   * parallel pass rather than event by event).
   */
  #replay(events: readonly ServiceEvent[]): void {
    events.forEach((e, i) => {
      if (!Number.isInteger(e.item) || e.item < 1 || e.item >= this.numItems) {
        throw new Error(
          `event log line ${i + 1}: item ${e.item} is not an item id 1 … ` +
            `${this.numItems - 1} of this model; serve it with the checkpoint it was logged with`,
        );
      }
    });
    const slots = this.#assignSlots(events, 0, `${EventStore.name} replay`);
    const users = this.#slots.size;
    const counts = new Int32Array(users);
    for (const s of slots) counts[s]++;
    const histories = Array.from(counts, (n) => new Int32Array(n));
    counts.fill(0);
    slots.forEach((s, i) => histories[s][counts[s]++] = events[i].item);
    if (users > 0) {
      this.#stream.initFromHistories(Int32Array.from(histories.keys()), histories);
    }
    this.#events = events.length;
    this.#appliedUsers = users;
  }

  /** Slots for the events' users, giving new users the next free slots (all or none). */
  #assignSlots(events: readonly ServiceEvent[], status: number, where: string): Int32Array {
    // A set in first-event order: a replay gives every user a slot, and a list's membership test
    // made that quadratic in the users (seconds for a log of 10,000 users).
    const fresh = new Set<string>();
    for (const e of events) {
      if (!this.#slots.has(e.user)) fresh.add(e.user);
    }
    if (this.#slots.size + fresh.size > this.capacity) {
      const message = `${where}: ${fresh.size} new users do not fit: ${this.#slots.size} of ` +
        `${this.capacity} user slots are taken; restart the service with a larger --capacity`;
      throw status ? new ServiceError(status, message) : new Error(message);
    }
    for (const u of fresh) this.#slots.set(u, this.#slots.size);
    const slots = new Int32Array(events.length);
    for (let i = 0; i < events.length; i++) slots[i] = this.#slots.get(events[i].user)!;
    return slots;
  }

  /**
   * Queues `events` (already checked: items in range); resolves once they are logged on disk
   * and applied. New users that do not fit fail the whole request with status 503.
   */
  submit(events: readonly ServiceEvent[]): Promise<void> {
    this.#checkOpen();
    checkEventItems(events, this.numItems);
    if (events.length === 0) return Promise.resolve();
    const slots = this.#assignSlots(events, 503, "POST /events");
    const done = Promise.withResolvers<void>();
    this.#queue.push({ events, slots, done });
    this.#queuedEvents += events.length;
    this.#rounds.schedule(this.#queuedEvents >= FLUSH_EVENTS);
    return done.promise;
  }

  /**
   * The `k` best items for `user` after every event acknowledged so far; a user without events
   * is refused with status 404.
   */
  recommend(user: string, k: number): Promise<UserRecommendations> {
    this.#checkOpen();
    checkRecommendationCount(k, this.numItems);
    const slot = this.#slots.get(user);
    if (slot === undefined) throw userWithoutEvents(user);
    const done = Promise.withResolvers<UserRecommendations>();
    this.#asks.push({ slot, k, done });
    this.#rounds.schedule(false);
    return done.promise;
  }

  /** Known users, applied events and capacity. */
  health(): ServiceHealth {
    return { users: this.#slots.size, events: this.#events, capacity: this.capacity };
  }

  /** Finishes the waiting requests, writes a snapshot, frees the GPU pools and closes the log. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#rounds.stop();
    await this.#runRound();
    if (!this.#failure) await this.#snapshot();
    this.#stream.dispose();
    this.#store.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ServiceError(503, "the service is shutting down; retry later");
    if (this.#failure) {
      throw new ServiceError(
        503,
        `the service stopped accepting requests after a failure: ${this.#failure.message}; ` +
          "restart it (acknowledged events are in the log)",
      );
    }
  }

  /** Logs and applies the waiting events, then answers the waiting recommendations. */
  async #runRound(): Promise<void> {
    const queue = this.#queue;
    const asks = this.#asks;
    this.#queue = [];
    this.#asks = [];
    this.#queuedEvents = 0;
    if (queue.length > 0) {
      const events = queue.flatMap((p) => p.events);
      try {
        if (this.#failure) throw this.#failure;
        await this.#store.append(events);
        const slots = new Int32Array(events.length);
        let at = 0;
        for (const p of queue) {
          slots.set(p.slots, at);
          at += p.slots.length;
        }
        const items = new Int32Array(events.length);
        for (let i = 0; i < events.length; i++) items[i] = events[i].item;
        this.#stream.observe(slots, items);
        this.#events += events.length;
        for (const s of slots) if (s >= this.#appliedUsers) this.#appliedUsers = s + 1;
        for (const p of queue) p.done.resolve();
      } catch (e) {
        this.#failure ??= e as Error;
        for (const p of queue) p.done.reject(e);
      }
      if (this.#events - this.#lastSnapshot >= SNAPSHOT_EVERY_EVENTS) await this.#snapshot();
    }
    if (asks.length > 0) await this.#answer(asks);
  }

  /** One readback for all waiting recommendations (distinct slots, the largest k). */
  async #answer(asks: PendingRecommend[]): Promise<void> {
    try {
      const slots = [...new Set(asks.map((a) => a.slot))];
      const k = Math.max(...asks.map((a) => a.k));
      const recs = await this.#stream.recommend(Int32Array.from(slots), k);
      for (const a of asks) {
        a.done.resolve(recommendationsAt(recs, slots.indexOf(a.slot), k, a.k));
      }
    } catch (e) {
      for (const a of asks) a.done.reject(e);
    }
  }

  async #snapshot(): Promise<void> {
    const events = this.#events;
    // Users given a slot by a request still waiting to be logged are left to the next snapshot.
    const users = [...this.#slots.entries()].filter(([, slot]) => slot < this.#appliedUsers);
    await this.#store.writeSnapshot({ events, users });
    this.#lastSnapshot = events;
  }
}
