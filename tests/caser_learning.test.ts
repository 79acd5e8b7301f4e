/** Caser learns a synthetic next-item rule through the real trainer on padded batches. */
import { trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { assertLearnedRule, ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

Deno.test("caser learns a deterministic next-item rule (HR@10 > 0.9) through the trainer", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed);
  const maxLength = 10;
  const model = createModel("caser", dataset, {
    embeddingSize: 16,
    maxLength,
    nh: 8,
    dropoutProb: 0.1,
    seed,
  });
  const config = trainConfig({
    epochs: 6,
    batchSize: 64,
    learningRate: 0.01,
    maxLength,
    seed,
    verbose: false,
    lossCheckEvery: 1000,
  });
  const result = await train(model, dataset, config);
  assertLearnedRule(seed, result);
});
