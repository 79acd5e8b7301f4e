/**
 * The matrix-product count of an SSD4Rec training epoch against hand counts, the epoch's tokens
 * against the batches, the floor, and both in `deno task efficiency`'s measurement and file.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import { buildSequentialDataset, generateSyntheticKuaiRand } from "../data/mod.ts";
import { trainConfig } from "../models/config.ts";
import { createModel } from "../models/registry.ts";
import { SSD4REC_DEFAULTS } from "../models/ssd4rec.ts";
import { readEfficiencyMeasurements } from "../run/efficiency_file.ts";
import { measureEfficiency } from "../run/efficiency_measure.ts";
import {
  epochProjections,
  packedEpochSize,
  projectionFloor,
  ssd4recDefinedProjectionFlops,
  ssd4recProjectionFlops,
} from "../run/projection_flops.ts";
import { main } from "../scripts/efficiency.ts";
import { withTempDir } from "./temp_files.ts";
import { freshSeed } from "./util.ts";

/** d 4, d_inner 8, 4 heads of 2, N 3: the input projection is 4 → 2·8 + 2·3 + 4 = 26 wide. */
const TINY = { hiddenSize: 4, expand: 2, headDim: 2, dState: 3 };

Deno.test("projection FLOPs: two layers, both directions, the last layer at the last tokens", () => {
  const counted = ssd4recProjectionFlops({ ...TINY, numLayers: 2, beta: 0.1 }, {
    tokens: 10,
    samples: 3,
  });
  // Layer 1, every token: in 2·10·4·26 = 2080 (once: the reversed direction reverses its rows),
  // out 2 dirs × 2·10·8·4 = 1280, FFN 2·10·4·16 + 2·10·16·4 = 2560. Layer 2: in 2·10·4·18 +
  // 2 × 2·3·4·8 = 1824 (xBC and dt at every token for the convolution and the scan, each
  // direction's gate, 8 columns, at the 3 last tokens), out on the last tokens 2 × 2·3·8·4 = 384,
  // FFN 2·3·4·16 + 2·3·16·4 = 768.
  assertEquals(counted.forwardFlops, {
    inProjection: 2080 + 1824,
    outProjection: 1280 + 384,
    feedForward: 2560 + 768,
  });
  assertEquals(counted.flops, 3 * (3904 + 1664 + 3328));
  assertEquals([counted.tokens, counted.samples], [10, 3]);
});

Deno.test("projection FLOPs: β = 0 runs one direction; one layer is the last layer", () => {
  const counted = ssd4recProjectionFlops({ ...TINY, numLayers: 1, beta: 0 }, {
    tokens: 10,
    samples: 3,
  });
  // in 2·10·4·18 + 2·3·4·8 = 1632, out 2·3·8·4 = 192, FFN 2·3·4·16 + 2·3·16·4 = 768.
  assertEquals(counted.forwardFlops, { inProjection: 1632, outProjection: 192, feedForward: 768 });
  assertEquals(counted.flops, 3 * 2592);
  // SSD4Rec's sizes: in_proj 256 → 1184 (the official Mamba2's), out_proj 512 → 256; one token
  // is its segment's last, so the gate too is projected there.
  const official = ssd4recProjectionFlops({ ...SSD4REC_DEFAULTS, numLayers: 1, beta: 0 }, {
    tokens: 1,
    samples: 1,
  });
  assertEquals(official.forwardFlops, {
    inProjection: 2 * 256 * 1184,
    outProjection: 2 * 512 * 256,
    feedForward: 2 * 2 * 256 * 1024,
  });
  assertThrows(
    () => ssd4recProjectionFlops({ ...TINY, numLayers: 1, beta: 0 }, { tokens: 1.5, samples: 1 }),
    RangeError,
    "'tokens'",
  );
});

Deno.test("projection FLOPs as the model defines them: each direction and every token", () => {
  // Per layer, each direction: in 2·10·4·26 = 2080, out 2·10·8·4 = 640; the FFN 2560 once.
  const both = { ...TINY, numLayers: 2, beta: 0.1 };
  assertEquals(ssd4recDefinedProjectionFlops(both, 10), 3 * 2 * (2 * (2080 + 640) + 2560));
  assertEquals(
    ssd4recDefinedProjectionFlops({ ...both, beta: 0 }, 10),
    3 * 2 * (2080 + 640 + 2560),
  );
  // Never less than the products this code computes.
  const computed = ssd4recProjectionFlops(both, { tokens: 10, samples: 3 }).flops;
  assert(ssd4recDefinedProjectionFlops(both, 10) > computed);
  assertThrows(() => ssd4recDefinedProjectionFlops(both, -1), RangeError, "'tokens'");
});

Deno.test("projection floor: the work at the rate, and the epoch against it", () => {
  const floor = projectionFloor(6e13, 40, 3);
  assertAlmostEquals(floor.seconds, 1.5, 1e-12);
  assertAlmostEquals(floor.epochRatio, 2, 1e-12);
  assertEquals(floor.matmulTflops, 40);
  for (const rate of [0, -1, NaN, Infinity]) {
    assertThrows(() => projectionFloor(1, rate, 1), RangeError, "deno task bench --only matmul");
  }
});

