/**
 * SSD4Rec through the trainer and the evaluator on packed batches: masking reaches training
 * batches only; whole or truncated histories; a resumed run equals an uninterrupted one and
 * refuses another ρ or var-len; settings a model's layout cannot use are refused. (Learning a
 * rule: `ssd4rec_learning.test.ts`.)
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import type { SequentialDataset } from "../data/dataset.ts";
import { packedBatches } from "../data/packed_batches.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { noGrad } from "../ops/core/autograd.ts";
import { readTensors, tidy } from "../ops/core/tensor.ts";
import { ConfigError, trainConfig } from "../models/config.ts";
import type { PackedModel } from "../models/model.ts";
import { createModel } from "../models/registry.ts";
import { packedInputs } from "../models/ssd4rec.ts";
import {
  readCheckpointMetadata,
  SETTINGS_METADATA_KEY,
  SettingsMismatchError,
} from "../models/training/checkpoint.ts";
import { evaluateRanking } from "../models/training/evaluator.ts";
import { type StepProgress, train } from "../models/training/trainer.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

/** Tiny sizes: d 16, N 8, 8 heads of 4 channels; chunks of 4 cut the longer histories. */
const TINY = {
  hiddenSize: 16,
  dState: 8,
  headDim: 4,
  numLayers: 1,
  dropoutProb: 0.1,
  chunkSize: 4,
};

function tinyModel(dataset: SequentialDataset, seed: number): PackedModel {
  return createModel("ssd4rec", dataset.numItems, { ...TINY, seed });
}

/** Σ over training samples of the history length, each cut to `maxLength` items. */
function historyTokens(dataset: SequentialDataset, maxLength = Infinity): number {
  const { users, targetPositions } = dataset.split.train;
  let sum = 0;
  users.forEach((u, k) => sum += Math.min(targetPositions[k] - dataset.offsets[u], maxLength));
  return sum;
}

/**
 * HR@10 and MRR@10 of the validation users from unmasked packed batches (histories cut to
 * `maxLength` when given), ranked on the host (PAD never ranked).
 */
async function hostRanking(
  model: PackedModel,
  dataset: SequentialDataset,
  batchSize: number,
  maxLength?: number,
): Promise<Record<string, number>> {
  let hits = 0, reciprocal = 0, users = 0;
  const n = model.itemTable.shape[0];
  for (const batch of packedBatches(dataset, { split: "valid", batchSize, maxLength })) {
    const inputs = packedInputs(batch, model.config.chunkSize);
    const scores = noGrad(() =>
      tidy(() => matmul(model.forward(inputs, false), model.itemTable, { transB: true }))
    );
    const host = await scores.toArray();
    scores.dispose();
    inputs.dispose();
    for (let b = 0; b < batch.size; b++) {
      const row = host.subarray(b * n, (b + 1) * n);
      const target = row[batch.targets[b]];
      let rank = 1;
      for (let j = 1; j < n; j++) if (row[j] > target) rank++;
      if (rank <= 10) {
        hits++;
        reciprocal += 1 / rank;
      }
      users++;
    }
  }
  return { "hit@10": hits / users, "mrr@10": reciprocal / users };
}

/**
 * Asserts that every metric of `want` is in `got` within `tolerance` (the GPU sums in float32;
 * a masked or otherwise different history moves a metric by about 1/(rank · users) or more).
 */
function assertMetricsClose(
  got: Record<string, number>,
  want: Record<string, number>,
  tolerance: number,
  message: string,
): void {
  for (const [key, value] of Object.entries(want)) {
    assert(
      Math.abs(got[key] - value) <= tolerance,
      `${message}: ${key} is ${got[key]}, expected ${value} ± ${tolerance}`,
    );
  }
}

Deno.test("ssd4rec: ρ masks training batches only; var-len false cuts every history to L", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 60, 25, 10);
  const run = async (overrides: Record<string, unknown>) => {
    const steps: StepProgress[] = [];
    const model = tinyModel(dataset, seed);
    const config = trainConfig({
      epochs: 1,
      batchSize: 32,
      evalBatchSize: 16,
      seed,
      verbose: false,
      ...overrides,
    });
    const observer = { stepsProgressed: (p: StepProgress) => steps.push(p) };
    const result = await train(model, dataset, config, { observer });
    return { model, result, last: steps.at(-1)! };
  };
  const whole = historyTokens(dataset);
  const masked = await run({ maskRatio: 0.5 });
  assertEquals(masked.last.tokens, whole, `seed ${seed}`);
  const fraction = masked.last.maskedTokens! / whole;
  assert(fraction > 0.4 && fraction < 0.6, `seed ${seed}: ${fraction} of ${whole} tokens masked`);
  // Validation and test rank the unmasked histories: the evaluator's metrics are those of
  // `packedBatches` without masking, ranked on the host.
  const evaluated = await evaluateRanking(masked.model, dataset, "valid", {
    maxLength: 50,
    batchSize: 16,
  });
  const host = await hostRanking(masked.model, dataset, 16);
  assertMetricsClose(evaluated.raw, host, 1e-6, `seed ${seed}, whole histories`);
  const plain = await run({});
  assertEquals([plain.last.tokens, plain.last.maskedTokens], [whole, 0], `seed ${seed}`);
  const cut = await run({ varLen: false, maxLength: 3 });
  assertEquals([cut.last.tokens, cut.last.maskedTokens], [historyTokens(dataset, 3), 0]);
  assert(historyTokens(dataset, 3) < whole);
  // Its validation ranked the same cut histories (one epoch: the tested weights are the last).
  // Reported metrics are rounded to 4 decimals.
  const hostCut = await hostRanking(cut.model, dataset, 16, 3);
  assertMetricsClose(cut.result.history[0].valid, hostCut, 5.1e-5, `seed ${seed}, L = 3`);
});

