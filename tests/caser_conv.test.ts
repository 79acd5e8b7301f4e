import { assertEquals, assertThrows } from "@std/assert";
import { backward, readTensors, requireGrad, sumAll, Tensor, tidy } from "../ops/mod.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import {
  type CaserConvProblem,
  caserHorizontalConv,
  caserHorizontalReference,
  caserHorizontalReferenceBackward,
  caserVerticalConv,
  caserVerticalReference,
  caserVerticalReferenceBackward,
  heightSizes,
  NORM_BLOCK,
  packedFilterSize,
  segmentNorms,
  segmentNormsReference,
  segmentNormsReferenceBackward,
} from "../ops/sequence/caser/mod.ts";
import { caserHorizontalConvScheduled } from "../ops/sequence/caser/horizontal.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randn, uniform } from "./util.ts";

type Vec = Float64Array;

/** Each array's absolute values. */
const absolute = (xs: readonly Vec[]): Vec[] => xs.map((x) => x.map(Math.abs));

/** Awkward shapes: a window of one, odd widths, a batch of one, one filter. */
const SHAPES: CaserConvProblem[] = [
  { batch: 1, length: 1, dim: 3, filters: 2 },
  { batch: 2, length: 4, dim: 5, filters: 3 },
  { batch: 3, length: 3, dim: 4, filters: 1 },
  { batch: 1, length: 6, dim: 1, filters: 2 },
];

const describe = (p: CaserConvProblem) => `B ${p.batch}, L ${p.length}, E ${p.dim}, f ${p.filters}`;

for (const p of SHAPES) {
  Deno.test(`caserHorizontalConv (${describe(p)}): forward and every gradient match the float64 reference and finite differences`, async () => {
    await checkHorizontal(p, freshSeed());
  });

  Deno.test(`caserVerticalConv (${describe(p)}): forward and every gradient match the float64 reference and finite differences`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    await gradCheck({
      what: `seed ${seed}: caserVerticalConv ${describe(p)}`,
      inputs: [
        { data: randn(rng, p.batch * p.length * p.dim), shape: [p.batch, p.length, p.dim] },
        { data: randn(rng, p.filters * p.length), shape: [p.filters, p.length] },
        { data: randn(rng, p.filters), shape: [p.filters] },
      ],
      gpu: ([x, w, b]) => caserVerticalConv(x, w, b),
      ref: ([x, w, b]) => caserVerticalReference(p, x, w, b),
      // Every output and gradient is a sum whose random terms can cancel: float32's error scales
      // with Σ|terms| (the same sums over absolute values), not with the sum itself.
      refScale: (xs) => caserVerticalReference(p, ...absolute(xs) as [Vec, Vec, Vec]),
      refGrad: ([x, w], g) => {
        const r = caserVerticalReferenceBackward(p, x, w, g);
        return [r.x, r.weight, r.bias];
      },
      refGradScale: ([x, w], g) => {
        const [ax, aw, ag] = absolute([x, w, g]);
        const r = caserVerticalReferenceBackward(p, ax, aw, ag);
        return [r.x, r.weight, r.bias];
      },
      rng,
    });
  });
}

/**
 * Shapes of the tiled horizontal kernel's edges: one row and 16 filters (two groups of 8), more
 * rows than a workgroup holds, one filter, 12 and 7 filters (groups of 6 and 7), windows of 1 and
 * of lengths that are not a multiple of the position tile, odd and vec4 widths, and a long window
 * of Caser's width (many tiles per height).
 */
const TILED_SHAPES: CaserConvProblem[] = [
  { batch: 1, length: 9, dim: 7, filters: 16 },
  { batch: 67, length: 7, dim: 8, filters: 1 },
  { batch: 3, length: 11, dim: 12, filters: 16 },
  { batch: 2, length: 1, dim: 8, filters: 12 },
  { batch: 2, length: 6, dim: 4, filters: 7 },
  { batch: 2, length: 48, dim: 64, filters: 8 },
];

/** A random shape from `rng`: batch 1 … 70, L 1 … 13, E 1 … 12, nh one of 1, 3, 8, 16. */
function randomShape(rng: () => number): CaserConvProblem {
  const pick = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  return {
    batch: pick(1, 70),
    length: pick(1, 13),
    dim: pick(1, 12),
    filters: [1, 3, 8, 16][pick(0, 3)],
  };
}

/**
 * Checks caserHorizontalConv on `p` against the float64 reference and finite differences, with
 * `probes` finite-difference probes (the check's default when unset).
 */
