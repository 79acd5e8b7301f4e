import { assert, assertEquals, assertRejects } from "@std/assert";
import { Mamba4RecStream } from "../models/streaming/mamba4rec_stream.ts";
import { writeCheckpoint } from "../models/training/checkpoint.ts";
import {
  EVENT_LOG_FILE,
  loadStreamableCheckpoint,
  MAX_BODY_BYTES,
  RecommendationService,
  type RunningServer,
  serveRecommendations,
  SNAPSHOT_FILE,
} from "../run/serve/mod.ts";
import { tinyCheckpoint } from "./serve_checkpoint.ts";
import { withTempDir } from "./temp_files.ts";
import { assertClose, freshSeed, makeRng, randint } from "./util.ts";

const NUM_ITEMS = 31;
const CAPACITY = 5;
const TOKEN = "s3cret";

async function start(checkpoint: string, stateDir: string): Promise<RunningServer> {
  const model = await loadStreamableCheckpoint(checkpoint);
  const service = await RecommendationService.start(model, { capacity: CAPACITY, stateDir });
  return await serveRecommendations(service, { port: 0, token: TOKEN });
}

/** A client of the server on `port`: returns status and parsed JSON body. */
function client(port: number) {
  const base = `http://127.0.0.1:${port}`;
  return async (
    path: string,
    init: { method?: string; body?: string; type?: string; token?: string | null } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const headers: Record<string, string> = {};
    if (init.body !== undefined) headers["content-type"] = init.type ?? "application/json";
    const token = init.token === undefined ? TOKEN : init.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(base + path, {
      method: init.method ?? (init.body !== undefined ? "POST" : "GET"),
      headers,
      body: init.body,
    });
    return { status: res.status, body: await res.json() };
  };
}

Deno.test("serve: events, recommendations, bad inputs, tokens and restart", async () => {
  const seed = freshSeed() % 100000;
  await withTempDir("ssmrec-serve-", async (dir) => {
    const checkpoint = `${dir}/model.safetensors`;
    const stateDir = `${dir}/state`;
    const model = await tinyCheckpoint(checkpoint, NUM_ITEMS, seed);
    const direct = new Mamba4RecStream(model, { capacity: CAPACITY });
    let server = await start(checkpoint, stateDir);
    try {
      let call = client(server.port);
      // Slots go in order of first event: alice 0, "7" (also 7) 1, bob 2.
      const batches: [(string | number)[], number[]][] = [
        [["alice", 7, "alice"], [3, 5, 2]],
        [["bob"], [9]],
        [["7", "bob", "alice"], [30, 1, 4]],
      ];
      const slotOf = (u: string | number) => ({ alice: 0, "7": 1, bob: 2 })[String(u)]!;
      for (const [users, items] of batches) {
        const events = users.map((user, i) => ({ user, item: items[i] }));
        const r = await call("/events", {
          body: JSON.stringify(events.length === 1 ? events[0] : events),
        });
        assertEquals(r.status, 200, `seed ${seed}: ${JSON.stringify(r.body)}`);
        direct.observe(Int32Array.from(users, slotOf), Int32Array.from(items));
      }
      const expected = await direct.recommend(Int32Array.from([0, 1, 2]), 6);
      // Stepped states give the direct stream's scores bit for bit; after a restart the states
      // come from one full forward over each history, equal to within rounding.
      const check = async (label: string, restarted = false) => {
        const answers = await Promise.all(
          ["alice", "7", "bob"].map((u) => call(`/recommend?user=${u}&k=6`)),
        );
        answers.forEach((r, s) => {
          assertEquals(r.status, 200, `${label}, seed ${seed}`);
          assertEquals(r.body.items, Array.from(expected.items.subarray(s * 6, s * 6 + 6)));
          const want = expected.scores.subarray(s * 6, s * 6 + 6);
          if (restarted) {
            assertClose(
              Float64Array.from(r.body.scores as number[]),
              Float64Array.from(want),
              1e-6,
              `${label}, user slot ${s}, seed ${seed}`,
            );
          } else {
            assertEquals(r.body.scores, Array.from(want));
          }
        });
        const top = await call("/recommend?user=bob");
        assertEquals((top.body.items as number[]).length, 10);
        assertEquals(
          (await call("/health")).body,
          { ok: true, users: 3, events: 7, capacity: CAPACITY },
        );
      };
      await check("after the events");

      // Bad inputs: 4xx with a JSON error, nothing applied.
      const big = JSON.stringify(
        Array.from({ length: MAX_BODY_BYTES / 20 }, () => ({ user: "zed", item: 1 })),
      );
      const bad: [string, Parameters<ReturnType<typeof client>>[1], number][] = [
        ["/events", { body: "{not json" }, 400],
        ["/events", { body: '{"user":"zed","item":1}', type: "text/plain" }, 415],
        ["/events", { body: big }, 413],
        ["/events", { body: '[{"user":"zed","item":1},{"user":"zed","item":0}]' }, 400],
        ["/events", { body: `{"user":"zed","item":${NUM_ITEMS}}` }, 400],
        ["/events", { body: '{"user":"zed","item":1.5}' }, 400],
        ["/events", { body: '{"user":null,"item":1}' }, 400],
        ["/events", { body: '{"user":"","item":1}' }, 400],
        ["/events", { body: "[1]" }, 400],
        [
          "/events",
          { body: '[{"user":"x","item":1},{"user":"y","item":1},{"user":"z","item":1}]' },
          503,
        ],
        ["/events", { body: '{"user":"zed","item":1}', token: null }, 401],
        ["/events", { body: '{"user":"zed","item":1}', token: "wrong" }, 401],
        ["/events", { method: "GET" }, 405],
        ["/recommend", { body: "{}" }, 405],
        ["/recommend", {}, 400],
        ["/recommend?user=alice&k=0", {}, 400],
        ["/recommend?user=alice&k=31", {}, 400],
        ["/recommend?user=alice&k=abc", {}, 400],
        ["/recommend?user=alice&k=2.5", {}, 400],
        ["/recommend?user=zed", {}, 404],
        ["/nowhere", {}, 404],
      ];
      for (const [path, init, status] of bad) {
        const r = await call(path, init);
        assertEquals(r.status, status, `${path} ${JSON.stringify(init).slice(0, 80)}`);
        assert(typeof r.body.error === "string" && r.body.error.length > 0);
      }
      await check("after the bad requests");

      // Restart on the same state dir, with a torn (unacknowledged) line at the log's end.
      await server.shutdown();
      const snapshot = JSON.parse(await Deno.readTextFile(`${stateDir}/${SNAPSHOT_FILE}`));
      assertEquals(snapshot, { events: 7, users: [["alice", 0], ["7", 1], ["bob", 2]] });
      await Deno.writeTextFile(`${stateDir}/${EVENT_LOG_FILE}`, '{"user":"zed","it', {
        append: true,
      });
      server = await start(checkpoint, stateDir);
      call = client(server.port);
      await check("after a restart", true);
      // Slots continue after a restart: a new user takes the next one.
      assertEquals((await call("/events", { body: '{"user":"dan","item":8}' })).status, 200);
      direct.observe(Int32Array.of(3), Int32Array.of(8));
      const dan = await direct.recommend(Int32Array.of(3), 4);
      assertEquals((await call("/recommend?user=dan&k=4")).body.items, Array.from(dan.items));
    } finally {
      await server.shutdown();
      direct.dispose();
    }
  });
});

