import { assert, assertEquals, assertThrows } from "@std/assert";
import { join } from "node:path";
import { Mamba4Rec, mamba4recConfig } from "../models/mamba4rec.ts";
import { topKRows } from "../models/streaming/top_k.ts";
import { SETTINGS_METADATA_KEY, writeCheckpoint } from "../models/training/checkpoint.ts";
import { readTensors } from "../ops/core/tensor.ts";
import { RunIndex } from "../run/run_index.ts";
import type { IndexedRecord } from "../run/run_index.ts";
import { historyLengths, measureStreamingCost, streamingCostChart } from "../run/streaming_cost.ts";
import {
  KEPT_CHECKPOINTS,
  loadStreamingModel,
  recordedCheckpoint,
  replayTable,
  replayUsers,
  STREAMED_SCORE_TOLERANCE,
  type StreamingModel,
} from "../run/streaming_demo.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { fullScores, NUM_ITEMS, smallModel } from "./streaming_model.ts";
import { perturb, tinyModel } from "./ssd4rec_cases.ts";
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

Deno.test("replayUsers and measureStreamingCost: a one-layer SSD4Rec streams as the full forward scores", async () => {
  const seed = freshSeed();
  const model = tinyModel(seed, { numLayers: 1, beta: 0.3 });
  await perturb(model, makeRng(seed + 2));
  const dataset = ruleDataset(seed, 40, model.config.numItems - 1, 12);
  const source: StreamingModel = {
    model,
    dataset,
    maxLength: 9,
    origin: "smoke",
    checkpoint: null,
    description: "test SSD4Rec",
  };
  const replays = await replayUsers(source, { users: 2, events: 4 });
  for (const replay of replays) {
    for (const step of replay.steps) {
      assert(step.scoreDifference <= STREAMED_SCORE_TOLERANCE, `seed ${seed}: ${step.events}`);
    }
  }
  const points = await measureStreamingCost(model, [1, 6], { users: 3, repeats: 1 }, seed);
  assertEquals(points.map((p) => p.length), [1, 6], `seed ${seed}`);
  assert(points.every((p) => p.stepMs > 0 && p.recomputeMs > 0), `seed ${seed}`);
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

/** A record of a run whose checkpoints went to `dir`. */
function recordWithCheckpoints(
  dir: string | null,
  model = "mamba4rec",
  numLayers = 1,
): IndexedRecord {
  return {
    path: `results/runs/${model}.json`,
    record: { model, trainConfig: { checkpointDir: dir }, modelConfig: { numLayers } },
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
    // SSD4Rec's: only a one-layer model's, which has a step form.
    const ssd4rec = (layers: number) => recordWithCheckpoints("runs/b", "ssd4rec", layers);
    assertEquals(recordedCheckpoint(index(ssd4rec(2)), root, "ssd4rec"), undefined);
    assertEquals(
      recordedCheckpoint(index(ssd4rec(2), ssd4rec(1)), root, "ssd4rec"),
      join(root, "runs/b/best.safetensors"),
    );
    assertEquals(recordedCheckpoint(index(ssd4rec(1)), root), undefined);
    // Without its checkpoint directory, the copy kept under the record's name.
    await Deno.mkdir(join(root, KEPT_CHECKPOINTS), { recursive: true });
    const kept = join(root, KEPT_CHECKPOINTS, "mamba4rec.safetensors");
    await Deno.writeTextFile(kept, "");
    assertEquals(recordedCheckpoint(index(recordWithCheckpoints("runs/a")), root), kept);
    assertEquals(recordedCheckpoint(index(recordWithCheckpoints(null)), root), kept);
    assertEquals(
      recordedCheckpoint(index(recordWithCheckpoints("runs/b")), root),
      join(root, "runs/b/best.safetensors"),
    );
  });
});

/** 30 users with 8 interactions each over 12 items (all kept by 5-core): 13 item ids. */
function pairs(): string {
  const lines: string[] = [];
  for (let u = 1; u <= 30; u++) {
    for (let t = 0; t < 8; t++) lines.push(`${u} ${((u + 3 * t) % 12) + 1}`);
  }
  return lines.join("\n") + "\n";
}

/** Writes a seeded Mamba4Rec of `numItems` ids as a trainer checkpoint of `dataset`. */
async function checkpointOf(path: string, numItems: number, dataset: string): Promise<Mamba4Rec> {
  const model = new Mamba4Rec(mamba4recConfig({
    numItems,
    hiddenSize: 8,
    dState: 4,
    numLayers: 1,
    dropoutProb: 0,
    seed: 7,
  }));
  const settings = { model: "mamba4rec", dataset, "train.maxLength": 6, "train.seed": 2020 };
  await writeCheckpoint(path, model.params.entries().map(([n, t]) => [`model.${n}`, t]), {
    model: model.name,
    modelConfig: JSON.stringify(model.config),
    [SETTINGS_METADATA_KEY]: JSON.stringify(settings),
  });
  return model;
}

Deno.test("loadStreamingModel: a checkpoint's weights, with its dataset and window", async () => {
  await withTempDir("ssmrec-stream-ckpt-", async (dir) => {
    const before = Deno.env.get("SSMREC_CACHE");
    Deno.env.set("SSMREC_CACHE", join(dir, "cache"));
    try {
      await Deno.writeTextFile(join(dir, "pairs13.txt"), pairs());
      const path = join(dir, "best.safetensors");
      const saved = await checkpointOf(path, 13, "pairs13");
      const source = await loadStreamingModel({ checkpoint: path, datasetsDirectory: dir });
      assertEquals(
        [source.origin, source.checkpoint, source.maxLength, source.dataset.numItems],
        ["checkpoint", path, 6, 13],
      );
      const [got, want] = await readTensors([source.model.itemTable, saved.itemTable]);
      assertEquals(Array.from(got), Array.from(want));
      // A checkpoint of another item count is refused, naming both counts.
      await checkpointOf(path, 20, "pairs13");
      let message = "";
      try {
        await loadStreamingModel({ checkpoint: path, datasetsDirectory: dir });
      } catch (e) {
        message = (e as Error).message;
      }
      assert(message.includes("scores 20 item ids but pairs13 has 13"), message);
    } finally {
      if (before === undefined) Deno.env.delete("SSMREC_CACHE");
      else Deno.env.set("SSMREC_CACHE", before);
    }
  });
});
