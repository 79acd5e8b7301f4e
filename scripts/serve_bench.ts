/**
 * `deno task serve-bench [--checkpoint FILE] [--quick] [--users N] [--history N] [--window L]
 * [--clients N] [--requests N] [--batch N] [--recommend-every N] [--json]`: load benchmark of the
 * recommendation service.
 *
 * It writes an event log of `users × history` random events, starts the service in this process
 * on it (the restart rebuilds every user's state from its history in one parallel pass) and
 * serves it over HTTP on a free local port; then `clients` concurrent clients each send
 * `requests` requests: every `recommend-every`-th one `GET /recommend?k=10` for a random user,
 * the others `POST /events` with `batch` events of random users. The same log and the same
 * requests are then served the RecBole way (`scripts/serve_bench_recompute.ts`: an event is
 * only appended to the user's history, a recommendation reruns the full forward over the user's
 * last L = `window` items). Per mode it prints the start time, acknowledged events per second,
 * requests per second and the p50/p99 latency of `/events` and `/recommend`, measured by the
 * clients (which share the process and its event loop with the server).
 *
 * Last, the GPU side alone (`bench/serve.ts` on the same model): events absorbed per second by
 * `observe` for a batch of users (10,000) against recomputing their windows at L = 200.
 *
 * The model is the checkpoint's (a Mamba4Rec written by the trainer) or, without one, an
 * untrained one (`benchModel` of `bench/serve.ts`). `--quick` (the default on CPU
 * implementations) shrinks every size so that it runs on lavapipe; its figures only show that
 * everything runs. Errors print one `error: …` line: exit status 2 for a bad command line, 1 for
 * anything else.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { initGpu } from "../ops/core/runtime.ts";
import type { Mamba4Rec } from "../models/mamba4rec.ts";
import {
  EVENT_LOG_FILE,
  EventStore,
  loadMamba4RecCheckpoint,
  RecommendationService,
  type Recommender,
  serveRecommendations,
  type ServiceEvent,
} from "../run/serve/mod.ts";
import { measure } from "../bench/harness.ts";
import { benchModel, STREAM_BENCH_SIZES, streamBenchmarks } from "../bench/serve.ts";
import { RecomputeRecommender } from "./serve_bench_recompute.ts";

const USAGE = "usage: deno task serve-bench [--checkpoint FILE] [--quick] [--users N] " +
  "[--history N] [--window L] [--clients N] [--requests N] [--batch N] [--recommend-every N] " +
  "[--json]";

/** Items per recommendation asked by the clients. */
const K = 10;

class UsageError extends Error {}

/** The load's sizes. */
interface LoadSizes {
  /** Users in the log, the users the clients pick from. */
  users: number;
  /** Logged events per user before the load. */
  history: number;
  /** Window of the recomputing mode (L). */
  window: number;
  /** Concurrent clients. */
  clients: number;
  /** Requests per client. */
  requests: number;
  /** Events per `POST /events`. */
  batch: number;
  /** Every this many requests of a client, one is a recommendation. */
  recommendEvery: number;
}

const DEFAULT_SIZES: { full: LoadSizes; quick: LoadSizes } = {
  full: {
    users: 10000,
    history: 200,
    window: 200,
    clients: 64,
    requests: 200,
    batch: 1,
    recommendEvery: 4,
  },
  quick: {
    users: 200,
    history: 20,
    window: 20,
    clients: 8,
    requests: 24,
    batch: 1,
    recommendEvery: 4,
  },
};

/** What one mode's load gave. */
interface LoadResult {
  /** `stream` or `recompute`. */
  mode: string;
  /** Milliseconds to start the service on the log. */
  startMs: number;
  /** Seconds from the first request to the last answer. */
  seconds: number;
  /** Acknowledged events per second. */
  eventsPerSecond: number;
  /** Answered requests per second. */
  requestsPerSecond: number;
  /** `/events` latency percentiles, ms. */
  events: { count: number; p50: number; p99: number };
  /** `/recommend` latency percentiles, ms. */
  recommend: { count: number; p50: number; p99: number };
}

