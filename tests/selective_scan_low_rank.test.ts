/**
 * The selective scan with Δ given as its low-rank factors (`deltaWeight`) and with dB and dC
 * written over B and C (`gradsOverBC`), as Mamba4Rec's block calls it: against the same scan fed
 * the stored product `matmul(delta, deltaWeight, { transB: true })` and fresh gradient buffers,
 * forward and every gradient (both factors' included), for the full scan and the scan read at
 * positions, one pass and split lengths.
 */
import { assertEquals, assertThrows } from "@std/assert";
import {
  selectiveScan,
  selectiveScanAt,
  type SelectiveScanOptions,
  type SelectiveScanTuning,
} from "../ops/sequence/selective_scan/mod.ts";
import { backward, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { exp, mul, scale } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { assertClose, freshSeed, makeRng, randn, uniform } from "./util.ts";

interface LowRankCase {
  batch: number;
  channels: number;
  length: number;
  states: number;
  rank: number;
  positions: boolean;
  tuning?: SelectiveScanTuning;
}

const NAMES = ["u", "delta factor", "A_log", "B", "C", "D", "z", "deltaBias", "deltaWeight"];

/**
 * Runs the scan of `c` by the stored-Δ path or the low-rank one under a random linear loss;
 * returns the output and every leaf's gradient, in {@link NAMES} order.
 */
async function run(
  c: LowRankCase,
  data: Float32Array[],
  weights: Float32Array,
  positions: Int32Array,
  lowRank: boolean,
): Promise<Float32Array[]> {
  const { batch: b, channels: d, length: l, states: n, rank: r } = c;
  const shapes = [[b, l, d], [b, l, r], [d, n], [b, l, n], [b, l, n], [d], [b, l, d], [d], [d, r]];
  const leaves = data.map((x, i) => requireGrad(Tensor.from(x, shapes[i])));
  const out = tidy(() => {
    const [u, factor, aLog, bLeaf, cLeaf, D, z, deltaBias, deltaWeight] = leaves;
    const A = scale(exp(aLog), -1);
    // B and C made by an op, as the model's projections make them: the low-rank path writes
    // their gradients over them.
    const B = scale(bLeaf, 1), C = scale(cLeaf, 1);
    const options: SelectiveScanOptions = {
      D,
      z,
      deltaBias,
      deltaSoftplus: true,
      layout: "bld",
      tuning: c.tuning,
      ...(lowRank ? { deltaWeight, gradsOverBC: true } : {}),
    };
    const delta = lowRank ? factor : matmul(factor, deltaWeight, { transB: true });
    const at = Tensor.from(positions, [b], "i32");
    const y = c.positions
      ? selectiveScanAt(u, delta, A, B, C, at, options)
      : selectiveScan(u, delta, A, B, C, options);
    backward(sumAll(mul(y, Tensor.from(weights, y.shape))));
    return y;
  });
  const host = await readTensors([out, ...leaves.map((t) => t.grad!)]);
  out.dispose();
  leaves.forEach((t) => {
    t.grad?.dispose();
    t.dispose();
  });
  return host as Float32Array[];
}

const CASES: LowRankCase[] = [
  { batch: 3, channels: 16, length: 50, states: 32, rank: 1, positions: false },
  { batch: 2, channels: 24, length: 70, states: 16, rank: 4, positions: true },
  {
    batch: 2,
    channels: 8,
    length: 40,
    states: 5,
    rank: 3,
    positions: false,
    tuning: { segments: 3 },
  },
  {
    batch: 4,
    channels: 16,
    length: 45,
    states: 32,
    rank: 4,
    positions: true,
    tuning: { segments: 2 },
  },
  { batch: 2, channels: 8, length: 33, states: 64, rank: 2, positions: true },
];

Deno.test("selectiveScan with a low-rank delta and gradients over B and C: the stored-product scan's output and every gradient", async () => {
  for (const c of CASES) {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const { batch: b, channels: d, length: l, states: n, rank: r } = c;
    const f32 = (x: Float64Array) => Float32Array.from(x);
    const data = [
      f32(randn(rng, b * l * d)),
      f32(randn(rng, b * l * r, 0.5)),
      f32(uniform(rng, d * n, -1, 1.5)),
      f32(randn(rng, b * l * n)),
      f32(randn(rng, b * l * n)),
      f32(randn(rng, d)),
      f32(randn(rng, b * l * d)),
      f32(randn(rng, d, 0.5)),
      f32(randn(rng, d * r, 0.5)),
    ];
    const positions = Int32Array.from({ length: b }, () => Math.floor(rng() * l));
    positions[0] = l - 1;
    const outputs = c.positions ? b * d : b * l * d;
    const weights = f32(randn(rng, outputs));
    const stored = await run(c, data, weights, positions, false);
    const lowRank = await run(c, data, weights, positions, true);
    assertEquals(lowRank.length, stored.length);
    ["output", ...NAMES].forEach((name, i) =>
      assertClose(
        lowRank[i],
        stored[i],
        1e-5,
        `seed ${seed}, ${JSON.stringify(c)}: ${name} of the low-rank scan against the stored one`,
      )
    );
  }
});

Deno.test("selectiveScan: a low-rank delta is refused in the bdl layout and with a mismatched weight", () => {
  const u = Tensor.from(new Float32Array(2 * 3 * 5), [2, 3, 5]);
  const A = Tensor.from(new Float32Array(3 * 4), [3, 4]);
  const bc = Tensor.from(new Float32Array(2 * 4 * 5), [2, 4, 5]);
  const factor = Tensor.from(new Float32Array(2 * 5 * 2), [2, 5, 2]);
  const weight = Tensor.from(new Float32Array(3 * 2), [3, 2]);
  assertThrows(
    () => selectiveScan(u, factor, A, bc, bc, { deltaWeight: weight }),
    RangeError,
    'needs layout "bld"',
  );
  const uL = Tensor.from(new Float32Array(2 * 5 * 3), [2, 5, 3]);
  const bcL = Tensor.from(new Float32Array(2 * 5 * 4), [2, 5, 4]);
  const wide = Tensor.from(new Float32Array(3 * 3), [3, 3]);
  assertThrows(
    () => selectiveScan(uL, factor, A, bcL, bcL, { deltaWeight: wide, layout: "bld" }),
    RangeError,
    "delta must be with deltaWeight (batch, length, R)",
  );
  for (const t of [u, A, bc, factor, weight, uL, bcL, wide]) t.dispose();
});