Deno.test("ssd4rec resumes from its checkpoint to the same weights, and refuses another ρ or var-len", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 60, 25, 8);
  const dir = await Deno.makeTempDir();
  try {
    const base = { epochs: 3, batchSize: 32, seed, maskRatio: 0.2, verbose: false };
    const modelA = tinyModel(dataset, seed);
    const runA = await train(modelA, dataset, trainConfig(base));
    const config = trainConfig({ ...base, checkpointDir: dir });
    const last = join(dir, "last.safetensors");
    const piece = await train(tinyModel(dataset, seed), dataset, config, { maxEpochsThisRun: 2 });
    assertEquals([piece.history.length, piece.complete], [2, false]);
    const stored = JSON.parse((await readCheckpointMetadata(last))[SETTINGS_METADATA_KEY]);
    assertEquals([stored.model, stored["train.maskRatio"], stored["train.varLen"]], [
      "ssd4rec",
      0.2,
      true,
    ]);
    // Another masking ratio, or truncated histories: refused before any weight is loaded.
    const other = trainConfig({ ...base, checkpointDir: dir, maskRatio: 0.3, varLen: false });
    const e = await assertRejects(
      () => train(tinyModel(dataset, seed), dataset, other, { resumeFrom: last }),
      SettingsMismatchError,
    ) as SettingsMismatchError;
    assertEquals(e.differences.map((d) => d.key), ["train.maskRatio", "train.varLen"]);
    assertStringIncludes(e.message, "train.maskRatio is 0.2 there, 0.3 now");
    assertStringIncludes(e.message, "train.varLen is true there, false now");
    // The model's seed only draws the initial weights, which the checkpoint replaces.
    const modelB = createModel("ssd4rec", dataset.numItems, { ...TINY, seed: seed + 1 });
    const runB = await train(modelB, dataset, config, {
      resumeFrom: last,
      resumeChanges: ["model.seed"],
    });
    assertEquals([runB.history.length, runB.complete], [3, true]);
    assertEquals(runB.history.map((h) => h.loss), runA.history.map((h) => h.loss));
    assertEquals(runB.test, runA.test);
    const [weightsA, weightsB] = [
      await readTensors(modelA.params.list()),
      await readTensors(modelB.params.list()),
    ];
    weightsA.forEach((w, i) => assertEquals(weightsB[i], w, `seed ${seed}: tensor ${i}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("settings a model's layout cannot use are refused, naming the key, its value and the model", async () => {
  const dataset = ruleDataset(5, 20, 12, 7);
  const mamba = createModel("mamba4rec", dataset.numItems, { hiddenSize: 16, dState: 8 });
  for (const [key, value] of [["maskRatio", 0.2], ["varLen", false]] as const) {
    const e = await assertRejects(
      () => train(mamba, dataset, trainConfig({ epochs: 1, verbose: false, [key]: value })),
      ConfigError,
    ) as ConfigError;
    assertEquals(e.key, key);
    assertStringIncludes(e.message, `'${key}' is ${value}, but mamba4rec takes padded batches`);
  }
  const ssd = tinyModel(dataset, 5);
  const e = await assertRejects(
    () => train(ssd, dataset, trainConfig({ verbose: false, trainingMode: "all-positions" })),
    ConfigError,
  ) as ConfigError;
  assertEquals(e.key, "trainingMode");
  assertStringIncludes(e.message, `'trainingMode' is "all-positions", but ssd4rec takes packed`);
  for (const maskRatio of [1, -0.1, Number.NaN]) {
    const bad = assertThrows(() => trainConfig({ maskRatio }), ConfigError) as ConfigError;
    assertEquals(bad.key, "maskRatio");
    assertStringIncludes(bad.message, "'maskRatio' must be a probability in [0, 1), got");
  }
});
