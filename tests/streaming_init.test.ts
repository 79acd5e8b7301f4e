import { assert, assertEquals, assertThrows } from "@std/assert";
import { noGrad, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import {
  selectiveScan,
  type SelectiveScanInputs,
  type SelectiveScanProblem,
  selectiveScanReferenceFinalState,
  type SelectiveScanTuning,
  selectiveScanWithFinalState,
} from "../ops/mod.ts";
import { Mamba4RecStream } from "../models/streaming/mamba4rec_stream.ts";
import { assertClose, freshSeed, makeRng, randint, randn } from "./util.ts";
import {
  assertRowsClose,
  feed,
  fullScores,
  history,
  NUM_ITEMS,
  smallModel,
  streamScores,
} from "./streaming_model.ts";

interface StateCase {
  batch: number;
  channels: number;
  length: number;
  states: number;
  channelsLast: boolean;
  tuning?: SelectiveScanTuning;
}

const f32 = (a: Float64Array) => Float32Array.from(a);

/** Random inputs with D, z, deltaBias and softplus, as the Mamba block calls the scan. */
function stateInputs(c: StateCase, rng: () => number): SelectiveScanInputs {
  const nd = c.batch * c.channels * c.length, nn = c.batch * c.states * c.length;
  const A = new Float64Array(c.channels * c.states);
  for (let i = 0; i < A.length; i++) A[i] = -(1 + (i % c.states)) * (0.2 + 0.4 * rng());
  return {
    u: randn(rng, nd),
    delta: randn(rng, nd, 0.5),
    A,
    B: randn(rng, nn),
    C: randn(rng, nn),
    D: randn(rng, c.channels),
    z: randn(rng, nd),
    deltaBias: randn(rng, c.channels, 0.3),
  };
}

/**
 * The final state of rows with random lengths (0, 1, the full length and between) against the
 * float64 reference, and the output against `selectiveScan`'s, bit for bit.
 */
async function checkFinalState(c: StateCase, seed: number): Promise<void> {
  const rng = makeRng(seed);
  const p: SelectiveScanProblem = { ...c, softplus: true };
  const x = stateInputs(c, rng);
  const lengths = Int32Array.from(randint(rng, c.batch, c.length + 1));
  lengths[0] = c.length;
  if (c.batch > 1) lengths[1] = 1;
  if (c.batch > 2) lengths[2] = 0;
  const layout = c.channelsLast ? "bld" : "bdl";
  const dShape = c.channelsLast ? [c.batch, c.length, c.channels] : [c.batch, c.channels, c.length];
  const nShape = c.channelsLast ? [c.batch, c.length, c.states] : [c.batch, c.states, c.length];
  const [out, state, plain] = await readTensors(tidy(() =>
    noGrad(() => {
      const u = Tensor.from(f32(x.u), dShape), delta = Tensor.from(f32(x.delta), dShape);
      const A = Tensor.from(f32(x.A), [c.channels, c.states]);
      const B = Tensor.from(f32(x.B), nShape), C = Tensor.from(f32(x.C), nShape);
      const options = {
        D: Tensor.from(f32(x.D!), [c.channels]),
        z: Tensor.from(f32(x.z!), dShape),
        deltaBias: Tensor.from(f32(x.deltaBias!), [c.channels]),
        deltaSoftplus: true,
        layout,
        tuning: c.tuning,
      } as const;
      const r = selectiveScanWithFinalState(u, delta, A, B, C, {
        ...options,
        lengths: Tensor.from(lengths, [c.batch], "i32"),
      });
      return [r.out, r.state, selectiveScan(u, delta, A, B, C, options)];
    })
  ));
  const what = `seed ${seed}: ${JSON.stringify(c)}, lengths ${lengths}`;
  assertEquals(out, plain, `${what}: output differs from selectiveScan's`);
  const want = selectiveScanReferenceFinalState(p, x, lengths);
  const row = c.channels * c.states;
  for (let b = 0; b < c.batch; b++) {
    const got = state.subarray(b * row, (b + 1) * row);
    if (lengths[b] === 0) {
      assert(got.every((v) => v === 0), `${what}: row ${b} of length 0 has a state`);
    } else {
      assertClose(got, want.subarray(b * row, (b + 1) * row), 1e-5, `${what}: row ${b}`);
    }
  }
}

Deno.test("selectiveScanWithFinalState: each row's last-token state matches float64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const cases: StateCase[] = [
    { batch: 4, channels: 6, length: 37, states: 5, channelsLast: true },
    { batch: 3, channels: 5, length: 50, states: 7, channelsLast: false },
    // Several states per channel over two invocations, and the length in parallel segments.
    { batch: 3, channels: 3, length: 45, states: 40, channelsLast: true },
    { batch: 5, channels: 4, length: 70, states: 6, channelsLast: true, tuning: { segments: 3 } },
    { batch: 1, channels: 2, length: 1, states: 3, channelsLast: false },
  ];
  for (const c of cases) await checkFinalState(c, Math.floor(rng() * 2 ** 32));
});

