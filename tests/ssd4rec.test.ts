/**
 * SSD4Rec on packed batches: loss, representations and every parameter's gradient against the
 * float64 reference; packing invariance; the backward direction reversing within segments; the
 * Mamba-2 block alone; the initialisation and parameter count; masking as a training-only
 * property of the batches.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  buildSequentialDataset,
  type PackedBatch,
  packedBatches,
  parseInteractions,
  SeededRandom,
} from "../data/mod.ts";
import { Mamba2Block } from "../models/mamba2_block.ts";
import { ParameterSet } from "../models/parameters.ts";
import { packedInputs, SSD4Rec, type SSD4RecConfig, ssd4recConfig } from "../models/ssd4rec.ts";
import {
  backward,
  itemCrossEntropy,
  mul,
  noGrad,
  readTensors,
  reverseSegments,
  runtime,
  sumAll,
  Tensor,
  tidy,
  zeroGrad,
} from "../ops/mod.ts";
import type { RefParams } from "./mamba4rec_reference.ts";
import { mamba2BlockReference, ssd4recReference } from "./ssd4rec_reference.ts";
import { assertClose, freshSeed, makeRng, randn, relError } from "./util.ts";

const NUM_ITEMS = 41;
/** Tiny sizes: d 8, N 4, P 2, d_inner 16, 8 heads; chunks of 4 cut the longer segments. */
const TINY = {
  numItems: NUM_ITEMS,
  hiddenSize: 8,
  dState: 4,
  headDim: 2,
  expand: 2,
  dConv: 4,
  dropoutProb: 0,
  chunkSize: 4,
};

function tinyModel(seed: number, overrides: Record<string, unknown> = {}): SSD4Rec {
  return new SSD4Rec(ssd4recConfig({ ...TINY, seed: seed % 100000, ...overrides }));
}

/**
 * Moves every parameter by N(0, std) noise so that every path (the backward direction included)
 * moves the output well past the comparison tolerance.
 */
function perturb(model: SSD4Rec, rng: () => number, std = 0.2): Promise<void> {
  const entries = model.params.list();
  return readTensors(entries).then((host) =>
    entries.forEach((t, i) => {
      const noise = randn(rng, t.size, std);
      const v = Float32Array.from(host[i], (x, j) => x + noise[j]);
      runtime().write(t.storage, v);
    })
  );
}

/** The histories packed into one row, as `packedBatches` lays them out. */
function packedBatch(histories: number[][], targets: number[]): PackedBatch {
  const B = histories.length;
  const items = Int32Array.from(histories.flat());
  const T = items.length;
  const seqIdx = new Int32Array(T), flipIndex = new Int32Array(T);
  const lastIndex = new Int32Array(B);
  let at = 0;
  histories.forEach((h, b) => {
    const end = at + h.length - 1;
    for (let p = at; p <= end; p++) {
      seqIdx[p] = b;
      flipIndex[p] = at + end - p;
    }
    lastIndex[b] = end;
    at = end + 1;
  });
  return {
    size: B,
    tokens: T,
    items,
    seqIdx,
    lastIndex,
    flipIndex,
    lengths: Int32Array.from(histories, (h) => h.length),
    targets: Int32Array.from(targets),
    users: new Int32Array(B),
    maskedTokens: 0,
  };
}

/**
 * Histories whose ids are all distinct (from 0: a masked token is id 0), so that reading any
 * tokens in another order, or other tokens, changes what a segment sees.
 */
