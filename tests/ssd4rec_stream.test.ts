/**
 * SSD4Rec's step form against the full model: after feeding each user's history event by event
 * (or setting it from the history at once), every item's score equals the full forward's at the
 * history's last item, for histories shorter and longer than the convolution's window.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { SSD4RecStream } from "../models/streaming/ssd4rec_stream.ts";
import { perturb, tinyModel } from "./ssd4rec_cases.ts";
import { assertRowsClose, feed, fullScores, streamScores } from "./streaming_model.ts";
import { freshSeed, makeRng } from "./util.ts";

/** A history of `n` random item ids 1 … numItems − 1. */
const history = (rng: () => number, n: number, numItems: number) =>
  Int32Array.from({ length: n }, () => 1 + Math.floor(rng() * (numItems - 1)));

for (const beta of [0.3, 0]) {
  Deno.test(`SSD4RecStream (β ${beta}): event-by-event and from-history scores equal the full forward's`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const model = tinyModel(seed, { numLayers: 1, beta });
    await perturb(model, rng);
    const numItems = model.config.numItems;
    const stream = new SSD4RecStream(model, { capacity: 9 });
    try {
      // Shorter than, as long as and longer than the window of d_conv − 1 = 3 tokens, and up to
      // 2,000 events.
      const lengths = [1, 2, 3, 4, 5, 13, beta === 0 ? 300 : 2000];
      const slots = [8, 0, 3, 7, 2, 5, 1];
      const histories = lengths.map((n) => history(rng, n, numItems));
      feed(stream, slots, histories, rng);
      lengths.forEach((n, i) => assertEquals(stream.eventCount(slots[i]), n, `seed ${seed}`));
      const users = Int32Array.from(slots);
      const want = await fullScores(model, histories);
      const what = `seed ${seed}: stream vs full forward`;
      assertRowsClose(await streamScores(stream, users), want, slots.length, what, 1e-5, numItems);
      // The same states set from the histories, over users that held other events.
      stream.initFromHistories(users, histories);
      lengths.forEach((n, i) => assertEquals(stream.eventCount(slots[i]), n, `seed ${seed}`));
      assertRowsClose(
        await streamScores(stream, users),
        want,
        slots.length,
        `seed ${seed}: from histories vs full forward`,
        1e-5,
        numItems,
      );
      // A reset user starts again from nothing.
      stream.reset(Int32Array.of(slots[6]));
      assertThrows(() => stream.scores(Int32Array.of(slots[6])), RangeError, "no events");
      const again = history(rng, 6, numItems);
      feed(stream, [slots[6]], [again], rng);
      assertRowsClose(
        await streamScores(stream, Int32Array.of(slots[6])),
        await fullScores(model, [again]),
        1,
        `seed ${seed}: after reset`,
        1e-5,
        numItems,
      );
    } finally {
      stream.dispose();
    }
  });
}

Deno.test("SSD4RecStream: a model of two layers, bad users and bad items are refused", () => {
  const seed = freshSeed();
  assertThrows(
    () => new SSD4RecStream(tinyModel(seed, { numLayers: 2 }), { capacity: 2 }),
    RangeError,
    "2 Bi-SSD layers",
  );
  const model = tinyModel(seed, { numLayers: 1 });
  assertThrows(() => new SSD4RecStream(model, { capacity: 0 }), RangeError, "capacity");
  const stream = new SSD4RecStream(model, { capacity: 2 });
  try {
    assertThrows(() => stream.observe(Int32Array.of(2), Int32Array.of(1)), RangeError, "users[0]");
    assertThrows(() => stream.observe(Int32Array.of(0), Int32Array.of(0)), RangeError, "items[0]");
    assertThrows(
      () => stream.initFromHistories(Int32Array.of(0, 0), [Int32Array.of(1), Int32Array.of(2)]),
      RangeError,
      "repeats",
    );
  } finally {
    stream.dispose();
  }
});
