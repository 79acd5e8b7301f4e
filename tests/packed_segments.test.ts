/**
 * The packed-segment test data checked on its own: `randomSeqIdx` draws non-decreasing ids per
 * row with one-token, chunk-aligned and multi-chunk segments, and clamps the segment count.
 */
import { assert, assertEquals } from "@std/assert";
import { randomSeqIdx, segmentLengths, segmentRowStarts } from "./packed_segments.ts";
import { freshSeed, makeRng } from "./util.ts";

Deno.test("randomSeqIdx draws one-token, chunk-aligned and multi-chunk segments", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [batch, length, chunk, segmentsPerRow] = [24, 40, 4, 8];
  const seqIdx = randomSeqIdx(rng, batch, length, { segmentsPerRow, chunk });
  const lengths = segmentLengths(seqIdx, batch, length);
  const starts = segmentRowStarts(seqIdx, batch, length);
  for (let b = 0; b < batch; b++) {
    assertEquals(seqIdx[b * length], 0, `row ${b} starts at id 0, seed ${seed}`);
    for (let t = 1; t < length; t++) {
      assert(seqIdx[b * length + t] >= seqIdx[b * length + t - 1], `row ${b} t ${t} seed ${seed}`);
    }
  }
  assertEquals(lengths.length, batch * segmentsPerRow, `segment count, seed ${seed}`);
  assert(lengths.includes(1), `a one-token segment, seed ${seed}`);
  assert(starts.some((t) => t > 0 && t % chunk === 0), `a chunk-aligned start, seed ${seed}`);
  assert(
    lengths.some((L, k) =>
      L > 2 * chunk && Math.floor((starts[k] + L - 1) / chunk) - Math.floor(starts[k] / chunk) >= 2
    ),
    `a segment over three chunks, seed ${seed}`,
  );
  const every = randomSeqIdx(rng, 2, 5, { segmentsPerRow: 9 });
  assertEquals(
    segmentLengths(every, 2, 5),
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    `clamped, seed ${seed}`,
  );
  assertEquals([...randomSeqIdx(rng, 1, 6, { segmentsPerRow: 1 })], [0, 0, 0, 0, 0, 0]);
});
