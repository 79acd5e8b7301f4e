import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import {
  allPositionsBatches,
  buildSequentialDataset,
  evaluationBatches,
  packedBatches,
  packHistories,
  parseInteractions,
  prefixBatches,
  SeededRandom,
  type SequentialDataset,
} from "../data/mod.ts";

/** User a: items 1..6 (n = 6); user b: items 7, 8, 9, 1 (n = 4). */
function handDataset(): SequentialDataset {
  const lines = ["a i1", "a i2", "a i3", "a i4", "a i5", "a i6", "b i7", "b i8", "b i9", "b i1"];
  return buildSequentialDataset(parseInteractions(lines.join("\n"), "hand.txt"), {
    minUserInteractions: 1,
    minItemInteractions: 1,
  });
}

/** A few hundred users with random lengths, for the properties that need volume. */
function randomDataset(seed = 3): SequentialDataset {
  const random = new SeededRandom(seed);
  const lines: string[] = [];
  for (let u = 0; u < 300; u++) {
    const n = 5 + random.nextInt(40);
    for (let k = 0; k < n; k++) lines.push(`u${u} i${1 + random.nextInt(60)}`);
  }
  return buildSequentialDataset(parseInteractions(lines.join("\n"), "random.txt"), {
    minUserInteractions: 1,
    minItemInteractions: 1,
  });
}

const list = (a: ArrayLike<number>) => Array.from(a);

Deno.test("the hand dataset is laid out as expected", () => {
  const d = handDataset();
  assertEquals(list(d.offsets), [0, 0, 6, 10]);
  assertEquals(list(d.items), [1, 2, 3, 4, 5, 6, 7, 8, 9, 1]);
  assertEquals(list(d.split.train.targetPositions), [1, 2, 3, 7]);
});

Deno.test("prefix batches: last L items, right-padded, lengths, targets, partial last batch", () => {
  const d = handDataset();
  const stream = prefixBatches(d, { maxLength: 2, batchSize: 3, shuffle: false });
  assertEquals([stream.batchCount, stream.sampleCount], [2, 4]);
  const [first, second, ...rest] = [...stream];
  assertEquals(rest.length, 0);
  assertEquals(first.size, 3);
  assertEquals(list(first.items), [1, 0, 1, 2, 2, 3]);
  assertEquals(list(first.lengths), [1, 2, 2]);
  assertEquals(list(first.targets), [2, 3, 4]);
  assertEquals(list(first.users), [1, 1, 1]);
  assertEquals(second.size, 1);
  assertEquals(list(second.items), [7, 0]);
  assertEquals(list(second.targets), [8]);
});

Deno.test("evaluation batches: valid history excludes, test history includes the valid item", () => {
  const d = handDataset();
  const [valid] = [...evaluationBatches(d, "valid", { maxLength: 3 })];
  assertEquals(list(valid.items), [2, 3, 4, 7, 8, 0]);
  assertEquals(list(valid.lengths), [3, 2]);
  assertEquals(list(valid.targets), [5, 9]);
  const [test] = [...evaluationBatches(d, "test", { maxLength: 3 })];
  assertEquals(list(test.items), [3, 4, 5, 7, 8, 9]);
  assertEquals(list(test.targets), [6, 1]);
  assertEquals(list(test.users), [1, 2]);
});

/** Every (user, target, history) of an epoch, in batch order. */
function epochSamples(d: SequentialDataset, epoch: number, seed = 2020, reuse = false): string[] {
  const out: string[] = [];
  for (
    const b of prefixBatches(d, { maxLength: 5, batchSize: 64, epoch, seed, reuseBuffers: reuse })
  ) {
    for (let r = 0; r < b.size; r++) {
      out.push(`${b.users[r]}:${b.targets[r]}:${list(b.items.subarray(r * 5, r * 5 + 5))}`);
    }
  }
  return out;
}

Deno.test("prefix batches: shuffled per epoch, reproducible from seed and epoch, every sample once", () => {
  const d = randomDataset();
  const e0 = epochSamples(d, 0);
  assertEquals(e0, epochSamples(d, 0));
  const e1 = epochSamples(d, 1);
  assertNotEquals(e0, e1);
  assertNotEquals(e0, epochSamples(d, 0, 7));
  const unshuffled: string[] = [];
  for (const b of prefixBatches(d, { maxLength: 5, shuffle: false })) {
    for (let r = 0; r < b.size; r++) {
      unshuffled.push(`${b.users[r]}:${b.targets[r]}:${list(b.items.subarray(r * 5, r * 5 + 5))}`);
    }
  }
  assertEquals([...e0].sort(), [...unshuffled].sort());
  assertEquals(e0.length, d.statistics.trainSamples);
});

Deno.test("prefix batches: reused buffers hold the same contents, padding cleared", () => {
  const d = randomDataset();
  assertEquals(epochSamples(d, 4, 2020, true), epochSamples(d, 4, 2020, false));
});

Deno.test("packed batches: concatenation, seqIdx, last-token index, per-segment reversal", () => {
  const d = handDataset();
  const [b] = [...packedBatches(d, { batchSize: 4, shuffle: false })];
  assertEquals(b.size, 4);
  assertEquals(b.tokens, 7);
  assertEquals(list(b.items), [1, 1, 2, 1, 2, 3, 7]);
  assertEquals(list(b.seqIdx), [0, 1, 1, 2, 2, 2, 3]);
  assertEquals(list(b.lastIndex), [0, 2, 5, 6]);
  assertEquals(list(b.flipIndex), [0, 2, 1, 5, 4, 3, 6]);
  assertEquals(list(b.lengths), [1, 2, 3, 1]);
  assertEquals(list(b.targets), [2, 3, 4, 8]);
  assertEquals(b.maskedTokens, 0);
});

