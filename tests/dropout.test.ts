import { assert, assertEquals, assertThrows } from "@std/assert";
import { dropout, DropoutRng } from "../ops/pointwise/dropout.ts";
import { backward, requireGrad } from "../ops/core/autograd.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { dropoutHashRef, dropoutMaskRef } from "./dropout_reference.ts";
import { freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/** A seed in [0, 2^53) that exercises both 32-bit words. */
function bigSeed(): number {
  return freshSeed() * 2 ** 21 + (freshSeed() >>> 11);
}

function bits(a: ArrayBufferView & { length: number }): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function nonzero(rng: () => number, n: number): Float32Array {
  return Float32Array.from(randn(rng, n), (v) => (Math.abs(v) < 1e-3 ? 0.5 : v));
}

Deno.test("dropout: mask and values match the host hash; gradient by the same mask", async () => {
  const seed = bigSeed();
  const rng = makeRng(seed >>> 0);
  const cases: [number[], number][] = [
    [[1], 0.5],
    [[7], 0.2],
    [[3, 97], 0.5],
    [[64, 257], 0.2],
    [[5, 1031], 0.9],
  ];
  for (const [shape, p] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const gen = new DropoutRng(seed, 3 + n);
    const counter = gen.state().counter;
    const mask = dropoutMaskRef(seed, counter, p, n);
    const scale = Math.fround(1 / (1 - p));
    await gradCheck({
      what: `dropout [${shape}] p ${p} seed ${seed}`,
      inputs: [{ data: randn(rng, n), shape }],
      gpu: ([x]) => dropout(x, p, gen),
      ref: ([x]) => x.map((v, i) => mask[i] * v * scale),
      refGrad: (_xs, g) => [g.map((v, i) => mask[i] * v * scale)],
      rng,
      tol: 1e-6,
    });
    assertEquals(gen.state().counter, counter + 1, "one counter per call");
  }
});

Deno.test("dropout: backward is exactly g · mask / (1 − p) at the forward's kept positions", async () => {
  const seed = bigSeed();
  const rng = makeRng(seed >>> 0);
  const n = 40961, p = 0.3;
  const x = requireGrad(Tensor.from(nonzero(rng, n), [n]));
  const g = Float32Array.from(randn(rng, n));
  const gen = new DropoutRng(seed);
  const y = dropout(x, p, gen);
  tidy(() => backward(sumAll(mul(y, Tensor.from(g, [n])))));
  const [yv, dx] = await readTensors([y, x.grad!]);
  const scale = Math.fround(1 / (1 - p));
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const want = yv[i] !== 0 ? Math.fround(g[i] * scale) : 0;
    if (yv[i] !== 0) kept++;
    if (dx[i] !== want) throw new Error(`dx[${i}] = ${dx[i]}, want ${want}; seed ${seed}`);
  }
  assert(kept > 0 && kept < n, `degenerate mask: ${kept} of ${n} kept, seed ${seed}`);
});

Deno.test("dropout: same seed and counter → same bits; new counters → new masks", async () => {
  const seed = bigSeed();
  const rng = makeRng(seed >>> 0);
  const n = 100003, p = 0.5;
  const x = Tensor.from(nonzero(rng, n), [n]);
  const a = new DropoutRng(seed), b = new DropoutRng(seed);
  const [y1, y2, y3] = await readTensors([dropout(x, p, a), dropout(x, p, b), dropout(x, p, a)]);
  assertEquals(bits(y1), bits(y2), `same seed, same counter: seed ${seed}`);
  // Two independent masks agree on p² + (1 − p)² of the elements; allow 5σ.
  let agree = 0;
  for (let i = 0; i < n; i++) agree += (y1[i] !== 0) === (y3[i] !== 0) ? 1 : 0;
  const q = p * p + (1 - p) * (1 - p);
  const sigma = Math.sqrt(n * q * (1 - q));
  assert(
    Math.abs(agree - n * q) < 5 * sigma,
    `masks of two counters agree on ${agree}, seed ${seed}`,
  );
  // A restored generator continues the same stream.
  const saved = a.state();
  const restored = DropoutRng.fromState(saved);
  const [z1, z2] = await readTensors([dropout(x, p, a), dropout(x, p, restored)]);
  assertEquals(bits(z1), bits(z2), `restored from ${JSON.stringify(saved)}`);
  // Another seed gives another mask.
  const [w] = await readTensors([dropout(x, p, new DropoutRng(seed + 1))]);
  let same = 0;
  for (let i = 0; i < n; i++) same += (w[i] !== 0) === (y1[i] !== 0) ? 1 : 0;
  assert(Math.abs(same - n * q) < 5 * sigma, `seeds ${seed} and ${seed + 1} agree on ${same}`);
});

