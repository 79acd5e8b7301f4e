import { assert, assertEquals, assertThrows } from "@std/assert";
import { join } from "node:path";
import { topKRows } from "../models/top_k.ts";
import { RunIndex } from "../run/run_index.ts";
import type { IndexedRecord } from "../run/run_index.ts";
import { historyLengths, measureStreamingCost, streamingCostChart } from "../run/streaming_cost.ts";
import {
  recordedCheckpoint,
  replayTable,
  replayUsers,
  STREAMED_SCORE_TOLERANCE,
  type StreamingModel,
} from "../run/streaming_demo.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { fullScores, NUM_ITEMS, smallModel } from "./streaming_model.ts";
import { withTempDir } from "./temp_files.ts";
import { freshSeed, makeRng } from "./util.ts";

/** A small model with redrawn weights on a rule dataset of at most {@link NUM_ITEMS} ids. */
function smallSource(seed: number, maxLength: number): StreamingModel {
  const dataset = ruleDataset(seed, 40, NUM_ITEMS - 1, 12);
  assert(dataset.numItems <= NUM_ITEMS, `seed ${seed}: ${dataset.numItems} item ids`);
  return {
    model: smallModel(2, makeRng(seed + 1), seed),
    dataset,
    maxLength,
    origin: "smoke",
    checkpoint: null,
    description: "test model",
  };
}

Deno.test("replayUsers: each step's top items and next item match the full forward's", async () => {
  const seed = freshSeed();
  const source = smallSource(seed, 8);
  const events = 3;
  const replays = await replayUsers(source, { users: 2, events });
  assertEquals(replays.length, 2, `seed ${seed}`);
  for (const replay of replays) {
    const seq = source.dataset.sequence(replay.user);
    // The window is the user's last L items; the stream starts from all but the replayed ones.
    const window = seq.subarray(Math.max(0, seq.length - source.maxLength));
    assertEquals(replay.history, window.length - events, `seed ${seed}`);
    assertEquals(replay.steps.length, events + 1, `seed ${seed}`);
    for (const [i, step] of replay.steps.entries()) {
      const what = `seed ${seed}: user ${replay.user} step ${i}`;
      assertEquals(step.events, replay.history + i, what);
      assertEquals(step.item, window[step.events - 1], what);
      assertEquals(step.next, step.events < window.length ? window[step.events] : null, what);
      assert(step.scoreDifference <= STREAMED_SCORE_TOLERANCE, what);
      const full = await fullScores(source.model, [window.slice(0, step.events)]);
      const top = Array.from(topKRows(full, 1, 10).items);
      assertEquals(step.top5, top.slice(0, 5), what);
      assertEquals(step.nextInTop10, step.next === null ? null : top.includes(step.next), what);
    }
    const table = replayTable(replay, source.dataset);
    assertEquals(table.rows.length, events + 1, `seed ${seed}`);
    assertEquals(table.rows[events]["next in top-10"], "—", `seed ${seed}`);
  }
});

Deno.test("replayUsers: replaying more events than any window holds is refused", async () => {
  const seed = freshSeed();
  const source = smallSource(seed, 4);
  let message = "";
  try {
    await replayUsers(source, { users: 1, events: 4 });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("replay fewer events"), `seed ${seed}: ${message}`);
});

Deno.test("historyLengths: distinct lengths from 1 to L, increasing", () => {
  assertEquals(historyLengths(50, 4), [1, 4, 14, 50]);
  assertEquals(historyLengths(3, 6), [1, 2, 3]);
  assertEquals(historyLengths(20, 1), [20]);
  assertThrows(() => historyLengths(0, 3), RangeError, "maxLength (0)");
});

Deno.test("measureStreamingCost: a point per length, with positive times, and its chart", async () => {
  const seed = freshSeed();
  const model = smallModel(1, makeRng(seed), seed);
  const points = await measureStreamingCost(model, [1, 5], { users: 3, repeats: 1 }, seed);
  assertEquals(points.map((p) => [p.length, p.users]), [[1, 3], [5, 3]]);
  for (const p of points) {
    assert(p.stepMs > 0 && Number.isFinite(p.stepMs), `seed ${seed}: step ${p.stepMs}`);
    assert(p.recomputeMs > 0 && Number.isFinite(p.recomputeMs), `seed ${seed}`);
  }
  const chart = streamingCostChart(points, "test adapter");
  assertEquals(chart.data.map((t) => t.y?.length), [2, 2]);
  await assertRejectsRange(() => measureStreamingCost(model, [1], { users: 0, repeats: 1 }));
});

/** Asserts that `fn` rejects with a RangeError. */
async function assertRejectsRange(fn: () => Promise<unknown>): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert(error instanceof RangeError, `expected a RangeError, got ${error}`);
}

/** A record of a Mamba4Rec run whose checkpoints went to `dir`. */
function recordWithCheckpoints(dir: string | null, model = "mamba4rec"): IndexedRecord {
  return {
    path: `results/runs/${model}.json`,
    record: { model, trainConfig: { checkpointDir: dir } },
  } as unknown as IndexedRecord;
}

Deno.test("recordedCheckpoint: the first Mamba4Rec record whose best checkpoint exists", async () => {
  await withTempDir("ssmrec-stream-", async (root) => {
    await Deno.mkdir(join(root, "runs/a"), { recursive: true });
    await Deno.mkdir(join(root, "runs/b"), { recursive: true });
    await Deno.writeTextFile(join(root, "runs/b/best.safetensors"), "");
    await Deno.writeTextFile(join(root, "runs/a/last.safetensors"), "");
    const index = (...records: IndexedRecord[]) => new RunIndex(records);
    // Only last.safetensors: not taken.
    assertEquals(recordedCheckpoint(index(recordWithCheckpoints("runs/a")), root), undefined);
    assertEquals(
      recordedCheckpoint(index(recordWithCheckpoints("runs/b", "sasrec")), root),
      undefined,
    );
    assertEquals(recordedCheckpoint(index(recordWithCheckpoints(null)), root), undefined);
    assertEquals(
      recordedCheckpoint(index(recordWithCheckpoints("runs/b")), root),
      join(root, "runs/b/best.safetensors"),
    );
    assertEquals(
      recordedCheckpoint(index(recordWithCheckpoints(join(root, "runs/b"))), "/elsewhere"),
      join(root, "runs/b/best.safetensors"),
    );
  });
});
