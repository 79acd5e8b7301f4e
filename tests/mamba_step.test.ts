import { assert, assertEquals, assertThrows } from "@std/assert";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { reshape } from "../ops/pointwise/elementwise.ts";
import { mambaStep, mambaStepFromHidden } from "../ops/sequence/mamba_step.ts";
import { mambaStepReference } from "../ops/sequence/mamba_step_reference.ts";
import { causalConv1dStep, selectiveScanStep } from "../ops/sequence/selective_step.ts";
import {
  writeTransposedRows,
  writeTransposedRowsReference,
} from "../ops/sequence/transposed_rows.ts";
import { assertClose, freshSeed, makeRng, randn, transposed } from "./util.ts";

const f32 = (a: Float64Array) => Float32Array.from(a);

// Channels below one subgroup, past one workgroup's 256 invocations, and odd sizes between.
const SIZES = [
  { d: 6, n: 7, r: 2, w: 3 },
  { d: 260, n: 11, r: 1, w: 4 },
  { d: 33, n: 16, r: 3, w: 2 },
];

for (const { d, n, r, w } of SIZES) {
  Deno.test(`mambaStep matches its float64 reference over several steps (d ${d}, n ${n}, r ${r}, w ${w})`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const slots = [4, 0, 2], capacity = 5, steps = 5, streams = slots.length;
    const weights = {
      convWeight: randn(rng, d * w, 0.5),
      convBias: randn(rng, d, 0.5),
      xDt: randn(rng, r * d, 0.5 / Math.sqrt(d)),
      xB: randn(rng, n * d, 1 / Math.sqrt(d)),
      xC: randn(rng, n * d, 1 / Math.sqrt(d)),
      dtWeight: randn(rng, d * r, 0.5),
      dtBias: randn(rng, d, 0.3),
      A: Float64Array.from(randn(rng, d * n), (v) => -Math.exp(v)),
      D: randn(rng, d),
    };
    const xProjT = new Float64Array(d * (r + 2 * n));
    [[weights.xDt, r, 0], [weights.xB, n, r], [weights.xC, n, r + n]].forEach(([m, rows, at]) =>
      writeTransposedRowsReference(
        xProjT,
        null,
        m as Float64Array,
        { batch: 1, rows: rows as number, cols: d, width: r + 2 * n },
        at as number,
      )
    );
    const windows = slots.map(() => new Float64Array((w - 1) * d));
    const states = slots.map(() => new Float64Array(d * n));
    const tensors = tidy(() => ({
      step: {
        convWeight: Tensor.from(f32(weights.convWeight), [d, w]),
        convBias: Tensor.from(f32(weights.convBias), [d]),
        xProjT: Tensor.from(f32(xProjT), [d, r + 2 * n]),
        dtWeight: Tensor.from(f32(weights.dtWeight), [d, r]),
        dtBias: Tensor.from(f32(weights.dtBias), [d]),
        aT: Tensor.from(f32(transposed(weights.A, d, n)), [n, d]),
        D: Tensor.from(f32(weights.D), [d]),
      },
      pools: {
        window: Tensor.from(new Float32Array(capacity * (w - 1) * d), [capacity, w - 1, d]),
        state: Tensor.from(new Float32Array(capacity * n * d), [capacity, n, d]),
      },
      slots: Tensor.from(Int32Array.from(slots), [streams], "i32"),
    }));
    try {
      for (let step = 0; step < steps; step++) {
        const xz = randn(rng, streams * 2 * d);
        const [y] = await readTensors(tidy(() => [
          mambaStep(
            Tensor.from(f32(xz), [streams, 2 * d]),
            tensors.step,
            tensors.pools,
            tensors.slots,
          ),
        ]));
        for (let s = 0; s < streams; s++) {
          const want = mambaStepReference(
            Float64Array.from(f32(xz.subarray(s * 2 * d, (s + 1) * 2 * d))),
            weights,
            windows[s],
            states[s],
          );
          assertClose(
            y.subarray(s * d, (s + 1) * d),
            want,
            1e-5,
            `seed ${seed}: step ${step}, stream ${s} output`,
          );
        }
      }
      const [window, state] = await readTensors([tensors.pools.window, tensors.pools.state]);
      slots.forEach((slot, s) => {
        const what = `seed ${seed}: slot ${slot}`;
        assertClose(
          window.subarray(slot * (w - 1) * d, (slot + 1) * (w - 1) * d),
          windows[s],
          1e-6,
          `${what} window`,
        );
        // The pool is state-major [n, d]; the reference's state is [d, n].
        assertClose(
          state.subarray(slot * n * d, (slot + 1) * n * d),
          transposed(states[s], d, n),
          1e-5,
          `${what} state`,
        );
      });
      for (const unused of [1, 3]) {
        assert(
          state.subarray(unused * n * d, (unused + 1) * n * d).every((v) => v === 0) &&
            window.subarray(unused * (w - 1) * d, (unused + 1) * (w - 1) * d).every((v) => v === 0),
          `seed ${seed}: slot ${unused} touched`,
        );
      }
    } finally {
      tidy(() => {
        for (const t of [...Object.values(tensors.step), ...Object.values(tensors.pools)]) {
          t.dispose();
        }
        tensors.slots.dispose();
      });
    }
  });
}

