import { assert, assertEquals, assertThrows } from "@std/assert";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import {
  causalConv1dStep,
  causalConv1dStepReference,
  selectiveScanStep,
  selectiveScanStepReference,
} from "../ops/sequence/selective_step.ts";
import type { Mamba4Rec } from "../models/mamba4rec.ts";
import {
  Mamba4RecStream,
  type Mamba4RecStreamOptions,
} from "../models/streaming/mamba4rec_stream.ts";
import { assertClose, freshSeed, makeRng, randn } from "./util.ts";
import {
  assertRowsClose,
  D_CONV,
  feed,
  fullScores,
  history,
  NUM_ITEMS,
  smallModel,
  streamScores,
} from "./streaming_model.ts";

for (const numLayers of [1, 2]) {
  Deno.test(`Mamba4RecStream (${numLayers} layer${numLayers > 1 ? "s" : ""}): event-by-event scores equal the full forward's, before and after reset`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const model = smallModel(numLayers, rng, seed);
    const stream = new Mamba4RecStream(model, { capacity: 8 });
    try {
      // One layer also carries a user through 2,000 events, the longest history asked for.
      const lengths = [1, 2, D_CONV, 37, numLayers === 1 ? 2000 : 240];
      const slots = [6, 0, 3, 7, 2];
      const histories = lengths.map((n) => history(rng, n));
      feed(stream, slots, histories, rng);
      lengths.forEach((n, i) => assertEquals(stream.eventCount(slots[i]), n, `seed ${seed}`));
      const users = Int32Array.from(slots);
      assertRowsClose(
        await streamScores(stream, users),
        await fullScores(model, histories),
        slots.length,
        `seed ${seed}: stream vs full forward`,
      );

      // Reset two users and give them new histories (one of them in a fresh slot's company).
      stream.reset(Int32Array.of(3, 2));
      assertEquals(stream.eventCount(3), 0);
      assertThrows(() => stream.scores(Int32Array.of(3)), RangeError, "users[0] = 3");
      const renewed = history(rng, 5);
      const again = [renewed, history(rng, 3), renewed];
      feed(stream, [3, 2, 5], again, rng);
      const got = await streamScores(stream, Int32Array.of(3, 2, 5, 6));
      const want = await fullScores(model, [...again, histories[0]]);
      assertRowsClose(got, want, 4, `seed ${seed}: after reset`);
      // A reset slot given the same history as a fresh slot holds the very same state.
      assertEquals(
        got.subarray(0, NUM_ITEMS),
        got.subarray(2 * NUM_ITEMS, 3 * NUM_ITEMS),
        `seed ${seed}: reset slot 3 vs fresh slot 5`,
      );
    } finally {
      stream.dispose();
    }
  });
}

/**
 * The scores of a stream built with `options` (3 slots) after feeding `histories` into `slots`
 * with a generator seeded by `seed`.
 */
async function fedScores(
  model: Mamba4Rec,
  options: Omit<Mamba4RecStreamOptions, "capacity">,
  slots: number[],
  histories: Int32Array[],
  seed: number,
): Promise<Float32Array> {
  const stream = new Mamba4RecStream(model, { capacity: 3, ...options });
  try {
    feed(stream, slots, histories, makeRng(seed));
    return await streamScores(stream, Int32Array.from(slots));
  } finally {
    stream.dispose();
  }
}

for (const numLayers of [1, 2]) {
  Deno.test(`Mamba4RecStream (${numLayers} layer${numLayers > 1 ? "s" : ""}): the fused forms give the separate ops' scores (layerTail to rounding, the step's own input projection bit for bit)`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const model = smallModel(numLayers, rng, seed);
    const histories = [1, D_CONV, 23].map((n) => history(rng, n));
    const slots = [2, 0, 1];
    const fed = (options: Omit<Mamba4RecStreamOptions, "capacity">) =>
      fedScores(model, options, slots, histories, seed);
    const separate = await fed({});
    const fused = await fed({ fusedTail: true });
    assertRowsClose(fused, separate, slots.length, `seed ${seed}: fused vs separate tail`);
    assertRowsClose(
      fused,
      await fullScores(model, histories),
      slots.length,
      `seed ${seed}: fused vs full forward`,
    );
    assertEquals(
      await fed({ fusedInProjection: true }),
      separate,
      `seed ${seed}: the step's projection vs the product's`,
    );
    assertEquals(
      await fed({ fusedInProjection: true, fusedTail: true }),
      fused,
      `seed ${seed}: both fusions vs the fused tail alone`,
    );
  });
}

