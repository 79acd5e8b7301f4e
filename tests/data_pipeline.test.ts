import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  buildSequentialDataset,
  chronologicalOrder,
  kCoreFilter,
  leaveOneOutSplit,
  parseInteractions,
  remapFirstAppearance,
  SeededRandom,
  type SequentialDataset,
} from "../data/mod.ts";

const i32 = (xs: number[]) => Int32Array.from(xs);

Deno.test("k-core: iterates to the fixed point, bans users and items together each round", () => {
  // users A..D = 1..4, items x,y,z = 1..3
  const users = i32([1, 1, 2, 2, 3, 3, 4]);
  const items = i32([1, 2, 1, 2, 1, 3, 3]);
  // Round 1 bans D (1 row); z drops to 1. Round 2 bans z; C drops to 1. Round 3 bans C.
  const { rows, rounds } = kCoreFilter(users, items, {
    minUserInteractions: 2,
    minItemInteractions: 2,
  });
  assertEquals(Array.from(rows), [0, 1, 2, 3]);
  assertEquals(rounds, 3);
});

Deno.test("k-core: a user and an item banned in the same round count from the same counts", () => {
  // User 1 has 1 row (banned); item 9 has 1 row (banned) in the same round. Row 2 (user 2, item 9)
  // goes because of its item even though user 2 had 3 rows before that round.
  const users = i32([1, 2, 2, 2, 3, 3, 3]);
  const items = i32([5, 5, 5, 9, 5, 5, 5]);
  const { rows, rounds } = kCoreFilter(users, items, {
    minUserInteractions: 2,
    minItemInteractions: 2,
  });
  assertEquals(Array.from(rows), [1, 2, 4, 5, 6]);
  assertEquals(rounds, 1);
});

Deno.test("k-core: upper bounds and duplicates count as interactions", () => {
  const users = i32([1, 1, 1, 2, 2]);
  const items = i32([1, 1, 1, 1, 2]);
  const capped = kCoreFilter(users, items, {
    minUserInteractions: 1,
    minItemInteractions: 1,
    maxUserInteractions: 2,
  });
  assertEquals(Array.from(capped.rows), [3, 4]);
  const dup = kCoreFilter(users, items, { minUserInteractions: 3, minItemInteractions: 1 });
  assertEquals(Array.from(dup.rows), [0, 1, 2]);
});

/** A direct transcription of the round-based rule with sets, for comparison. */
function referenceKCore(users: Int32Array, items: Int32Array, k: number): number[] {
  let rows = Array.from(users, (_, i) => i);
  for (;;) {
    const uc = new Map<number, number>();
    const ic = new Map<number, number>();
    for (const r of rows) {
      uc.set(users[r], (uc.get(users[r]) ?? 0) + 1);
      ic.set(items[r], (ic.get(items[r]) ?? 0) + 1);
    }
    const badU = new Set([...uc].filter(([, c]) => c < k).map(([u]) => u));
    const badI = new Set([...ic].filter(([, c]) => c < k).map(([i]) => i));
    if (badU.size === 0 && badI.size === 0) return rows;
    rows = rows.filter((r) => !badU.has(users[r]) && !badI.has(items[r]));
  }
}

Deno.test("k-core: matches the reference rule on random data, and the result is a fixed point", () => {
  const random = new SeededRandom(7);
  for (let trial = 0; trial < 40; trial++) {
    const n = 50 + random.nextInt(400);
    const users = new Int32Array(n);
    const items = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      users[i] = 1 + random.nextInt(40);
      items[i] = 1 + Math.floor(Math.sqrt(random.nextInt(900)));
    }
    const k = 2 + random.nextInt(5);
    const got = kCoreFilter(users, items, { minUserInteractions: k, minItemInteractions: k });
    assertEquals(Array.from(got.rows), referenceKCore(users, items, k));
    const uc = new Map<number, number>();
    const ic = new Map<number, number>();
    for (const r of got.rows) {
      uc.set(users[r], (uc.get(users[r]) ?? 0) + 1);
      ic.set(items[r], (ic.get(items[r]) ?? 0) + 1);
    }
    assert([...uc.values(), ...ic.values()].every((c) => c >= k));
  }
});

Deno.test("remapping: first appearance in the kept rows, from 1, PAD = 0", () => {
  const ids = i32([7, 3, 7, 9, 3]);
  const { ids: remapped, oldIds } = remapFirstAppearance(ids, i32([1, 2, 3, 4]));
  assertEquals(Array.from(remapped), [1, 2, 3, 1]);
  assertEquals(Array.from(oldIds), [0, 3, 7, 9]);
});