/** A xorshift generator of integers `0 … n − 1`. */
function generator(seed: number): (n: number) => number {
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/** The nearest-rank percentile `q` (0 … 1) of `xs`, 0 for none. */
function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

const userId = (u: number) => `u${u}`;

/** Writes the starting log: `history` random events per user, users interleaved. */
async function writeLog(dir: string, sizes: LoadSizes, numItems: number): Promise<void> {
  const { store } = await EventStore.open(dir);
  try {
    const pick = generator(1);
    const chunk: ServiceEvent[] = [];
    for (let t = 0; t < sizes.history; t++) {
      for (let u = 0; u < sizes.users; u++) {
        chunk.push({ user: userId(u), item: 1 + pick(numItems - 1) });
        if (chunk.length === 65536) await store.append(chunk.splice(0));
      }
    }
    if (chunk.length > 0) await store.append(chunk);
  } finally {
    store.close();
  }
}

/** One client's requests; its latencies go into `events` and `recommend`. */
async function client(
  base: string,
  c: number,
  sizes: LoadSizes,
  numItems: number,
  latencies: { events: number[]; recommend: number[] },
): Promise<number> {
  const pick = generator(1000 + c);
  let sent = 0;
  for (let r = 0; r < sizes.requests; r++) {
    const t0 = performance.now();
    let res: Response;
    if ((r + 1) % sizes.recommendEvery === 0) {
      res = await fetch(`${base}/recommend?user=${userId(pick(sizes.users))}&k=${K}`);
    } else {
      const events = Array.from({ length: sizes.batch }, () => ({
        user: userId(pick(sizes.users)),
        item: 1 + pick(numItems - 1),
      }));
      res = await fetch(`${base}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(events),
      });
      sent += events.length;
    }
    const body = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) {
      throw new Error(`client ${c}, request ${r}: status ${res.status}: ${body.slice(0, 200)}`);
    }
    ((r + 1) % sizes.recommendEvery === 0 ? latencies.recommend : latencies.events).push(ms);
  }
  return sent;
}

/** Starts `mode` on a copy of the log, runs the clients against it and stops it. */
async function runLoad(
  mode: "stream" | "recompute",
  model: Mamba4Rec,
  log: string,
  sizes: LoadSizes,
): Promise<LoadResult> {
  const stateDir = await Deno.makeTempDir({ prefix: `ssmrec-serve-bench-${mode}-` });
  try {
    await Deno.copyFile(log, `${stateDir}/${EVENT_LOG_FILE}`);
    const t0 = performance.now();
    const service: Recommender = mode === "stream"
      ? await RecommendationService.start(model, { capacity: sizes.users, stateDir })
      : await RecomputeRecommender.start(model, { stateDir, window: sizes.window });
    const server = await serveRecommendations(service, { port: 0 });
    const base = `http://127.0.0.1:${server.port}`;
    // The start is over when the service answers: the stream's states are then on the GPU.
    await (await fetch(`${base}/recommend?user=${userId(0)}&k=${K}`)).text();
    const startMs = performance.now() - t0;
    // One untimed event, so that no timed request waits for a first compilation.
    await (await fetch(`${base}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user: userId(0), item: 1 }),
    })).text();
    const latencies = { events: [] as number[], recommend: [] as number[] };
    try {
      const t1 = performance.now();
      const sent = await Promise.all(
        Array.from(
          { length: sizes.clients },
          (_, c) => client(base, c, sizes, model.config.numItems, latencies),
        ),
      );
      const seconds = (performance.now() - t1) / 1000;
      const events = sent.reduce((a, b) => a + b, 0);
      const stats = (xs: number[]) => ({
        count: xs.length,
        p50: percentile(xs, 0.5),
        p99: percentile(xs, 0.99),
      });
      return {
        mode,
        startMs,
        seconds,
        eventsPerSecond: events / seconds,
        requestsPerSecond: (latencies.events.length + latencies.recommend.length) / seconds,
        events: stats(latencies.events),
        recommend: stats(latencies.recommend),
      };
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
}

/** The GPU side: observe for a batch of users against recomputing their windows. */
async function gpuSide(model: Mamba4Rec, quick: boolean) {
  const info = await initGpu();
  const ctx = { info, quick };
  const { users, length } = quick ? STREAM_BENCH_SIZES.quick : STREAM_BENCH_SIZES.full;
  const [observe, recompute] = streamBenchmarks(() => model);
  const observeMs = (await measure(observe, ctx)).ms;
  const recomputeMs = (await measure(recompute, ctx)).ms;
  return {
    users,
    length,
    observeMs,
    recomputeMs,
    observeEventsPerSecond: users / (observeMs / 1000),
    recomputeEventsPerSecond: users / (recomputeMs / 1000),
  };
}

function integerFlag(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--${name} must be an integer ≥ 1, got ${text}\n${USAGE}`);
  }
  return n;
}

function parse(args: string[]) {
  const names = ["users", "history", "window", "clients", "requests", "batch", "recommend-every"];
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        checkpoint: { type: "string" },
        quick: { type: "boolean" },
        json: { type: "boolean" },
        ...Object.fromEntries(names.map((n) => [n, { type: "string" as const }])),
      },
    }));
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${USAGE}`);
  }
  return values as Record<string, string | boolean | undefined>;
}

const ms = (v: number) => `${v.toFixed(1)} ms`;

async function main(): Promise<void> {
  const flags = parse(Deno.args);
  const info = await initGpu();
  const quick = flags.quick === true || info.isCpu;
  const base = quick ? DEFAULT_SIZES.quick : DEFAULT_SIZES.full;
  const text = (n: string) => flags[n] as string | undefined;
  const sizes: LoadSizes = {
    users: integerFlag("users", text("users"), base.users),
    history: integerFlag("history", text("history"), base.history),
    window: integerFlag("window", text("window"), base.window),
    clients: integerFlag("clients", text("clients"), base.clients),
    requests: integerFlag("requests", text("requests"), base.requests),
    batch: integerFlag("batch", text("batch"), base.batch),
    recommendEvery: integerFlag("recommend-every", text("recommend-every"), base.recommendEvery),
  };
  const checkpoint = text("checkpoint");
  const model = checkpoint ? await loadMamba4RecCheckpoint(checkpoint) : benchModel(quick);
  const logDir = await Deno.makeTempDir({ prefix: "ssmrec-serve-bench-log-" });
  const results: LoadResult[] = [];
  try {
    await writeLog(logDir, sizes, model.config.numItems);
    for (const mode of ["stream", "recompute"] as const) {
      results.push(await runLoad(mode, model, `${logDir}/${EVENT_LOG_FILE}`, sizes));
    }
  } finally {
    await Deno.remove(logDir, { recursive: true });
  }
  const gpu = await gpuSide(model, quick);
  if (flags.json) {
    console.log(
      JSON.stringify({ adapter: info.description, quick, checkpoint, sizes, results, gpu }),
    );
    return;
  }
  console.log(`adapter: ${info.description}${info.isCpu ? " (CPU implementation)" : ""}`);
  console.log(`model: ${checkpoint ?? "untrained"} ${JSON.stringify(model.config)}`);
  console.log(
    `load: ${sizes.users} users × ${sizes.history} logged events; ${sizes.clients} clients × ` +
      `${sizes.requests} requests (every ${sizes.recommendEvery}th GET /recommend k ${K}, ` +
      `the others POST /events × ${sizes.batch}); recompute window L ${sizes.window}`,
  );
  for (const r of results) {
    console.log(
      `${r.mode.padEnd(9)} start ${ms(r.startMs)}; ${r.eventsPerSecond.toFixed(0)} events/s, ` +
        `${r.requestsPerSecond.toFixed(0)} requests/s; /events p50 ${ms(r.events.p50)} p99 ` +
        `${ms(r.events.p99)} (${r.events.count}); /recommend p50 ${ms(r.recommend.p50)} p99 ` +
        `${ms(r.recommend.p99)} (${r.recommend.count})`,
    );
  }
  console.log(
    `GPU: observe ${gpu.users} users × 1 event ${ms(gpu.observeMs)} → ` +
      `${gpu.observeEventsPerSecond.toFixed(0)} events/s; recompute ${gpu.users} windows × L ` +
      `${gpu.length} ${ms(gpu.recomputeMs)} → ${
        gpu.recomputeEventsPerSecond.toFixed(0)
      } events/s ` +
      `(${(gpu.recomputeMs / gpu.observeMs).toFixed(1)}× the time)`,
  );
  if (quick) console.log("quick sizes: the figures show that everything runs, not performance");
}

try {
  await main();
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(e instanceof UsageError ? 2 : 1);
}
