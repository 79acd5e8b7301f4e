import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { createModel } from "../models/registry.ts";
import { mamba4recReference, type RefBatch, type RefParams } from "./mamba4rec_reference.ts";
import { checkParameterGradients } from "./model_gradients.ts";
import { assertClose, freshSeed, makeRng } from "./util.ts";

for (const numLayers of [1, 2]) {
  Deno.test(`mamba4rec (${numLayers} layer${numLayers > 1 ? "s" : ""}): loss, representation and every parameter's gradient match a float64 reference`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 13, B = 3, L = 5;
    const model = createModel("mamba4rec", numItems, {
      hiddenSize: 8,
      dState: 5,
      expand: 2,
      dConv: 4,
      numLayers,
      dropoutProb: 0,
      seed: seed % 100000,
    });
    const lengths = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * L));
    const items = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < lengths[b]; t++) {
        items[b * L + t] = 1 + Math.floor(rng() * (numItems - 1));
      }
    }
    const targets = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * (numItems - 1)));
    const batch: RefBatch = { items, lengths, targets, size: B, maxLength: L };

    const entries = model.params.entries();
    const { loss, h } = tidy(() => {
      const inputs = uploadSequences(items, lengths, B, L);
      const h = model.forward(inputs, true);
      const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(targets, [B], "i32"));
      backward(loss);
      return { loss, h };
    });
    const host = await readTensors([
      loss,
      h,
      ...entries.map(([, t]) => t),
      ...entries.map(([, t]) => t.grad!),
    ]);
    const ref: RefParams = new Map();
    entries.forEach(([name, t], i) =>
      ref.set(name, { data: Float64Array.from(host[2 + i]), shape: t.shape })
    );
    const want = mamba4recReference(ref, batch, numLayers);
    assertClose([host[0][0]], [want.loss], 1e-5, `seed ${seed}: loss`);
    assertClose(host[1], want.h, 1e-4, `seed ${seed}: last-position representation`);

    checkParameterGradients({
      seed,
      rng,
      names: entries.map(([name]) => name),
      grads: host.slice(2 + entries.length, 2 + 2 * entries.length),
      refData: (name) => ref.get(name)!.data,
      lossOf: () => mamba4recReference(ref, batch, numLayers).loss,
    });
    zeroGrad(model.params.list());
  });
}
