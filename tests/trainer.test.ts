import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import { runtime } from "../ops/core/runtime.ts";
import { readTensors } from "../ops/core/tensor.ts";
import {
  loadTensors,
  readCheckpoint,
  readCheckpointMetadata,
  SETTINGS_METADATA_KEY,
  SettingsMismatchError,
  writeCheckpoint,
} from "../models/training/checkpoint.ts";
import { TRAIN_DEFAULTS, trainConfig } from "../models/config.ts";
import { evaluateRanking } from "../models/training/evaluator.ts";
import { createModel } from "../models/registry.ts";
import {
  type StepProgress,
  train,
  TrainingDivergedError,
  type TrainResult,
} from "../models/training/trainer.ts";
import { readRunRecord, type RunRecord, writeRunRecord } from "../run/run_record.ts";
import { assertLearnedRule, ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

const tiny = { hiddenSize: 16, dState: 8, numLayers: 1, dropoutProb: 0.1 };

for (const trainingMode of ["prefix", "all-positions"] as const) {
  Deno.test(`mamba4rec learns a deterministic next-item rule (HR@10 > 0.9), ${trainingMode} training`, async () => {
    const seed = freshSeed() % 1000;
    const dataset = ruleDataset(seed);
    const model = createModel("mamba4rec", dataset.numItems, { ...tiny, seed });
    const config = trainConfig({
      epochs: 6,
      batchSize: 64,
      learningRate: 0.01,
      maxLength: 10,
      seed,
      verbose: false,
      lossCheckEvery: 1000,
      trainingMode,
    });
    const result = await train(model, dataset, config);
    assertLearnedRule(seed, result);
  });
}

Deno.test("training is reproducible from the seed, and resumes from its checkpoint", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 60, 25, 8);
  const dir = await Deno.makeTempDir();
  const base = { epochs: 3, batchSize: 32, maxLength: 6, seed, verbose: false };
  const runA = await train(
    createModel("mamba4rec", dataset.numItems, { ...tiny, seed }),
    dataset,
    trainConfig(base),
  );
  assert(runA.complete);
  // The same run in three processes' worth of pieces: one epoch by count, one by a time budget
  // too small for any epoch (a call still runs one), then the rest.
  const config = trainConfig({ ...base, checkpointDir: dir });
  const last = join(dir, "last.safetensors");
  const modelB = createModel("mamba4rec", dataset.numItems, { ...tiny, seed });
  const pieceB = await train(modelB, dataset, config, { maxEpochsThisRun: 1 });
  assertEquals([pieceB.history.length, pieceB.complete], [1, false]);
  // Models built from other seeds: the checkpoint's weights replace theirs, so the model seed
  // (which only draws the initial weights) is allowed to differ.
  const resumeChanges = ["model.seed"];
  const pieceB2 = await train(
    createModel("mamba4rec", dataset.numItems, { ...tiny, seed: seed + 2 }),
    dataset,
    config,
    { resumeFrom: last, maxSecondsThisRun: 1e-6, resumeChanges },
  );
  assertEquals([pieceB2.history.length, pieceB2.complete], [2, false]);
  const modelC = createModel("mamba4rec", dataset.numItems, { ...tiny, seed: seed + 1 });
  const runC = await train(modelC, dataset, config, { resumeFrom: last, resumeChanges });
  assertEquals([runC.history.length, runC.complete], [3, true]);
  assertEquals(runC.history.map((h) => h.loss), runA.history.map((h) => h.loss));
  assertEquals(runC.test, runA.test);
  // The best epoch's checkpoint keeps the weights only, and cannot be resumed from.
  const best = join(dir, "best.safetensors");
  const bestNames = [...(await readCheckpoint(best)).tensors.keys()];
  assert(bestNames.length > 0 && bestNames.every((n) => n.startsWith("model.")), `${bestNames}`);
  assert([...(await readCheckpoint(last)).tensors.keys()].some((n) => n.startsWith("optimizer.")));
  await assertRejects(
    () => train(modelC, dataset, config, { resumeFrom: best, resumeChanges }),
    Error,
    "resume from last.safetensors",
  );
  const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(".tmp"));
  assertEquals(leftovers, []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpoints: safetensors round trip, and a mismatched shape is refused by name", async () => {
  const model = createModel("mamba4rec", 30, { ...tiny, seed: 7 });
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.safetensors");
  await writeCheckpoint(path, model.params.entries(), { note: "test" });
  const ckpt = await readCheckpoint(path);
  assertEquals(ckpt.metadata.note, "test");
  const before = await readTensors(model.params.list());
  const other = createModel("mamba4rec", 30, { ...tiny, seed: 8 });
  loadTensors(ckpt, other.params.entries());
  const after = await readTensors(other.params.list());
  before.forEach((b, i) => assertEquals([...after[i]], [...b]));
  const wider = createModel("mamba4rec", 31, { ...tiny, seed: 7 });
  assertThrows(
    () => loadTensors(ckpt, wider.params.entries()),
    Error,
    "tensor item_embedding.weight has shape [30, 16] but the model expects [31, 16]",
  );
  await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
  await assertRejects(() => readCheckpoint(path), Error, "too short");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad configs fail before training, naming the key", () => {
  assertThrows(() => trainConfig({ epochz: 3 }), Error, "unknown key 'epochz'");
  assertThrows(() => trainConfig({ learningRate: -1 }), Error, "'learningRate' must be a positive");
  assertThrows(() => trainConfig({ validMetric: "ndcg@20" }), Error, "needs 20 in 'topk'");
  assertThrows(
    () => createModel("mamba4rec", 10, { dConv: 9 }),
    Error,
    "'dConv' must be 2, 3 or 4",
  );
  assertThrows(() => createModel("mamba4rec", 10, { hidden: 3 }), Error, "unknown key 'hidden'");
  assertThrows(() => createModel("sasrec2", 10), Error, "unknown model 'sasrec2'");
});