async function checkHorizontal(p: CaserConvProblem, seed: number, probes?: number): Promise<void> {
  const rng = makeRng(seed);
  const shape = { length: p.length, dim: p.dim, filters: p.filters };
  await gradCheck({
    what: `seed ${seed}: caserHorizontalConv ${describe(p)}`,
    inputs: [
      { data: randn(rng, p.batch * p.length * p.dim), shape: [p.batch, p.length, p.dim] },
      { data: randn(rng, packedFilterSize(shape), 0.5), shape: [packedFilterSize(shape)] },
      { data: uniform(rng, p.length * p.filters, -0.2, 0.4), shape: [p.length, p.filters] },
    ],
    gpu: ([x, w, b]) => caserHorizontalConv(x, w, b),
    ref: ([x, w, b]) => caserHorizontalReference(p, x, w, b).out,
    refGrad: ([x, w, b], g) => {
      const r = caserHorizontalReferenceBackward(p, x, w, b, g);
      return [r.x, r.weight, r.bias];
    },
    rng,
    eps: 1e-6,
    probes,
  });
}

for (const p of TILED_SHAPES) {
  Deno.test(`caserHorizontalConv (${describe(p)}): the tiled kernel matches the float64 reference and finite differences`, async () => {
    await checkHorizontal(p, freshSeed(), 8);
  });
}

Deno.test("caserHorizontalConv (a random shape): matches the float64 reference and finite differences", async () => {
  const seed = freshSeed();
  await checkHorizontal(randomShape(makeRng(seed ^ 0x5eed)), seed, 8);
});

Deno.test("caserHorizontalConv: every schedule of the forward gives the same bits, forward and backward, and a schedule it cannot build is refused", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const p = { ...randomShape(rng), length: 9 + Math.floor(rng() * 6) };
  const size = packedFilterSize(p);
  const x = Float32Array.from(randn(rng, p.batch * p.length * p.dim));
  const w = Float32Array.from(randn(rng, size, 0.5));
  const bias = Float32Array.from(uniform(rng, p.length * p.filters, -0.2, 0.4));
  const dout = Float32Array.from(randn(rng, p.batch * p.length * p.filters));
  const bits = (a: ArrayLike<number> & ArrayBufferView) =>
    new Uint32Array(a.buffer, a.byteOffset, a.length);
  const run = async (schedule?: { rows: number; shifts: number }) => {
    const tensors = tidy(() => {
      const xt = requireGrad(Tensor.from(x, [p.batch, p.length, p.dim]));
      const wt = requireGrad(Tensor.from(w, [size]));
      const bt = requireGrad(Tensor.from(bias, [p.length, p.filters]));
      const out = schedule
        ? caserHorizontalConvScheduled(xt, wt, bt, schedule)
        : caserHorizontalConv(xt, wt, bt);
      backward(sumAll(mul(out, Tensor.from(dout, out.shape))));
      return [out, xt.grad!, wt.grad!, bt.grad!];
    });
    const host = await readTensors(tensors);
    for (const t of tensors) t.dispose();
    return host.map(bits);
  };
  const want = await run();
  for (const schedule of [{ rows: 1, shifts: 4 }, { rows: 4, shifts: 1 }, { rows: 3, shifts: 5 }]) {
    const got = await run(schedule);
    got.forEach((values, i) =>
      assertEquals(
        values,
        want[i],
        `seed ${seed}: ${describe(p)}, rows ${schedule.rows} shifts ${schedule.shifts}, ` +
          ["out", "dx", "dweight", "dbias"][i],
      )
    );
  }
  assertThrows(
    () =>
      tidy(() =>
        caserHorizontalConvScheduled(
          Tensor.from(x, [p.batch, p.length, p.dim]),
          Tensor.from(w, [size]),
          Tensor.from(bias, [p.length, p.filters]),
          { rows: 4, shifts: 5 },
        )
      ),
    RangeError,
    "≤ 16 positions per tile",
  );
});

for (const [dim, filters] of [[3, 16], [4, 1], [8, 8]]) {
  Deno.test(`caserHorizontalConv (E ${dim}, nh ${filters}): windows repeating every 3 rows tie across position tiles, and the first position takes the gradient`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const p = { batch: 2, length: 11, dim, filters };
    // Rows repeat with period 3: windows at t and t + 3 are equal, so each height's maximum is
    // shared by positions 3 apart, in one tile of 4 positions or in the next.
    const rows = randn(rng, p.batch * 3 * p.dim);
    const x = new Float64Array(p.batch * p.length * p.dim).map((_, i) => {
      const e = i % p.dim,
        t = Math.floor(i / p.dim) % p.length,
        b = Math.floor(i / (p.dim * p.length));
      return rows[(b * 3 + t % 3) * p.dim + e];
    });
    const { winner, check } = await tiedGradients(p, x, rng);
    // Every winner is one of the first three positions (any later one repeats an earlier window).
    assertEquals(
      winner.every((t) => t >= 0 && t < 3),
      true,
      `seed ${seed}: the reference's winners`,
    );
    // Had a later tied position won, dx would differ: its windows cover other rows.
    check(seed);
  });
}