function randomHistories(rng: () => number, lengths: number[]): number[][] {
  const ids = Array.from({ length: NUM_ITEMS }, (_, i) => i);
  let at = 0;
  return lengths.map((n) => {
    for (let i = at; i < at + n; i++) {
      const j = i + Math.floor(rng() * (NUM_ITEMS - i));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    at += n;
    return ids.slice(at - n, at);
  });
}

function randomTargets(rng: () => number, count: number): number[] {
  return Array.from({ length: count }, () => 1 + Math.floor(rng() * (NUM_ITEMS - 1)));
}

/** Parameters as float64 reference parameters. */
async function refParams(params: ParameterSet): Promise<RefParams> {
  const entries = params.entries();
  const host = await readTensors(entries.map(([, t]) => t));
  const ref: RefParams = new Map();
  entries.forEach(([name, t], i) =>
    ref.set(name, { data: Float64Array.from(host[i]), shape: t.shape })
  );
  return ref;
}

function refOptions(c: SSD4RecConfig) {
  return { numLayers: c.numLayers, beta: c.beta, normEmbedding: c.normEmbedding };
}

/** The representations `[B, d]` of an evaluation forward. */
async function represent(model: SSD4Rec, batch: PackedBatch, training = false) {
  const inputs = packedInputs(batch, model.config.chunkSize);
  const h = noGrad(() => tidy(() => model.forward(inputs, training)));
  const [host] = await readTensors([h]);
  h.dispose();
  inputs.dispose();
  return Float64Array.from(host);
}

function row(x: ArrayLike<number>, r: number, d: number): number[] {
  return Array.from({ length: d }, (_, i) => x[r * d + i]);
}

for (const numLayers of [1, 2]) {
  Deno.test(`ssd4rec (${numLayers} layer${numLayers > 1 ? "s" : ""}): loss, representation and every parameter's gradient match a float64 reference`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const model = tinyModel(seed, { numLayers });
    await perturb(model, rng);
    const lengths = [1, 5, 3, 2, 1];
    const batch = packedBatch(randomHistories(rng, lengths), randomTargets(rng, lengths.length));
    const B = batch.size;
    const inputs = packedInputs(batch, model.config.chunkSize);
    const { loss, h } = tidy(() => {
      const h = model.forward(inputs, true);
      const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(batch.targets, [B], "i32"));
      backward(loss);
      return { loss, h };
    });
    inputs.dispose();
    const entries = model.params.entries();
    const missing = entries.filter(([, t]) => !t.grad).map(([name]) => name);
    assertEquals(missing, [], `seed ${seed}: parameters without a gradient`);
    const host = await readTensors([loss, h, ...entries.map(([, t]) => t.grad!)]);
    const ref = await refParams(model.params);
    const options = refOptions(model.config);
    const want = ssd4recReference(ref, batch, options);
    assertClose([host[0][0]], [want.loss], 1e-5, `seed ${seed}: loss`);
    assertClose(host[1], want.h, 1e-4, `seed ${seed}: last-token representation`);

    const lossOf = () => ssd4recReference(ref, batch, options).loss;
    entries.forEach(([name], i) => {
      const g = host[2 + i];
      const p = ref.get(name)!.data;
      const probes = Math.min(4, p.length);
      const fd: number[] = [], gpu: number[] = [];
      for (let k = 0; k < probes; k++) {
        const j = Math.floor(rng() * p.length);
        const old = p[j];
        const eps = 1e-5 * Math.max(1, Math.abs(old));
        p[j] = old + eps;
        const up = lossOf();
        p[j] = old - eps;
        const down = lossOf();
        p[j] = old;
        fd.push((up - down) / (2 * eps));
        gpu.push(g[j]);
      }
      const scale = Math.max(...fd.map(Math.abs));
      if (scale < 1e-7) {
        // A flat direction (e.g. an item row no token and no target uses): tiny on the GPU too.
        assert(
          Math.max(...gpu.map(Math.abs)) < 1e-5,
          `seed ${seed}: ${name} gradient ${gpu} where FD ≈ 0`,
        );
        return;
      }
      const e = relError(gpu, fd);
      assert(
        e < 2e-3,
        `seed ${seed}: ${name} gradient vs finite differences: relative error ${
          e.toExponential(2)
        } (gpu ${gpu}, fd ${fd})`,
      );
    });
    zeroGrad(model.params.list());
  });
}

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

Deno.test("Mamba2Block: matches the float64 block; its reversed run is each segment run reversed alone", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const params = new ParameterSet(seed % 100000);
  const config = { dModel: 8, dState: 4, headDim: 2, dConv: 4, expand: 2, groups: 1 };
  const block = new Mamba2Block(params, "m", config, new SeededRandom(seed));
  const lengths = [1, 6, 2, 5];
  const T = lengths.reduce((a, b) => a + b, 0);
  const batch = packedBatch(lengths.map((n) => Array(n).fill(1)), lengths.map(() => 1));
  const u = randn(rng, T * config.dModel);
  const run = async (b: PackedBatch, values: Float64Array) => {
    const inputs = packedInputs(b, 4);
    const x = Tensor.from(Float32Array.from(values), [1, b.tokens, config.dModel]);
    const [fwd, bwd] = noGrad(() =>
      tidy(
        () => [
          block.forward(x, inputs),
          block.forward(reverseSegments(x, inputs.reversal), inputs),
        ],
      )
    );
    const host = await readTensors([fwd, bwd]);
    for (const t of [x, fwd, bwd]) t.dispose();
    inputs.dispose();
    return host.map((h) => Float64Array.from(h));
  };
  const [fwd, bwd] = await run(batch, u);
  const ref = await refParams(params);
  assertClose(fwd, mamba2BlockReference(ref, "m", u, batch.seqIdx), 1e-4, `seed ${seed}: block`);
  const d = config.dModel;
  let start = 0;
  for (const n of lengths) {
    // The segment reversed, run as a batch of its own.
    const alone = new Float64Array(n * d);
    for (let k = 0; k < n; k++) {
      alone.set(u.subarray((start + n - 1 - k) * d, (start + n - k) * d), k * d);
    }
    const [own] = await run(packedBatch([Array(n).fill(1)], [1]), alone);
    assertClose(
      bwd.subarray(start * d, (start + n) * d),
      own,
      1e-5,
      `seed ${seed}: segment of length ${n} at ${start}, reversed in place vs alone`,
    );
    if (n === 1) {
      assertClose(
        bwd.subarray(start * d, (start + 1) * d),
        fwd.subarray(start * d, (start + 1) * d),
        1e-6,
        `seed ${seed}: one-token segment`,
      );
    }
    start += n;
  }
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
