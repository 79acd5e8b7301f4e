import { assert, assertEquals, assertThrows } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { ConfigError } from "../models/config.ts";
import { SASREC_DEFAULTS } from "../models/sasrec.ts";
import { createModel, findModel } from "../models/registry.ts";
import { type RefParams, sasrecReference } from "./sasrec_reference.ts";
import { checkParameterGradients, randomPaddedBatch } from "./model_gradients.ts";
import {
  assertPaperPresets,
  assertRecBoleInit,
  assertSameLossAndGradients,
  rms,
  rowPathSettings,
  transformerLayerNames,
} from "./transformer_checks.ts";
import { assertClose, freshSeed, makeRng, paddedItems } from "./util.ts";

const EPS = 1e-12;

for (const numLayers of [1, 2]) {
  Deno.test(`sasrec (${numLayers} layer${numLayers > 1 ? "s" : ""}, 2 heads): loss, representation, every position and every parameter's gradient match a float64 reference`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 13, B = 3, L = 5, H = 8, numHeads = 2;
    const model = createModel("sasrec", numItems, {
      hiddenSize: H,
      innerSize: 12,
      numLayers,
      numHeads,
      hiddenDropoutProb: 0,
      attnDropoutProb: 0,
      // Rows past the window get no gradient.
      maxLength: L + 2,
      seed: seed % 100000,
    });
    const batch = randomPaddedBatch(rng, L, numItems);
    const { items, lengths, targets } = batch;

    const entries = model.params.entries();
    const { loss, h } = tidy(() => {
      const h = model.forward(uploadSequences(items, lengths, B, L), true);
      const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(targets, [B], "i32"));
      backward(loss);
      return { loss, h };
    });
    const all = tidy(() => model.forward({ items: Tensor.from(items, [B, L], "i32") }, false));
    const host = await readTensors([
      loss,
      h,
      all,
      ...entries.map(([, t]) => t),
      ...entries.map(([, t]) => t.grad!),
    ]);
    const first = 3;
    const ref: RefParams = new Map();
    entries.forEach(([name, t], i) =>
      ref.set(name, { data: Float64Array.from(host[first + i]), shape: t.shape })
    );
    const options = { numLayers, numHeads, eps: EPS };
    const want = sasrecReference(ref, batch, options);
    assertClose([host[0][0]], [want.loss], 1e-5, `seed ${seed}: loss`);
    assertClose(host[1], want.h, 1e-4, `seed ${seed}: last-item representation`);
    // Every real position (the reference masks pad keys as RecBole does; the model relies on the
    // causal mask alone, which hides them from every real query).
    assertEquals(all.shape, [B, L, H]);
    for (let b = 0; b < B; b++) {
      const real = (x: ArrayLike<number>) =>
        Array.from(x).slice(b * L * H, (b * L + lengths[b]) * H);
      assertClose(real(host[2]), real(want.all), 1e-4, `seed ${seed}: row ${b}, every position`);
    }

    checkParameterGradients({
      seed,
      rng,
      names: entries.map(([name]) => name),
      grads: host.slice(first + entries.length, first + 2 * entries.length),
      refData: (name) => ref.get(name)!.data,
      lossOf: () => sasrecReference(ref, batch, options).loss,
    });
    zeroGrad(model.params.list());
  });
}

for (const numLayers of [1, 2]) {
  Deno.test(`sasrec (${numLayers} layer${numLayers > 1 ? "s" : ""}): with attention dropout, the loss and every gradient computed at the last positions alone equal those of every position's`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 17, L = 9;
    const config = rowPathSettings(numLayers, L, seed);
    // Two models of the same seed: the same weights and the same dropout stream.
    const [lastOnly, full] = [0, 1].map(() => createModel("sasrec", numItems, config));
    const batch = randomPaddedBatch(rng, L, numItems);
    const { items, lengths, targets } = batch;
    const inputs = uploadSequences(items, lengths, batch.size, L);
    const lossOf = (h: Tensor, model: typeof full) =>
      itemCrossEntropy(h, model.itemTable, Tensor.from(targets, [batch.size], "i32"));
    const losses = tidy(() => {
      const a = lossOf(lastOnly.forward(inputs, true), lastOnly);
      const all = full.forward({ items: inputs.items }, true);
      const b = lossOf(gatherPositions(all, inputs.positions), full);
      backward(a);
      backward(b);
      return [a, b];
    });
    await assertSameLossAndGradients(`seed ${seed}`, [losses[0], losses[1]], [
      lastOnly.params,
      full.params,
    ]);
  });
}

