import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import {
  buildSequentialDataset,
  generateSyntheticKuaiRand,
  historyLengthSummary,
  listDatasets,
  loadDatasetWithInfo,
  type LoadedInteractions,
  resolveDatasetSource,
  SYNTHETIC_KUAIRAND_NAME,
  syntheticHistoryLengths,
  syntheticItemCounts,
  syntheticKuaiRandShape,
} from "../data/mod.ts";
import { planRun } from "../run/setup.ts";

/** KuaiRand as SSD4Rec's official code counts it (the spec's dataset table and section 2.1). */
const KUAIRAND = {
  users: 23_951,
  items: 7_111,
  interactions: 1_134_420,
  trainSamples: 1_062_567,
  medianLength: 34,
  maxLength: 809,
  meanSegment: 45.4,
};

/** A small shape for fast checks: 60 users, 25 items, 900 interactions. */
const SMALL = { users: 60, items: 25, interactions: 900 } as const;

/** Each user's history length in a loaded table (users are contiguous, in order). */
function lengthsOf(loaded: LoadedInteractions): Int32Array {
  const users = loaded.table.getChild("user")!.toArray() as Int32Array;
  const lengths = new Int32Array(loaded.userTokens.length - 1);
  for (const u of users) lengths[u - 1]++;
  return lengths;
}

/** Interactions of every item id in a loaded table (index 0, PAD, unused). */
function itemCountsOf(loaded: LoadedInteractions): Int32Array {
  const items = loaded.table.getChild("item")!.toArray() as Int32Array;
  const counts = new Int32Array(loaded.itemTokens.length);
  for (const v of items) counts[v]++;
  return counts;
}

Deno.test("synthetic KuaiRand: KuaiRand's counts, lengths and training samples, and the 5-core filter removes nothing", () => {
  const start = performance.now();
  const loaded = generateSyntheticKuaiRand();
  const dataset = buildSequentialDataset(loaded, { name: SYNTHETIC_KUAIRAND_NAME });
  const seconds = (performance.now() - start) / 1000;
  const s = dataset.statistics;
  assertEquals([s.rawUsers, s.rawItems, s.rawInteractions], [
    KUAIRAND.users,
    KUAIRAND.items,
    KUAIRAND.interactions,
  ]);
  assertEquals([s.users, s.items, s.interactions, s.filterRounds], [
    KUAIRAND.users,
    KUAIRAND.items,
    KUAIRAND.interactions,
    0,
  ]);
  assertEquals(s.trainSamples, KUAIRAND.interactions - 3 * KUAIRAND.users);
  assertEquals(s.trainSamples, KUAIRAND.trainSamples);
  assertEquals(s.minLength, 5);
  assert(s.maxLength <= KUAIRAND.maxLength && s.maxLength >= 700, `max length ${s.maxLength}`);
  const summary = historyLengthSummary(lengthsOf(loaded));
  assert(Math.abs(summary.median - KUAIRAND.medianLength) <= 1, `median ${summary.median}`);
  assertAlmostEquals(summary.mean, 47.36, 0.01);
  assertEquals(summary.trainSamples, KUAIRAND.trainSamples);
  // The mean history of the training samples, from the split itself: each sample's target
  // position minus its user's first position.
  const { users, targetPositions } = dataset.split.train;
  let tokens = 0;
  for (let k = 0; k < users.length; k++) tokens += targetPositions[k] - dataset.offsets[users[k]];
  const meanPrefix = tokens / users.length;
  assertAlmostEquals(meanPrefix, summary.meanTrainPrefix, 1e-9);
  assert(
    Math.abs(meanPrefix - KUAIRAND.meanSegment) <= 3,
    `mean training prefix ${meanPrefix.toFixed(2)}, KuaiRand's ${KUAIRAND.meanSegment}`,
  );
  assert(s.source.includes("synthetic") && s.name.includes("synthetic"), s.source);
  assert(seconds < 30, `the full dataset took ${seconds.toFixed(1)} s`);
});