Deno.test("selectiveScanWithFinalState: refuses gradients and bad lengths, naming them", () => {
  tidy(() => {
    const u = Tensor.from(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const A = Tensor.from(new Float32Array(3 * 2).fill(-1), [3, 2]);
    const B = Tensor.from(new Float32Array(2 * 2 * 4), [2, 2, 4]);
    assertThrows(
      () =>
        selectiveScanWithFinalState(
          requireGrad(Tensor.from(new Float32Array(24), [2, 3, 4])),
          u,
          A,
          B,
          B,
        ),
      Error,
      "no backward",
    );
    assertThrows(
      () =>
        selectiveScanWithFinalState(u, u, A, B, B, { lengths: Tensor.from([2, 2, 2], [3], "i32") }),
      RangeError,
      "lengths must be i32 (batch 2)",
    );
    assertThrows(
      () => selectiveScanWithFinalState(u, u, A, B, B, { lengths: Tensor.from([2, 2], [2]) }),
      TypeError,
    );
  });
});

for (const numLayers of [1, 2]) {
  const name = `Mamba4RecStream.initFromHistories (${numLayers} layer${numLayers > 1 ? "s" : ""})` +
    ", then more events: scores equal the full forward and stepping";
  Deno.test(name, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const model = smallModel(numLayers, rng, seed);
    const capacity = 9;
    const initialised = new Mamba4RecStream(model, { capacity });
    const stepped = new Mamba4RecStream(model, { capacity });
    try {
      const lengths = [1, 2, 3, 7, 37, 300];
      const slots = [5, 0, 8, 3, 1, 6];
      const histories = lengths.map((n) => history(rng, n));
      // A slot with earlier events is overwritten; small passes split the users.
      initialised.observe(Int32Array.of(3, 3), Int32Array.of(4, 9));
      initialised.initFromHistories(Int32Array.from(slots), histories, 400);
      lengths.forEach((n, i) => assertEquals(initialised.eventCount(slots[i]), n));
      feed(stepped, slots, histories, rng);
      const users = Int32Array.from(slots);
      const what = `seed ${seed}`;
      const want = await fullScores(model, histories);
      const fromInit = await streamScores(initialised, users);
      assertRowsClose(fromInit, want, slots.length, `${what}: init vs full forward`);
      assertRowsClose(
        fromInit,
        await streamScores(stepped, users),
        slots.length,
        `${what}: init vs stepping`,
      );

      // A few more events, fed to both streams alike.
      const more = slots.map(() => history(rng, 1 + randint(rng, 1, 4)[0]));
      for (let e = 0; e < 4; e++) {
        const us: number[] = [], items: number[] = [];
        more.forEach((m, i) => {
          if (e < m.length) {
            us.push(slots[i]);
            items.push(m[e]);
          }
        });
        for (const s of [initialised, stepped]) {
          s.observe(Int32Array.from(us), Int32Array.from(items));
        }
      }
      const longer = histories.map((h, i) => Int32Array.from([...h, ...more[i]]));
      const after = await streamScores(initialised, users);
      assertRowsClose(
        after,
        await fullScores(model, longer),
        slots.length,
        `${what}: more events vs full forward`,
      );
      assertRowsClose(
        after,
        await streamScores(stepped, users),
        slots.length,
        `${what}: more events vs stepping`,
      );
    } finally {
      initialised.dispose();
      stepped.dispose();
    }
  });
}

Deno.test("Mamba4RecStream.initFromHistories: bad input throws naming the argument", () => {
  const model = smallModel(1, makeRng(3), 3);
  const stream = new Mamba4RecStream(model, { capacity: 3 });
  try {
    const h = Int32Array.of(1, 2);
    const init = (users: number[], histories: Int32Array[], tokens?: number) =>
      stream.initFromHistories(Int32Array.from(users), histories, tokens);
    assertThrows(() => init([0, 1], [h]), RangeError, "same length");
    assertThrows(() => init([3], [h]), RangeError, "users[0] = 3");
    assertThrows(() => init([1, 1], [h, h]), RangeError, "users[1] = 1 repeats users[0]");
    assertThrows(() => init([0], [new Int32Array(0)]), RangeError, "histories[0] must be");
    assertThrows(() => init([0], [Int32Array.of(1, 0)]), RangeError, "histories[0][1] = 0");
    assertThrows(() => init([0], [Int32Array.of(NUM_ITEMS)]), RangeError, "histories[0][0]");
    assertThrows(() => init([0], [h], 0), RangeError, "tokensPerPass");
    assertEquals(stream.eventCount(0), 0, "a rejected call changed nothing");
  } finally {
    stream.dispose();
  }
});