Deno.test("a NaN loss stops training within two loss checks, naming the step and keeping the checkpoint", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 60, 25, 8);
  const model = createModel("mamba4rec", dataset.numItems, { ...tiny, seed });
  const dir = await Deno.makeTempDir();
  const base = { batchSize: 16, maxLength: 6, seed, verbose: false, checkpointDir: dir };
  await train(model, dataset, trainConfig({ ...base, epochs: 1 }));
  const best = join(dir, "best.safetensors"), last = join(dir, "last.safetensors");
  const [goodBest, goodLast] = [await Deno.readFile(best), await Deno.readFile(last)];
  // Poison one weight: every later loss is NaN.
  const w = model.params.get("LayerNorm.weight");
  runtime().write(w.storage, new Float32Array(w.size).fill(NaN));
  let queued = 0;
  const observer = { stepsProgressed: () => void queued++ };
  const e = await assertRejects(
    () =>
      train(model, dataset, trainConfig({ ...base, batchSize: 8, epochs: 3, lossCheckEvery: 2 }), {
        observer,
      }),
    TrainingDivergedError,
  );
  assertEquals([e.step, e.epoch], [1, 0]);
  // Eight steps an epoch: the check after step 2 starts the readback that the check after step
  // 4 looks at, and training stops there.
  assertEquals(queued, 4, `${queued} steps were queued after the first NaN loss`);
  // The newest good checkpoint is last.safetensors (what resuming uses), at the end of epoch 1.
  assertEquals(e.checkpoint, last);
  assertStringIncludes(e.message, `step 1 (epoch 1)`);
  assertStringIncludes(e.message, "last.safetensors");
  assertStringIncludes(e.message, "--clip-grad-norm");
  // No epoch finished after the poisoning: both checkpoints are byte for byte the first run's.
  assertEquals(await Deno.readFile(best), goodBest);
  assertEquals(await Deno.readFile(last), goodLast);
  const kept = await readCheckpoint(best);
  assert([...kept.tensors.get("model.LayerNorm.weight")!.data].every(Number.isFinite));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("evaluation ranks every user once and reports RecBole's metric keys", async () => {
  const dataset = ruleDataset(3, 50, 20, 7);
  const model = createModel("mamba4rec", dataset.numItems, { ...tiny, seed: 3 });
  const r = await evaluateRanking(model, dataset, "test", {
    maxLength: 6,
    batchSize: 16,
    ks: [5, 10],
  });
  assertEquals(r.users, dataset.numUsers - 1);
  for (const k of ["hit@5", "ndcg@10", "mrr@10", "recall@5", "precision@10"]) {
    assert(r.metrics[k] >= 0 && r.metrics[k] <= 1, `${k} = ${r.metrics[k]}`);
  }
  assertEquals(r.metrics["recall@10"], r.metrics["hit@10"]);
});

