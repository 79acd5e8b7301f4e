import { assert, assertEquals, assertThrows } from "@std/assert";
import { noGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { writeAt } from "../ops/core/unrecorded.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import {
  causalConv1dStep,
  causalConv1dStepReference,
  selectiveScanStep,
  selectiveScanStepReference,
} from "../ops/sequence/selective_step.ts";
import { Mamba4Rec, mamba4recConfig } from "../models/mamba4rec.ts";
import { Mamba4RecStream } from "../models/streaming.ts";
import { uploadSequences } from "../models/training/layouts.ts";
import { assertClose, freshSeed, makeRng, randint, randn } from "./util.ts";

const NUM_ITEMS = 23;
const D_CONV = 4;

/**
 * Spread of the redrawn test weights: large enough that every part of the Mamba block moves the
 * scores far above the tolerance, small enough that the model stays well conditioned (at 0.4
 * some draws make even the full GPU forward differ from float64 by 1e-5).
 */
const WEIGHT_STD = 0.25;

/**
 * A small Mamba4Rec with dropout off and weights redrawn from N(0, WEIGHT_STD²) (LayerNorm
 * scales and D around 1; A_log kept).
 */
function smallModel(numLayers: number, rng: () => number, seed: number): Mamba4Rec {
  const model = new Mamba4Rec(mamba4recConfig({
    numItems: NUM_ITEMS,
    hiddenSize: 8,
    dState: 5,
    dConv: D_CONV,
    expand: 2,
    numLayers,
    dropoutProb: 0,
    seed: seed % 100000,
  }));
  for (const [name, t] of model.params.entries()) {
    if (name.endsWith("A_log")) continue;
    const around = name.endsWith("LayerNorm.weight") || name.endsWith(".D") ? 1 : 0;
    const v = Float32Array.from(randn(rng, t.size, WEIGHT_STD), (x) => around + x);
    tidy(() => writeAt(t, Tensor.from(v, t.shape), 0));
  }
  return model;
}

/** The full model's scores `[users, numItems]` at each history's last item. */
async function fullScores(model: Mamba4Rec, histories: Int32Array[]): Promise<Float32Array> {
  const L = Math.max(...histories.map((h) => h.length));
  const items = new Int32Array(histories.length * L);
  histories.forEach((h, b) => items.set(h, b * L));
  const lengths = Int32Array.from(histories, (h) => h.length);
  const scores = tidy(() =>
    noGrad(() => {
      const h = model.forward(uploadSequences(items, lengths, histories.length, L), false);
      return matmul(h, model.itemTable, { transB: true });
    })
  );
  const host = (await readTensors([scores]))[0] as Float32Array;
  scores.dispose();
  return host;
}

async function streamScores(stream: Mamba4RecStream, users: Int32Array): Promise<Float32Array> {
  const t = stream.scores(users);
  const host = (await readTensors([t]))[0] as Float32Array;
  t.dispose();
  return host;
}

/**
 * Feeds each user's history event by event: every call lists the users with events left in a
 * shuffled order, and some users get their next two events in one call (listed twice).
 */
function feed(
  stream: Mamba4RecStream,
  slots: number[],
  histories: Int32Array[],
  rng: () => number,
): void {
  const next = histories.map(() => 0);
  for (;;) {
    const users: number[] = [], items: number[] = [];
    const order = slots.map((_, i) => i).sort(() => rng() - 0.5);
    for (const i of order) {
      const take = rng() < 0.25 ? 2 : 1;
      for (let k = 0; k < take && next[i] < histories[i].length; k++) {
        users.push(slots[i]);
        items.push(histories[i][next[i]++]);
      }
    }
    if (users.length === 0) return;
    stream.observe(Int32Array.from(users), Int32Array.from(items));
  }
}

function assertRowsClose(
  got: Float32Array,
  want: Float32Array,
  users: number,
  what: string,
): void {
  for (let u = 0; u < users; u++) {
    const row = (a: Float32Array) => a.subarray(u * NUM_ITEMS, (u + 1) * NUM_ITEMS);
    assertClose(row(got), row(want), 1e-5, `${what}, user ${u}`);
  }
}

const history = (rng: () => number, n: number) =>
  Int32Array.from(randint(rng, n, NUM_ITEMS - 1), (v) => v + 1);

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
