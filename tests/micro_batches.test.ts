/**
 * Micro-batches: a step's shares add up to its loss and gradient in every layout; a step over the
 * device's storage binding limit trains (cut into micro-batches, the update equal to the same
 * batch split by hand); a step under it is bit-identical to a whole-batch step; evaluation in
 * parts ranks as a whole batch does. A small binding limit stands in for a small device.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { runtime } from "../ops/core/runtime.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { scale } from "../ops/pointwise/elementwise.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { Adam } from "../ops/training/optimizer.ts";
import { prefixBatches } from "../data/batches.ts";
import type { SequentialDataset } from "../data/dataset.ts";
import { ConfigError, type TrainConfig, trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import type { PaddedModel, TrainableModel } from "../models/model.ts";
import { evaluateRanking } from "../models/training/evaluator.ts";
import { trainingSteps, uploadSequences } from "../models/training/layouts.ts";
import { microBatchRanges, packedSlice, tidyOrThrow } from "../models/training/micro_batches.ts";
import { train } from "../models/training/trainer.ts";
import { packedBatches } from "../data/packed_batches.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { assertClose, freshSeed, lossAndBackward, makeRng, takeGradients } from "./util.ts";

/** Runs `fn` with the device's storage binding limit lowered to `bytes`. */
async function withBindingLimit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  const info = runtime().info;
  const saved = info.maxBindingBytes;
  info.maxBindingBytes = bytes;
  try {
    return await fn();
  } finally {
    info.maxBindingBytes = saved;
  }
}

/** Arrays one after another, as one array. */
function concatenated(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Every parameter's values, in the model's order, as one array. */
async function parameterValues(model: TrainableModel): Promise<Float32Array> {
  return concatenated((await readTensors(model.params.list())).map((v) => Float32Array.from(v)));
}

/** Every parameter's gradient as one array, then the gradients cleared. */
async function allGradients(model: TrainableModel): Promise<Float32Array> {
  return concatenated(await takeGradients(model.params.list()));
}

const sasrec = (dataset: SequentialDataset, seed: number, dropout: number) =>
  createModel("sasrec", dataset.numItems, {
    hiddenSize: 16,
    innerSize: 32,
    hiddenDropoutProb: dropout,
    attnDropoutProb: dropout,
    maxLength: 8,
    seed,
  });

const cases = [
  ["sasrec", "prefix"],
  ["sasrec", "all-positions"],
  ["ssd4rec", "prefix"],
] as const;

for (const [name, trainingMode] of cases) {
  Deno.test(`micro-batches of a ${name} step (${trainingMode}) add up to its loss and gradient`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const dataset = ruleDataset(seed % 1000, 40, 30, 10);
    const model = name === "sasrec" ? sasrec(dataset, seed % 1000, 0) : createModel(
      "ssd4rec",
      dataset.numItems,
      { hiddenSize: 16, dState: 8, headDim: 4, numLayers: 1, chunkSize: 4, dropoutProb: 0 },
    );
    const config = trainConfig({ batchSize: 48, maxLength: 8, seed, verbose: false, trainingMode });
    for (const step of trainingSteps(model, dataset, config, 0)) {
      const samples = 1 + Math.floor(rng() * (step.size - 1));
      const what = `${name} ${trainingMode}, ${step.size} samples in micro-batches of ` +
        `${samples} (seed ${seed})`;
      // Whole.
      const whole = await lossAndBackward(() => step.loss());
      step.release();
      const wholeGrad = await allGradients(model);
      // In micro-batches.
      const micro = step.microBatches(samples);
      assertEquals(
        micro.map((m) => m.size),
        microBatchRanges(step.size, samples).map(([s, e]) => e - s),
      );
      let sum = 0;
      for (const m of micro) {
        sum += await lossAndBackward(() => m.loss());
        m.release();
      }
      const microGrad = await allGradients(model);
      assertClose([sum], [whole], 1e-5, `loss, ${what}`);
      assertClose(microGrad, wholeGrad, 1e-5, `gradient, ${what}`);
      assert(wholeGrad.some((g) => g !== 0), `the whole gradient is zero: ${what}`);
      break; // one step
    }
  });
}