Deno.test("serve: a checkpoint of another model is refused", async () => {
  await withTempDir("ssmrec-serve-", async (dir) => {
    const path = `${dir}/other.safetensors`;
    const model = await tinyCheckpoint(path, NUM_ITEMS, 1);
    await writeCheckpoint(path, model.params.entries(), { model: "gru4rec" });
    await assertRejects(
      () => loadStreamableCheckpoint(path),
      Error,
      "serves mamba4rec and ssd4rec",
    );
  });
});

Deno.test("serve: concurrent requests are applied in log order and recommended together", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  await withTempDir("ssmrec-serve-", async (dir) => {
    const checkpoint = `${dir}/model.safetensors`;
    const stateDir = `${dir}/state`;
    const model = await tinyCheckpoint(checkpoint, NUM_ITEMS, seed % 100000);
    const direct = new Mamba4RecStream(model, { capacity: CAPACITY });
    const server = await start(checkpoint, stateDir);
    try {
      const call = client(server.port);
      const users = ["u0", "u1", "u2", "u3"];
      const requests = Array.from({ length: 12 }, () => {
        const n = 1 + randint(rng, 1, 3)[0];
        return Array.from({ length: n }, () => ({
          user: users[randint(rng, 1, users.length)[0]],
          item: 1 + randint(rng, 1, NUM_ITEMS - 1)[0],
        }));
      });
      const answers = await Promise.all(
        requests.map((events) => call("/events", { body: JSON.stringify(events) })),
      );
      for (const r of answers) assertEquals(r.status, 200, `seed ${seed}`);
      // The log's order is the order the service applied them in; slots by first appearance.
      const logged = (await Deno.readTextFile(`${stateDir}/${EVENT_LOG_FILE}`)).trim().split("\n")
        .map((line) => JSON.parse(line) as { user: string; item: number });
      assertEquals(logged.length, requests.flat().length, `seed ${seed}`);
      const slots = new Map<string, number>();
      for (const e of logged) if (!slots.has(e.user)) slots.set(e.user, slots.size);
      for (const e of logged) {
        direct.observe(Int32Array.of(slots.get(e.user)!), Int32Array.of(e.item));
      }
      const known = [...slots.keys()];
      const expected = await direct.recommend(Int32Array.from(known, (u) => slots.get(u)!), 5);
      const recs = await Promise.all(known.map((u) => call(`/recommend?user=${u}&k=5`)));
      recs.forEach((r, i) => {
        assertEquals(r.body.items, Array.from(expected.items.subarray(i * 5, i * 5 + 5)));
        assertClose(
          Float64Array.from(r.body.scores as number[]),
          Float64Array.from(expected.scores.subarray(i * 5, i * 5 + 5)),
          1e-6,
          `user ${known[i]}, seed ${seed}`,
        );
      });
    } finally {
      await server.shutdown();
      direct.dispose();
    }
  });
});
