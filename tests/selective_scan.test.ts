import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  selectiveScan,
  type SelectiveScanInputs,
  type SelectiveScanProblem,
  selectiveScanReference,
  selectiveScanReferenceBackward,
} from "../ops/sequence/selective_scan/mod.ts";
import {
  backward,
  mul,
  readTensors,
  requireGrad,
  runtime,
  sumAll,
  Tensor,
  tidy,
} from "../ops/mod.ts";
import { type ScanCase, setUpScan } from "./selective_scan_check.ts";
import { freshSeed, gradCheck, makeRng, randn, uniform } from "./util.ts";

async function check(c: ScanCase, channelsLast: boolean, seed: number, rng: () => number) {
  const { p, layout, present, inputs, unpack, termSizes, gradientsOf, flags } = setUpScan(
    c,
    channelsLast,
    rng,
  );

  await gradCheck({
    what: `selectiveScan b${c.batch} d${c.channels} l${c.length} n${c.states} ${layout} ` +
      `${flags} ${JSON.stringify(c.tuning ?? {})} seed ${seed}`,
    inputs,
    gpu: ([u, delta, A, B, C, ...rest]) => {
      const opt = Object.fromEntries(present.map((k, i) => [k, rest[i]]));
      return selectiveScan(u, delta, A, B, C, {
        ...opt,
        deltaSoftplus: p.softplus,
        layout,
        tuning: c.tuning,
      });
    },
    ref: (xs) => selectiveScanReference(p, unpack(xs)),
    refScale: (xs) => selectiveScanReference(p, termSizes(xs)),
    refGrad: (xs, g) => gradientsOf(selectiveScanReferenceBackward(p, unpack(xs), g)),
    refGradScale: (xs, g) =>
      gradientsOf(selectiveScanReferenceBackward(p, termSizes(xs), g.map(Math.abs))).map((a) =>
        a.map(Math.abs)
      ),
    rng,
    tol: 1e-5,
    probes: 8,
  });
}

const CASES: ScanCase[] = [
  { batch: 2, channels: 3, length: 7, states: 5, D: true, z: true, bias: true, softplus: true },
  { batch: 1, channels: 1, length: 1, states: 16, D: true, z: true, softplus: true },
  { batch: 2, channels: 37, length: 200, states: 32, D: true, z: true, softplus: true },
  { batch: 3, channels: 9, length: 61, states: 16, bias: true, softplus: true },
  { batch: 2, channels: 4, length: 33, states: 1, z: true },
  { batch: 1, channels: 3, length: 2000, states: 5, D: true, z: true, softplus: true },
];

for (const channelsLast of [false, true]) {
  Deno.test(
    `selectiveScan ${channelsLast ? "bld" : "bdl"}: forward and every gradient match float64 ` +
      `(n 1/5/16/32, lengths 1–200, optional D, z, deltaBias, softplus)`,
    async () => {
      const seed = freshSeed();
      const rng = makeRng(seed);
      for (const c of CASES) await check(c, channelsLast, seed, rng);
    },
  );
}

Deno.test("selectiveScan: length split into segments, other state-kernel shapes", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const cases: [ScanCase, boolean][] = [
    [{
      batch: 1,
      channels: 5,
      length: 2000,
      states: 16,
      D: true,
      bias: true,
      softplus: true,
      tuning: { segments: 4 },
    }, false],
    [{
      batch: 2,
      channels: 70,
      length: 45,
      states: 5,
      D: true,
      z: true,
      tuning: { segments: 2, stateRows: 3, stateChunk: 5 },
    }, true],
    [{
      batch: 2,
      channels: 11,
      length: 200,
      states: 32,
      z: true,
      bias: true,
      softplus: true,
      tuning: { segments: 3, stateRows: 2 },
    }, false],
  ];
  for (const [c, last] of cases) await check(c, last, seed, rng);
});

Deno.test("selectiveScan: explicit workgroup shapes and intervals give the same results", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const base = { batch: 2, channels: 10, length: 150, states: 16, D: true, z: true, bias: true };
  for (
    const tuning of [
      { interval: 8, channelThreads: 3, channelSteps: 2, stateRows: 3, stateChunk: 3 },
      { interval: 64, stateRows: 1, stateChunk: 1, segments: 2 },
      { interval: 4, channelThreads: 256, channelSteps: 4, segments: 3 },
      { channelThreads: 1, channelSteps: 1, stateRows: 5, stateChunk: 7 },
    ]
  ) {
    await check({ ...base, softplus: true, tuning }, tuning.interval !== 64, seed, rng);
  }
  // More than 32 states: several forward invocations share a channel (40 = 2 × 20, 67 = 3 × 23).
  await check({ ...base, states: 40, channels: 7, softplus: true }, false, seed, rng);
  await check({ ...base, states: 67, channels: 3, length: 37, z: false }, true, seed, rng);
});

Deno.test("selectiveScan: softplus of delta follows PyTorch far out in both tails", async () => {
  // One channel, one state: y_t = C·h_t with h_0 = Δ_0·B·u, so y_0 / (B·u·C) is Δ itself.
  const deltas = [-30, -16, -4, 0.5, 19.5, 20.5, 25];
  const p: SelectiveScanProblem = {
    batch: 1,
    channels: deltas.length,
    length: 1,
    states: 1,
    softplus: true,
    channelsLast: false,
  };
  const x: SelectiveScanInputs = {
    u: new Float64Array(deltas.length).fill(1),
    delta: Float64Array.from(deltas),
    A: new Float64Array(deltas.length).fill(-1),
    B: new Float64Array([1.5]),
    C: new Float64Array([2]),
  };
  const t = (v: Float64Array, shape: number[]) => Tensor.from(Float32Array.from(v), shape);
  const got = await selectiveScan(
    t(x.u, [1, 7, 1]),
    t(x.delta, [1, 7, 1]),
    t(x.A, [7, 1]),
    t(x.B, [1, 1, 1]),
    t(x.C, [1, 1, 1]),
    { deltaSoftplus: true },
  ).toArray();
  const want = selectiveScanReference(p, x);
  want.forEach((w, i) => {
    const rel = Math.abs(got[i] - w) / Math.abs(w);
    assert(rel < 2e-6, `softplus(${deltas[i]}): got ${got[i] / 3}, want ${w / 3} (rel ${rel})`);
  });
});

