import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { backward, noGrad, zeroGrad } from "../ops/core/autograd.ts";
import { runtime } from "../ops/core/runtime.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { heightOffset } from "../ops/sequence/caser/layout.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { ConfigError } from "../models/config.ts";
import { CASER_DEFAULTS } from "../models/caser.ts";
import type { PaddedTrainingBatch } from "../models/model.ts";
import {
  createModel,
  datasetSizes,
  findModel,
  MAMBA4REC_PRESETS,
  modelPreset,
} from "../models/registry.ts";
import { type CaserRefBatch, caserReference, type RefParams } from "./caser_reference.ts";
import { checkParameterGradients, randomPaddedBatch } from "./model_gradients.ts";
import { assertClose, freshSeed, makeRng } from "./util.ts";

/** A random padded batch of 3 windows of length L with a user per row. */
function randomBatch(rng: () => number, L: number, numItems: number, numUsers: number) {
  const batch = randomPaddedBatch(rng, L, numItems);
  const users = Int32Array.from({ length: 3 }, () => 1 + Math.floor(rng() * (numUsers - 1)));
  return { ...batch, users } satisfies CaserRefBatch & PaddedTrainingBatch;
}

Deno.test("caser: training loss (with the norms), representation and every parameter's gradient match a float64 reference", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 11, numUsers = 6, L = 3, E = 4, nh = 2;
  // A large regularisation weight, so that the norms' gradients show against the cross-entropy's.
  const regWeight = 0.05;
  const model = createModel("caser", { numItems, numUsers }, {
    embeddingSize: E,
    maxLength: L,
    nv: 2,
    nh,
    dropoutProb: 0,
    regWeight,
    seed: seed % 100000,
  });
  const batch = randomBatch(rng, L, numItems, numUsers);
  const entries = model.params.entries();
  const { loss, h } = tidy(() => {
    const loss = model.trainingLoss!(batch, { seed: 0, epoch: 0, batch: 0 });
    backward(loss);
    const h = noGrad(() =>
      model.forward(
        uploadSequences(batch.items, batch.lengths, batch.size, L, batch.users),
        false,
      )
    );
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
  const config = { nh, regWeight };
  const want = caserReference(ref, batch, config);
  assert(want.loss - want.crossEntropy > 1e-3, `seed ${seed}: the norms hardly count`);
  assertClose([host[0][0]], [want.loss], 1e-5, `seed ${seed}: loss`);
  assertClose(host[1], want.h, 1e-4, `seed ${seed}: representation`);
  // The lookup gives the PAD row no gradient (padding_idx 0): hold it fixed there.
  const lookupPad = ref.get("item_embedding.weight")!.data.slice(0, E);
  checkParameterGradients({
    seed,
    rng,
    names: entries.map(([name]) => name),
    grads: host.slice(2 + entries.length),
    refData: (name) => ref.get(name)!.data,
    lossOf: () => caserReference(ref, batch, config, lookupPad).loss,
  });
  zeroGrad(model.params.list());
});

Deno.test("caser reads pads through the PAD row only: a padded row moves with it, a full row does not, another id with the same row changes nothing", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 40, numUsers = 5, E = 6, L = 5, B = 3;
  const model = createModel("caser", { numItems, numUsers }, {
    embeddingSize: E,
    maxLength: L,
    seed: seed % 100000,
  });
  const batch = randomBatch(rng, L, numItems, numUsers); // row 0 is full, row 1 padded
  // Large biases keep both ReLUs (after fc1 and fc2) open, so that an input that moves the
  // pre-activations moves the output (a small random model may give a row of zeros either way).
  for (const name of ["fc1.bias", "fc2.bias"]) {
    const bias = model.params.get(name);
    runtime().write(bias.storage, new Float32Array(bias.size).fill(10));
  }
  const run = (items: Int32Array) =>
    tidy(() => model.forward(uploadSequences(items, batch.lengths, B, L, batch.users), false));
  const [base] = await readTensors([run(batch.items)]);
  const row = (a: ArrayLike<number>, b: number) => Array.from(a).slice(b * E, (b + 1) * E);

  // RecBole feeds pads their (random) PAD embedding: another PAD row moves the padded rows.
  const [table] = await readTensors([model.itemTable]);
  const noisy = Float32Array.from(table);
  for (let i = 0; i < E; i++) noisy[i] += 0.5 + rng();
  runtime().write(model.itemTable.storage, noisy);
  const [moved] = await readTensors([run(batch.items)]);
  assertEquals(row(moved, 0), row(base, 0), `seed ${seed}: the full row moved with the PAD row`);
  assertNotEquals(row(moved, 1), row(base, 1), `seed ${seed}: the padded row ignored the PAD row`);

  // An id whose row equals the PAD row, in place of the pads: the same outputs, bit for bit.
  const stand = [...Array(numItems).keys()].findLast((id) => !batch.items.includes(id))!;
  const same = Float32Array.from(table);
  same.set(table.subarray(0, E), stand * E);
  runtime().write(model.itemTable.storage, same);
  const replaced = batch.items.map((id) => (id === 0 ? stand : id));
  const [swapped] = await readTensors([run(replaced)]);
  runtime().write(model.itemTable.storage, Float32Array.from(table));
  assertEquals(Array.from(swapped), Array.from(base), `seed ${seed}: pad ids read otherwise`);
});