Deno.test("mambaStep gives the unfused step kernels' and products' results bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const d = 40, n = 12, r = 3, w = 4, capacity = 6, steps = 4;
  const slots = Int32Array.of(5, 1, 2, 0);
  const streams = slots.length;
  const draw = (count: number, std: number) => f32(randn(rng, count, std));
  const t = tidy(() => {
    const xDt = Tensor.from(draw(r * d, 0.2), [r, d]);
    const xB = Tensor.from(draw(n * d, 0.2), [n, d]);
    const xC = Tensor.from(draw(n * d, 0.2), [n, d]);
    const A = Tensor.from(Float32Array.from(randn(rng, d * n), (v) => -Math.exp(v)), [d, n]);
    const xProjT = Tensor.from(new Float32Array(d * (r + 2 * n)), [1, d, r + 2 * n]);
    const aT = Tensor.from(new Float32Array(n * d), [1, n, d]);
    writeTransposedRows(xProjT, null, reshape(xDt, [1, r, d]), 0);
    writeTransposedRows(xProjT, null, reshape(xB, [1, n, d]), r);
    writeTransposedRows(xProjT, null, reshape(xC, [1, n, d]), r + n);
    writeTransposedRows(aT, null, reshape(A, [1, d, n]));
    return {
      xDt,
      xB,
      xC,
      A,
      step: {
        convWeight: Tensor.from(draw(d * w, 0.5), [d, w]),
        convBias: Tensor.from(draw(d, 0.5), [d]),
        xProjT: reshape(xProjT, [d, r + 2 * n]),
        dtWeight: Tensor.from(draw(d * r, 0.5), [d, r]),
        dtBias: Tensor.from(draw(d, 0.3), [d]),
        aT: reshape(aT, [n, d]),
        D: Tensor.from(draw(d, 1), [d]),
      },
      fused: {
        window: Tensor.from(new Float32Array(capacity * (w - 1) * d), [capacity, w - 1, d]),
        state: Tensor.from(new Float32Array(capacity * n * d), [capacity, n, d]),
      },
      window: Tensor.from(new Float32Array(capacity * (w - 1) * d), [capacity, w - 1, d]),
      state: Tensor.from(new Float32Array(capacity * d * n), [capacity, d, n]),
      slots: Tensor.from(slots, [streams], "i32"),
    };
  });
  try {
    for (let step = 0; step < steps; step++) {
      const [fused, unfused] = await readTensors(tidy(() => {
        const xz = Tensor.from(draw(streams * 2 * d, 1), [streams, 2 * d]);
        const halves = [0, d].map((at) =>
          matmul(xz, Tensor.from(identityColumns(2 * d, at, d), [d, 2 * d]), { transB: true })
        );
        const u = causalConv1dStep(
          halves[0],
          t.step.convWeight,
          t.step.convBias,
          t.window,
          t.slots,
        );
        const product = (a: Tensor, b: Tensor) => matmul(a, b, { transB: true });
        const y = selectiveScanStep(
          {
            x: u,
            delta: product(product(u, t.xDt), t.step.dtWeight),
            A: t.A,
            B: product(u, t.xB),
            C: product(u, t.xC),
            D: t.step.D,
            z: halves[1],
            deltaBias: t.step.dtBias,
          },
          t.state,
          t.slots,
        );
        return [mambaStep(xz, t.step, t.fused, t.slots), y];
      }));
      assertEquals(Array.from(fused), Array.from(unfused), `seed ${seed}: step ${step} output`);
    }
    const [fusedWindow, fusedState, window, state] = await readTensors([
      t.fused.window,
      t.fused.state,
      t.window,
      t.state,
    ]);
    assertEquals(Array.from(fusedWindow), Array.from(window), `seed ${seed}: windows`);
    const stateMajor = f32(transposedRows(Float64Array.from(state), capacity, d, n));
    assertEquals(Array.from(fusedState), Array.from(stateMajor), `seed ${seed}: states`);
  } finally {
    tidy(() => {
      for (const v of Object.values(t)) {
        if (v instanceof Tensor) v.dispose();
        else for (const u of Object.values(v)) u.dispose();
      }
    });
  }
});

