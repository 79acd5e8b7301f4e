/** SSD4Rec learns a synthetic next-item rule through the real trainer on packed batches. */
import { trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { assertLearnedRule, ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

Deno.test("ssd4rec learns a deterministic next-item rule (HR@10 > 0.9) through the trainer", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 100);
  const model = createModel("ssd4rec", dataset.numItems, {
    hiddenSize: 16,
    dState: 8,
    headDim: 4,
    numLayers: 1,
    dropoutProb: 0.1,
    chunkSize: 4,
    seed,
  });
  const config = trainConfig({
    epochs: 3,
    batchSize: 128,
    learningRate: 0.02,
    seed,
    verbose: false,
    lossCheckEvery: 1000,
  });
  const result = await train(model, dataset, config);
  assertLearnedRule(seed, result);
});