Deno.test("synthetic KuaiRand: the same seed gives the same interactions, another seed others", () => {
  for (const seed of [1, 2, 77]) {
    const a = generateSyntheticKuaiRand({ ...SMALL, seed });
    const b = generateSyntheticKuaiRand({ ...SMALL, seed });
    const other = generateSyntheticKuaiRand({ ...SMALL, seed: seed + 1 });
    for (const column of ["user", "item"]) {
      const values = (t: LoadedInteractions) => Array.from(t.table.getChild(column)!.toArray());
      assertEquals(values(a), values(b), `seed ${seed}, column ${column}`);
    }
    assertEquals(a.itemTokens, b.itemTokens, `seed ${seed}`);
    const items = (t: LoadedInteractions) =>
      Array.from(t.table.getChild("item")!.toArray(), (v) => t.itemTokens[v as number]);
    assertNotEquals(items(a), items(other), `seeds ${seed} and ${seed + 1}`);
  }
});

Deno.test("synthetic KuaiRand: small shapes keep their exact counts and bounds, and nothing is filtered", () => {
  for (const seed of [3, 4, 5, 2020]) {
    const shape = { ...SMALL, seed, minLength: 5, maxLength: 40 };
    const loaded = generateSyntheticKuaiRand(shape);
    const lengths = lengthsOf(loaded);
    assertEquals(lengths.length, SMALL.users, `seed ${seed}`);
    assertEquals(lengths.reduce((a, b) => a + b, 0), SMALL.interactions, `seed ${seed}`);
    assert(lengths.every((n) => n >= 5 && n <= 40), `seed ${seed}: lengths ${lengths}`);
    const counts = itemCountsOf(loaded).subarray(1);
    assertEquals(counts.length, SMALL.items, `seed ${seed}`);
    assert(counts.every((c) => c >= 5), `seed ${seed}: item counts ${counts}`);
    const dataset = buildSequentialDataset(loaded);
    const s = dataset.statistics;
    assertEquals([s.users, s.items, s.interactions, s.filterRounds], [
      SMALL.users,
      SMALL.items,
      SMALL.interactions,
      0,
    ], `seed ${seed}`);
    assertEquals(s.trainSamples, SMALL.interactions - 3 * SMALL.users, `seed ${seed}`);
  }
});

Deno.test("synthetic KuaiRand: item counts fall with rank, sum to the total and keep the floor", () => {
  const shape = syntheticKuaiRandShape({ items: 100, interactions: 5_000, users: 200 });
  const counts = syntheticItemCounts(shape);
  assertEquals(counts.reduce((a, b) => a + b, 0), 5_000);
  for (let r = 1; r < counts.length; r++) {
    assert(counts[r] <= counts[r - 1] + 1, `rank ${r + 1}: ${counts[r]} after ${counts[r - 1]}`);
  }
  assert(counts[0] > 3 * counts[99], `most popular ${counts[0]}, least ${counts[99]}`);
  // With every interaction at the floor there is nothing to share out.
  const flat = syntheticItemCounts(
    syntheticKuaiRandShape({ items: 10, interactions: 50, users: 10 }),
  );
  assertEquals(Array.from(flat), new Array(10).fill(5));
});

Deno.test("synthetic KuaiRand: lengths are clipped, then adjusted to the exact total", () => {
  // σ 0 puts every draw at the median; the total forces some users above it.
  const shape = syntheticKuaiRandShape({
    users: 10,
    interactions: 345,
    medianLength: 34,
    lengthSigma: 0,
    minLength: 5,
    maxLength: 35,
    items: 10,
  });
  const lengths = syntheticHistoryLengths(shape);
  assertEquals(Array.from(lengths).sort(), [34, 34, 34, 34, 34, 35, 35, 35, 35, 35]);
  const full = syntheticHistoryLengths(
    syntheticKuaiRandShape({ users: 4, interactions: 140, items: 5 }),
  );
  assertEquals(Array.from(full).reduce((a, b) => a + b, 0), 140);
});

