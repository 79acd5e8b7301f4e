import { assert } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { runtime } from "../ops/core/runtime.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { createModel } from "../models/registry.ts";
import { freshSeed, makeRng, relError } from "./util.ts";

/**
 * At the training shape (2048 sequences of 200 items) the kernels take their large-problem paths
 * (other tiles, splits and segments than the small shapes of the other tests). The loss and every
 * gradient of one full batch must equal the batch computed as 128 slices of 16 (the gradients
 * of a mean add up slice by slice). Slices of 16 sequences (3,200 rows) stay on the small-problem
 * paths, so a kernel that goes wrong only on large problems shows here. Too large for a CPU adapter's binding limit: GPUs only.
 */
Deno.test({
  name: "mamba4rec at the training shape: one batch of 2048 equals 128 slices of 16",
  ignore: runtime().info.isCpu,
  fn: async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const B = 2048, L = 200, V = 3417, slices = 128, S = B / slices;
    const model = createModel("mamba4rec", V, { dropoutProb: 0, seed: seed % 100000 });
    const lengths = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * L));
    const items = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < lengths[b]; t++) items[b * L + t] = 1 + Math.floor(rng() * (V - 1));
    }
    const targets = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * (V - 1)));
    const params = model.params.list();
    const lossOf = (from: number, count: number) =>
      tidy(() => {
        const inputs = uploadSequences(
          items.subarray(from * L, (from + count) * L),
          lengths.subarray(from, from + count),
          count,
          L,
        );
        const h = model.forward(inputs, true);
        const loss = itemCrossEntropy(
          h,
          model.itemTable,
          Tensor.from(targets.subarray(from, from + count), [count], "i32"),
        );
        backward(loss);
        return loss;
      });
    const whole = lossOf(0, B);
    const [wholeLoss, ...wholeGrads] = await readTensors([whole, ...params.map((p) => p.grad!)]);
    zeroGrad(params);
    const parts: Tensor[] = [];
    for (let k = 0; k < slices; k++) parts.push(lossOf(k * S, S));
    const [...sliced] = await readTensors([...parts, ...params.map((p) => p.grad!)]);
    const meanOfSlices = sliced.slice(0, slices).reduce((a, l) => a + l[0], 0) / slices;
    assert(
      Math.abs(meanOfSlices - wholeLoss[0]) < 1e-5 * Math.abs(wholeLoss[0]),
      `seed ${seed}: loss ${wholeLoss[0]} vs mean of slices ${meanOfSlices}`,
    );
    params.forEach((p, i) => {
      const summed = sliced[slices + i].map((v) => v / slices);
      const e = relError(summed, wholeGrads[i]);
      assert(e < 1e-4, `seed ${seed}: ${p.name} gradient differs by ${e.toExponential(2)}`);
    });
    zeroGrad(params);
  },
});
