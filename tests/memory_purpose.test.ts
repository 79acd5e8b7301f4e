/**
 * Memory accounting by purpose: scopes and tensor origins tag storage, the purposes add up to
 * the live total and to the peak, and a tiny training run's parameters, gradients and Adam
 * moments take exactly their size classes.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  MEMORY_PURPOSES,
  type MemoryStats,
  memoryStats,
  resetPeakMemory,
  runtime,
  sizeClass,
  sync,
  tagPurpose,
  withPurpose,
  zeros,
} from "../ops/mod.ts";
import { trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

/** The pool's size class of an f32 tensor of `n` elements. */
const classOf = (n: number) => sizeClass(Math.max(n * 4, 16));

/** Σ over the purposes (pool excluded) of one figure. */
function purposeSum(stats: MemoryStats, figure: "liveBytes" | "atPeakBytes"): number {
  return MEMORY_PURPOSES.reduce((s, p) => s + stats.byPurpose[p][figure], 0);
}

Deno.test("withPurpose tags what its scope allocates; the purposes add up to live and peak bytes", async () => {
  await sync();
  resetPeakMemory();
  const before = memoryStats();
  const moments = withPurpose("optimizer", () => zeros([1000]));
  const scratch = withPurpose("workspace", () => zeros([3000]));
  const plain = zeros([500]);
  const after = memoryStats();
  assertEquals(runtime().purpose, "activations", "the purpose comes back after the scope");
  const grew = (p: "optimizer" | "workspace" | "activations") =>
    after.byPurpose[p].liveBytes - before.byPurpose[p].liveBytes;
  assertEquals(grew("optimizer"), classOf(1000));
  assertEquals(grew("workspace"), classOf(3000));
  assertEquals(grew("activations"), classOf(500));
  assertEquals(purposeSum(after, "liveBytes"), after.liveBytes);
  assertEquals(purposeSum(after, "atPeakBytes"), after.peakLiveBytes);
  assertEquals(after.byPurpose.pool.liveBytes, after.allocatedBytes - after.liveBytes);
  scratch.dispose();
  tagPurpose([plain], "gradients");
  const moved = memoryStats();
  assertEquals(moved.byPurpose.workspace.liveBytes, before.byPurpose.workspace.liveBytes);
  assertEquals(moved.byPurpose.workspace.peakLiveBytes, after.byPurpose.workspace.liveBytes);
  assertEquals(
    moved.byPurpose.gradients.liveBytes - before.byPurpose.gradients.liveBytes,
    classOf(500),
  );
  assertEquals(purposeSum(moved, "liveBytes"), moved.liveBytes);
  moments.dispose();
  plain.dispose();
  assertThrows(
    () =>
      withPurpose("workspace", () => {
        throw new Error("inside");
      }),
    Error,
    "inside",
  );
  assertEquals(runtime().purpose, "activations", "the purpose comes back after a throw");
  const end = memoryStats();
  for (const p of MEMORY_PURPOSES) {
    assertEquals(end.byPurpose[p].liveBytes, before.byPurpose[p].liveBytes, p);
  }
});

Deno.test("a tiny training run: parameters, gradients and moments take their size classes; the purposes add up", async () => {
  const seed = freshSeed() % 1000;
  const at = `seed ${seed}`;
  const dataset = ruleDataset(seed, 30, 20, 8);
  await sync();
  const before = memoryStats().byPurpose;
  const model = createModel("mamba4rec", dataset.numItems, {
    hiddenSize: 16,
    dState: 8,
    numLayers: 1,
    dropoutProb: 0.1,
    seed,
  });
  const params = model.params.list();
  const paramBytes = params.reduce((s, p) => s + classOf(p.size), 0);
  const count = params.reduce((s, p) => s + p.size, 0);
  const made = memoryStats().byPurpose;
  assertEquals(made.parameters.liveBytes - before.parameters.liveBytes, paramBytes, at);
  assert(paramBytes >= 4 * count, `${at}: ${paramBytes} bytes for ${count} parameters`);
  const config = { epochs: 1, batchSize: 32, evalBatchSize: 16, maxLength: 5, seed };
  const result = await train(model, dataset, trainConfig({ ...config, verbose: false }));
  const epoch = result.history[0];
  const parts = epoch.peakByPurpose!;
  const evalParts = epoch.evalPeakByPurpose!;
  const sum = (r: Readonly<Record<string, number>>) =>
    MEMORY_PURPOSES.reduce((s, p) => s + r[p], 0);
  assertEquals(sum(parts), epoch.peakLiveBytes, `${at}: training peak ${JSON.stringify(parts)}`);
  assertEquals(sum(evalParts), epoch.evalPeakLiveBytes, `${at}: ${JSON.stringify(evalParts)}`);
  assertEquals(parts.parameters - before.parameters.liveBytes, paramBytes, at);
  // Adam packs every parameter's moments into two buffers.
  assertEquals(parts.optimizer - before.optimizer.liveBytes, 2 * classOf(count), at);
  assert(parts.gradients - before.gradients.liveBytes <= paramBytes, at);
  assert(parts.activations > 0, `${at}: no activations at the training peak`);
  // Validation makes no gradients and no optimizer state.
  assertEquals(evalParts.gradients, before.gradients.liveBytes, at);
  assert(evalParts.activations > 0, `${at}: no activations at the validation peak`);
  const now = memoryStats();
  assertEquals(purposeSum(now, "liveBytes"), now.liveBytes, at);
  assertEquals(now.byPurpose.pool.liveBytes, now.allocatedBytes - now.liveBytes, at);
});
