/**
 * Crash test of `deno task serve`: the real command line runs in a subprocess, is killed with
 * SIGKILL while concurrent `POST /events` requests are in flight, and is restarted on the same
 * state directory; every acknowledged event must be in the replayed log and applied.
 */
import { assert, assertEquals } from "@std/assert";
import { Mamba4RecStream } from "../models/streaming/mamba4rec_stream.ts";
import { EVENT_LOG_FILE } from "../run/serve/mod.ts";
import { tinyCheckpoint } from "./serve_checkpoint.ts";
import { withTempDir } from "./temp_files.ts";
import { assertClose, freshSeed } from "./util.ts";

const NUM_ITEMS = 31;
const USERS = 6;
const CAPACITY = 8;
/** Requests in flight at once. */
const CONCURRENCY = 8;
/** One event per request; request i is (user i mod USERS, item 1 + ⌊i / USERS⌋), all distinct. */
const MAX_REQUESTS = USERS * (NUM_ITEMS - 1);
/** The server is killed once this many requests were acknowledged. */
const KILL_AFTER_ACKS = 60;
/** Longest wait for the server to print its address. */
const START_TIMEOUT_MS = 60_000;
const PROJECT_ROOT = new URL("..", import.meta.url).pathname;

/** The event of request `i`. */
function eventOf(i: number): { user: string; item: number } {
  return { user: `u${i % USERS}`, item: 1 + Math.floor(i / USERS) };
}

/** A running `scripts/serve.ts` subprocess. */
interface ServerProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  /** Users and events the server reported restoring from the state dir. */
  readonly restored: { users: number; events: number };
  /** The rest of stdout and all of stderr, once the process has ended. */
  readonly output: Promise<string>;
}

async function readAll(stream: ReadableStream<string>): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += chunk;
  return text;
}

/** Starts the serve CLI and waits for its `serving … on http://host:port (…)` line. */
async function startServer(checkpoint: string, stateDir: string): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--preload",
      "run/preload_runtime_dir.ts",
      "scripts/serve.ts",
      "--checkpoint",
      checkpoint,
      "--port",
      "0",
      "--state-dir",
      stateDir,
      "--capacity",
      String(CAPACITY),
    ],
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = readAll(child.stderr.pipeThrough(new TextDecoderStream()));
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT_MS);
  let seen = "";
  let match: RegExpMatchArray | null = null;
  try {
    while (!match) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
      match = seen.match(/on http:\/\/[^:\s]+:(\d+) \((\d+) users, (\d+) events restored/);
    }
  } finally {
    clearTimeout(timer);
  }
  const rest = (async () => {
    let text = seen;
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
    return text + (await stderr);
  })();
  if (!match) {
    await child.status;
    throw new Error(`serve did not print its address:\n${await rest}`);
  }
  return {
    child,
    port: Number(match[1]),
    restored: { users: Number(match[2]), events: Number(match[3]) },
    output: rest,
  };
}

/** Kills the process (if still running) and waits for it and its output. */
async function stopForcibly(server: ServerProcess): Promise<void> {
  try {
    server.child.kill("SIGKILL");
  } catch {
    // already exited
  }
  await server.child.status;
  await server.output;
}

/**
 * Sends requests 0, 1, … with {@link CONCURRENCY} in flight, killing the server with SIGKILL
 * once {@link KILL_AFTER_ACKS} were acknowledged; returns the acknowledged request indices.
 */
