import { assert, assertEquals, assertThrows } from "@std/assert";
import { RANKING_METRICS, rankingMetrics, targetRanks } from "../ops/training/ranking.ts";
import { readTensors, Tensor } from "../ops/core/tensor.ts";
import { rankingMetricsRef, targetRanksRef } from "./ranking_reference.ts";
import { assertClose, freshSeed, makeRng, randint } from "./util.ts";

const NEG_INF = -Infinity;

Deno.test("targetRanks: hand-computed ranks with ties, −∞ items and the PAD column", async () => {
  const cols = 6;
  // PAD 9 scores highest; items 2 and 3 tie at 5; item 4 is masked at −∞.
  const row = [9, 1, 5, 5, NEG_INF, 7];
  const targets = [2, 3, 5, 1, 0, 4, 6, -1];
  const scores = Tensor.from(new Float32Array(targets.flatMap(() => row)), [targets.length, cols]);
  const t = Tensor.from(new Int32Array(targets), [targets.length], "i32");
  const [excluded, included] = await readTensors([
    targetRanks(scores, t),
    targetRanks(scores, t, { excludeColumn0: false }),
  ]);
  // Item 2: only item 5 (7) is above, the tie with item 3 does not count (optimistic) → 2.
  // Item 5 → 1. Item 1 (score 1) → items 2, 3, 5 above → 4. PAD target → −∞: the 4 finite
  // items are above → 5. Item 4 (−∞) → 4 finite items above → 5. Targets 6 and −1 are invalid.
  assertEquals([...excluded], [2, 2, 1, 4, 5, 5, 0, 0]);
  // With PAD kept, its 9 ranks above everything; PAD itself is first.
  assertEquals([...included], [3, 3, 2, 5, 1, 6, 0, 0]);
});

Deno.test("targetRanks: random tied scores match the reference (V up to 20,011)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [rows, cols] of [[1, 1], [3, 2], [37, 257], [5, 20011], [300, 7]]) {
    // Integer scores in [0, 12): many ties.
    const scores = Float32Array.from(randint(rng, rows * cols, 12));
    const targets = randint(rng, rows, cols);
    const s = Tensor.from(scores, [rows, cols]);
    const t = Tensor.from(targets, [rows], "i32");
    const [a, b] = await readTensors([
      targetRanks(s, t),
      targetRanks(s, t, { excludeColumn0: false }),
    ]);
    const what = `[${rows}, ${cols}] seed ${seed}`;
    assertEquals([...a], [...targetRanksRef(scores, targets, cols, true)], `excluded ${what}`);
    assertEquals([...b], [...targetRanksRef(scores, targets, cols, false)], `included ${what}`);
  }
});

Deno.test("targetRanks: a NaN target score gives rank 0", async () => {
  const s = Tensor.from([0, 1, NaN, 2, 0, 3, 1, 2], [2, 4]);
  const [r] = await readTensors([targetRanks(s, Tensor.from(new Int32Array([2, 3]), [2], "i32"))]);
  assertEquals([...r], [0, 2]);
});

Deno.test("rankingMetrics: sums of Hit, NDCG, MRR, Recall, Precision per cut-off", async () => {
  // Hand-computed: ranks 1, 3, 10, 11 at K = 10.
  const [hand] = await readTensors([
    rankingMetrics(Tensor.from(new Int32Array([1, 3, 10, 11]), [4], "i32"), [10, 1]),
  ]);
  const ndcg = 1 + 1 / 2 + 1 / Math.log2(11);
  const mrr = 1 + 1 / 3 + 1 / 10;
  assertClose(hand, [3, ndcg, mrr, 3, 0.3, 1, 1, 1, 1, 1], 1e-6, "hand-computed");
  assertEquals(RANKING_METRICS, ["hit", "ndcg", "mrr", "recall", "precision"]);

  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const rows of [1, 7, 4096]) {
    const ranks = randint(rng, rows, 60).map((r) => r + 1);
    const ks = [1, 5, 10, 20, 50, 3];
    const [got] = await readTensors([rankingMetrics(Tensor.from(ranks, [rows], "i32"), ks)]);
    assertClose(got, rankingMetricsRef(ranks, ks), 1e-6, `${rows} ranks seed ${seed}`);
  }
  const [bad] = await readTensors([
    rankingMetrics(Tensor.from(new Int32Array([2, 0, 1]), [3], "i32"), [5]),
  ]);
  assert(bad.every(Number.isNaN), "a rank of 0 (invalid target) makes the sums NaN");
});

Deno.test("targetRanks / rankingMetrics: bad input names the op and the shapes", () => {
  const s = Tensor.from(new Float32Array(6), [2, 3]);
  assertThrows(
    () => targetRanks(s, Tensor.from(new Int32Array(3), [3], "i32")),
    RangeError,
    "targetRanks: targets have shape [3] but scores are [2, 3]; expected [2]",
  );
  assertThrows(() => targetRanks(s, Tensor.from([0, 1])), TypeError, "targetRanks: expected a i32");
  const r = Tensor.from(new Int32Array([1, 2]), [2], "i32");
  assertThrows(
    () => rankingMetrics(r, []),
    RangeError,
    "rankingMetrics: needs 1 to 32 cut-offs, got 0",
  );
  assertThrows(
    () => rankingMetrics(r, [10, 0]),
    RangeError,
    "rankingMetrics: cut-off 0 is not a positive integer (ks [10, 0])",
  );
  assertThrows(() => rankingMetrics(s, [1]), TypeError, "rankingMetrics: expected a i32");
});

Deno.test("targetRanks: 70,000 rows (2-D workgroup grid)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const rows = 70000, cols = 5;
  const scores = Float32Array.from(randint(rng, rows * cols, 4));
  const targets = randint(rng, rows, cols);
  const [r] = await readTensors([
    targetRanks(Tensor.from(scores, [rows, cols]), Tensor.from(targets, [rows], "i32")),
  ]);
  assertEquals([...r], [...targetRanksRef(scores, targets, cols)], `seed ${seed}`);
});