for (const dim of [3, 4]) {
  Deno.test(`caserHorizontalConv (E ${dim}): of equal maxima the first position takes the gradient`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const p = { batch: 2, length: 5, dim, filters: 2 };
    // Every row of a window the same: every position of a height gives the same value.
    const row = randn(rng, p.dim);
    const x = new Float64Array(p.batch * p.length * p.dim).map((_, i) => row[i % p.dim]);
    const { winner, check } = await tiedGradients(p, x, rng);
    assertEquals([...new Set(winner)], [0], `seed ${seed}: the reference's winners`);
    // Had a later position won, dx would differ: its windows cover other rows.
    check(seed);
  });
}

Deno.test("caser convolutions refuse mismatched shapes, naming what was expected", () => {
  tidy(() => {
    const x = Tensor.from(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const bias = Tensor.from(new Float32Array(3 * 2), [3, 2]);
    const wrong = Tensor.from(new Float32Array(10), [10]);
    const e = assertThrows(() => caserHorizontalConv(x, wrong, bias), RangeError);
    assertEquals(e.message.includes("[48]"), true, e.message);
    assertThrows(
      () => caserHorizontalConv(x, Tensor.from(new Float32Array(48), [48]), wrong),
      RangeError,
      "bias must be [L 3",
    );
    assertThrows(
      () => caserVerticalConv(x, Tensor.from(new Float32Array(8), [2, 4]), wrong),
      RangeError,
      "weight must be [nv, L 3]",
    );
  });
});

Deno.test("segmentNorms: each segment's unsquared Frobenius norm and its gradient, over several blocks, 0 for a zero segment", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const sizes = [3, 2 * NORM_BLOCK + 5, 1, 7];
  const total = sizes.reduce((a, b) => a + b, 0);
  const data = randn(rng, total);
  data.fill(0, total - 7); // the last segment is zero: its gradient is 0, as PyTorch's
  await gradCheck({
    what: `seed ${seed}: segmentNorms`,
    inputs: [{ data, shape: [total] }],
    gpu: ([x]) => segmentNorms(x, sizes),
    ref: ([x]) => segmentNormsReference(x, sizes),
    refGrad: ([x], g) => [segmentNormsReferenceBackward(x, sizes, g)],
    rng,
    probes: 3,
  });
  const shape = { length: 4, dim: 3, filters: 2 };
  assertEquals(heightSizes(shape), [6, 12, 18, 24]);
  assertEquals(heightSizes(shape).reduce((a, b) => a + b, 0), packedFilterSize(shape));
  assertThrows(
    () => tidy(() => segmentNorms(Tensor.from(new Float32Array(4), [4]), [3])),
    RangeError,
    "adding up to the 4 values",
  );
});

/**
 * The gradients of caserHorizontalConv on input `x` (random filters, biases of 5 so every maximum
 * is positive, a random output gradient from `rng`): the reference's winners, and a check that
 * the GPU's dx, dweight and dbias equal the float64 reference's to 1e-5.
 */
async function tiedGradients(
  p: CaserConvProblem,
  x: Float64Array,
  rng: () => number,
): Promise<{ winner: Int32Array; check: (seed: number) => void }> {
  const size = packedFilterSize(p);
  const w = randn(rng, size, 0.1);
  const bias = new Float64Array(p.length * p.filters).fill(5);
  const dout = randn(rng, p.batch * p.length * p.filters);
  const grads = tidy(() => {
    const xt = requireGrad(Tensor.from(Float32Array.from(x), [p.batch, p.length, p.dim]));
    const wt = requireGrad(Tensor.from(Float32Array.from(w), [size]));
    const bt = requireGrad(Tensor.from(Float32Array.from(bias), [p.length, p.filters]));
    const out = caserHorizontalConv(xt, wt, bt);
    backward(sumAll(mul(out, Tensor.from(Float32Array.from(dout), out.shape))));
    return [xt.grad!, wt.grad!, bt.grad!];
  });
  const [dx, dw, db] = await readTensors(grads);
  for (const t of grads) t.dispose();
  const want = caserHorizontalReferenceBackward(p, x, w, bias, dout);
  const { winner } = caserHorizontalReference(p, x, w, bias);
  return {
    winner,
    check: (seed) => {
      assertClose(dx, want.x, 1e-5, `seed ${seed}: dx`);
      assertClose(dw, want.weight, 1e-5, `seed ${seed}: dweight`);
      assertClose(db, want.bias, 1e-5, `seed ${seed}: dbias`);
    },
  };
}