Deno.test("Mamba4RecStream.recommend: the best k items of the full scores, never PAD", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const model = smallModel(1, rng, seed);
  const stream = new Mamba4RecStream(model, { capacity: 4 });
  try {
    const histories = [history(rng, 6), history(rng, 1), history(rng, 9)];
    feed(stream, [1, 3, 0], histories, rng);
    const want = await fullScores(model, histories);
    const k = NUM_ITEMS - 1;
    const rec = await stream.recommend(Int32Array.of(1, 3, 0), k);
    for (let u = 0; u < 3; u++) {
      const ids = rec.items.subarray(u * k, (u + 1) * k);
      assertEquals(new Set(ids).size, k, `seed ${seed}: user ${u} items distinct`);
      assert(!ids.includes(0), `seed ${seed}: PAD recommended to user ${u}`);
      const picked = rec.scores.subarray(u * k, (u + 1) * k);
      const wanted = Array.from(ids, (id) => want[u * NUM_ITEMS + id]);
      assertClose(picked, wanted, 1e-5, `seed ${seed}: user ${u} scores of the picked items`);
      for (let j = 1; j < k; j++) {
        assert(picked[j] <= picked[j - 1], `seed ${seed}: user ${u} not sorted at ${j}`);
      }
    }
    const top3 = await stream.recommend(Int32Array.of(1, 3, 0), 3);
    for (let u = 0; u < 3; u++) {
      assertEquals(
        [...top3.items.subarray(u * 3, u * 3 + 3)],
        [...rec.items.subarray(u * k, u * k + 3)],
        `seed ${seed}: user ${u} top 3`,
      );
    }
    assertThrows(() => stream.recommend(Int32Array.of(1), 0), RangeError, "k must be");
    assertThrows(() => stream.recommend(Int32Array.of(1), NUM_ITEMS), RangeError, "k must be");
    assertThrows(() => stream.recommend(Int32Array.of(2), 1), RangeError, "users[0] = 2");
  } finally {
    stream.dispose();
  }
});

Deno.test("Mamba4RecStream: bad input throws naming the argument", () => {
  const model = smallModel(1, makeRng(7), 7);
  const stream = new Mamba4RecStream(model, { capacity: 2 });
  try {
    const one = Int32Array.of(1);
    assertThrows(() => stream.observe(Int32Array.of(2), one), RangeError, "users[0] = 2");
    assertThrows(
      () => stream.observe(Int32Array.of(0, -1), Int32Array.of(1, 1)),
      RangeError,
      "users[1] = -1",
    );
    assertThrows(() => stream.observe(one, Int32Array.of(0)), RangeError, "items[0] = 0");
    assertThrows(() => stream.observe(one, Int32Array.of(NUM_ITEMS)), RangeError, "items[0]");
    assertThrows(() => stream.observe(one, Int32Array.of(1, 2)), RangeError, "same length");
    assertThrows(() => stream.reset(Int32Array.of(5)), RangeError, "users[0] = 5");
    assertThrows(() => stream.scores(Int32Array.of(9)), RangeError, "users[0] = 9");
    assertThrows(() => stream.eventCount(2), RangeError, "user 2");
    assertThrows(() => stream.recommend(new Int32Array(0), 1), RangeError, "users is empty");
    assertThrows(() => stream.observe([0] as unknown as Int32Array, one), TypeError, "users");
    assertThrows(() => new Mamba4RecStream(model, { capacity: 0 }), RangeError, "capacity");
    assertEquals(stream.eventCount(0), 0, "a rejected call observed nothing");
  } finally {
    stream.dispose();
  }
});

