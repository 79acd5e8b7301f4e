/**
 * BERT4Rec's host-side inputs: the training masking draw against a literal port of RecBole's
 * `MaskItemSequence` and its statistics, and the evaluation window through the evaluator's batches.
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { readTensors, tidy } from "../ops/core/tensor.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import { rankingBatches } from "../models/training/layouts.ts";
import { ConfigError } from "../models/config.ts";
import {
  evaluationWindow,
  lossRows,
  maskingRandom,
  maskItemLength,
  maskItemSequence,
} from "../models/bert4rec_masking.ts";
import { createModel } from "../models/registry.ts";
import { evaluationBatches } from "../data/batches.ts";
import { maskItemSequenceRef, reconstructRef, trainingBatch } from "./bert4rec_reference.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { freshSeed, makeRng } from "./util.ts";

Deno.test("bert4rec masking: deterministic per (seed, epoch, batch), RecBole's draw, the fine-tune branch at about half the batches, at most int(0.2·L) loss positions, the last ones", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const L = 20, numItems = 50, rows = 16;
  const options = { maskToken: numItems, maskRatio: 0.2, ftRatio: 0.5 };
  const m = maskItemLength(options.maskRatio, L);
  assertEquals(m, 4);
  const lengths = Int32Array.from(
    { length: rows },
    (_, b) => b < 4 ? L : 1 + Math.floor(rng() * L),
  );
  lengths[4] = 1;
  const batch = trainingBatch(rng, lengths, L, numItems);
  const original = batch.items.slice();
  const at = { seed: seed % 1000000, epoch: 2, batch: 5 };
  assertEquals(
    maskItemSequence(batch, options, at),
    maskItemSequence(batch, options, { ...at }),
    `seed ${seed}: the same (seed, epoch, batch) gave another draw`,
  );
  // Another seed, epoch or batch draws other masks (compared on the masking branch: two
  // fine-tune draws mask the same last items).
  const masking = { ...options, ftRatio: 0 };
  for (const other of [{ ...at, seed: at.seed + 1 }, { ...at, epoch: 3 }, { ...at, batch: 6 }]) {
    assertNotEquals(
      maskItemSequence(batch, masking, other).items,
      maskItemSequence(batch, masking, at).items,
      `seed ${seed}: ${JSON.stringify(other)} drew the masks of ${JSON.stringify(at)}`,
    );
  }
  let fineTunes = 0, realPositions = 0, masked = 0;
  const draws = 1000;
  for (let k = 0; k < draws; k++) {
    const where = { ...at, batch: k };
    const draw = maskItemSequence(batch, options, where);
    const what = `seed ${seed}, batch ${k}`;
    // RecBole's literal transform with the same random stream: the same inputs, and the loss
    // positions are its padded (masked_index, pos_items) slots with masked_index > 0.
    const recbole = maskItemSequenceRef(
      batch.items,
      lengths,
      rows,
      L,
      options,
      maskingRandom(where),
    );
    assertEquals(draw.fineTune, recbole.fineTune, what);
    assertEquals(draw.items, recbole.items, what);
    const positions: number[] = [], targets: number[] = [];
    recbole.maskedIndex.forEach((t, j) => {
      if (t > 0) {
        positions.push(Math.floor(j / m) * L + t);
        targets.push(recbole.posItems[j]);
      }
    });
    assertEquals(Array.from(draw.lossPositions), positions, what);
    assertEquals(Array.from(draw.lossTargets), targets, what);
    // Per row: masked positions hold the mask token, the others the original items; the loss
    // takes the last ≤ m masked positions, never position 0, each with its original item.
    for (let b = 0; b < rows; b++) {
      const maskedAt: number[] = [];
      for (let t = 0; t < L; t++) {
        const i = b * L + t;
        if (draw.items[i] === numItems) maskedAt.push(t);
        else assertEquals(draw.items[i], original[i], what);
      }
      assert(maskedAt.every((t) => t < lengths[b]), `${what}: row ${b}: a pad was masked`);
      const loss = Array.from(draw.lossPositions).filter((p) => Math.floor(p / L) === b)
        .map((p) => p % L);
      assert(loss.length <= m, `${what}: row ${b}: ${loss.length} loss positions > ${m}`);
      assertEquals(loss, maskedAt.slice(-m).filter((t) => t > 0), `${what}: row ${b}`);
      if (draw.fineTune) {
        assertEquals(
          maskedAt,
          [lengths[b] - 1],
          `${what}: row ${b}: fine-tune masks the last item`,
        );
      } else {
        realPositions += lengths[b];
        masked += maskedAt.length;
      }
    }
    assertEquals(draw.lossTargets, Int32Array.from(draw.lossPositions, (p) => original[p]), what);
    if (draw.fineTune) fineTunes++;
  }
  assert(
    Math.abs(fineTunes / draws - 0.5) < 0.08,
    `seed ${seed}: fine-tune in ${fineTunes}/${draws}`,
  );
  assert(
    Math.abs(masked / realPositions - 0.2) < 0.01,
    `seed ${seed}: masked ${masked} of ${realPositions} real positions`,
  );
  assertEquals(batch.items, original, `seed ${seed}: the batch was modified`);
  assertEquals([maskItemLength(0.2, 50), maskItemLength(0.2, 200), maskItemLength(0.2, 15)], [
    10,
    40,
    3,
  ]);
  assertEquals(assertThrows(() => maskItemLength(0.2, 4), ConfigError).key, "maskRatio");
});

Deno.test("bert4rec loss rows: as many rows per sequence, loss positions first and in order, then distinct fillers; each loss position finds its row", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [size, L, ratio] of [[1, 1, 1], [5, 7, 0.3], [9, 50, 0.2], [4, 6, 0]] as const) {
    // Random loss positions, by row and then by position, as the masking gives them.
    const flat: number[] = [];
    for (let b = 0; b < size; b++) {
      for (let t = 0; t < L; t++) if (rng() < ratio) flat.push(b * L + t);
    }
    const lossPositions = Int32Array.from(flat);
    const r = lossRows(lossPositions, size, L);
    const what = `[${size}, ${L}] ratio ${ratio}, seed ${seed}`;
    const most = Math.max(
      1,
      ...Array.from({ length: size }, (_, b) => flat.filter((f) => Math.floor(f / L) === b).length),
    );
    assertEquals(r.perSequence, most, what);
    assertEquals(r.positions.length, size * most, what);
    for (let b = 0; b < size; b++) {
      const row = Array.from(r.positions.subarray(b * most, (b + 1) * most));
      const own = flat.filter((f) => Math.floor(f / L) === b).map((f) => f - b * L);
      assertEquals(
        row.slice(0, own.length),
        own,
        `${what}: sequence ${b} starts with its loss positions`,
      );
      assertEquals(new Set(row).size, row.length, `${what}: sequence ${b} repeats no position`);
      assert(row.every((t) => t >= 0 && t < L), `${what}: positions within the window`);
      row.forEach((t, slot) => assertEquals(r.flat[b * most + slot], b * L + t, what));
    }
    lossPositions.forEach((f, i) =>
      assertEquals(r.flat[r.lossRows[i]], f, `${what}: loss position ${i}`)
    );
  }
});

Deno.test("bert4rec evaluation window: the mask token after the last item and the oldest item dropped, even when length < L; the evaluator ranks from it", async () => {
  const L = 5, mask = 9;
  const items = Int32Array.of(1, 2, 3, 4, 5, 1, 2, 3, 0, 0, 7, 0, 0, 0, 0, 6, 5, 4, 3, 0);
  const lengths = Int32Array.of(5, 3, 1, 4);
  const window = evaluationWindow(items, lengths, 4, L, mask);
  assertEquals(
    Array.from(window),
    [2, 3, 4, 5, 9, 2, 3, 9, 0, 0, 9, 0, 0, 0, 0, 5, 4, 3, 9, 0],
  );
  assertEquals(items[0], 1, "the batch's ids were modified");
  assertEquals(window, reconstructRef(items, lengths, L, mask));

  // Through the evaluator's batches: the representation of the rewritten windows.
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 20, 10, 8);
  const model = createModel("bert4rec", dataset.numItems, {
    hiddenSize: 8,
    innerSize: 8,
    maxLength: L,
    seed,
  });
  const [batch] = rankingBatches(model, dataset, "test", { maxLength: L });
  const [windows] = evaluationBatches(dataset, "test", { maxLength: L });
  assertEquals(windows.size, batch.size);
  const direct = evaluationWindow(
    windows.items,
    windows.lengths,
    windows.size,
    L,
    dataset.numItems,
  );
  const [viaBatches, viaWindow] = await readTensors(tidy(() => [
    batch.represent(),
    model.forward(uploadSequences(direct, windows.lengths, windows.size, L), false),
  ]));
  assertEquals(viaBatches, viaWindow, `seed ${seed}: the evaluator did not rank from the window`);
});