Deno.test("packedSlice: segments of a packed batch with their tokens, renumbered", () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 12, 20, 9);
  for (const batch of packedBatches(dataset, { batchSize: 12, maskRatio: 0.2, seed })) {
    const part = packedSlice(batch, 3, 7);
    const first = batch.lastIndex[2] + 1;
    assertEquals(part.size, 4);
    assertEquals([...part.items], [...batch.items.subarray(first, batch.lastIndex[6] + 1)]);
    assertEquals(part.tokens, part.items.length);
    assertEquals(part.lastIndex[3], part.tokens - 1);
    assertEquals([...new Set(part.seqIdx)], [0, 1, 2, 3]);
    // Reversing every segment of the slice is the slice of the reversed batch.
    const flipped = [...part.flipIndex].map((p) => part.items[p]);
    const whole = [...batch.flipIndex.subarray(first, first + part.tokens)].map((p) =>
      batch.items[p]
    );
    assertEquals(flipped, whole, `seed ${seed}`);
    break;
  }
});

/** SASRec on a dataset whose training samples make one step, and that step's configuration. */
function oneStepRun(seed: number, overrides: Partial<TrainConfig> = {}) {
  const dataset = ruleDataset(seed, 120, 30, 12);
  const config = trainConfig({
    epochs: 1,
    batchSize: 4096,
    evalBatchSize: 4096,
    maxLength: 8,
    learningRate: 0.01,
    seed,
    verbose: false,
    ...overrides,
  });
  return { dataset, config, model: sasrec(dataset, seed, 0.1) };
}

/** The first training step of `config` on `model`, by hand: prefix batch cut at `samples`. */
function stepByHand(
  model: PaddedModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  samples: number,
) {
  const L = config.maxLength;
  for (
    const b of prefixBatches(dataset, {
      maxLength: L,
      batchSize: config.batchSize,
      seed: config.seed,
      epoch: 0,
    })
  ) {
    for (const [s, e] of microBatchRanges(b.size, samples)) {
      tidy(() => {
        const inputs = uploadSequences(
          b.items.subarray(s * L, e * L),
          b.lengths.subarray(s, e),
          e - s,
          L,
        );
        const h = model.forward(inputs, true);
        const targets = Tensor.from(b.targets.subarray(s, e), [e - s], "i32");
        const ce = itemCrossEntropy(h, model.itemTable, targets);
        const share = e - s === b.size ? ce : scale(ce, (e - s) / b.size);
        backward(share);
      });
    }
    break;
  }
  const adam = new Adam(model.params.list(), { lr: config.learningRate });
  tidy(() => adam.step());
  zeroGrad(model.params.list());
}

/** Trains `run` for its one step, under `limit` bytes per binding when given. */
async function trainOneStep(
  run: ReturnType<typeof oneStepRun>,
  limit?: number,
): Promise<{ chosen: number[]; loss: number }> {
  const chosen: number[] = [];
  const go = () =>
    train(run.model, run.dataset, run.config, {
      observer: { microBatchesChosen: (samples) => chosen.push(samples) },
    });
  const result = limit === undefined ? await go() : await withBindingLimit(limit, go);
  return { chosen, loss: result.history[0].loss };
}

// SASRec's largest tensors on oneStepRun's data are its feed-forward's [B·L, 32]: some 900
// prefix samples × 8 × 32 × 4 bytes ≈ 900 kB in a step, and for the 120 users' windows of an
// all-positions step or an evaluation batch, 120 kB or more. These limits take a half of those
// or less, and stay above every tensor that does not shrink with the batch (parameters, moments).
const PREFIX_LIMIT = 300_000;
const WINDOWS_LIMIT = 64_000;

Deno.test("a step over the binding limit trains in micro-batches, its update the batch's split by hand", async () => {
  const seed = freshSeed() % 1000;
  const run = oneStepRun(seed);
  const { chosen } = await trainOneStep(run, PREFIX_LIMIT);
  assert(chosen.length > 0, `the step was not cut into micro-batches (seed ${seed})`);
  const samples = chosen.at(-1)!;
  const got = await parameterValues(run.model);
  // Dropout is on: the attempts refused on the way left no trace in the dropout stream.
  const byHand = oneStepRun(seed);
  stepByHand(byHand.model, byHand.dataset, byHand.config, samples);
  assertClose(got, await parameterValues(byHand.model), 1e-6, `by hand, seed ${seed}`);
  // The same size fixed by the configuration, on the device's own limit: the same update.
  const fixed = oneStepRun(seed, { microBatchSize: samples });
  const fixedRun = await trainOneStep(fixed);
  assertEquals(fixedRun.chosen, []);
  assertEquals(await parameterValues(fixed.model), got, `microBatchSize ${samples}, seed ${seed}`);
});

