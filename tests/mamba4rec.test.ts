import { createModel } from "../models/registry.ts";
import { mamba4recReference, type RefBatch } from "./mamba4rec_reference.ts";
import { checkPaddedModel } from "./model_gradients.ts";
import { freshSeed, makeRng, paddedItems } from "./util.ts";

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
    const items = paddedItems(rng, lengths, L, numItems);
    const targets = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * (numItems - 1)));
    const batch: RefBatch = { items, lengths, targets, size: B, maxLength: L };

    await checkPaddedModel({
      seed,
      rng,
      model,
      batch,
      reference: (params, b) => mamba4recReference(params, b, numLayers),
    });
  });
}
