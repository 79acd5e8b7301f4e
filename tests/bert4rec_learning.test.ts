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
  // Width 32: at 16 some draws stall on a plateau near loss 3.0 (seed 26: HR@10 0.56 after 12
  // epochs); at 32 thirteen seeds, 26 and the earlier stragglers 92, 475 and 300 among them,
  // all reach HR@10 1.0. Seed 553 still stalled there at learning rate 0.01 (HR@10 0.58 after
  // 12 epochs, 0.89 after 20); at 0.005 over 20 epochs it and 26, 92, 475, 300, 17, 801 and 644
  // all pass.
  const model = createModel("bert4rec", dataset.numItems, {
    hiddenSize: 32,
    innerSize: 64,
    hiddenDropoutProb: 0.1,
    attnDropoutProb: 0.1,
    maxLength,
    seed,
  });
  const config = trainConfig({
    epochs: 20,
    batchSize: 128,
    learningRate: 0.005,
    maxLength,
    seed,
    verbose: false,
    lossCheckEvery: 1000,
  });
  const result = await train(model, dataset, config);
  assertLearnedRule(seed, result);
});