Deno.test("selectiveScan: the backward keeps checkpoints, not the state history", () => {
  const [b, d, l, n] = [2, 8, 200, 32];
  tidy(() => {
    const u = requireGrad(Tensor.from(new Float32Array(b * d * l).fill(0.5), [b, d, l]));
    const delta = Tensor.from(new Float32Array(b * d * l).fill(0.3), [b, d, l]);
    const A = Tensor.from(new Float32Array(d * n).fill(-1), [d, n]);
    const B = Tensor.from(new Float32Array(b * n * l).fill(0.2), [b, n, l]);
    const out = selectiveScan(u, delta, A, B, B);
    const saved = out.node!.saved;
    const held = saved.reduce((s, t) => s + t.size, 0);
    assert(held > 0 && held <= (b * d * l * n) / 8, `saved ${held} floats for the backward`);
  });
});

Deno.test("selectiveScan: gradients are bitwise deterministic", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [b, d, l, n] = [3, 19, 90, 16];
  const f32 = (v: Float64Array) => Float32Array.from(v);
  const data = {
    u: f32(randn(rng, b * d * l)),
    delta: f32(randn(rng, b * d * l, 0.5)),
    A: f32(uniform(rng, d * n, -4, -0.5)),
    B: f32(randn(rng, b * n * l)),
    C: f32(randn(rng, b * n * l)),
    D: f32(randn(rng, d)),
    w: f32(randn(rng, b * d * l)),
  };
  const run = async () => {
    const grads = tidy(() => {
      const u = requireGrad(Tensor.from(data.u, [b, d, l]));
      const A = requireGrad(Tensor.from(data.A, [d, n]));
      const D = requireGrad(Tensor.from(data.D, [d]));
      const B = requireGrad(Tensor.from(data.B, [b, n, l]));
      const out = selectiveScan(
        u,
        Tensor.from(data.delta, [b, d, l]),
        A,
        B,
        Tensor.from(data.C, [b, n, l]),
        {
          D,
          deltaSoftplus: true,
          tuning: { segments: 2, stateRows: 3 },
        },
      );
      backward(sumAll(mul(out, Tensor.from(data.w, [b, d, l]))));
      return [u.grad!, A.grad!, D.grad!, B.grad!];
    });
    const host = await readTensors(grads);
    grads.forEach((g) => g.dispose());
    return host;
  };
  const first = await run();
  const second = await run();
  first.forEach((g, i) => assertEquals([...second[i]], [...g], `gradient ${i} seed ${seed}`));
});

Deno.test("selectiveScan: bad input names the op and the shapes before any dispatch", () => {
  const t = (...shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, v) => a * v, 1)), shape);
  const u = t(2, 3, 5), A = t(3, 4), B = t(2, 4, 5);
  const before = runtime().dispatchCount;
  assertThrows(
    () => selectiveScan(u, t(2, 3, 4), A, B, B),
    RangeError,
    "selectiveScan: delta must be (batch, d, length) [2, 3, 5], got [2, 3, 4] f32",
  );
  assertThrows(
    () => selectiveScan(u, u, t(4, 4), B, B),
    RangeError,
    "selectiveScan: A must be (d 3, n), got [4, 4] f32",
  );
  assertThrows(
    () => selectiveScan(u, u, A, t(2, 5, 4), B),
    RangeError,
    "selectiveScan: B must be (batch, n, length) [2, 4, 5], got [2, 5, 4] f32",
  );
  assertThrows(
    () => selectiveScan(u, u, A, B, B, { layout: "bld" }),
    RangeError,
    "A must be (d 5, n), got [3, 4] f32",
  );
  assertThrows(
    () => selectiveScan(u, u, A, B, B, { D: t(4) }),
    RangeError,
    "selectiveScan: D must be (d) [3], got [4] f32",
  );
  assertThrows(
    () => selectiveScan(u, u, A, B, B, { z: t(2, 5, 3) }),
    RangeError,
    "z must be (batch, d, length) [2, 3, 5], got [2, 5, 3] f32",
  );
  assertThrows(
    () => selectiveScan(u, u, t(3, 300), t(2, 300, 5), t(2, 300, 5)),
    RangeError,
    "selectiveScan: n = 300 states exceeds the supported 256",
  );
  assertThrows(
    () => selectiveScan(u, u, A, B, B, { tuning: { segments: 0 } }),
    RangeError,
    "selectiveScan: tuning.segments must be an integer ≥ 1, got 0",
  );
  assertThrows(
    () => selectiveScan(u, u, A, B, B, { tuning: { interval: 12 } }),
    RangeError,
    "selectiveScan: tuning.interval must be an integer ≥ 1, a power of two up to 64, got 12",
  );
  assertThrows(
    () => selectiveScan(u, u, A, B, B, { tuning: { channelSteps: 64 } }),
    RangeError,
    "selectiveScan: tuning.channelSteps must be an integer ≥ 1, a power of two up to 32, got 64",
  );
  assertThrows(
    () => selectiveScan(t(2, 3), u, A, B, B),
    RangeError,
    "selectiveScan: u must be a non-empty (batch, d, length) tensor, got [2, 3] f32",
  );
  assertEquals(runtime().dispatchCount, before);
});
