/**
 * `selectiveScanAt`, the selective scan read at one step per row (the last Mamba4Rec layer of a
 * prefix batch): against its float64 reference with finite differences over odd shapes, both
 * layouts, split lengths and explicit workgroup shapes, by both backwards (the re-scan and the
 * adjoint and state passes); the adjoint backward bit for bit against the full scan gathered at
 * the same positions, forward and every gradient; and the re-scan against it to rounding at
 * Mamba4Rec's sizes.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  selectiveScan,
  selectiveScanAt,
  selectiveScanReferenceAt,
  selectiveScanReferenceAtBackward,
  type SelectiveScanTuning,
} from "../ops/sequence/selective_scan/mod.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { backward, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { type ScanCase, setUpScan } from "./selective_scan_check.ts";
import { assertClose, freshSeed, makeRng, randn, uniform } from "./util.ts";

/** Positions with the first row at the last step and the second at the first, the rest random. */
function makePositions(c: ScanCase, rng: () => number): Int32Array {
  const pos = Int32Array.from({ length: c.batch }, () => Math.floor(rng() * c.length));
  pos[0] = c.length - 1;
  if (c.batch > 1) pos[1] = 0;
  return pos;
}

async function check(c: ScanCase, channelsLast: boolean, seed: number, rng: () => number) {
  const { p, layout, present, inputs, unpack, termSizes, gradientsOf, flags } = setUpScan(
    c,
    channelsLast,
    rng,
  );
  const positions = makePositions(c, rng);
  const what = `selectiveScanAt b${c.batch} d${c.channels} l${c.length} n${c.states} ${layout} ` +
    `${flags} ${JSON.stringify(c.tuning ?? {})} positions [${positions}] seed ${seed}`;
  const w = randn(rng, c.batch * c.channels);
  const results = tidy(() => {
    const ts = inputs.map((x) => requireGrad(Tensor.from(Float32Array.from(x.data), x.shape)));
    const [u, delta, A, B, C, ...rest] = ts;
    const opt = Object.fromEntries(present.map((k, i) => [k, rest[i]]));
    const out = selectiveScanAt(u, delta, A, B, C, Tensor.from(positions, [c.batch], "i32"), {
      ...opt,
      deltaSoftplus: p.softplus,
      layout,
      tuning: c.tuning,
    });
    backward(sumAll(mul(out, Tensor.from(Float32Array.from(w), out.shape))));
    return [out, ...ts.map((t) => t.grad!)];
  });
  const host = await readTensors(results);
  results.forEach((t) => t.dispose());
  // The values the GPU got (float32), so that their rounding is not counted as the scan's error.
  const xs = inputs.map((x) => Float64Array.from(Float32Array.from(x.data)));
  // Errors relative to the size of each result's terms (`termSizes`), not only to the result:
  // C·h + D·u and the sums of the backward, over random inputs of both signs, can cancel far
  // below their terms, and float32's error is a rounding of the terms.
  const sizes = termSizes(xs);
  const rms = (v: ArrayLike<number>) =>
    Math.sqrt(Array.from(v).reduce((sum, x) => sum + x * x, 0) / Math.max(1, v.length));
  const relative = (got: ArrayLike<number>, want: ArrayLike<number>, size: number) =>
    rms(Array.from(want, (v, i) => got[i] - v)) / Math.max(rms(want), size);
  const wantY = selectiveScanReferenceAt(p, unpack(xs), positions);
  const errorY = relative(host[0], wantY, rms(selectiveScanReferenceAt(p, sizes, positions)));
  assert(errorY < 1e-5, `${what} forward: relative error ${errorY.toExponential(3)}`);
  const gr = selectiveScanReferenceAtBackward(p, unpack(xs), positions, w);
  const analytic = gradientsOf(gr);
  const sizeGr = selectiveScanReferenceAtBackward(p, sizes, positions, w.map(Math.abs));
  const gradientSizes = gradientsOf(sizeGr).map(rms);
  const lossOf = (ys: Float64Array[]) =>
    selectiveScanReferenceAt(p, unpack(ys), positions).reduce((s, v, i) => s + v * w[i], 0);
  // Each gradient also floored at 1% of the case's largest root mean square entry: a gradient of
  // one entry can sit where its factor vanishes (silu' at z ≈ −1.278), which no sign removes.
  const floor = 1e-2 * Math.max(...analytic.map(rms));
  analytic.forEach((want, k) => {
    const got = host[k + 1];
    const e = relative(got, want, Math.max(floor, gradientSizes[k]));
    assert(e < 1e-5, `${what} grad[${k}] vs analytic: relative error ${e.toExponential(3)}`);
    // Finite differences where the gradient is at least 1% of its largest entry: read at one
    // step, the gradients decay as exp(Δ·A) per step back from it, and on the tiny ones float32
    // rounding (and the differences' own) says nothing about the derivative.
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const large = [...want.keys()].filter((i) => Math.abs(want[i]) >= 0.01 * scale);
    const probes = Array.from(
      { length: Math.min(6, large.length) },
      () => large[Math.floor(rng() * large.length)],
    );
    const fd = probes.map((i) => {
      const ys = xs.map((x) => Float64Array.from(x));
      const h = 1e-5 * Math.max(1, Math.abs(ys[k][i]));
      ys[k][i] += h;
      const up = lossOf(ys);
      ys[k][i] -= 2 * h;
      return (up - lossOf(ys)) / (2 * h);
    });
    assertClose(probes.map((i) => got[i]), fd, 1e-3, `${what} grad[${k}] vs finite differences`);
  });
}