Deno.test("selective step kernels match their float64 references over several steps", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const streams = 3, slots = [4, 0, 2], capacity = 5, d = 6, n = 7, w = 3, steps = 5;
  const f32 = (a: Float64Array) => Float32Array.from(a);
  const weight = randn(rng, d * w, 0.5), bias = randn(rng, d, 0.5);
  const A = Float64Array.from(randn(rng, d * n), (v) => -Math.exp(v));
  const D = randn(rng, d), deltaBias = randn(rng, d, 0.3);
  const windows = slots.map(() => new Float64Array((w - 1) * d));
  const states = slots.map(() => new Float64Array(d * n));
  const tensors = tidy(() => ({
    weight: Tensor.from(f32(weight), [d, w]),
    bias: Tensor.from(f32(bias), [d]),
    A: Tensor.from(f32(A), [d, n]),
    D: Tensor.from(f32(D), [d]),
    deltaBias: Tensor.from(f32(deltaBias), [d]),
    window: Tensor.from(new Float32Array(capacity * (w - 1) * d), [capacity, w - 1, d]),
    state: Tensor.from(new Float32Array(capacity * d * n), [capacity, d, n]),
    slots: Tensor.from(Int32Array.from(slots), [streams], "i32"),
  }));
  try {
    for (let step = 0; step < steps; step++) {
      const x = randn(rng, streams * d), delta = randn(rng, streams * d);
      const B = randn(rng, streams * n), C = randn(rng, streams * n), z = randn(rng, streams * d);
      const [convOut, y] = await readTensors(tidy(() => {
        const conv = causalConv1dStep(
          Tensor.from(f32(x), [streams, d]),
          tensors.weight,
          tensors.bias,
          tensors.window,
          tensors.slots,
        );
        const y = selectiveScanStep(
          {
            x: conv,
            delta: Tensor.from(f32(delta), [streams, d]),
            A: tensors.A,
            B: Tensor.from(f32(B), [streams, n]),
            C: Tensor.from(f32(C), [streams, n]),
            D: tensors.D,
            z: Tensor.from(f32(z), [streams, d]),
            deltaBias: tensors.deltaBias,
          },
          tensors.state,
          tensors.slots,
        );
        return [conv, y];
      }));
      for (let s = 0; s < streams; s++) {
        const row = (a: Float64Array, m: number) => a.subarray(s * m, (s + 1) * m);
        const conv = causalConv1dStepReference(row(x, d), weight, bias, windows[s]);
        const want = selectiveScanStepReference({
          x: Float64Array.from(convOut.subarray(s * d, (s + 1) * d)),
          delta: row(delta, d),
          A,
          B: row(B, n),
          C: row(C, n),
          D,
          z: row(z, d),
          deltaBias,
        }, states[s]);
        const what = `seed ${seed}: step ${step}, stream ${s}`;
        assertClose(convOut.subarray(s * d, (s + 1) * d), conv, 1e-5, `${what} conv`);
        assertClose(y.subarray(s * d, (s + 1) * d), want, 1e-5, `${what} scan`);
      }
    }
    const [window, state] = await readTensors([tensors.window, tensors.state]);
    slots.forEach((slot, s) => {
      const what = `seed ${seed}: slot ${slot}`;
      assertClose(
        window.subarray(slot * (w - 1) * d, (slot + 1) * (w - 1) * d),
        windows[s],
        1e-6,
        `${what} window`,
      );
      assertClose(
        state.subarray(slot * d * n, (slot + 1) * d * n),
        states[s],
        1e-5,
        `${what} state`,
      );
    });
    for (const unused of [1, 3]) {
      assert(
        state.subarray(unused * d * n, (unused + 1) * d * n).every((v) => v === 0),
        `slot ${unused} touched`,
      );
    }
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
});