/** `[rows, width]` with ones at `(i, offset + i)`: the product with it takes columns out exactly. */
function identityColumns(width: number, offset: number, rows: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let i = 0; i < rows; i++) out[i * width + offset + i] = 1;
  return out;
}

/** Each of `batch` matrices `[rows, cols]` transposed. */
function transposedRows(a: Float64Array, batch: number, rows: number, cols: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let b = 0; b < batch; b++) {
    out.set(
      transposed(a.subarray(b * rows * cols, (b + 1) * rows * cols), rows, cols),
      b * rows * cols,
    );
  }
  return out;
}

Deno.test("mambaStep: mismatched shapes throw naming the argument", () => {
  tidy(() => {
    const d = 4, n = 2, r = 1, w = 3;
    const step = {
      convWeight: Tensor.from(new Float32Array(d * w), [d, w]),
      convBias: Tensor.from(new Float32Array(d), [d]),
      xProjT: Tensor.from(new Float32Array(d * (r + 2 * n)), [d, r + 2 * n]),
      dtWeight: Tensor.from(new Float32Array(d * r), [d, r]),
      dtBias: Tensor.from(new Float32Array(d), [d]),
      aT: Tensor.from(new Float32Array(n * d), [n, d]),
      D: Tensor.from(new Float32Array(d), [d]),
    };
    const pools = {
      window: Tensor.from(new Float32Array(2 * (w - 1) * d), [2, w - 1, d]),
      state: Tensor.from(new Float32Array(2 * n * d), [2, n, d]),
    };
    const slots = Tensor.from(Int32Array.of(1), [1], "i32");
    const xz = Tensor.from(new Float32Array(2 * d), [1, 2 * d]);
    assertThrows(
      () => mambaStep(Tensor.from(new Float32Array(d), [1, d]), step, pools, slots),
      RangeError,
      "xz",
    );
    assertThrows(
      () =>
        mambaStep(xz, step, {
          ...pools,
          state: Tensor.from(new Float32Array(2 * n * d), [2, d, n]),
        }, slots),
      RangeError,
      "state must be [2, 2, 4]",
    );
    assertThrows(
      () =>
        mambaStep(
          xz,
          { ...step, xProjT: Tensor.from(new Float32Array(d * 4), [d, 4]) },
          pools,
          slots,
        ),
      RangeError,
      "xProjT",
    );
    assertThrows(
      () => mambaStep(xz, step, pools, Tensor.from(Int32Array.of(0, 1), [2], "i32")),
      RangeError,
      "slots",
    );
  });
});

Deno.test("writeTransposedRows copies each matrix transposed into its slot's columns, exactly", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const batch = 3, rows = 5, cols = 7, width = 9, offset = 3, capacity = 4;
  const shape = { batch, rows, cols, width };
  const src = randn(rng, batch * rows * cols);
  const start = randn(rng, capacity * cols * width);
  const slots = Int32Array.of(2, 0, 3);
  const wantSlotted = Float64Array.from(f32(start));
  writeTransposedRowsReference(wantSlotted, slots, Float64Array.from(f32(src)), shape, offset);
  const wantInOrder = Float64Array.from(f32(start));
  writeTransposedRowsReference(wantInOrder, null, Float64Array.from(f32(src)), shape, offset);
  const [slotted, inOrder] = await readTensors(tidy(() => {
    const source = Tensor.from(f32(src), [batch, rows, cols]);
    const a = Tensor.from(f32(start), [capacity, cols, width]);
    const b = Tensor.from(f32(start), [capacity, cols, width]);
    writeTransposedRows(a, Tensor.from(slots, [batch], "i32"), source, offset);
    writeTransposedRows(b, null, source, offset);
    return [a, b];
  }));
  assertEquals(Array.from(slotted), Array.from(f32(wantSlotted)), `seed ${seed}: slotted`);
  assertEquals(Array.from(inOrder), Array.from(f32(wantInOrder)), `seed ${seed}: in order`);
  assert(slotted.some((v, i) => v !== f32(start)[i]), `seed ${seed}: nothing written`);
  tidy(() => {
    const dst = Tensor.from(new Float32Array(cols * width), [1, cols, width]);
    const source = Tensor.from(f32(src), [batch, rows, cols]);
    assertThrows(() => writeTransposedRows(dst, null, source, offset), RangeError, "3 matrices");
    assertThrows(
      () =>
        writeTransposedRows(
          dst,
          null,
          Tensor.from(f32(src.subarray(0, rows * cols)), [1, rows, cols]),
          width - 1,
        ),
      RangeError,
      "column offset 8",
    );
  });
});