const CASES: [ScanCase, boolean][] = [
  [
    { batch: 3, channels: 3, length: 7, states: 5, D: true, z: true, bias: true, softplus: true },
    true,
  ],
  [{ batch: 1, channels: 1, length: 1, states: 16, D: true, z: true, softplus: true }, false],
  [{
    batch: 4,
    channels: 37,
    length: 200,
    states: 32,
    D: true,
    z: true,
    bias: true,
    softplus: true,
  }, true],
  [{ batch: 3, channels: 9, length: 61, states: 16, bias: true, softplus: true }, false],
  [{ batch: 2, channels: 4, length: 33, states: 1, z: true }, true],
];

Deno.test(
  "selectiveScanAt: output at the positions and every gradient match float64 (n 1/5/16/32, " +
    "lengths 1–200, positions first, last and random, both layouts)",
  async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    for (const [c, last] of CASES) await check(c, last, seed, rng);
  },
);

Deno.test("selectiveScanAt: split lengths and explicit workgroup shapes match float64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const base = { batch: 3, channels: 10, length: 150, states: 16, D: true, z: true, bias: true };
  const tunings: SelectiveScanTuning[] = [
    { segments: 3, stateRows: 2 },
    { interval: 8, channelThreads: 3, channelSteps: 2, stateRows: 3, stateChunk: 3 },
    { interval: 64, stateRows: 1, stateChunk: 1, segments: 2 },
    { interval: 4, channelThreads: 256, channelSteps: 4, segments: 4 },
    { rescan: false },
    { rescan: false, interval: 8, stateRows: 1 },
  ];
  for (const [i, tuning] of tunings.entries()) {
    await check({ ...base, softplus: true, tuning }, i % 2 === 0, seed, rng);
  }
  // More than 32 states: several forward invocations share a channel.
  await check({ ...base, states: 40, channels: 7, softplus: true }, false, seed, rng);
});

Deno.test("selectiveScanAt by the adjoint and state passes: bit for bit the full scan gathered at the positions, forward and every gradient", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [b, l, d, n] = [5, 45, 13, 16];
  const f32 = (v: Float64Array) => Float32Array.from(v);
  const data = {
    u: f32(randn(rng, b * l * d)),
    delta: f32(randn(rng, b * l * d, 0.5)),
    A: f32(uniform(rng, d * n, -4, -0.5)),
    B: f32(randn(rng, b * l * n)),
    C: f32(randn(rng, b * l * n)),
    D: f32(randn(rng, d)),
    z: f32(randn(rng, b * l * d)),
    bias: f32(randn(rng, d, 0.3)),
    w: f32(randn(rng, b * d)),
  };
  const positions = Int32Array.of(l - 1, 0, 17, 31, Math.floor(rng() * l));
  const tunings: SelectiveScanTuning[] = [
    { rescan: false },
    { segments: 3, stateRows: 3 },
    { interval: 8, segments: 2 },
  ];
  for (const tuning of tunings) {
    const run = async (at: boolean) => {
      const results = tidy(() => {
        const ts = [
          Tensor.from(data.u, [b, l, d]),
          Tensor.from(data.delta, [b, l, d]),
          Tensor.from(data.A, [d, n]),
          Tensor.from(data.B, [b, l, n]),
          Tensor.from(data.C, [b, l, n]),
          Tensor.from(data.D, [d]),
          Tensor.from(data.z, [b, l, d]),
          Tensor.from(data.bias, [d]),
        ].map(requireGrad);
        const [u, delta, A, B, C, D, z, deltaBias] = ts;
        const pos = Tensor.from(positions, [b], "i32");
        const options = { D, z, deltaBias, deltaSoftplus: true, layout: "bld" as const, tuning };
        const out = at
          ? selectiveScanAt(u, delta, A, B, C, pos, options)
          : gatherPositions(selectiveScan(u, delta, A, B, C, options), pos);
        backward(sumAll(mul(out, Tensor.from(data.w, [b, d]))));
        return [out, ...ts.map((t) => t.grad!)];
      });
      const host = await readTensors(results);
      results.forEach((t) => t.dispose());
      return host;
    };
    const want = await run(false);
    const got = await run(true);
    const names = ["output", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "d deltaBias"];
    got.forEach((g, i) =>
      assertEquals(
        [...g],
        [...want[i]],
        `${names[i]} (tuning ${
          JSON.stringify(tuning)
        }) differs from the gathered full scan, seed ${seed}`,
      )
    );
  }
});

