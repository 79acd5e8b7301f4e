import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { deriveSeed, seededPermutation, SeededRandom } from "../data/mod.ts";

Deno.test("seeded random: same seed, same stream; streams and seeds differ", () => {
  const take = (r: SeededRandom) => Array.from({ length: 8 }, () => r.nextUint32());
  assertEquals(take(new SeededRandom(2020)), take(new SeededRandom(2020)));
  assertNotEquals(take(new SeededRandom(2020)), take(new SeededRandom(2021)));
  assertNotEquals(take(new SeededRandom(2020, 0)), take(new SeededRandom(2020, 1)));
  assertNotEquals(deriveSeed(1, 2), deriveSeed(2, 1));
  assertEquals(deriveSeed(5, 6, 7), deriveSeed(5, 6, 7));
});

Deno.test("seeded random: the stream is fixed across versions (regression values)", () => {
  // Checked against an independent transcription of splitmix32 seeding + xoshiro128** (which, from
  // the state [1, 2, 3, 4], gives the published 11520, 0, 5927040, 70819200).
  const r = new SeededRandom(42);
  assertEquals(
    Array.from({ length: 4 }, () => r.nextUint32()),
    [660444221, 3652823732, 77672526, 910233633],
  );
});

Deno.test("seeded random: floats in [0, 1) look uniform; bounded integers stay in range", () => {
  const r = new SeededRandom(9);
  const bins = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = r.nextFloat();
    assert(x >= 0 && x < 1);
    bins[Math.floor(x * 10)]++;
  }
  assert(bins.every((c) => Math.abs(c - 10_000) < 500), `bins ${bins}`);
  for (let i = 0; i < 10_000; i++) {
    const k = r.nextInt(7);
    assert(Number.isInteger(k) && k >= 0 && k < 7);
  }
  assertThrows(() => r.nextInt(0), RangeError);
});

Deno.test("seeded permutation: a permutation, reproducible", () => {
  const p = seededPermutation(1000, new SeededRandom(1, 2));
  assertEquals(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assertEquals(Array.from(p), Array.from(seededPermutation(1000, new SeededRandom(1, 2))));
  assertNotEquals(Array.from(p), Array.from({ length: 1000 }, (_, i) => i));
});
