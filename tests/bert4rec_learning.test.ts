/**
 * BERT4Rec learns a synthetic next-item rule through the real trainer: its own masked-item loss
 * in training, the mask-token window in evaluation.
 */
import { trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { assertLearnedRule, ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

Deno.test("bert4rec learns a deterministic next-item rule (HR@10 > 0.9) with its masked-item loss", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed);
  const maxLength = 10;
  const model = createModel("bert4rec", dataset.numItems, {
    hiddenSize: 16,
    innerSize: 32,
    hiddenDropoutProb: 0.1,
    attnDropoutProb: 0.1,
    maxLength,
    seed,
  });
  const config = trainConfig({
    epochs: 12,
    batchSize: 128,
    learningRate: 0.01,
    maxLength,
    seed,
    verbose: false,
    lossCheckEvery: 1000,
  });
  const result = await train(model, dataset, config);
  assertLearnedRule(seed, result);
});
