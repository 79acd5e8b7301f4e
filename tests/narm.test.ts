import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { runtime } from "../ops/core/runtime.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { ConfigError, trainConfig } from "../models/config.ts";
import { NARM_DEFAULTS } from "../models/narm.ts";
import { createModel, findModel, MAMBA4REC_PRESETS, modelPreset } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { narmReference } from "./narm_reference.ts";
import { defineReferenceTests, paddedSetup } from "./recurrent_model_setup.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { assertClose, freshSeed } from "./util.ts";

defineReferenceTests("narm", { dropoutProbs: [0, 0] }, narmReference);

Deno.test("narm gives pads (id 0) no weight: padding and the PAD row never change an output", async () => {
  const { seed, rng, numItems, E, B, L, model, lengths, items } = paddedSetup("narm");
  const run = (ids: Int32Array, lens: Int32Array, size: number, len: number) =>
    tidy(() => model.forward(uploadSequences(ids, lens, size, len), false));
  const [padded] = await readTensors([run(items, lengths, B, L)]);

  // Each row alone, cut to its length (no padding at all): the same representation.
  for (let b = 0; b < B; b++) {
    const len = lengths[b];
    const [alone] = await readTensors([
      run(items.slice(b * L, b * L + len), Int32Array.of(len), 1, len),
    ]);
    assertClose(
      alone,
      padded.subarray(b * E, (b + 1) * E),
      1e-6,
      `seed ${seed}: row ${b} unpadded`,
    );
  }

  // Another PAD embedding row: the GRU's outputs at the pads change, the output must not.
  const [table] = await readTensors([model.itemTable]);
  const noisy = Float32Array.from(table);
  for (let i = 0; i < E; i++) noisy[i] += 0.5 + rng();
  runtime().write(model.itemTable.storage, noisy);
  const [noisyPad] = await readTensors([run(items, lengths, B, L)]);
  runtime().write(model.itemTable.storage, Float32Array.from(table));
  assertEquals(
    Array.from(noisyPad),
    Array.from(padded),
    `seed ${seed}: the PAD row moved an output`,
  );

  // The mask reads the ids (RecBole's `item_seq > 0`): real items after the last position, with
  // the same lengths, do enter the local attention, so the check above could fail.
  const filled = items.slice();
  lengths.forEach((len, b) => {
    for (let t = len; t < L; t++) filled[b * L + t] = 1 + Math.floor(rng() * (numItems - 1));
  });
  const [unmasked] = await readTensors([run(filled, lengths, B, L)]);
  for (let b = 0; b < B; b++) {
    const row = (a: ArrayLike<number>) => Array.from(a).slice(b * E, (b + 1) * E);
    if (lengths[b] === L) {
      assertEquals(row(unmasked), row(padded), `seed ${seed}: row ${b} has no pads`);
    } else {
      assert(
        row(unmasked).some((v, i) => v !== row(padded)[i]),
        `seed ${seed}: row ${b}: real items at its pad positions left the output unchanged`,
      );
    }
  }
});

Deno.test("narm refuses every-position output and all-positions training, naming the setting", async () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 20);
  const model = createModel("narm", dataset.numItems, { embeddingSize: 8, hiddenSize: 8, seed });
  const e = assertThrows(
    () =>
      tidy(() =>
        model.forward({ items: Tensor.from(new Int32Array(6).fill(1), [2, 3], "i32") }, true)
      ),
    ConfigError,
  );
  assertEquals(e.key, "trainingMode");
  assert(e.message.includes('"prefix"'), e.message);
  const config = trainConfig({
    epochs: 1,
    maxLength: 10,
    seed,
    verbose: false,
    trainingMode: "all-positions",
  });
  const rejected = await assertRejects(() => train(model, dataset, config), ConfigError);
  assertEquals(rejected.key, "trainingMode", rejected.message);
});

Deno.test("narm config: RecBole's defaults, the Mamba4Rec paper's presets, refusals naming the key", () => {
  const entry = findModel("NARM");
  assertEquals(entry.layout, "padded");
  assertEquals(entry.config({ numItems: 10 }), { ...NARM_DEFAULTS, numItems: 10 });
  assertEquals(NARM_DEFAULTS.embeddingSize, 64);
  assertEquals(NARM_DEFAULTS.hiddenSize, 128);
  assertEquals(NARM_DEFAULTS.numLayers, 1);
  assertEquals(NARM_DEFAULTS.dropoutProbs, [0.25, 0.5]);
  // Mamba4Rec's config sets hidden_size 64; its dropout_prob and num_layers are not NARM's keys.
  assertEquals(modelPreset("narm", "ml-1m"), {
    train: { maxLength: 200 },
    model: { hiddenSize: 64 },
  });
  for (const dataset of ["amazon-beauty", "amazon-video-games"]) {
    assertEquals(modelPreset("narm", dataset), {
      train: { maxLength: 50 },
      model: { hiddenSize: 64 },
    }, dataset);
  }
  assertEquals(Object.keys(entry.presets).sort(), Object.keys(MAMBA4REC_PRESETS).sort());
  for (
    const [key, value] of [
      ["hiddenSize", 513],
      ["dropoutProbs", [0.25]],
      ["dropoutProbs", [0.25, 1]],
      ["dropoutProb", 0.2],
      ["numItems", 1],
    ]
  ) {
    const e = assertThrows(
      () => entry.config({ numItems: 10, [key as string]: value }),
      ConfigError,
    );
    assertEquals(e.key, key, e.message);
  }
});

Deno.test("narm initialisation: xavier_normal_ embedding and Linear weights, PyTorch's U(±1/√H) GRU", async () => {
  const numItems = 1500, E = 64, H = 48;
  const model = createModel("narm", numItems, { embeddingSize: E, hiddenSize: H, numLayers: 2 });
  const names = model.params.entries().map(([name]) => name);
  assertEquals(names, [
    "item_embedding.weight",
    "gru.weight_ih_l0",
    "gru.weight_hh_l0",
    "gru.weight_ih_l1",
    "gru.weight_hh_l1",
    "a_1.weight",
    "a_2.weight",
    "v_t.weight",
    "b.weight",
  ]);
  const values = (await readTensors(model.params.list())) as Float32Array[];
  const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  // xavier_normal_: std √(2 / (fan_in + fan_out)); the sample RMS within 5% (≥ 2,304 draws).
  const xavier: [number, number, number][] = [[0, numItems, E], [5, H, H], [6, H, H], [
    8,
    E,
    2 * H,
  ]];
  for (const [i, fanOut, fanIn] of xavier) {
    const want = Math.sqrt(2 / (fanIn + fanOut));
    const got = rms(values[i]);
    assert(Math.abs(got - want) < 0.05 * want, `${names[i]}: RMS ${got}, want std ${want}`);
  }
  assertEquals(values[7].length, H);
  assert(rms(values[7]) < 3 * Math.sqrt(2 / (H + 1)), `v_t.weight: RMS ${rms(values[7])}`);
  for (const i of [1, 2, 3, 4]) {
    const max = Math.max(...Array.from(values[i], Math.abs));
    const bound = 1 / Math.sqrt(H);
    assert(max <= bound && max > 0.9 * bound, `${names[i]}: max |w| ${max}, bound ${bound}`);
  }
});
