import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  buildSequentialDataset,
  datasetFromIPC,
  datasetToIPC,
  defaultDatasetsDirectory,
  loadDatasetWithInfo,
  parseInteractions,
  type SequentialDataset,
} from "../data/mod.ts";
import { entryNames, withTempDir } from "./temp_files.ts";

const PREFIX = "ssmrec-cache-test-";

const TEXT = [
  "user_id:token\titem_id:token\ttimestamp:float",
  ...Array.from({ length: 60 }, (_, k) => `u${k % 7}\ti${(k * 5) % 11}\t${1000 + k * 37}`),
].join("\n");

function sameDataset(a: SequentialDataset, b: SequentialDataset): void {
  assertEquals(Array.from(a.items), Array.from(b.items));
  assertEquals(Array.from(a.offsets), Array.from(b.offsets));
  assertEquals(a.timestamps && Array.from(a.timestamps), b.timestamps && Array.from(b.timestamps));
  assertEquals(a.userTokens, b.userTokens);
  assertEquals(a.itemTokens, b.itemTokens);
  assertEquals(a.statistics, b.statistics);
  assertEquals([a.numUsers, a.numItems], [b.numUsers, b.numItems]);
  for (const split of ["train", "valid", "test"] as const) {
    assertEquals(
      Array.from(a.split[split].targetPositions),
      Array.from(b.split[split].targetPositions),
    );
    assertEquals(Array.from(a.split[split].users), Array.from(b.split[split].users));
  }
}

Deno.test("Arrow IPC round trip keeps sequences, tokens, timestamps, statistics and split", () => {
  const d = buildSequentialDataset(parseInteractions(TEXT, "t.inter"), {
    minUserInteractions: 2,
    minItemInteractions: 2,
  });
  sameDataset(datasetFromIPC(datasetToIPC(d)), d);
});

Deno.test("cache: written on first load, read on the second, keyed by content and options", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const source = join(dir, "data.inter");
    const cacheDirectory = join(dir, "cache");
    await Deno.writeTextFile(source, TEXT);
    const options = { cacheDirectory, minUserInteractions: 2, minItemInteractions: 2 };
    const first = await loadDatasetWithInfo(source, options);
    assertEquals(first.fromCache, false);
    const files = await entryNames(cacheDirectory);
    assertEquals(files.length, 1);
    assert(files[0].startsWith("data-") && files[0].endsWith(".arrow"), files[0]);
    const second = await loadDatasetWithInfo(source, options);
    assertEquals(second.fromCache, true);
    assertEquals(second.cachePath, first.cachePath);
    sameDataset(second.dataset, first.dataset);
    // Other options, other entry.
    const other = await loadDatasetWithInfo(source, { ...options, minUserInteractions: 3 });
    assertEquals(other.fromCache, false);
    assertNotEquals(other.cachePath, first.cachePath);
    // Other content, other entry.
    await Deno.writeTextFile(source, TEXT + "\nu1\ti1\t5000\n");
    const changed = await loadDatasetWithInfo(source, options);
    assertEquals(changed.fromCache, false);
    assertNotEquals(changed.cachePath, first.cachePath);
    assertEquals((await entryNames(cacheDirectory)).length, 3);
    // No temporary file is left behind.
    assert((await entryNames(cacheDirectory)).every((n) => n.endsWith(".arrow")));
  });
});

Deno.test("cache: refresh rewrites, off touches nothing, a damaged entry is rebuilt", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const source = join(dir, "d.txt");
    const cacheDirectory = join(dir, "cache");
    await Deno.writeTextFile(source, "1 a\n1 b\n2 a\n2 b\n");
    const options = { cacheDirectory, minUserInteractions: 1, minItemInteractions: 1 };
    const off = await loadDatasetWithInfo(source, { ...options, cache: "off" });
    assertEquals([off.fromCache, off.cachePath], [false, undefined]);
    await assertRejects(() => Deno.stat(cacheDirectory), Deno.errors.NotFound);
    const first = await loadDatasetWithInfo(source, options);
    const refreshed = await loadDatasetWithInfo(source, { ...options, cache: "refresh" });
    assertEquals(refreshed.fromCache, false);
    await Deno.writeTextFile(first.cachePath!, "not arrow at all");
    const rebuilt = await loadDatasetWithInfo(source, options);
    assertEquals(rebuilt.fromCache, false);
    assertEquals((await loadDatasetWithInfo(source, options)).fromCache, true);
  });
});

const hasShared = (() => {
  try {
    const dir = defaultDatasetsDirectory();
    return Deno.statSync(join(dir, "ml-1m.txt")).isFile &&
      Deno.statSync(join(dir, "amazon-video-games.txt")).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "5-core statistics of the shared ML-1M and Video Games files match the published figures",
  ignore: !hasShared,
  fn: async () => {
    const ml = (await loadDatasetWithInfo("ml-1m", { cache: "off" })).dataset.statistics;
    assertEquals([ml.users, ml.items, ml.interactions, ml.maxLength], [6040, 3416, 999611, 2277]);
    assertEquals(Math.round(ml.averageLength * 10) / 10, 165.5);
    assertEquals((ml.sparsity * 100).toFixed(2), "95.16");
    assertEquals(ml.trainSamples, 981491);
    const games =
      (await loadDatasetWithInfo("amazon-video-games", { cache: "off" })).dataset.statistics;
    assertEquals([games.users, games.items, games.interactions, games.maxLength], [
      24303,
      10672,
      231780,
      773,
    ]);
  },
});