Deno.test("sasrec: a padded position never changes a real one, and a row alone gives the same outputs", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 17, H = 8, B = 3, L = 6;
  const model = createModel("sasrec", numItems, { hiddenSize: H, innerSize: 16, seed: seed % 1e5 });
  const lengths = Int32Array.of(L, 2, 1 + Math.floor(rng() * (L - 1)));
  const items = paddedItems(rng, lengths, L, numItems);
  const every = (ids: Int32Array, size: number, len: number) =>
    tidy(() => model.forward({ items: Tensor.from(ids, [size, len], "i32") }, false));
  const [padded] = await readTensors([every(items, B, L)]);
  const real = (x: ArrayLike<number>, b: number, len = L) =>
    Array.from(x).slice(b * len * H, (b * len + lengths[b]) * H);

  // Real items instead of the pads: by causality no real position may move, not by one bit.
  const filled = items.slice();
  lengths.forEach((len, b) => {
    for (let t = len; t < L; t++) filled[b * L + t] = 1 + Math.floor(rng() * (numItems - 1));
  });
  const [refilled] = await readTensors([every(filled, B, L)]);
  for (let b = 0; b < B; b++) {
    assertEquals(
      real(refilled, b),
      real(padded, b),
      `seed ${seed}: row ${b}: a pad moved a real position`,
    );
    if (lengths[b] < L) {
      const pads = (x: ArrayLike<number>) =>
        Array.from(x).slice((b * L + lengths[b]) * H, (b + 1) * L * H);
      assert(
        pads(refilled).some((v, i) => v !== pads(padded)[i]),
        `seed ${seed}: row ${b}: other items at its pad positions left their outputs unchanged`,
      );
    }
  }

  // Each row alone, cut to its length: the same outputs at every real position.
  for (let b = 0; b < B; b++) {
    const len = lengths[b];
    const [alone] = await readTensors([every(items.slice(b * L, b * L + len), 1, len)]);
    assertClose(alone, real(padded, b), 1e-6, `seed ${seed}: row ${b} unpadded`);
  }
});

Deno.test("sasrec config: RecBole's defaults, the Mamba4Rec paper's presets, refusals naming the key", () => {
  const entry = findModel("SASRec");
  assertEquals(entry.layout, "padded");
  assert(!entry.lastItemOnly);
  assertEquals(entry.config({ numItems: 10 }), { ...SASREC_DEFAULTS, numItems: 10 });
  assertEquals(
    { ...SASREC_DEFAULTS, seed: 0 },
    {
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 2,
      innerSize: 256,
      hiddenDropoutProb: 0.5,
      attnDropoutProb: 0.5,
      layerNormEps: 1e-12,
      maxLength: 50,
      seed: 0,
    },
  );
  assertPaperPresets("sasrec", entry.presets);
  for (
    const [key, value, extra] of [
      ["numHeads", 3, {}],
      ["numHeads", 4, { hiddenSize: 6 }],
      ["maxLength", 4096, {}],
      ["layerNormEps", 0, {}],
      ["hiddenDropoutProb", 1, {}],
      ["dropoutProb", 0.2, {}],
      ["numItems", 1, {}],
    ] as const
  ) {
    const e = assertThrows(
      () => entry.config({ numItems: 10, ...extra, [key]: value }),
      ConfigError,
    );
    assertEquals(e.key, key, e.message);
  }
  const model = createModel("sasrec", 10, { hiddenSize: 4, innerSize: 4, maxLength: 3 });
  const e = assertThrows(
    () =>
      tidy(() =>
        model.forward({ items: Tensor.from(new Int32Array(8).fill(1), [2, 4], "i32") }, false)
      ),
    ConfigError,
  );
  assertEquals(e.key, "maxLength", e.message);
});

Deno.test("sasrec initialisation: N(0, 0.02) on every Linear and Embedding weight (PAD row and positions included), zero biases, LayerNorm 1 and 0", async () => {
  const numItems = 1500, H = 64, maxLength = 200;
  const model = createModel("sasrec", numItems, { maxLength });
  const entries = model.params.entries();
  const names = entries.map(([name]) => name);
  assertEquals(names, [
    "item_embedding.weight",
    "position_embedding.weight",
    ...transformerLayerNames(0),
    ...transformerLayerNames(1),
    "LayerNorm.weight",
    "LayerNorm.bias",
  ]);
  const values = (await readTensors(model.params.list())) as Float32Array[];
  assertRecBoleInit(entries, values);
  assertEquals(entries[1][1].shape, [maxLength, H]);
  // The PAD row is drawn like any other, not zero.
  assert(rms(values[0].subarray(0, H)) > 0.005, `PAD row RMS ${rms(values[0].subarray(0, H))}`);
});
