/**
 * `packedBatches(…, { padTo: L })`: every segment a window of exactly L tokens, left-padded with
 * PAD (0), holding the same real items in the same order as the unpadded batches cut to L, with
 * the same masking of real items; segment ids, last indices and the reversal cover the padding.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { packedBatches } from "../data/packed_batches.ts";
import { ruleDataset } from "./rule_dataset.ts";
import { freshSeed } from "./util.ts";

Deno.test("padTo: every segment is L tokens, left-padded with 0, real items unchanged and in order", () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 30, 20, 9);
  const L = 5;
  const options = { split: "train" as const, batchSize: 16, seed, epoch: 1 };
  const padded = [...packedBatches(dataset, { ...options, padTo: L })];
  const cut = [...packedBatches(dataset, { ...options, maxLength: L })];
  assertEquals(padded.length, cut.length);
  let sawPadding = false, sawFull = false;
  padded.forEach((p, b) => {
    const c = cut[b];
    const at = `seed ${seed}, batch ${b}`;
    assertEquals([p.size, p.tokens, p.items.length], [c.size, c.size * L, c.size * L], at);
    assertEquals([...p.lengths], new Array(p.size).fill(L), at);
    assertEquals([...p.targets], [...c.targets], at);
    assertEquals([...p.users], [...c.users], at);
    assertEquals(p.maskedTokens, 0, at);
    let cutStart = 0;
    for (let r = 0; r < p.size; r++) {
      const s = r * L, e = s + L - 1;
      const real = c.lengths[r];
      const window = [...p.items.subarray(s, e + 1)];
      // PAD (0) in front, then the cut history exactly as the unpadded batch has it.
      assertEquals(window.slice(0, L - real), new Array(L - real).fill(0), at);
      assertEquals(window.slice(L - real), [...c.items.subarray(cutStart, cutStart + real)], at);
      assert(window.slice(L - real).every((item) => item > 0), `${at}: a real item is PAD`);
      assertEquals(p.lastIndex[r], e, at);
      assertEquals([...p.seqIdx.subarray(s, e + 1)], new Array(L).fill(r), at);
      for (let q = s; q <= e; q++) assertEquals(p.flipIndex[q], s + e - q, at);
      sawPadding ||= real < L;
      sawFull ||= real === L;
      cutStart += real;
    }
  });
  assert(sawPadding && sawFull, `seed ${seed}: the data should have short and long histories`);
});

Deno.test("padTo: masking draws over the real items only, as the unpadded batches mask them", () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 40, 20, 9);
  const L = 6;
  const options = { batchSize: 32, seed, maskRatio: 0.4 };
  const padded = [...packedBatches(dataset, { ...options, padTo: L })];
  const cut = [...packedBatches(dataset, { ...options, maxLength: L })];
  let masked = 0;
  padded.forEach((p, b) => {
    const c = cut[b];
    const at = `seed ${seed}, batch ${b}`;
    assertEquals(p.maskedTokens, c.maskedTokens, at);
    masked += p.maskedTokens;
    let cutStart = 0;
    for (let r = 0; r < p.size; r++) {
      const real = c.lengths[r];
      const tail = p.items.subarray((r + 1) * L - real, (r + 1) * L);
      assertEquals([...tail], [...c.items.subarray(cutStart, cutStart + real)], at);
      cutStart += real;
    }
  });
  assert(masked > 0, `seed ${seed}: ρ = 0.4 masked nothing`);
});

Deno.test("padTo: a smaller maxLength cuts first; a bad padTo names the option", () => {
  const seed = freshSeed() % 1000;
  const dataset = ruleDataset(seed, 20, 20, 9);
  const [batch] = packedBatches(dataset, { split: "valid", batchSize: 64, maxLength: 2, padTo: 4 });
  for (let r = 0; r < batch.size; r++) {
    const window = [...batch.items.subarray(r * 4, r * 4 + 4)];
    assertEquals(window.slice(0, 2), [0, 0], `seed ${seed}, segment ${r}`);
    assert(window[2] > 0 && window[3] > 0, `seed ${seed}, segment ${r}: ${window}`);
  }
  assertThrows(() => packedBatches(dataset, { padTo: 0 }), RangeError, "padTo");
  assertThrows(() => packedBatches(dataset, { padTo: 2.5 }), RangeError, "padTo");
});
