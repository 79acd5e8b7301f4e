/**
 * BERT4Rec on the GPU against its float64 reference (loss of both masking branches, every
 * gradient, the evaluation representation and scores), padding, configuration and initialisation.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { writeAt } from "../ops/core/unrecorded.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { reshape } from "../ops/pointwise/elementwise.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { checkLayoutSettings } from "../models/training/layouts.ts";
import { ConfigError } from "../models/config.ts";
import { BERT4REC_DEFAULTS } from "../models/bert4rec.ts";
import { maskingRandom, maskItemSequence } from "../models/bert4rec_masking.ts";
import { createModel, findModel } from "../models/registry.ts";
import {
  bert4recLossRef,
  bert4recReference,
  bert4recScoresRef,
  maskItemSequenceRef,
  reconstructRef,
  type RefParams,
  trainingBatch,
} from "./bert4rec_reference.ts";
import { checkParameterGradients, randomPaddedBatch } from "./model_gradients.ts";
import {
  assertPaperPresets,
  assertRecBoleInit,
  assertSameLossAndGradients,
  rms,
  rowPathSettings,
  transformerLayerNames,
} from "./transformer_checks.ts";
import { assertClose, freshSeed, makeRng, paddedItems, randn } from "./util.ts";

const EPS = 1e-12;

for (const numLayers of [1, 2]) {
  Deno.test(`bert4rec (${numLayers} layer${numLayers > 1 ? "s" : ""}): the masked-item loss of both branches, every parameter's gradient, the evaluation representation and its scores match a float64 reference`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 13, L = 8, H = 8, numHeads = 2, maskRatio = 0.4, ftRatio = 0.5;
    const model = createModel("bert4rec", numItems, {
      hiddenSize: H,
      innerSize: 12,
      numLayers,
      numHeads,
      hiddenDropoutProb: 0,
      attnDropoutProb: 0,
      maskRatio,
      // Rows past the window get no gradient.
      maxLength: L + 2,
      seed: seed % 100000,
    });
    // A nonzero output bias, so that the scores' bias column is checked too.
    tidy(() =>
      writeAt(
        model.params.get("output_bias"),
        Tensor.from(Float32Array.from(randn(rng, numItems, 0.5))),
        0,
      )
    );
    const { lengths, size: B } = randomPaddedBatch(rng, L, numItems);
    const batch = trainingBatch(rng, lengths, L, numItems);
    const options = { numLayers, numHeads, eps: EPS };
    const masking = { maskToken: numItems, maskRatio, ftRatio };
    const entries = model.params.entries();
    const readParams = async () => {
      const host = await readTensors(entries.map(([, t]) => t));
      const ref: RefParams = new Map();
      entries.forEach(([name, t], i) =>
        ref.set(name, { data: Float64Array.from(host[i]), shape: t.shape })
      );
      return ref;
    };

    for (const fineTune of [false, true]) {
      // The first batch index whose draw takes this branch (and has a loss position).
      let at = { seed: seed % 1000000, epoch: 3, batch: 0 };
      while (true) {
        const draw = maskItemSequence(batch, masking, at);
        if (draw.fineTune === fineTune && draw.lossPositions.length > 0) break;
        at = { ...at, batch: at.batch + 1 };
      }
      const what = `seed ${seed}, ${fineTune ? "fine-tune" : "masking"} branch (batch ${at.batch})`;
      const loss = tidy(() => {
        const loss = model.trainingLoss!(batch, at);
        backward(loss);
        return loss;
      });
      const [lossHost, ...grads] = await readTensors([loss, ...entries.map(([, t]) => t.grad!)]);
      const ref = await readParams();
      const recbole = maskItemSequenceRef(batch.items, lengths, B, L, masking, maskingRandom(at));
      assertEquals(recbole.fineTune, fineTune, what);
      const lossOf = () => bert4recLossRef(ref, recbole, B, L, options);
      assertClose([lossHost[0]], [lossOf()], 1e-5, `${what}: loss`);
      checkParameterGradients({
        seed,
        rng,
        names: entries.map(([name]) => name),
        grads,
        refData: (name) => ref.get(name)!.data,
        lossOf,
      });
      zeroGrad(model.params.list());
    }

    // Evaluation: the mask token after the last item, the oldest item dropped, h at length − 1.
    const ranked = model.rankingItems!(batch.items, lengths, B, L);
    assertEquals(ranked, reconstructRef(batch.items, lengths, L, numItems), `seed ${seed}`);
    const { h, scores, all } = tidy(() => {
      const h = model.forward(uploadSequences(ranked, lengths, B, L), false);
      const scores = matmul(h, model.itemTable, { transB: true });
      const all = model.forward({ items: Tensor.from(ranked, [B, L], "i32") }, false);
      return { h, scores, all };
    });
    assertEquals(h.shape, [B, H + 1]);
    assertEquals(scores.shape, [B, numItems]);
    assertEquals(all.shape, [B, L, H + 1]);
    const [hHost, scoresHost, allHost] = await readTensors([h, scores, all]);
    const ref = await readParams();
    const out = bert4recReference(ref, ranked, B, L, options);
    const wantH = new Float64Array(B * H);
    lengths.forEach((len, b) =>
      wantH.set(out.subarray((b * L + len - 1) * H, (b * L + len) * H), b * H)
    );
    const gotH = Array.from(
      { length: B },
      (_, b) => Array.from(hHost.subarray(b * (H + 1), b * (H + 1) + H)),
    )
      .flat();
    assertClose(gotH, wantH, 1e-4, `seed ${seed}: representation at the mask token`);
    for (let b = 0; b < B; b++) {
      assertEquals(hHost[b * (H + 1) + H], 1, `seed ${seed}: row ${b}: the ones column`);
    }
    assertClose(scoresHost, bert4recScoresRef(ref, wantH), 1e-4, `seed ${seed}: scores`);
    // Every real position of the every-position output.
    for (let b = 0; b < B; b++) {
      const got: number[] = [], want: number[] = [];
      for (let t = 0; t < lengths[b]; t++) {
        const at = b * L + t;
        got.push(...allHost.subarray(at * (H + 1), at * (H + 1) + H));
        want.push(...out.subarray(at * H, (at + 1) * H));
      }
      assertClose(got, want, 1e-4, `seed ${seed}: row ${b}, every position`);
    }
  });
}

for (const numLayers of [1, 2]) {
  Deno.test(`bert4rec (${numLayers} layer${numLayers > 1 ? "s" : ""}): with attention dropout, the masked-item loss and every gradient computed at the loss positions alone equal those of every position's`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 17, L = 9, maskRatio = 0.4;
    const config = { ...rowPathSettings(numLayers, L, seed), maskRatio };
    const [lossRowsOnly, full] = [0, 1].map(() => createModel("bert4rec", numItems, config));
    // Two sequences long enough to hold a loss position (position 0 never is one), one any length.
    const lengths = Int32Array.of(
      L,
      2 + Math.floor(rng() * (L - 1)),
      1 + Math.floor(rng() * L),
    );
    const batch = trainingBatch(rng, lengths, L, numItems);
    const masking = { maskToken: numItems, maskRatio, ftRatio: 0.5 };
    // A draw of the masked-item branch with loss positions in more than one sequence: each draw
    // is one with probability above 0.5 · 0.4², so a thousand tries fail only by a bug.
    let at = { seed: seed % 1000000, epoch: 1, batch: 0 };
    for (; at.batch < 1000; at = { ...at, batch: at.batch + 1 }) {
      const draw = maskItemSequence(batch, masking, at);
      const rows = new Set(Array.from(draw.lossPositions, (f) => Math.floor(f / L)));
      if (!draw.fineTune && rows.size > 1) break;
    }
    assert(at.batch < 1000, `seed ${seed}: no masked-item draw with loss positions in two rows`);
    const masked = maskItemSequence(batch, masking, at);
    const losses = tidy(() => {
      const a = lossRowsOnly.trainingLoss!(batch, at);
      const all = full.forward({ items: Tensor.from(masked.items, [batch.size, L], "i32") }, true);
      const picked = embedding(
        Tensor.from(masked.lossPositions, [masked.lossPositions.length], "i32"),
        reshape(all, [batch.size * L, all.shape[2]]),
        { distinctIds: true },
      );
      const b = itemCrossEntropy(
        picked,
        full.itemTable,
        Tensor.from(masked.lossTargets, [masked.lossTargets.length], "i32"),
        { ignoreIndex: 0 },
      );
      backward(a);
      backward(b);
      return [a, b];
    });
    await assertSameLossAndGradients(`seed ${seed}`, [losses[0], losses[1]], [
      lossRowsOnly.params,
      full.params,
    ]);
  });
}

Deno.test("bert4rec: a padded position never changes a real one, and a row alone gives the same outputs", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 17, H = 8, B = 3, L = 6, extra = 3;
  const model = createModel("bert4rec", numItems, {
    hiddenSize: H,
    innerSize: 16,
    maxLength: L + extra,
    seed: seed % 1e5,
  });
  const lengths = Int32Array.of(L, 2, 1 + Math.floor(rng() * (L - 1)));
  const items = paddedItems(rng, lengths, L, numItems);
  items[1] = numItems; // a mask token among the items
  const every = (ids: Int32Array, size: number, len: number) =>
    tidy(() => model.forward({ items: Tensor.from(ids, [size, len], "i32") }, false));
  const [padded] = await readTensors([every(items, B, L)]);
  const real = (x: ArrayLike<number>, b: number, len: number) =>
    Array.from(x).slice(b * len * (H + 1), (b * len + lengths[b]) * (H + 1));

  // The same rows with more padding: every real position keeps its output.
  const longer = new Int32Array(B * (L + extra));
  for (let b = 0; b < B; b++) longer.set(items.subarray(b * L, (b + 1) * L), b * (L + extra));
  const [morePads] = await readTensors([every(longer, B, L + extra)]);
  for (let b = 0; b < B; b++) {
    assertClose(
      real(morePads, b, L + extra),
      real(padded, b, L),
      1e-6,
      `seed ${seed}: row ${b} more pads`,
    );
    // Each row alone, cut to its length.
    const len = lengths[b];
    const [alone] = await readTensors([every(items.slice(b * L, b * L + len), 1, len)]);
    assertClose(alone, real(padded, b, L), 1e-6, `seed ${seed}: row ${b} unpadded`);
  }
  // A real item in place of the last row's last pad (it has one: its length is below L) does
  // move its real positions: attention is bidirectional, so only the pad mask keeps pads out.
  const filled = items.slice();
  filled[B * L - 1] = 1;
  const [refilled] = await readTensors([every(filled, B, L)]);
  assert(
    real(refilled, B - 1, L).some((v, i) => v !== real(padded, B - 1, L)[i]),
    `seed ${seed}: an extra real item left every other position unchanged`,
  );
});

Deno.test("bert4rec config: RecBole's defaults, the Mamba4Rec paper's presets, its own training loss, refusals naming the key", () => {
  const entry = findModel("BERT4Rec");
  assertEquals(entry.layout, "padded");
  assertEquals(entry.config({ numItems: 10 }), { ...BERT4REC_DEFAULTS, numItems: 10 });
  assertEquals({ ...BERT4REC_DEFAULTS, seed: 0 }, {
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 2,
    innerSize: 256,
    hiddenDropoutProb: 0.2,
    attnDropoutProb: 0.2,
    layerNormEps: 1e-12,
    maxLength: 50,
    maskRatio: 0.2,
    ftRatio: 0.5,
    seed: 0,
  });
  assertPaperPresets("bert4rec", entry.presets);
  for (
    const [key, value, extra] of [
      ["numHeads", 3, {}],
      ["maxLength", 4096, {}],
      ["maskRatio", 1.5, {}],
      ["maskRatio", 0.1, { maxLength: 9 }],
      ["ftRatio", -0.1, {}],
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
  const model = createModel("bert4rec", 10, { hiddenSize: 4, innerSize: 4, maxLength: 5 });
  assert(model.trainingLoss && model.rankingItems);
  const e = assertThrows(
    () => checkLayoutSettings(model, { trainingMode: "all-positions" }),
    ConfigError,
  );
  assertEquals(e.key, "trainingMode");
  const long = assertThrows(
    () =>
      tidy(() =>
        model.forward({ items: Tensor.from(new Int32Array(12).fill(1), [2, 6], "i32") }, false)
      ),
    ConfigError,
  );
  assertEquals(long.key, "maxLength", long.message);
});

Deno.test("bert4rec initialisation: N(0, 0.02) on every Linear and Embedding weight (PAD and mask rows, positions included), zero biases and output_bias, LayerNorm 1 and 0", async () => {
  const numItems = 1500, H = 64, maxLength = 200;
  const model = createModel("bert4rec", numItems, { maxLength });
  const entries = model.params.entries();
  assertEquals(entries.map(([name]) => name), [
    "item_embedding.weight",
    "position_embedding.weight",
    ...transformerLayerNames(0),
    ...transformerLayerNames(1),
    "LayerNorm.weight",
    "LayerNorm.bias",
    "output_ffn.weight",
    "output_ffn.bias",
    "output_ln.weight",
    "output_ln.bias",
    "output_bias",
  ]);
  assertEquals(entries[0][1].shape, [numItems + 1, H]);
  assertEquals(entries[1][1].shape, [maxLength, H]);
  assertEquals(entries.at(-1)![1].shape, [numItems]);
  const values = (await readTensors(model.params.list())) as Float32Array[];
  assertRecBoleInit(entries, values, ["output_ln.weight"], ["output_bias"]);
  // The PAD and mask rows are drawn like any other.
  assert(rms(values[0].subarray(0, H)) > 0.005, "PAD row");
  assert(rms(values[0].subarray(numItems * H)) > 0.005, "mask row");
});