Deno.test("caser refuses windows of another length and batches without users, naming what to do", () => {
  const model = createModel("caser", { numItems: 9, numUsers: 4 }, {
    embeddingSize: 4,
    maxLength: 3,
  });
  tidy(() => {
    const items = Tensor.from(new Int32Array(8).fill(1), [2, 4], "i32");
    const users = Tensor.from(Int32Array.of(1, 2), [2], "i32");
    const e = assertThrows(() => model.forward({ items, users }, false), ConfigError);
    assertEquals(e.key, "maxLength");
    assert(e.message.includes("windows of 3 items"), e.message);
    const fits = Tensor.from(new Int32Array(6).fill(1), [2, 3], "i32");
    assertThrows(() => model.forward({ items: fits }, false), Error, "inputs.users is missing");
  });
});

Deno.test("caser config: RecBole's defaults, the Mamba4Rec paper's presets, the user count, refusals naming the key", () => {
  const entry = findModel("Caser");
  assertEquals(entry.layout, "padded");
  assertEquals(entry.lastItemOnly, true);
  assertEquals(entry.config({ numItems: 10, numUsers: 7 }), {
    ...CASER_DEFAULTS,
    numItems: 10,
    numUsers: 7,
  });
  assertEquals(CASER_DEFAULTS.embeddingSize, 64);
  assertEquals(CASER_DEFAULTS.dropoutProb, 0.4);
  assertEquals(CASER_DEFAULTS.regWeight, 1e-4);
  assertEquals([CASER_DEFAULTS.nv, CASER_DEFAULTS.nh], [4, 8]);
  // Mamba4Rec's config sets dropout_prob 0.2, which is Caser's own key; L sizes the filters.
  assertEquals(modelPreset("caser", "ml-1m"), {
    train: { maxLength: 200 },
    model: { dropoutProb: 0.2, maxLength: 200 },
  });
  assertEquals(modelPreset("caser", "amazon-beauty"), {
    train: { maxLength: 50 },
    model: { dropoutProb: 0.2, maxLength: 50 },
  });
  assertEquals(Object.keys(entry.presets).sort(), Object.keys(MAMBA4REC_PRESETS).sort());
  // Only a model with a user table takes the user count.
  assertEquals(datasetSizes(entry, { numItems: 5, numUsers: 3 }), { numItems: 5, numUsers: 3 });
  assertEquals(datasetSizes(findModel("sasrec"), { numItems: 5, numUsers: 3 }), { numItems: 5 });
  const noUsers = assertThrows(() => createModel("caser", 10), ConfigError);
  assertEquals(noUsers.key, "numUsers", noUsers.message);
  for (
    const [key, value] of [
      ["nv", 0],
      ["nh", 1.5],
      ["regWeight", -1],
      ["dropoutProb", 1],
      ["maxLength", 0],
      ["numUsers", 1],
      ["hiddenSize", 64],
    ]
  ) {
    const e = assertThrows(
      () => entry.config({ numItems: 10, numUsers: 7, [key as string]: value }),
      ConfigError,
    );
    assertEquals(e.key, key, e.message);
  }
});

Deno.test("caser initialisation: N(0, 1/E) embeddings, xavier_normal_ Linear weights with zero biases, U(±1/√fan_in) convolutions per height", async () => {
  const numItems = 900, numUsers = 700, E = 32, L = 6, nv = 4, nh = 8;
  const model = createModel("caser", { numItems, numUsers }, {
    embeddingSize: E,
    maxLength: L,
    nv,
    nh,
  });
  const shapes = model.params.entries().map(([name, t]) => [name, t.shape]);
  const joined = nv * E + nh * L;
  const packed = nh * E * L * (L + 1) / 2;
  assertEquals(shapes, [
    ["user_embedding.weight", [numUsers, E]],
    ["item_embedding.weight", [numItems, E]],
    ["conv_v.weight", [nv, L]],
    ["conv_v.bias", [nv]],
    ["conv_h.weight", [packed]],
    ["conv_h.bias", [L, nh]],
    ["fc1.weight", [E, joined]],
    ["fc1.bias", [E]],
    ["fc2.weight", [E, 2 * E]],
    ["fc2.bias", [E]],
  ]);
  const v = (await readTensors(model.params.list())) as Float32Array[];
  const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  const maxAbs = (a: Float32Array) => Math.max(...Array.from(a, Math.abs));
  const near = (got: number, want: number, what: string) =>
    assert(Math.abs(got - want) < 0.05 * want, `${what}: ${got}, want ${want}`);
  near(rms(v[0]), 1 / E, "user_embedding RMS");
  near(rms(v[1]), 1 / E, "item_embedding RMS");
  near(rms(v[6]), Math.sqrt(2 / (E + joined)), "fc1.weight RMS");
  near(rms(v[8]), Math.sqrt(2 / (E + 2 * E)), "fc2.weight RMS");
  assertEquals(maxAbs(v[7]) + maxAbs(v[9]), 0, "Linear biases");
  const bounded = (a: Float32Array, bound: number, what: string) =>
    assert(
      maxAbs(a) <= bound && maxAbs(a) > 0.2 * bound,
      `${what}: max ${maxAbs(a)}, bound ${bound}`,
    );
  bounded(v[2], 1 / Math.sqrt(L), "conv_v.weight");
  bounded(v[3], 1 / Math.sqrt(L), "conv_v.bias");
  const shape = { length: L, dim: E, filters: nh };
  for (let h = 1; h <= L; h++) {
    const bound = 1 / Math.sqrt(h * E);
    const block = v[4].subarray(heightOffset(shape, h), heightOffset(shape, h + 1));
    bounded(block, bound, `conv_h height ${h} weight`);
    bounded(v[5].subarray((h - 1) * nh, h * nh), bound, `conv_h height ${h} bias`);
  }
});
