/**
 * Every model trains, is evaluated and (where it has a step form) streams on a device that lets
 * one kernel bind only 16 storage buffers: what Deno's WebGPU offers on Mesa's llvmpipe through
 * OpenGL, where lavapipe's Vulkan offers 32. The runtime refuses a kernel past the limit by name
 * before compiling it, so lowering the limit it reads shows every kernel that would not compile.
 */
import { assert, assertEquals } from "@std/assert";
import { initGpu, runtime } from "../ops/mod.ts";
import { backward, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { exp, mul, scale } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { selectiveScanAt, type SelectiveScanTuning } from "../ops/sequence/selective_scan/mod.ts";
import { trainConfig } from "../models/config.ts";
import { createModel, datasetSizes, MODELS } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { openStream, STREAMABLE_MODELS } from "../models/streaming/mod.ts";
import type { StreamableModel } from "../models/streaming/mod.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { freshSeed, makeRng, randn } from "./util.ts";

/** Storage buffers per kernel on Mesa's llvmpipe through OpenGL. */
const LIMIT = 16;

await initGpu();
// Kernels compiled from here on are held to the lower limit.
runtime().info.maxStorageBuffers = Math.min(LIMIT, runtime().info.maxStorageBuffers);

/** Runs `body` with kernels held to `limit` storage buffers, then restores {@link LIMIT}. */
async function withLimit<T>(limit: number, body: () => Promise<T>): Promise<T> {
  runtime().info.maxStorageBuffers = limit;
  try {
    return await body();
  } finally {
    runtime().info.maxStorageBuffers = LIMIT;
  }
}

Deno.test("selectiveScanAt: where its re-scan would bind more storage buffers than allowed, the adjoint and state passes run, bit for bit as with rescan: false", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // Mamba4Rec's last layer: a low-rank Δ, D, its bias, dB and dC over B and C; its re-scan binds
  // 15 storage buffers, the adjoint and state passes at most 14.
  const [b, l, d, n, r] = [3, 30, 16, 8, 2];
  const shapes = [[b, l, d], [b, l, r], [d, n], [b, l, n], [b, l, n], [d], [d], [d, r]];
  const data = shapes.map((shape) =>
    Float32Array.from(randn(rng, shape.reduce((x, y) => x * y, 1), 0.5))
  );
  const weights = Float32Array.from(randn(rng, b * d));
  const positions = Int32Array.of(l - 1, 0, 17);
  const run = async (tuning: SelectiveScanTuning) => {
    const results = tidy(() => {
      const leaves = data.map((x, i) => requireGrad(Tensor.from(x, shapes[i])));
      const [u, delta, aLog, bLeaf, cLeaf, D, deltaBias, deltaWeight] = leaves;
      const y = selectiveScanAt(
        u,
        delta,
        scale(exp(aLog), -1),
        scale(bLeaf, 1),
        scale(cLeaf, 1),
        Tensor.from(positions, [b], "i32"),
        {
          D,
          deltaBias,
          deltaWeight,
          deltaSoftplus: true,
          gradsOverBC: true,
          layout: "bld",
          tuning,
        },
      );
      backward(sumAll(mul(y, Tensor.from(weights, [b, d]))));
      return [y, ...leaves.map((t) => t.grad!)];
    });
    const host = await readTensors(results);
    results.forEach((t) => t.dispose());
    return host;
  };
  const passes = await withLimit(14, () => run({ rescan: false }));
  const below = await withLimit(14, () => run({}));
  const rescan = await withLimit(15, () => run({}));
  const names = ["output", "du", "ddelta", "dA", "dB", "dC", "dD", "d deltaBias", "dWeight"];
  below.forEach((g, i) =>
    assertEquals([...g], [...passes[i]], `${names[i]} under 14 buffers, seed ${seed}`)
  );
  // With 15 the re-scan runs, and its rounding differs: the limit is what chose the passes.
  assert(
    rescan[3].some((v, k) => v !== passes[3][k]),
    `seed ${seed}: dA with the re-scan equals the passes' bit for bit`,
  );
});

for (const [name, entry] of Object.entries(MODELS)) {
  // All-positions training where the model takes it (padded windows read at every position).
  const modes = entry.layout === "padded" && !entry.lastItemOnly && !entry.ownTrainingLoss
    ? ["prefix", "all-positions"] as const
    : ["prefix"] as const;
  for (const trainingMode of modes) {
    Deno.test(`${name} (${trainingMode}) trains and ranks with ${LIMIT} storage buffers per kernel`, async () => {
      const seed = freshSeed() % 1000;
      const dataset = ruleDataset(seed, 40, 20, 9);
      const sizes = { numItems: dataset.numItems, numUsers: dataset.numUsers };
      // A model whose tables are sized by its window gets the training window.
      const windowed = "maxLength" in entry.config(datasetSizes(entry, sizes));
      const model = createModel(name, sizes, { seed, ...(windowed ? { maxLength: 8 } : {}) });
      const config = trainConfig({
        epochs: 1,
        batchSize: 32,
        maxLength: 8,
        seed,
        verbose: false,
        trainingMode,
      });
      const result = await train(model, dataset, config);
      assert(Number.isFinite(result.history[0].loss), `seed ${seed}: ${name} loss`);
    });
  }
}

for (const name of STREAMABLE_MODELS) {
  Deno.test(`${name}'s step form initialises, observes and recommends with ${LIMIT} storage buffers per kernel`, async () => {
    const seed = freshSeed() % 1000;
    const model = createModel(name, 20, { seed, numLayers: 1 }) as StreamableModel;
    const stream = openStream(model, { capacity: 4 });
    try {
      stream.initFromHistories(Int32Array.of(0, 1), [Int32Array.of(3, 5, 7), Int32Array.of(2)]);
      stream.observe(Int32Array.of(1, 2), Int32Array.of(4, 9));
      const top = await stream.recommend(Int32Array.of(0, 1, 2), 5);
      assert(
        top.items.length === 15,
        `seed ${seed}: ${name} recommended ${top.items.length} items`,
      );
    } finally {
      stream.dispose();
    }
  });
}
