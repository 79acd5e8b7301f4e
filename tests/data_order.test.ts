import { assertEquals } from "@std/assert";
import { parseInteractions } from "../data/formats.ts";
import { buildSequentialDataset } from "../data/pipeline.ts";
import { compareSequenceOrder } from "../data/order.ts";

// 978300032 = 64 · 15285938: float32 holds multiples of 64 here, so t0 ± 31 rounds to t0 and
// RecBole keeps the file order of rows that share such a step.
const t0 = 978300032;
const noFilter = { minUserInteractions: 1, minItemInteractions: 1 };

Deno.test("compareSequenceOrder: RecBole's 64-second steps against exact time order, by hand", () => {
  // user item seconds-after-t0, in file order
  const rows = [
    [1, 10, 20],
    [1, 11, 5],
    [1, 12, 10],
    [1, 13, 200],
    [1, 14, 190],
    [2, 20, 74],
    [2, 21, 67],
    [2, 22, 84],
    [3, 30, 1],
    [3, 31, 2],
    [3, 32, 3],
    [3, 33, 4],
    [5, 50, 1],
    [5, 51, 2],
    [5, 52, 3],
  ];
  const inter = ["user_id:token\titem_id:token\ttimestamp:float"]
    .concat(rows.map(([u, i, s]) => `${u}\t${i}\t${t0 + s}`)).join("\n");
  // The same interactions in exact time order, plus a user only here and one with other items.
  const exact = {
    1: [11, 12, 10, 14, 13],
    2: [21, 20, 22],
    3: [30, 31, 32, 33],
    4: [40, 41, 42],
    5: [50, 51, 53],
  };
  const pairs = Object.entries(exact).flatMap(([u, items]) => items.map((i) => `${u} ${i}`));
  const recbole = buildSequentialDataset(
    parseInteractions(inter, "x.inter", { format: "atomic-inter" }),
    noFilter,
  );
  const timeOrdered = buildSequentialDataset(
    parseInteractions(pairs.join("\n"), "x.txt", { format: "user-item-pairs" }),
    noFilter,
  );
  // RecBole order: user 1 is 10 11 12 | 13 14 (two steps, file order in each), user 2 is 20 21 22.
  assertEquals(compareSequenceOrder(recbole, timeOrdered), {
    usersCompared: 3,
    usersInOneOnly: 1,
    usersWithOtherItems: 1,
    interactions: 12,
    positionsDiffering: 5 + 2,
    validTargets: 2,
    validTargetsDiffering: 1,
    testTargets: 3,
    testTargetsDiffering: 1,
  });
  const same = compareSequenceOrder(timeOrdered, timeOrdered);
  assertEquals([same.positionsDiffering, same.usersCompared], [0, 5]);
});