Deno.test("packed batches: truncation to L; lengths (3, 2) reverse as [2, 1, 0, 4, 3]", () => {
  const d = handDataset();
  const [valid] = [...packedBatches(d, { split: "valid", maxLength: 3 })];
  assertEquals(list(valid.items), [2, 3, 4, 7, 8]);
  assertEquals(list(valid.flipIndex), [2, 1, 0, 4, 3]);
  assertEquals(list(valid.lastIndex), [2, 4]);
  const [untruncated] = [...packedBatches(d, { split: "test" })];
  assertEquals(list(untruncated.items), [1, 2, 3, 4, 5, 7, 8, 9]);
  assertEquals(list(untruncated.targets), [6, 1]);
});

Deno.test("packed batches: Bernoulli masking to 0 at rate rho, seeded, training only", () => {
  const d = randomDataset();
  const run = (
    epoch: number,
    rho: number,
  ) => [...packedBatches(d, { maskRatio: rho, batchSize: 128, epoch })];
  const plain = [...packedBatches(d, { batchSize: 128, epoch: 2 })];
  const masked = run(2, 0.2);
  assertEquals(masked.map((b) => list(b.items)), run(2, 0.2).map((b) => list(b.items)));
  assertNotEquals(masked.map((b) => list(b.items)), run(3, 0.2).map((b) => list(b.items)));
  let tokens = 0;
  let zeros = 0;
  masked.forEach((b, k) => {
    const original = plain[k];
    assertEquals(list(b.seqIdx), list(original.seqIdx));
    let z = 0;
    for (let t = 0; t < b.tokens; t++) {
      if (b.items[t] === 0) z++;
      else assertEquals(b.items[t], original.items[t]);
    }
    assertEquals(z, b.maskedTokens);
    tokens += b.tokens;
    zeros += z;
  });
  const rate = zeros / tokens;
  assert(Math.abs(rate - 0.2) < 0.02, `masked share ${rate}`);
  assert(run(0, 1).every((b) => b.items.every((v) => v === 0)));
  assertThrows(
    () => packedBatches(d, { split: "test", maskRatio: 0.1 }),
    RangeError,
    "training only",
  );
  assertThrows(() => packedBatches(d, { maskRatio: 1.5 }), RangeError);
});

Deno.test("all-positions batches: windows from the end cover every training target once", () => {
  const d = handDataset();
  const [b] = [...allPositionsBatches(d, { maxLength: 2, shuffle: false })];
  assertEquals(b.size, 3);
  assertEquals(list(b.items), [2, 3, 1, 0, 7, 0]);
  assertEquals(list(b.targets), [3, 4, 2, 0, 8, 0]);
  assertEquals(list(b.lengths), [2, 1, 1]);
  assertEquals(list(b.users), [1, 1, 2]);
  assertEquals(b.targetCount, d.statistics.trainSamples);
  const [last] = [...allPositionsBatches(d, { maxLength: 2, windows: "last", shuffle: false })];
  assertEquals(list(last.items), [2, 3, 7, 0]);
  assertEquals(last.targetCount, 3);
});

Deno.test("all-positions batches on random data: targets are exactly the training targets", () => {
  const d = randomDataset(11);
  const fromPrefix: number[] = [];
  for (const b of prefixBatches(d, { maxLength: 10, shuffle: false })) {
    fromPrefix.push(...b.targets);
  }
  const fromWindows: number[] = [];
  let count = 0;
  for (const b of allPositionsBatches(d, { maxLength: 10, batchSize: 50, epoch: 1 })) {
    for (const t of b.targets) if (t !== 0) fromWindows.push(t);
    count += b.targetCount;
  }
  assertEquals(count, d.statistics.trainSamples);
  assertEquals(fromWindows.sort((x, y) => x - y), fromPrefix.sort((x, y) => x - y));
});

Deno.test("batchers reject bad options", () => {
  const d = handDataset();
  assertThrows(() => prefixBatches(d, { maxLength: 0 }), RangeError, "maxLength");
  assertThrows(() => prefixBatches(d, { maxLength: 5, batchSize: 1.5 }), RangeError, "batchSize");
  assertThrows(() => allPositionsBatches(d, { maxLength: -1 }), RangeError);
});

Deno.test("packHistories: given histories as packedBatches lays them out; empty ones refused", () => {
  const batch = packHistories([[5], [1, 2, 3], [7, 8]], [9, 4, 6]);
  assertEquals(Array.from(batch.items), [5, 1, 2, 3, 7, 8]);
  assertEquals(Array.from(batch.seqIdx), [0, 1, 1, 1, 2, 2]);
  assertEquals(Array.from(batch.flipIndex), [0, 3, 2, 1, 5, 4]);
  assertEquals(Array.from(batch.lastIndex), [0, 3, 5]);
  assertEquals(Array.from(batch.lengths), [1, 3, 2]);
  assertEquals(Array.from(batch.targets), [9, 4, 6]);
  assertEquals([batch.size, batch.tokens, batch.maskedTokens], [3, 6, 0]);
  assertThrows(() => packHistories([[1], []]), RangeError, "at least one item");
  assertThrows(() => packHistories([]), RangeError, "at least one history");
  assertThrows(() => packHistories([[1]], [2, 3]), RangeError, "2 targets for 1 histories");
});