Deno.test("run records: written atomically, read back, and a foreign file is refused by path", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 40, 20, 7);
  const config = trainConfig({ epochs: 1, batchSize: 32, maxLength: 5, seed, verbose: false });
  const model = createModel("mamba4rec", dataset.numItems, { ...tiny, seed });
  const result = await train(model, dataset, config);
  const dir = await Deno.makeTempDir();
  const path = join(dir, "runs", "mamba4rec-rule.json");
  assertEquals(await readRunRecord(path), null);
  const record: RunRecord = {
    format: "ssmrec-run-1",
    model: model.name,
    dataset: dataset.name,
    users: dataset.numUsers - 1,
    items: dataset.numItems - 1,
    adapter: runtime().info.description,
    finishedAt: new Date().toISOString(),
    command: "deno task train --dataset rule",
    modelConfig: { ...model.config },
    trainConfig: config,
    parameters: model.params.count(),
    result,
  };
  await writeRunRecord(path, record);
  assertEquals(await readRunRecord(path), JSON.parse(JSON.stringify(record)));
  await Deno.writeTextFile(path, JSON.stringify({ format: "something-else" }));
  const error = await assertRejects(() => readRunRecord(path));
  assertStringIncludes((error as Error).message, path);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resuming checks the stored run settings: each differing key is named, old checkpoints are refused", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 40, 20, 7);
  const dir = await Deno.makeTempDir();
  try {
    const base = {
      epochs: 1,
      batchSize: 32,
      maxLength: 5,
      seed,
      verbose: false,
      checkpointDir: dir,
    };
    const model = () => createModel("mamba4rec", dataset.numItems, { ...tiny, seed });
    await train(model(), dataset, trainConfig(base));
    const last = join(dir, "last.safetensors");
    const stored = JSON.parse((await readCheckpointMetadata(last))[SETTINGS_METADATA_KEY]);
    assertEquals([stored.model, stored.dataset, stored["train.maxLength"]], [
      "mamba4rec",
      "rule",
      5,
    ]);
    // A padded model's settings are the training configuration's keys, no packed-batch ones.
    assertEquals(
      Object.keys(stored).filter((k) => k.startsWith("train.")),
      Object.keys(TRAIN_DEFAULTS).map((k) => `train.${k}`),
    );
    // More layers and another batch size: refused before any weight is loaded, naming both.
    const deeper = createModel("mamba4rec", dataset.numItems, { ...tiny, numLayers: 2, seed });
    const e = await assertRejects(
      () => train(deeper, dataset, trainConfig({ ...base, batchSize: 16 }), { resumeFrom: last }),
      SettingsMismatchError,
    ) as SettingsMismatchError;
    assertEquals(e.differences.map((d) => d.key), ["model.numLayers", "train.batchSize"]);
    assertStringIncludes(e.message, "model.numLayers is 1 there, 2 now");
    assertStringIncludes(e.message, "train.batchSize is 32 there, 16 now");
    // A longer run of the same training is allowed only when the caller says so.
    const longer = trainConfig({ ...base, epochs: 2 });
    await assertRejects(
      () => train(model(), dataset, longer, { resumeFrom: last }),
      Error,
      "train.epochs",
    );
    const resumed = await train(model(), dataset, longer, {
      resumeFrom: last,
      resumeChanges: ["train.epochs"],
    });
    assertEquals(resumed.history.map((h) => h.epoch), [0, 1]);
    // A checkpoint without settings cannot be checked: refused, saying so.
    const bare = join(dir, "bare.safetensors");
    await writeCheckpoint(bare, model().params.entries(), { model: "mamba4rec" });
    await assertRejects(
      () => train(model(), dataset, trainConfig(base), { resumeFrom: bare }),
      Error,
      "stores no run settings",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the observer hears every step of an epoch, each epoch and the result", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 40, 20, 7);
  const config = trainConfig({ epochs: 2, batchSize: 16, maxLength: 5, seed, verbose: false });
  const steps: StepProgress[] = [];
  const epochs: number[] = [];
  let finished: TrainResult | undefined;
  const result = await train(
    createModel("mamba4rec", dataset.numItems, { ...tiny, seed }),
    dataset,
    config,
    {
      observer: {
        stepsProgressed: (p) => steps.push(p),
        epochFinished: (r) => epochs.push(r.epoch),
        trainingFinished: (r) => finished = r,
      },
    },
  );
  const perEpoch = steps.filter((p) => p.epoch === 0);
  assertEquals(perEpoch.map((p) => p.step), perEpoch.map((_, i) => i + 1));
  assertEquals(perEpoch.at(-1)!.step, perEpoch[0].steps);
  assertEquals(perEpoch.at(-1)!.samples, dataset.split.train.users.length);
  assertEquals(steps.length, 2 * perEpoch.length);
  assertEquals(epochs, [0, 1]);
  assertEquals(finished, result);
});