Deno.test("dropout: kept fraction and neighbour independence within 5σ (p = 0.2, 0.5)", async () => {
  const seed = bigSeed();
  const n = 1 << 20;
  const x = Tensor.from(new Float32Array(n).fill(1), [n]);
  for (const p of [0.2, 0.5]) {
    const gen = new DropoutRng(seed);
    const [y] = await readTensors([dropout(x, p, gen)]);
    let kept = 0, pairs = 0;
    for (let i = 0; i < n; i++) {
      const k = y[i] !== 0;
      kept += k ? 1 : 0;
      if (i > 0 && k && y[i - 1] !== 0) pairs++;
    }
    const q = 1 - p;
    const sigma = Math.sqrt(n * q * p);
    assert(Math.abs(kept - n * q) < 5 * sigma, `p ${p}: ${kept} of ${n} kept, seed ${seed}`);
    // Adjacent elements both kept: q² of the pairs if independent (variance bound loose by
    // overlap: use the variance of n − 1 independent pairs times 3).
    const q2 = q * q;
    const sigmaPairs = Math.sqrt(3 * (n - 1) * q2 * (1 - q2));
    assert(
      Math.abs(pairs - (n - 1) * q2) < 5 * sigmaPairs,
      `p ${p}: ${pairs} kept pairs, seed ${seed}`,
    );
    assertEquals(y.find((v) => v !== 0 && v !== Math.fround(1 / q)), undefined, "scaling");
  }
});

Deno.test("dropout: p = 0 and eval are the identity without a counter; p = 1 gives zeros", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const data = nonzero(rng, 1000);
  const x = requireGrad(Tensor.from(data, [10, 100]));
  const gen = new DropoutRng(seed);
  const id0 = dropout(x, 0, gen);
  const idEval = dropout(x, 0.5, gen, { training: false });
  assertEquals(gen.state().counter, 0, "identity paths take no counter");
  const zeros = dropout(x, 1, gen);
  tidy(() => backward(sumAll(mul(zeros, id0))));
  const [a, b, z, dx] = await readTensors([id0, idEval, zeros, x.grad!]);
  assertEquals(bits(a), bits(data));
  assertEquals(bits(b), bits(data));
  assert(z.every((v) => v === 0), "p = 1 zeroes everything");
  // d/dx Σ (0 · x) through both branches is 0 + x·0 = 0.
  assert(dx.every((v) => v === 0), `gradient through p = 1 is zero, seed ${seed}`);
  id0.dispose();
  assertEquals(x.disposed, false, "disposing the identity view keeps the input");
});

Deno.test("dropout: bad input names the op", () => {
  const x = Tensor.from([1, 2, 3]);
  const gen = new DropoutRng(1);
  assertThrows(() => dropout(x, 1.5, gen), RangeError, "dropout: p must be in [0, 1], got 1.5");
  assertThrows(() => dropout(x, -0.1, gen), RangeError, "dropout: p must be in [0, 1]");
  assertThrows(() => dropout(x, NaN, gen), RangeError, "dropout: p must be in [0, 1], got NaN");
  assertThrows(
    () => dropout(Tensor.from(new Int32Array([1])), 0.5, gen),
    TypeError,
    "dropout: expected a f32 tensor",
  );
  assertThrows(() => new DropoutRng(-1), RangeError, "DropoutRng: seed must be an integer");
  assertThrows(() => new DropoutRng(0.5), RangeError, "DropoutRng: seed must be an integer");
  assertThrows(
    () => DropoutRng.fromState({ seed: 1, counter: 2 ** 53 }),
    RangeError,
    "DropoutRng: counter must be an integer",
  );
});

Deno.test("dropout: 17 million elements (2-D workgroup grid) follow the host hash", async () => {
  const seed = bigSeed();
  const rng = makeRng(seed >>> 0);
  const n = 17_000_003, p = 0.2;
  const x = Tensor.from(new Float32Array(n).fill(1), [n]);
  const gen = new DropoutRng(seed, 12345);
  const [y] = await readTensors([dropout(x, p, gen)]);
  const scale = Math.fround(1 / (1 - p));
  // Positions past the first 65,535 workgroups, the last ones, and a random sample.
  const probe = [n - 1, n - 2, 256 * 65535, 256 * 65535 + 1];
  for (let k = 0; k < 20000; k++) probe.push(Math.floor(rng() * n));
  for (const i of probe) {
    const want = dropoutHashRef(seed, 12345, i) >>> 8 >= Math.ceil(p * 2 ** 24) ? scale : 0;
    if (y[i] !== want) throw new Error(`element ${i}: ${y[i]} ≠ ${want}, seed ${seed}`);
  }
});