Deno.test("a step under the binding limit is bit-identical to a whole-batch step", async () => {
  const seed = freshSeed() % 1000;
  const run = oneStepRun(seed);
  const { chosen } = await trainOneStep(run);
  assertEquals(chosen, []);
  const byHand = oneStepRun(seed);
  stepByHand(byHand.model, byHand.dataset, byHand.config, byHand.config.batchSize);
  assertEquals(
    await parameterValues(run.model),
    await parameterValues(byHand.model),
    `seed ${seed}`,
  );
});

Deno.test("all-positions steps over the binding limit: the step's loss is the whole batch's", async () => {
  const seed = freshSeed() % 1000;
  const noDropout = (limit?: number) => {
    const run = oneStepRun(seed, { trainingMode: "all-positions" });
    return trainOneStep({ ...run, model: sasrec(run.dataset, seed, 0) }, limit);
  };
  const whole = await noDropout();
  const cut = await noDropout(WINDOWS_LIMIT);
  assertEquals(whole.chosen, []);
  assert(cut.chosen.length > 0, `the step was not cut into micro-batches (seed ${seed})`);
  assertClose([cut.loss], [whole.loss], 1e-5, `loss, seed ${seed}`);
});

Deno.test("evaluation batches over the binding limit are ranked in parts, as whole", async () => {
  const seed = freshSeed() % 1000;
  const { dataset, model, config } = oneStepRun(seed);
  const options = { maxLength: config.maxLength, batchSize: 4096, ks: [5, 10] };
  const whole = await evaluateRanking(model, dataset, "valid", options);
  const limit = WINDOWS_LIMIT;
  // The whole batch's forward is refused under this limit.
  await withBindingLimit(limit, () => {
    for (const b of prefixBatches(dataset, { maxLength: 8, split: "valid", batchSize: 4096 })) {
      const inputs = () => uploadSequences(b.items, b.lengths, b.size, 8);
      assertThrows(
        () => tidyOrThrow(() => model.forward(inputs(), false)),
        RangeError,
        "storage binding limit",
      );
    }
    return Promise.resolve();
  });
  const parts = await withBindingLimit(
    limit,
    () => evaluateRanking(model, dataset, "valid", options),
  );
  assertEquals(parts.users, whole.users);
  for (const key of Object.keys(whole.raw)) {
    assertClose([parts.raw[key]], [whole.raw[key]], 1e-6, `${key}, seed ${seed}`);
  }
});

Deno.test("models with their own objective are never cut: a clear ConfigError", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 24, 30, 8);
  const bert = () =>
    createModel("bert4rec", dataset.numItems, { hiddenSize: 8, innerSize: 8, maxLength: 8 });
  const base = { epochs: 1, batchSize: 4096, maxLength: 8, seed, verbose: false };
  await assertRejects(
    () => train(bert(), dataset, trainConfig({ ...base, microBatchSize: 16 })),
    ConfigError,
    "'microBatchSize' is 16, but bert4rec trains with its own objective",
  );
  await assertRejects(
    () => withBindingLimit(2_000, () => train(bert(), dataset, trainConfig(base))),
    ConfigError,
    "bert4rec trains with its own objective (trainingLoss)",
  );
});

Deno.test("scores over maxScoreBytes are taken in parts of users, with the same ranks", async () => {
  const seed = freshSeed() % 1000;
  const { dataset, model, config } = oneStepRun(seed);
  const options = { maxLength: config.maxLength, batchSize: 4096, ks: [5, 10] };
  const whole = await evaluateRanking(model, dataset, "valid", options);
  // Scores of 3 users at a time.
  const parts = await evaluateRanking(model, dataset, "valid", {
    ...options,
    maxScoreBytes: dataset.numItems * 4 * 3,
  });
  assertEquals(parts.users, whole.users);
  for (const key of Object.keys(whole.raw)) {
    assertClose([parts.raw[key]], [whole.raw[key]], 1e-6, `${key}, seed ${seed}`);
  }
});