Deno.test("chronological order: groups by user, sorts on float32 time, ties keep row order", () => {
  // 978300760 and 978300736 are equal in float32 (spacing 64 s at this magnitude).
  assertEquals(Math.fround(978300760), 978300736);
  const users = i32([1, 2, 1, 1, 2]);
  const times = Float64Array.from([978300760, 5, 978300736, 978300700, 1]);
  const { order, offsets } = chronologicalOrder(users, times, 3);
  assertEquals(Array.from(offsets), [0, 0, 3, 5]);
  // user 1: row 3 (…672 after rounding) first, then rows 0 and 2 tied, kept in row order
  assertEquals(Array.from(order), [3, 0, 2, 4, 1]);
  const noTimes = chronologicalOrder(users, undefined, 3);
  assertEquals(Array.from(noTimes.order), [0, 2, 3, 1, 4]);
});

Deno.test("leave-one-out split: exactly the table, short users as RecBole leaves them", () => {
  // users 1..5 with 1, 2, 3, 4 and 5 interactions
  const offsets = i32([0, 0, 1, 3, 6, 10, 15]);
  const split = leaveOneOutSplit(offsets);
  const pairs = (s: { users: Int32Array; targetPositions: Int32Array }) =>
    Array.from(s.users, (u, k) => [u, s.targetPositions[k]]);
  assertEquals(pairs(split.train), [[2, 2], [3, 4], [4, 7], [5, 11], [5, 12]]);
  assertEquals(pairs(split.valid), [[4, 8], [5, 13]]);
  assertEquals(pairs(split.test), [[3, 5], [4, 9], [5, 14]]);
  assertEquals(split.usersWithoutValid, 1);
  assertEquals(split.usersWithoutTest, 2);
});

function pipeline(text: string, source: string, k = 1): SequentialDataset {
  return buildSequentialDataset(parseInteractions(text, source), {
    minUserInteractions: k,
    minItemInteractions: k,
  });
}

function sequences(d: SequentialDataset): string[][] {
  const out: string[][] = [];
  for (let u = 1; u < d.numUsers; u++) {
    out.push([d.userTokens[u], ...Array.from(d.sequence(u), (i) => d.itemTokens[i])]);
  }
  return out;
}

Deno.test("pipeline: tie order on rounded timestamps through a .inter file", () => {
  const text = [
    "user_id:token\titem_id:token\ttimestamp:float",
    "u\ta\t978300760",
    "u\tb\t978300736",
    "u\tc\t978300700",
    "v\tc\t10",
    "v\ta\t5",
  ].join("\n");
  const d = pipeline(text, "t.inter");
  // float64 order would put b before a; RecBole's float32 order keeps file order for the tie.
  assertEquals(sequences(d), [["u", "c", "a", "b"], ["v", "a", "c"]]);
  // ids are by first appearance in the file rows, not in time order
  assertEquals(d.itemTokens, ["[PAD]", "a", "b", "c"]);
  assertEquals(Array.from(d.timestamps!), [978300700, 978300760, 978300736, 5, 10]);
});

Deno.test("pipeline: 5-core end to end with statistics and split counts", () => {
  // Users 1..6 each rate items 1..5 (30 rows); user 7 has 3 rows (dropped), item 6 one row (dropped).
  const lines: string[] = [];
  for (let u = 1; u <= 6; u++) for (let i = 1; i <= 5; i++) lines.push(`${u} ${i}`);
  lines.splice(3, 0, "7 1", "7 2", "7 6");
  const d = pipeline(lines.join("\n"), "five.txt", 5);
  const s = d.statistics;
  assertEquals([s.users, s.items, s.interactions], [6, 5, 30]);
  assertEquals([s.rawUsers, s.rawItems, s.rawInteractions], [7, 6, 33]);
  assertEquals([s.averageLength, s.maxLength, s.minLength], [5, 5, 5]);
  assertEquals(s.sparsity, 0);
  assertEquals([s.trainSamples, s.validSamples, s.testSamples], [12, 6, 6]);
  assertEquals([d.numUsers, d.numItems], [7, 6]);
  assertEquals(s.filterRounds, 1);
  assertEquals(s.name, "five");
});

Deno.test("pipeline: short users are counted, and nothing left is an error", () => {
  const d = pipeline("1 a\n2 a\n2 b\n3 a\n3 b\n3 c\n", "short.txt");
  assertEquals([d.statistics.usersWithoutTest, d.statistics.usersWithoutValid], [2, 1]);
  assertEquals([d.statistics.trainSamples, d.statistics.testSamples], [2, 1]);
  assertThrows(() => pipeline("1 a\n2 b\n", "tiny.txt", 5), RangeError, "no interactions are left");
});