Deno.test("selectiveScanAt: the re-scan backward equals the adjoint and state passes to rounding at Mamba4Rec's sizes (d 128, l 200, n 32)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [b, l, d, n] = [3, 200, 128, 32];
  const f32 = (v: Float64Array) => Float32Array.from(v);
  // Mamba's initial A = −(1..n) and Δ = softplus(·) around 0.01–0.1, as a model starts.
  const A = new Float32Array(d * n);
  for (let i = 0; i < A.length; i++) A[i] = -(1 + (i % n)) * (0.8 + 0.4 * rng());
  const data = [
    f32(randn(rng, b * l * d)),
    f32(uniform(rng, b * l * d, -4.5, -1.5)),
    A,
    f32(randn(rng, b * l * n)),
    f32(randn(rng, b * l * n)),
    f32(randn(rng, d)),
    f32(randn(rng, b * l * d)),
    f32(randn(rng, d, 0.3)),
  ];
  const shapes = [[b, l, d], [b, l, d], [d, n], [b, l, n], [b, l, n], [d], [b, l, d], [d]];
  const w = f32(randn(rng, b * d));
  const positions = Int32Array.of(l - 1, 0, Math.floor(rng() * l));
  const run = async (tuning: SelectiveScanTuning) => {
    const results = tidy(() => {
      const ts = data.map((x, i) => requireGrad(Tensor.from(x, shapes[i])));
      const [u, delta, a, B, C, D, z, deltaBias] = ts;
      const out = selectiveScanAt(u, delta, a, B, C, Tensor.from(positions, [b], "i32"), {
        D,
        z,
        deltaBias,
        deltaSoftplus: true,
        layout: "bld",
        tuning,
      });
      backward(sumAll(mul(out, Tensor.from(w, [b, d]))));
      return [out, ...ts.map((t) => t.grad!)];
    });
    const host = await readTensors(results);
    results.forEach((t) => t.dispose());
    return host;
  };
  const want = await run({ rescan: false });
  const got = await run({});
  const rms = (v: ArrayLike<number>) =>
    Math.sqrt(Array.from(v).reduce((sum, x) => sum + x * x, 0) / Math.max(1, v.length));
  const floor = 1e-2 * Math.max(...want.map(rms));
  const names = ["output", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "d deltaBias"];
  got.forEach((g, i) => {
    const e = rms(Array.from(g, (v, k) => v - want[i][k])) / Math.max(rms(want[i]), floor);
    assert(e < 1e-5, `${names[i]}: relative error ${e.toExponential(3)}, seed ${seed}`);
  });
  // The two backwards round differently: equal dA bit for bit would mean the re-scan never ran.
  assert(
    got[3].some((v, k) => v !== want[3][k]),
    `dA equals the adjoint backward's bit for bit: the re-scan did not run, seed ${seed}`,
  );
});

Deno.test("selectiveScanAt: a tuning.rescan that is not a boolean is refused", () => {
  const t = (...shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, v) => a * v, 1)), shape);
  const u = t(2, 3, 5), A = t(3, 4), B = t(2, 4, 5);
  const at = Tensor.from(Int32Array.of(1, 2), [2], "i32");
  const tuning = { rescan: 1 } as unknown as SelectiveScanTuning;
  assertThrows(
    () => selectiveScanAt(u, u, A, B, B, at, { tuning }),
    RangeError,
    "selectiveScan: tuning.rescan must be true or false, got 1",
  );
});

Deno.test("selectiveScanAt: positions that are not one i32 per row are refused", () => {
  const t = (...shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, v) => a * v, 1)), shape);
  const u = t(2, 3, 5), A = t(3, 4), B = t(2, 4, 5);
  assertThrows(
    () => selectiveScanAt(u, u, A, B, B, Tensor.from(Int32Array.of(1, 2, 3), [3], "i32")),
    RangeError,
    "selectiveScanAt: positions must be i32 (batch 2), one step per row, got [3] i32",
  );
  assertThrows(
    () => selectiveScanAt(u, u, A, B, B, Tensor.from(Float32Array.of(1, 2), [2])),
    TypeError,
  );
});
