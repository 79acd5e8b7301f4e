/**
 * Mamba4Rec on prefix batches (`positions` given: the last layer read at each row's last real
 * item only) against the full computation (every position, then gathered): the representation,
 * the loss and every parameter's gradient, for 1 and 2 layers and each ablation variant, and
 * lengths from 1 to L.
 */
import { assert, assertEquals } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { createModel } from "../models/registry.ts";
import { assertClose, freshSeed, makeRng, paddedItems, randn } from "./util.ts";

/**
 * Runs the model forward and backward on one batch, by the prefix path (`positions`) or the full
 * one (every position, gathered), under a random linear loss of the tied logits `h · Eᵀ`; returns
 * the representation, the loss and every parameter's gradient, and clears the gradients.
 */
async function run(
  model: ReturnType<typeof createModel<"mamba4rec">>,
  batch: { items: Int32Array; positions: Int32Array; size: number; maxLength: number },
  weights: Float32Array,
  prefix: boolean,
): Promise<ArrayLike<number>[]> {
  const { size: B, maxLength: L } = batch;
  const params = model.params.entries().map(([, t]) => t);
  const kept = tidy(() => {
    const items = Tensor.from(batch.items, [B, L], "i32");
    const positions = Tensor.from(batch.positions, [B], "i32");
    const h = prefix
      ? model.forward({ items, positions }, true)
      : gatherPositions(model.forward({ items }, true), positions);
    const logits = matmul(h, model.itemTable, { transB: true });
    const loss = sumAll(mul(logits, Tensor.from(weights, logits.shape)));
    backward(loss);
    return [h, loss];
  });
  const host = await readTensors([...kept, ...params.map((t) => t.grad!)]);
  kept.forEach((t) => t.dispose());
  zeroGrad(params);
  return host;
}

const VARIANTS: readonly [string, number, Record<string, unknown>][] = [
  ["1 layer", 1, {}],
  ["2 layers", 2, {}],
  ["without FFN, 2 layers", 2, { ffn: false }],
  ["without LayerNorm, 2 layers", 2, { layerNorm: false }],
  ["with position embedding", 1, { positionEmbedding: true, maxLength: 40 }],
];

for (const [label, numLayers, options] of VARIANTS) {
  Deno.test(`mamba4rec prefix batches (${label}): the last layer read at the positions gives the full computation's representation, loss and every gradient`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 17, B = 5, L = 40;
    const model = createModel("mamba4rec", numItems, {
      hiddenSize: 8,
      dState: 5,
      expand: 2,
      dConv: 4,
      numLayers,
      dropoutProb: 0,
      seed: seed % 100000,
      ...options,
    });
    // Lengths 1 and L, and random ones: the scan stops before, at and across its 16-step intervals.
    const lengths = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * L));
    lengths[0] = 1;
    lengths[1] = L;
    const batch = {
      items: paddedItems(rng, lengths, L, numItems),
      positions: lengths.map((n) => n - 1),
      size: B,
      maxLength: L,
    };
    const weights = Float32Array.from(randn(rng, B * numItems));
    const full = await run(model, batch, weights, false);
    const prefix = await run(model, batch, weights, true);
    const names = ["representation", "loss", ...model.params.entries().map(([name]) => name)];
    assertEquals(prefix.length, full.length);
    // Each gradient relative to its own size, floored at 1% of the largest parameter gradient's:
    // the projection weights' gradients are sums of products that largely cancel, so their own
    // size understates the rounding of the two paths (the full scan's adjoint recurrence and the
    // prefix path's re-scan round differently).
    const rms = (v: ArrayLike<number>) =>
      Math.sqrt(Array.from(v).reduce((sum, x) => sum + x * x, 0) / Math.max(1, v.length));
    const floor = 1e-2 * Math.max(...full.slice(2).map(rms));
    prefix.forEach((got, i) => {
      const what = `seed ${seed}, lengths [${lengths}]: ${names[i]} of the prefix path against ` +
        "the full one";
      if (i < 2) return assertClose(got, full[i], 1e-5, what);
      const e = rms(Array.from(got, (v, k) => v - full[i][k])) / Math.max(rms(full[i]), floor);
      assert(e < 1e-5, `${what}: relative error ${e.toExponential(3)}`);
    });
  });
}
