import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { runtime } from "../ops/core/runtime.ts";
import { readTensors, tidy } from "../ops/core/tensor.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { ConfigError } from "../models/config.ts";
import { GRU4REC_DEFAULTS } from "../models/gru4rec.ts";
import { createModel, findModel, MAMBA4REC_PRESETS, modelPreset } from "../models/registry.ts";
import { gru4recReference } from "./gru4rec_reference.ts";
import { defineReferenceTests, paddedSetup } from "./recurrent_model_setup.ts";
import { assertClose } from "./util.ts";

defineReferenceTests("gru4rec", { dropoutProb: 0 }, gru4recReference);

Deno.test("gru4rec reads each window's last real item: pads (right of it) never change a real position's output", async () => {
  const { seed, rng, numItems, E, B, L, model, lengths, items } = paddedSetup("gru4rec");
  const run = (ids: Int32Array, lens: Int32Array, size: number, len: number, every = false) =>
    tidy(() => {
      const inputs = uploadSequences(ids, lens, size, len);
      return model.forward(every ? { items: inputs.items } : inputs, false);
    });
  const [last, every] = await readTensors([
    run(items, lengths, B, L),
    run(items, lengths, B, L, true),
  ]);

  // Each row alone, cut to its length (no padding at all): the same representation.
  for (let b = 0; b < B; b++) {
    const len = lengths[b];
    const [alone] = await readTensors([
      run(items.slice(b * L, b * L + len), Int32Array.of(len), 1, len),
    ]);
    assertClose(alone, last.subarray(b * E, (b + 1) * E), 1e-6, `seed ${seed}: row ${b} unpadded`);
  }

  // Other items at the pad positions and another PAD embedding row.
  const perturbed = items.slice();
  lengths.forEach((len, b) => {
    for (let t = len; t < L; t++) perturbed[b * L + t] = 1 + Math.floor(rng() * (numItems - 1));
  });
  const [table] = await readTensors([model.itemTable]);
  const noisy = Float32Array.from(table);
  for (let i = 0; i < E; i++) noisy[i] += 0.5 + rng();
  runtime().write(model.itemTable.storage, noisy);
  const [last2, every2] = await readTensors([
    run(perturbed, lengths, B, L),
    run(perturbed, lengths, B, L, true),
  ]);
  runtime().write(model.itemTable.storage, Float32Array.from(table));

  assertEquals(Array.from(last2), Array.from(last), `seed ${seed}: last-item outputs moved`);
  for (let b = 0; b < B; b++) {
    const real = (a: Float32Array) => Array.from(a.subarray(b * L * E, (b * L + lengths[b]) * E));
    const pads = (a: Float32Array) =>
      Array.from(a.subarray((b * L + lengths[b]) * E, (b + 1) * L * E));
    assertEquals(
      real(every2 as Float32Array),
      real(every as Float32Array),
      `seed ${seed}: row ${b} real positions`,
    );
    // The perturbation did reach the pad positions (so the equalities above could fail).
    if (lengths[b] < L) {
      assertNotEquals(
        pads(every2 as Float32Array),
        pads(every as Float32Array),
        `seed ${seed}: row ${b} pads`,
      );
    }
  }
});

Deno.test("gru4rec config: RecBole's defaults, the Mamba4Rec paper's presets, refusals naming the key", () => {
  const entry = findModel("GRU4Rec");
  assertEquals(entry.layout, "padded");
  const config = entry.config({ numItems: 10 });
  assertEquals(config, { ...GRU4REC_DEFAULTS, numItems: 10 });
  assertEquals(GRU4REC_DEFAULTS.embeddingSize, 64);
  assertEquals(GRU4REC_DEFAULTS.hiddenSize, 128);
  assertEquals(GRU4REC_DEFAULTS.dropoutProb, 0.3);
  assertEquals(GRU4REC_DEFAULTS.numLayers, 1);
  assertEquals(modelPreset("gru4rec", "ml-1m"), {
    train: { maxLength: 200 },
    model: { hiddenSize: 64, numLayers: 1, dropoutProb: 0.2 },
  });
  for (const dataset of ["amazon-beauty", "amazon-video-games"]) {
    assertEquals(modelPreset("gru4rec", dataset)?.train, { maxLength: 50 }, dataset);
    assertEquals(modelPreset("gru4rec", dataset)?.model.dropoutProb, 0.2, dataset);
  }
  assertEquals(Object.keys(entry.presets).sort(), Object.keys(MAMBA4REC_PRESETS).sort());
  for (
    const [key, value] of [["hiddenSize", 513], ["dropoutProb", 1], ["dState", 4], ["numItems", 1]]
  ) {
    const e = assertThrows(
      () => entry.config({ numItems: 10, [key as string]: value }),
      ConfigError,
    );
    assertEquals(e.key, key, e.message);
  }
});

Deno.test("gru4rec initialisation: xavier_normal_ embedding, xavier_uniform_ first GRU layer, PyTorch's defaults elsewhere", async () => {
  const numItems = 1500, E = 64, H = 48;
  const model = createModel("gru4rec", numItems, { embeddingSize: E, hiddenSize: H, numLayers: 2 });
  const names = model.params.entries().map(([name]) => name);
  assertEquals(names, [
    "item_embedding.weight",
    "gru_layers.weight_ih_l0",
    "gru_layers.weight_hh_l0",
    "gru_layers.weight_ih_l1",
    "gru_layers.weight_hh_l1",
    "dense.weight",
    "dense.bias",
  ]);
  const values = (await readTensors(model.params.list())) as Float32Array[];
  const emb = values[0];
  const std = Math.sqrt(emb.reduce((s, v) => s + v * v, 0) / emb.length);
  assertAlmostEquals(std, Math.sqrt(2 / (numItems + E)), 0.02 * Math.sqrt(2 / (numItems + E)));
  const bounds = [
    Math.sqrt(6 / (3 * H + E)),
    Math.sqrt(6 / (3 * H + H)),
    1 / Math.sqrt(H),
    1 / Math.sqrt(H),
    1 / Math.sqrt(H),
    1 / Math.sqrt(H),
  ];
  bounds.forEach((bound, i) => {
    const max = Math.max(...Array.from(values[i + 1], Math.abs));
    assert(max <= bound && max > 0.9 * bound, `${names[i + 1]}: max |w| ${max}, bound ${bound}`);
  });
});