Deno.test("packed epoch size: the tokens of the trainer's batches, whole, cut or padded", () => {
  const seed = freshSeed() % 100_000;
  const loaded = generateSyntheticKuaiRand({ users: 30, items: 12, interactions: 400, seed });
  const dataset = buildSequentialDataset(loaded);
  const { offsets } = dataset;
  const { users, targetPositions } = dataset.split.train;
  const prefix = (k: number) => targetPositions[k] - offsets[users[k]];
  const sum = (f: (k: number) => number) => users.reduce((s, _, k) => s + f(k), 0);
  const model = createModel("ssd4rec", dataset.numItems, { ...TINY, numLayers: 2, seed });
  const at = `seed ${seed}`;
  try {
    const base = { batchSize: 64, maskRatio: 0.2, seed };
    const whole = packedEpochSize(model, dataset, trainConfig(base));
    assertEquals(whole, { tokens: sum(prefix), samples: users.length }, at);
    const cut = packedEpochSize(
      model,
      dataset,
      trainConfig({ ...base, varLen: false, maxLength: 4 }),
    );
    assertEquals(cut.tokens, sum((k) => Math.min(prefix(k), 4)), at);
    const padded = packedEpochSize(model, dataset, trainConfig({ ...base, padTo: 6 }));
    assertEquals(padded.tokens, 6 * users.length, at);
    const projections = epochProjections(model, dataset, trainConfig(base), 2, 1e-6);
    const expected = ssd4recProjectionFlops({ ...TINY, numLayers: 2, beta: 0.1 }, whole);
    assertEquals(projections?.flops, expected.flops, at);
    assertAlmostEquals(projections!.floor!.seconds, expected.flops / 1e6, 1e-9, at);
    assertEquals(epochProjections(model, dataset, trainConfig(base), 2)?.floor, undefined, at);
  } finally {
    for (const p of model.params.list()) p.dispose();
  }
  const sasrec = createModel("sasrec", dataset.numItems, { hiddenSize: 4, maxLength: 5 });
  try {
    const config = trainConfig({ maxLength: 5 });
    assertEquals(epochProjections(sasrec, dataset, config, 1, 10), undefined);
    assertThrows(() => packedEpochSize(sasrec, dataset, config), RangeError, "padded batches");
  } finally {
    for (const p of sasrec.params.list()) p.dispose();
  }
});

Deno.test("efficiency: an SSD4Rec measurement stores its epoch's projection work and floor; the CLI takes --matmul-tflops", async () => {
  const seed = freshSeed() % 1000;
  await withTempDir("projection-flops-", async (dir) => {
    const folder = join(dir, "datasets");
    await Deno.mkdir(folder);
    const lines: string[] = [];
    for (let u = 1; u <= 30; u++) {
      for (let t = 0; t < 8; t++) lines.push(`${u} ${((u * 5 + 3 * t + seed) % 12) + 1}`);
    }
    await Deno.writeTextFile(join(folder, "ml-1m.txt"), lines.join("\n") + "\n");
    const at = `seed ${seed}`;
    const out = join(dir, "out");
    const args = ["--models", "ssd4rec", "--dataset", join(folder, "ml-1m.txt"), "--out", out];
    const quick = [
      "--max-users",
      "30",
      "--max-steps",
      "1",
      "--warmup-steps",
      "1",
      "--repeats",
      "1",
    ];
    const train = ["--batch-size", "64", "--eval-batch-size", "32"];
    assertEquals(await main([...args, ...quick, ...train, "--matmul-tflops", "0.5"]), 0, at);
    const [m] = await readEfficiencyMeasurements(out);
    const p = m.projections!;
    assert(p !== undefined, `${at}: no projections`);
    // 30 users of 8 interactions: 5 training prefixes each, of 1 … 5 items.
    assertEquals([p.samples, p.tokens], [30 * 5, 30 * 15], at);
    const config = m.modelConfig as typeof SSD4REC_DEFAULTS;
    assertEquals(p.flops, ssd4recProjectionFlops(config, p).flops, at);
    assertEquals(p.floor?.matmulTflops, 0.5, at);
    assertAlmostEquals(p.floor!.seconds, p.flops / 0.5e12, 1e-15, at);
    assertAlmostEquals(p.floor!.epochRatio, m.training.secondsPerEpoch / p.floor!.seconds, 1e-9);
    assertStringIncludes(m.command, "--matmul-tflops 0.5");
    await assertRejects(
      () => measureEfficiency({ model: "ssd4rec", dataset: "ml-1m", matmulTflops: 0 }),
      RangeError,
      "deno task bench --only matmul",
    );
    assertEquals(await main([...args, ...quick, "--matmul-tflops", "fast"]), 2);
  });
});
