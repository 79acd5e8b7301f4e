/**
 * All-positions training scores only the real targets of each window: the loss and every
 * gradient equal the cross-entropy over every position with the padding ignored, to rounding,
 * under the same dropout draws. With `targetsPerStep` its steps hold that many targets on
 * average.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { Tensor } from "../ops/core/tensor.ts";
import { reshape } from "../ops/pointwise/elementwise.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { allPositionsBatches } from "../data/batches.ts";
import { ConfigError, trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import type { PaddedModel } from "../models/model.ts";
import {
  checkLayoutSettings,
  targetPositions,
  trainingSteps,
  windowsPerStep,
} from "../models/training/layouts.ts";
import { variantTag } from "../run/model_variant.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { assertClose, freshSeed, lossAndBackward, takeGradients } from "./util.ts";

Deno.test("targetPositions: each row's real positions in order, with their targets", () => {
  const seed = freshSeed();
  const dataset = ruleDataset(seed % 1000, 30, 20, 12);
  for (const batch of allPositionsBatches(dataset, { maxLength: 5, batchSize: 7, seed })) {
    const { positions, targets } = targetPositions(batch);
    assertEquals(positions.length, batch.targetCount, `seed ${seed}`);
    const want: number[] = [];
    batch.targets.forEach((t, i) => {
      if (t !== 0) want.push(i);
    });
    assertEquals([...positions], want, `seed ${seed}`);
    assertEquals([...targets], want.map((i) => batch.targets[i]), `seed ${seed}`);
  }
});

const models: Record<string, (items: number, seed: number) => PaddedModel> = {
  mamba4rec: (items, seed) =>
    createModel("mamba4rec", items, {
      hiddenSize: 16,
      dState: 4,
      numLayers: 2,
      dropoutProb: 0.3,
      seed,
    }) as PaddedModel,
  sasrec: (items, seed) =>
    createModel("sasrec", items, {
      hiddenSize: 16,
      innerSize: 32,
      hiddenDropoutProb: 0.3,
      attnDropoutProb: 0.3,
      maxLength: 8,
      seed,
    }) as PaddedModel,
};

for (const [name, make] of Object.entries(models)) {
  Deno.test(`${name} all-positions: scoring the real targets alone gives the loss and gradients of scoring every position`, async () => {
    const seed = freshSeed();
    // Histories of 9–12 items in windows of 8: most windows end in padding, some hold one target.
    const dataset = ruleDataset(seed % 1000, 40, 30, 12);
    const model = make(dataset.numItems, seed % 1000);
    const maxLength = 8;
    const config = trainConfig({
      batchSize: 24,
      maxLength,
      seed,
      verbose: false,
      trainingMode: "all-positions",
    });
    const [batch] = allPositionsBatches(dataset, { maxLength, batchSize: 24, seed, epoch: 0 });
    assert(batch.targetCount < batch.size * maxLength, `no padding in the batch (seed ${seed})`);
    const [step] = trainingSteps(model, dataset, config, 0);
    const draws = model.dropoutRng.state();
    const loss = await lossAndBackward(() => step.loss());
    step.release();
    const grads = await takeGradients(model.params.list());
    // Every position scored, padding ignored, from the same dropout draws.
    model.dropoutRng = DropoutRng.fromState(draws);
    const everywhere = await lossAndBackward(() => {
      const h = model.forward(
        { items: Tensor.from(batch.items, [batch.size, maxLength], "i32") },
        true,
      );
      const flat = reshape(h, [batch.size * maxLength, h.shape[2]]);
      const targets = Tensor.from(batch.targets, [batch.size * maxLength], "i32");
      return itemCrossEntropy(flat, model.itemTable, targets, { ignoreIndex: 0 });
    });
    const want = await takeGradients(model.params.list());
    const what = `${name}, seed ${seed}`;
    assertClose([loss], [everywhere], 1e-6, `loss, ${what}`);
    model.params.entries().forEach(([param], i) => {
      assert(want[i].some((g) => g !== 0) || param.includes("bias"), `${param}: no gradient`);
      assertClose(grads[i], want[i], 1e-5, `${param}, ${what}`);
    });
  });
}

Deno.test("targetsPerStep: all-positions steps of about that many targets, refused in prefix mode", () => {
  const seed = freshSeed();
  const dataset = ruleDataset(seed % 1000, 60, 30, 12);
  const maxLength = 4;
  const windows = allPositionsBatches(dataset, { maxLength, shuffle: false }).sampleCount;
  const targets = dataset.split.train.users.length;
  for (const wanted of [1, 7, 40, 10_000]) {
    const perStep = windowsPerStep(dataset, maxLength, wanted);
    assertEquals(perStep, Math.max(1, Math.round(wanted * windows / targets)), `seed ${seed}`);
    const model = models.sasrec(dataset.numItems, seed % 1000);
    const config = trainConfig({
      batchSize: 3,
      maxLength,
      seed,
      verbose: false,
      trainingMode: "all-positions",
      targetsPerStep: wanted,
    });
    const steps = trainingSteps(model, dataset, config, 0);
    assertEquals(steps.batchCount, Math.ceil(windows / perStep), `${wanted} targets, seed ${seed}`);
    const sizes = [...steps].map((s) => s.size);
    assertEquals(sizes.reduce((a, b) => a + b, 0), windows);
  }
  assertThrows(
    () => checkLayoutSettings({ name: "sasrec" }, { trainingMode: "prefix", targetsPerStep: 64 }),
    ConfigError,
    "'targetsPerStep' is 64, but 'trainingMode' is \"prefix\"",
  );
  assertThrows(() => trainConfig({ targetsPerStep: 0 }), ConfigError, "targetsPerStep");
  assertEquals(
    variantTag({}, { trainingMode: "all-positions", targetsPerStep: 2048 }),
    "targetsPerStep-2048_trainingMode-all-positions",
  );
});