/** Random step weights of the fused kernel's layouts, and random (nonzero) pools. */
function randomStep(rng: () => number, d: number, n: number, r: number, w: number, slots: number) {
  const draw = (count: number, std: number) => f32(randn(rng, count, std));
  return {
    step: {
      convWeight: Tensor.from(draw(d * w, 0.5), [d, w]),
      convBias: Tensor.from(draw(d, 0.5), [d]),
      xProjT: Tensor.from(draw(d * (r + 2 * n), 1 / Math.sqrt(d)), [d, r + 2 * n]),
      dtWeight: Tensor.from(draw(d * r, 0.5), [d, r]),
      dtBias: Tensor.from(draw(d, 0.3), [d]),
      aT: Tensor.from(Float32Array.from(randn(rng, n * d), (v) => -Math.exp(v)), [n, d]),
      D: Tensor.from(draw(d, 1), [d]),
    },
    window: draw(slots * (w - 1) * d, 1),
    state: draw(slots * n * d, 1),
  };
}

// Tunings change how the kernel waits for memory, never a result bit: a state batch of one, one
// that does not divide n, all n at once, the whole state row or its first states loaded before
// the convolution (the rest in batches that fit or do not), and several streams a workgroup (two
// for three streams, so the last workgroup has one; more than there are streams; more channels
// than invocations), and weights loaded one, seven (not dividing d) or more than d at a time.
for (
  const { d, n, r, w, tunings } of [
    {
      d: 40,
      n: 12,
      r: 3,
      w: 4,
      tunings: [
        { stateBatch: 1 },
        { stateBatch: 5 },
        { stateBatch: 12 },
        { prefetchStates: 12 },
        { prefetchStates: 12, stateBatch: 2 },
        { prefetchStates: 5, stateBatch: 2 },
        { prefetchStates: 1, stateBatch: 4 },
        { streamsPerWorkgroup: 2 },
        { streamsPerWorkgroup: 8, stateBatch: 5 },
        { streamsPerWorkgroup: 3, prefetchStates: 8 },
        { weightLoads: 1 },
        { weightLoads: 7 },
        { weightLoads: 64, streamsPerWorkgroup: 2 },
      ],
    },
    {
      d: 260,
      n: 9,
      r: 2,
      w: 3,
      tunings: [{ stateBatch: 2 }, { stateBatch: 9 }, { streamsPerWorkgroup: 2, stateBatch: 4 }],
    },
  ]
) {
  Deno.test(`mambaStep tunings give the default's results bit for bit (d ${d}, n ${n})`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const capacity = 5, slots = Int32Array.of(3, 0, 4);
    const t = tidy(() => randomStep(rng, d, n, r, w, capacity));
    const inputs = Array.from({ length: 3 }, () => f32(randn(rng, slots.length * 2 * d, 1)));
    /** Three steps from the same pools under `tuning`: every output, then the pools. */
    const run = async (tuning: object) => {
      const pools = tidy(() => ({
        window: Tensor.from(t.window, [capacity, w - 1, d]),
        state: Tensor.from(t.state, [capacity, n, d]),
      }));
      const ys = tidy(() =>
        inputs.map((xz) =>
          mambaStep(
            Tensor.from(xz, [slots.length, 2 * d]),
            t.step,
            pools,
            Tensor.from(slots, [slots.length], "i32"),
            tuning,
          )
        )
      );
      const host = await readTensors([...ys, pools.window, pools.state]);
      for (const x of [...ys, pools.window, pools.state]) x.dispose();
      return host.map((a) => Array.from(a));
    };
    try {
      const want = await run({});
      assert(want[0].some((v) => v !== 0), `seed ${seed}: the default's output is zero`);
      for (const tuning of tunings) {
        assertEquals(await run(tuning), want, `seed ${seed}: ${JSON.stringify(tuning)}`);
      }
    } finally {
      tidy(() => Object.values(t.step).forEach((x) => x.dispose()));
    }
  });
}