Deno.test("synthetic KuaiRand: firstUsers keeps the first users of the full draw", () => {
  const whole = generateSyntheticKuaiRand({ ...SMALL, seed: 9 });
  const first = generateSyntheticKuaiRand({ ...SMALL, seed: 9, firstUsers: 7 });
  const rows = first.table.numRows;
  assertEquals(lengthsOf(first), lengthsOf(whole).subarray(0, 7));
  const tokens = (t: LoadedInteractions, n: number) =>
    Array.from(
      t.table.getChild("item")!.toArray().subarray(0, n),
      (v) => t.itemTokens[v as number],
    );
  assertEquals(tokens(first, rows), tokens(whole, rows));
});

Deno.test("synthetic KuaiRand: shapes that cannot be met fail naming the key", () => {
  const cases: [Record<string, number>, string][] = [
    [{ users: 10, interactions: 40 }, "'interactions'"],
    [{ users: 10, interactions: 9_000, maxLength: 800 }, "'interactions'"],
    [{ users: 10, items: 100, interactions: 400 }, "'interactions'"],
    [{ minLength: 10, maxLength: 9 }, "'minLength'"],
    [{ users: 0 }, "'users'"],
    [{ lengthSigma: -1 }, "'lengthSigma'"],
    [{ seed: 1.5 }, "'seed'"],
  ];
  for (const [overrides, key] of cases) {
    const error = assertThrows(() => syntheticKuaiRandShape(overrides), RangeError);
    assert(error.message.includes(key), `${JSON.stringify(overrides)}: ${error.message}`);
  }
  assertThrows(
    () => generateSyntheticKuaiRand({ ...SMALL, firstUsers: 0 }),
    RangeError,
    "firstUsers",
  );
  assertThrows(() => historyLengthSummary([]), RangeError);
});

Deno.test("kuairand-synthetic is a dataset name: resolved without files, listed, loaded uncached, with SSD4Rec's KuaiRand preset", async () => {
  const empty = await Deno.makeTempDir();
  try {
    for (const name of ["kuairand-synthetic", "KuaiRand-Synthetic", "synthetic-kuairand"]) {
      const source = resolveDatasetSource(name, { datasetsDirectory: empty });
      assertEquals(source.name, SYNTHETIC_KUAIRAND_NAME);
      assertEquals(source.generated, true);
      assertEquals(source.files, []);
    }
    const listed = listDatasets({ datasetsDirectory: empty }).find((d) =>
      d.name === SYNTHETIC_KUAIRAND_NAME
    );
    assert(listed?.path !== undefined && /synthetic/i.test(listed.description));
    assertEquals(listed?.generated, true);
    const generated = listDatasets({ datasetsDirectory: empty }).filter((d) => d.generated);
    assertEquals(generated.map((d) => d.name), [SYNTHETIC_KUAIRAND_NAME]);
    const info = await loadDatasetWithInfo("kuairand-synthetic", {
      datasetsDirectory: empty,
      cacheDirectory: empty,
    });
    assertEquals(info.fromCache, false);
    assertEquals(info.cachePath, undefined);
    assertEquals(info.dataset.name, SYNTHETIC_KUAIRAND_NAME);
    assertEquals(info.dataset.statistics.interactions, KUAIRAND.interactions);
    assertEquals(Array.from(Deno.readDirSync(empty)), [], "nothing written to the cache");
    const plan = planRun({
      model: "ssd4rec",
      dataset: "kuairand-synthetic",
      datasetsDirectory: empty,
    });
    assertEquals(plan.datasetName, SYNTHETIC_KUAIRAND_NAME);
    assertEquals(plan.config.maskRatio, 0.2);
    assertEquals(plan.modelConfig.numLayers, 2);
    assertEquals(plan.modelConfig.dropoutProb, 0.2);
    assertEquals(plan.modelConfig.normEmbedding, true);
    assertEquals(plan.modelConfig.beta, 0.1);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
