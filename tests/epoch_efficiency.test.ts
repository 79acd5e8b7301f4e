/**
 * The trainer's per-epoch efficiency figures: peak live GPU storage, tokens trained and tokens
 * per second, for padded models (B × L windows, padding included), packed models (history
 * tokens) and packed models on padded windows (`padTo`); and run records with and without them.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import type { SequentialDataset } from "../data/dataset.ts";
import { ConfigError, trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { type EpochRecord, train, type TrainResult } from "../models/training/trainer.ts";
import { checkLayoutSettings } from "../models/training/layouts.ts";
import { runtime } from "../ops/core/runtime.ts";
import {
  readRunRecord,
  RUN_RECORD_FORMAT,
  type RunRecord,
  writeRunRecord,
} from "../run/run_record.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

const TINY_MAMBA = { hiddenSize: 16, dState: 8, numLayers: 1, dropoutProb: 0.1 };
const TINY_SSD = { hiddenSize: 16, dState: 8, headDim: 4, numLayers: 1, chunkSize: 4 };

/** Training samples of the dataset (one per prefix). */
const trainSamples = (dataset: SequentialDataset) => dataset.split.train.users.length;

/** Σ over training samples of the history length. */
function historyTokens(dataset: SequentialDataset): number {
  const { users, targetPositions } = dataset.split.train;
  let sum = 0;
  users.forEach((u, k) => sum += targetPositions[k] - dataset.offsets[u]);
  return sum;
}

/** Fails unless the epoch has its figures, positive and consistent. */
function assertFigures(e: EpochRecord, tokens: number, at: string): void {
  assertEquals(e.tokens, tokens, at);
  assert(e.peakLiveBytes! > 0, `${at}: peak ${e.peakLiveBytes}`);
  assert(e.tokensPerSecond! > 0, `${at}: ${e.tokensPerSecond} tokens/s`);
  assert(
    Math.abs(e.tokensPerSecond! * e.trainSeconds - tokens) <= 1e-6 * tokens,
    `${at}: ${e.tokensPerSecond} tokens/s over ${e.trainSeconds} s is not ${tokens} tokens`,
  );
}

Deno.test("epoch figures: padded models count B × L, packed models history tokens, padTo B × L", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 30, 20, 8);
  const L = 5;
  const base = { epochs: 1, batchSize: 32, evalBatchSize: 16, maxLength: L, seed, verbose: false };
  const mamba = await train(
    createModel("mamba4rec", dataset.numItems, { ...TINY_MAMBA, seed }),
    dataset,
    trainConfig(base),
  );
  assertFigures(mamba.history[0], trainSamples(dataset) * L, `seed ${seed}, mamba4rec`);
  const ssd = (overrides: Record<string, unknown>) =>
    train(
      createModel("ssd4rec", dataset.numItems, { ...TINY_SSD, seed }),
      dataset,
      trainConfig({ ...base, ...overrides }),
    );
  const whole = await ssd({});
  assertFigures(whole.history[0], historyTokens(dataset), `seed ${seed}, ssd4rec`);
  const padded = await ssd({ padTo: L });
  assertFigures(padded.history[0], trainSamples(dataset) * L, `seed ${seed}, ssd4rec padTo`);
  assert(trainSamples(dataset) * L !== historyTokens(dataset), `seed ${seed}: equal counts`);
});

Deno.test("padTo is refused for a padded model, naming the key", () => {
  const config = trainConfig({ padTo: 50 });
  const e = assertThrows(() => checkLayoutSettings({ name: "mamba4rec" }, config), ConfigError);
  assertEquals(e.key, "padTo");
  assertStringIncludes(e.message, "'padTo' is 50, but mamba4rec takes padded batches");
  assertThrows(() => trainConfig({ padTo: 0 }), ConfigError, "'padTo' must be a positive integer");
});

Deno.test("run records: the epochs' figures round-trip; records of the two older formats still load", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const epoch: EpochRecord = {
      epoch: 0,
      loss: 2,
      valid: { "ndcg@10": 0.1 },
      trainSeconds: 4,
      evalSeconds: 1,
    };
    const result: TrainResult = {
      history: [epoch],
      bestEpoch: 0,
      bestValid: epoch.valid,
      test: { "ndcg@10": 0.1 },
      stoppedEarly: false,
      complete: true,
      secondsPerEpoch: 4,
      epochsThisRun: 1,
    };
    const record: RunRecord = {
      format: RUN_RECORD_FORMAT,
      model: "ssd4rec",
      dataset: "rule",
      users: 3,
      items: 4,
      adapter: runtime().info.description,
      finishedAt: new Date(0).toISOString(),
      command: "deno task train --model ssd4rec --dataset rule",
      modelConfig: {},
      trainConfig: trainConfig({ padTo: 5 }),
      parameters: 1,
      result: {
        ...result,
        history: [{ ...epoch, peakLiveBytes: 1 << 20, tokens: 400, tokensPerSecond: 100 }],
      },
    };
    const current = join(dir, "current.json");
    await writeRunRecord(current, record);
    const read = await readRunRecord(current);
    assertEquals(read?.format, RUN_RECORD_FORMAT);
    assertEquals(read?.trainConfig.padTo, 5);
    assertEquals(read?.result.history[0].peakLiveBytes, 1 << 20);
    assertEquals(read?.result.history[0].tokensPerSecond, 100);
    for (const format of ["ssmrec-run-2", "ssmrec-run-1"] as const) {
      const old = join(dir, `${format}.json`);
      // Written as the older code wrote them: no figures in the epochs.
      const { code: _code, deno: _deno, ...rest } = record;
      const text = JSON.stringify({ ...rest, format, result });
      await Deno.writeTextFile(old, text);
      const loaded = await readRunRecord(old);
      assertEquals(loaded?.format, format);
      assertEquals(loaded?.result.history[0].peakLiveBytes, undefined);
      assertEquals(loaded?.result.history[0].loss, 2);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