async function sendUntilKilled(server: ServerProcess): Promise<Set<number>> {
  const acknowledged = new Set<number>();
  let next = 0;
  let killed = false;
  const worker = async () => {
    while (next < MAX_REQUESTS) {
      const i = next++;
      try {
        const res = await fetch(`http://127.0.0.1:${server.port}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(eventOf(i)),
        });
        const body = await res.json();
        if (res.status !== 200) {
          throw new Error(`request ${i}: ${res.status} ${JSON.stringify(body)}`);
        }
        acknowledged.add(i);
      } catch (e) {
        if (killed) return; // the connection died with the server: not acknowledged
        throw e;
      }
      if (!killed && acknowledged.size >= KILL_AFTER_ACKS) {
        killed = true;
        server.child.kill("SIGKILL");
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert(killed, `the server was never killed: only ${acknowledged.size} acknowledgements`);
  const status = await server.child.status;
  assertEquals(status.signal, "SIGKILL");
  await server.output;
  return acknowledged;
}

Deno.test("serve: acknowledged events survive a SIGKILL during writes and a restart", async () => {
  const seed = freshSeed() % 100000;
  await withTempDir("ssmrec-serve-crash-", async (dir) => {
    const checkpoint = `${dir}/model.safetensors`;
    const stateDir = `${dir}/state`;
    const model = await tinyCheckpoint(checkpoint, NUM_ITEMS, seed);
    const direct = new Mamba4RecStream(model, { capacity: CAPACITY });
    let server: ServerProcess | null = null;
    try {
      server = await startServer(checkpoint, stateDir);
      assertEquals(server.restored, { users: 0, events: 0 });
      const acknowledged = await sendUntilKilled(server);

      server = await startServer(checkpoint, stateDir);
      // The log as replayed (a torn last line is cut off the file on start).
      const logged = (await Deno.readTextFile(`${stateDir}/${EVENT_LOG_FILE}`)).split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { user: string; item: number });
      const where = `seed ${seed}, ${acknowledged.size} acknowledged, ${logged.length} logged`;
      assertEquals(server.restored.events, logged.length, where);
      const inLog = new Set(logged.map((e) => `${e.user}/${e.item}`));
      assertEquals(inLog.size, logged.length, `an event was logged twice; ${where}`);
      for (const i of acknowledged) {
        const e = eventOf(i);
        assert(
          inLog.has(`${e.user}/${e.item}`),
          `request ${i} was acknowledged, not logged; ${where}`,
        );
      }
      for (const e of logged) {
        const i = Number(e.user.slice(1)) + USERS * (e.item - 1);
        assert(i >= 0 && i < MAX_REQUESTS && eventOf(i).user === e.user, `stray event ${e.user}`);
      }
      const call = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${server!.port}${path}`);
        return { status: res.status, body: await res.json() as Record<string, unknown> };
      };
      const health = await call("/health");
      assertEquals(health.body, {
        ok: true,
        users: new Set(logged.map((e) => e.user)).size,
        events: logged.length,
        capacity: CAPACITY,
      }, where);
      assert(logged.length >= acknowledged.size, where);

      // Every user's recommendations match a stream fed the log in order (slots by first event).
      const slots = new Map<string, number>();
      for (const e of logged) {
        if (!slots.has(e.user)) slots.set(e.user, slots.size);
        direct.observe(Int32Array.of(slots.get(e.user)!), Int32Array.of(e.item));
      }
      const users = [...slots.keys()];
      const k = 5;
      const expected = await direct.recommend(Int32Array.from(users, (u) => slots.get(u)!), k);
      const answers = await Promise.all(users.map((u) => call(`/recommend?user=${u}&k=${k}`)));
      answers.forEach((r, s) => {
        assertEquals(r.status, 200, `user ${users[s]}; ${where}`);
        assertEquals(r.body.items, Array.from(expected.items.subarray(s * k, s * k + k)), where);
        assertClose(
          Float64Array.from(r.body.scores as number[]),
          Float64Array.from(expected.scores.subarray(s * k, s * k + k)),
          1e-6,
          `user ${users[s]}; ${where}`,
        );
      });

      // A clean stop: SIGTERM, exit status 0.
      server.child.kill("SIGTERM");
      const status = await server.child.status;
      const output = await server.output;
      assertEquals(status.code, 0, `serve exited ${status.code} on SIGTERM:\n${output}`);
      server = null;
    } finally {
      if (server) await stopForcibly(server);
      direct.dispose();
    }
  });
});
