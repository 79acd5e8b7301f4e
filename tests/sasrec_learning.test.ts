/** SASRec learns a synthetic next-item rule through the real trainer on padded batches. */
import { trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { assertLearnedRule, ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

for (const trainingMode of ["prefix", "all-positions"] as const) {
  Deno.test(`sasrec learns a deterministic next-item rule (HR@10 > 0.9), ${trainingMode} training`, async () => {
    const seed = freshSeed() % 1000;
    const dataset = ruleDataset(seed);
    const maxLength = 10;
    const model = createModel("sasrec", dataset.numItems, {
      hiddenSize: 16,
      innerSize: 32,
      hiddenDropoutProb: 0.1,
      attnDropoutProb: 0.1,
      maxLength,
      seed,
    });
    // All-positions training takes one window per user: fewer, larger steps per epoch.
    const config = trainConfig({
      epochs: trainingMode === "prefix" ? 6 : 10,
      batchSize: 64,
      learningRate: trainingMode === "prefix" ? 0.01 : 0.03,
      maxLength,
      seed,
      verbose: false,
      lossCheckEvery: 1000,
      trainingMode,
    });
    const result = await train(model, dataset, config);
    assertLearnedRule(seed, result);
  });
}