Deno.test("mambaStep: a bad tuning or input projection throws naming it", () => {
  const rng = makeRng(freshSeed());
  const d = 300, n = 4, r = 1, w = 2;
  tidy(() => {
    const t = randomStep(rng, d, n, r, w, 1);
    const pools = {
      window: Tensor.from(t.window, [1, w - 1, d]),
      state: Tensor.from(t.state, [1, n, d]),
    };
    const step = (tuning: object) =>
      mambaStep(
        Tensor.from(new Float32Array(2 * d), [1, 2 * d]),
        t.step,
        pools,
        Tensor.from(Int32Array.of(0), [1], "i32"),
        tuning,
      );
    for (const stateBatch of [0, n + 1, 1.5]) {
      assertThrows(() => step({ stateBatch }), RangeError, `tuning.stateBatch`);
    }
    for (const streamsPerWorkgroup of [0, 9, 1.5]) {
      assertThrows(() => step({ streamsPerWorkgroup }), RangeError, "tuning.streamsPerWorkgroup");
    }
    for (const weightLoads of [0, 65, 2.5]) {
      assertThrows(() => step({ weightLoads }), RangeError, "tuning.weightLoads");
    }
    assertThrows(() => step({ prefetchStates: 1 }), RangeError, "d_inner 300");
    for (const prefetchStates of ["yes", -1, n + 1, 1.5]) {
      assertThrows(() => step({ prefetchStates }), RangeError, "tuning.prefetchStates");
    }
    // The projection must give x and z, 2 · d_inner columns.
    assertThrows(
      () =>
        mambaStepFromHidden(
          Tensor.from(new Float32Array(6), [1, 6]),
          Tensor.from(new Float32Array(6 * d), [6, d]),
          t.step,
          pools,
          Tensor.from(Int32Array.of(0), [1], "i32"),
        ),
      RangeError,
      "inProjT",
    );
  });
});

// The input projection made inside the step: the same x and z as matmul's product (its sums in
// the same order), so the same outputs and pools bit for bit. Widths that fill no batch of eight
// weight loads, several streams a workgroup with the last one short, and more channels than
// invocations.
for (
  const { d, n, r, w, width, tuning } of [
    { d: 40, n: 12, r: 3, w: 4, width: 17, tuning: {} },
    { d: 40, n: 12, r: 3, w: 4, width: 64, tuning: { streamsPerWorkgroup: 2, prefetchStates: 4 } },
    { d: 260, n: 9, r: 2, w: 3, width: 5, tuning: { stateBatch: 4 } },
  ]
) {
  Deno.test(`mambaStepFromHidden equals the product then mambaStep bit for bit (d ${d}, width ${width})`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const capacity = 5, slots = Int32Array.of(3, 0, 4);
    const t = tidy(() => randomStep(rng, d, n, r, w, capacity));
    const inProj = randn(rng, 2 * d * width, 1 / Math.sqrt(width));
    const inputs = Array.from({ length: 3 }, () => f32(randn(rng, slots.length * width, 1)));
    /** Three steps from the same pools, fused or not: every output, then the pools. */
    const run = async (fused: boolean) => {
      const pools = tidy(() => ({
        window: Tensor.from(t.window, [capacity, w - 1, d]),
        state: Tensor.from(t.state, [capacity, n, d]),
      }));
      const weight = Tensor.from(f32(inProj), [2 * d, width]);
      const weightT = Tensor.from(f32(transposed(inProj, 2 * d, width)), [width, 2 * d]);
      const ys = tidy(() =>
        inputs.map((h) => {
          const hidden = Tensor.from(h, [slots.length, width]);
          const slotTensor = Tensor.from(slots, [slots.length], "i32");
          return fused
            ? mambaStepFromHidden(hidden, weightT, t.step, pools, slotTensor, tuning)
            : mambaStep(
              matmul(hidden, weight, { transB: true }),
              t.step,
              pools,
              slotTensor,
              tuning,
            );
        })
      );
      const all = await readTensors([...ys, pools.window, pools.state]);
      tidy(() => [...ys, pools.window, pools.state, weight, weightT].forEach((x) => x.dispose()));
      return all;
    };
    try {
      assertEquals(await run(true), await run(false), `seed ${seed}`);
    } finally {
      tidy(() => Object.values(t.step).forEach((x) => x.dispose()));
    }
  });
}
