/**
 * Properties of SSD4Rec on packed batches: a sample's representation independent of the batch
 * it is packed into, the backward direction reversing within segments, the initialisation and
 * parameter count, and masking as a property of the training batches only.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { buildSequentialDataset, packedBatches, parseInteractions } from "../data/mod.ts";
import { packedInputs, SSD4Rec, ssd4recConfig } from "../models/ssd4rec.ts";
import { backward, mul, readTensors, sumAll, Tensor, tidy, zeroGrad } from "../ops/mod.ts";
import {
  packedBatch,
  perturb,
  randomHistories,
  randomTargets,
  refOptions,
  refParams,
  represent,
  row,
  tinyModel,
} from "./ssd4rec_cases.ts";
import { ssd4recReference } from "./ssd4rec_reference.ts";
import { assertClose, freshSeed, makeRng, randn, relError } from "./util.ts";

Deno.test("ssd4rec: a sample's representation does not depend on the batch it is packed into", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const model = tinyModel(seed, { numLayers: 2 });
  await perturb(model, rng);
  // Sample 2 spans three chunks of 4; the samples change places and neighbours.
  const samples = randomHistories(rng, [1, 9, 3, 5, 2]);
  const targets = randomTargets(rng, samples.length);
  const first = [0, 1, 2, 3];
  const second = [3, 4, 1, 0, 2];
  const pick = (order: number[]) =>
    packedBatch(order.map((k) => samples[k]), order.map((k) => targets[k]));
  const d = model.config.hiddenSize;
  const a = await represent(model, pick(first));
  const b = await represent(model, pick(second));
  for (const k of first) {
    assertClose(
      row(b, second.indexOf(k), d),
      row(a, first.indexOf(k), d),
      1e-5,
      `seed ${seed}: sample ${k} (length ${samples[k].length}) packed in two batches`,
    );
  }
});

Deno.test("ssd4rec: the backward direction reverses each segment and is added without reversing back", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // β = 1: the backward direction weighs as much as the forward one, so a wrong reading order
  // moves every representation far past the tolerance (with the shipped 0.1 it may move one
  // short segment's by less than 1%).
  const model = tinyModel(seed, { numLayers: 1, beta: 1 });
  await perturb(model, rng);
  const lengths = [1, 5, 3, 1, 4];
  const batch = packedBatch(randomHistories(rng, lengths), randomTargets(rng, lengths.length));
  const got = await represent(model, batch);
  const ref = await refParams(model.params);
  const options = refOptions(model.config);
  const d = model.config.hiddenSize;
  const T = batch.tokens;
  const variant = (flipIndex: Int32Array, beta = options.beta) =>
    ssd4recReference(ref, { ...batch, flipIndex }, { ...options, beta }).h;
  assertClose(got, variant(batch.flipIndex), 1e-4, `seed ${seed}: reversal within segments`);
  const unreversed = variant(Int32Array.from({ length: T }, (_, t) => t));
  const rowReversed = variant(Int32Array.from({ length: T }, (_, t) => T - 1 - t));
  const onlyForward = variant(batch.flipIndex, 0);
  lengths.forEach((n, b) => {
    const what = `seed ${seed}: sample ${b} (length ${n})`;
    const mine = row(got, b, d);
    // A one-token segment reversed is itself: its backward pass equals its forward pass.
    if (n === 1) assertClose(mine, row(unreversed, b, d), 1e-4, `${what} against no reversal`);
    else {
      const e = relError(mine, row(unreversed, b, d));
      assert(e > 1e-2, `${what}: the same as without reversal (relative difference ${e})`);
    }
    const e = relError(mine, row(rowReversed, b, d));
    assert(e > 1e-2, `${what}: the same as reversing the whole row (relative difference ${e})`);
    const f = relError(mine, row(onlyForward, b, d));
    assert(f > 1e-2, `${what}: β changes nothing (relative difference ${f})`);
  });
  // β = 0 runs the forward direction only.
  const plain = tinyModel(seed, { numLayers: 1, beta: 0 });
  await perturb(plain, rng);
  const plainRef =
    ssd4recReference(await refParams(plain.params), batch, refOptions(plain.config)).h;
  assertClose(await represent(plain, batch), plainRef, 1e-4, `seed ${seed}: β = 0`);
});

Deno.test("ssd4rec: initial values as Mamba-2 and SSD4Rec set them; the official parameter count", async () => {
  const numItems = 100;
  const model = new SSD4Rec(ssd4recConfig({ numItems }));
  const entries = model.params.entries();
  const counts = new Map<string, number>();
  for (const [name, t] of entries) {
    const key = name.replace(/^ssd_layers\.\d+\./, "");
    counts.set(key, (counts.get(key) ?? 0) + t.size);
  }
  const layer = (key: string) => counts.get(key)! / 2;
  assertEquals(
    layer("mamba.in_proj.weight") + layer("mamba.conv1d.weight") + layer("mamba.conv1d.bias") +
      layer("mamba.dt_bias") + layer("mamba.A_log") + layer("mamba.D") +
      layer("mamba.norm.weight") + layer("mamba.out_proj.weight"),
    437_984,
    "parameters per Mamba2 block",
  );
  assertEquals(model.params.count(), 1_929_152 + numItems * 256 + 512, "parameters in all");
  const host = await readTensors(entries.map(([, t]) => t));
  const values = (name: string) => host[entries.findIndex(([n]) => n === name)];
  const within = (name: string, lo: number, hi: number, f = (v: number) => v) =>
    values(name).forEach((v) =>
      assert(f(v) >= lo && f(v) <= hi, `${name}: ${f(v)} outside [${lo}, ${hi}]`)
    );
  for (const i of [0, 1]) {
    const m = `ssd_layers.${i}.mamba`;
    within(`${m}.conv1d.weight`, -0.5, 0.5);
    within(`${m}.conv1d.bias`, -0.5, 0.5);
    within(`${m}.A_log`, 0, Math.log(16) + 1e-6);
    within(`${m}.dt_bias`, 0.001 - 1e-6, 0.1 + 1e-6, (v) => Math.log1p(Math.exp(v)));
    within(`${m}.D`, 1, 1);
    within(`${m}.norm.weight`, 1, 1);
    const w = values(`${m}.in_proj.weight`);
    const std = Math.sqrt(Array.from(w).reduce((s, v) => s + v * v, 0) / w.length);
    assert(Math.abs(std - 0.02) < 0.001, `${m}.in_proj.weight: std ${std}, want 0.02`);
  }
  // A_log and dt_bias differ between the layers' blocks.
  assert(
    values("ssd_layers.0.mamba.A_log").some((v, i) => v !== values("ssd_layers.1.mamba.A_log")[i]),
  );
});

Deno.test("ssd4rec: masking to id 0 comes from training batches only; id 0 is learned", async () => {
  const seed = freshSeed();
  const lines = ["a i1", "a i2", "a i3", "a i4", "a i5", "a i6", "b i7", "b i8", "b i9", "b i1"];
  const data = buildSequentialDataset(parseInteractions(lines.join("\n"), "hand.txt"), {
    minUserInteractions: 1,
    minItemInteractions: 1,
  });
  const model = tinyModel(seed, { numItems: data.numItems, numLayers: 1 });
  const [masked] = [...packedBatches(data, { maskRatio: 1, shuffle: false })];
  assert(masked.items.every((v) => v === 0), `seed ${seed}: ρ = 1 masks every training token`);
  const [valid] = [...packedBatches(data, { split: "valid" })];
  assertEquals(valid.maskedTokens, 0);
  assert(valid.items.every((v) => v !== 0), `seed ${seed}: evaluation tokens are never masked`);
  assertThrows(() => packedBatches(data, { split: "valid", maskRatio: 0.5 }), RangeError);
  // The model masks nothing itself: with dropout 0, training and evaluation forwards agree.
  assertEquals(await represent(model, valid, true), await represent(model, valid, false));
  // Masked tokens read row 0 of the embedding, which learns (no padding index): a loss that
  // reaches the table only through the lookup gives row 0 a gradient.
  const inputs = packedInputs(masked, model.config.chunkSize);
  const weights = randn(makeRng(seed), masked.size * model.config.hiddenSize);
  tidy(() => {
    const h = model.forward(inputs, true);
    backward(sumAll(mul(h, Tensor.from(Float32Array.from(weights), h.shape))));
  });
  inputs.dispose();
  const [grad] = await readTensors([model.itemTable.grad!]);
  const d = model.config.hiddenSize;
  const row0 = Array.from(grad.subarray(0, d));
  assert(row0.some((v) => v !== 0), `seed ${seed}: embedding row 0 got no gradient`);
  zeroGrad(model.params.list());
});
