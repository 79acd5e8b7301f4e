import { assertEquals, assertThrows } from "@std/assert";
import { readTensors, Tensor, tidy } from "../ops/mod.ts";
import { matmul, type MatmulTiles, planMatmul, splitCount } from "../ops/dense/matmul/mod.ts";
import {
  matmulGradRef,
  matmulRef,
  productDims,
  type ProductSpec,
  productSpec as spec,
} from "./matmul_reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/** Normal values already representable in f32, so the GPU and the reference see the same input. */
function f32randn(rng: () => number, n: number): Float64Array {
  return randn(rng, n).map(Math.fround);
}

const numel = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;

function describe(s: ProductSpec, bias: boolean): string {
  const t = `${s.transA ? "ᵀ" : ""}·[${s.bShape}]${s.transB ? "ᵀ" : ""}`;
  return `[${s.aShape}]${t}${bias ? " + bias" : ""}`;
}

async function checkProduct(s: ProductSpec, withBias: boolean, rng: () => number, seed: number) {
  const d = productDims(s);
  const a = f32randn(rng, numel(s.aShape));
  const b = f32randn(rng, numel(s.bShape));
  const inputs = [{ data: a, shape: s.aShape }, { data: b, shape: s.bShape }];
  if (withBias) inputs.push({ data: f32randn(rng, d.n), shape: [d.n] });
  await gradCheck({
    what: `matmul ${describe(s, withBias)} seed ${seed}`,
    inputs,
    gpu: ([x, y, bias]) => matmul(x, y, { transA: s.transA, transB: s.transB, bias }),
    ref: ([x, y, bias]) => matmulRef(s, x, y, bias),
    refGrad: ([x, y], g) => {
      const r = matmulGradRef(s, x, y, g);
      return withBias ? [r.da, r.db, r.dbias] : [r.da, r.db];
    },
    rng,
    probes: 8,
  });
}

for (const [transA, transB] of TRANSPOSES) {
  const name = `${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"}`;
  Deno.test(`matmul ${name}: forward and gradients match float64 on awkward shapes`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const cases: [number, number, number][] = [
      [1, 1, 1],
      [1, 7, 5], // M = 1
      [6, 1, 9], // N = 1
      [5, 3, 1], // K = 1
      [37, 29, 53], // primes, beyond one 32-wide tile in every dimension
      [33, 65, 17],
      [4, 8, 12], // multiples of 4 (vec4 loads), smaller than a tile
      [3, 5, 701], // long reduction: split-K
    ];
    for (const [m, n, k] of cases) {
      await checkProduct(spec(m, n, k, transA, transB), false, rng, seed);
    }
    // Batched, same batch on both sides; and with a bias.
    await checkProduct(spec(13, 11, 7, transA, transB, [3]), true, rng, seed);
    await checkProduct(spec(9, 6, 5, transA, transB, [2, 2]), false, rng, seed);
    // A shared B (the Linear case, its gradient summed over the batch) and a shared A.
    await checkProduct(spec(5, 10, 24, transA, transB, [2, 3], []), true, rng, seed);
    await checkProduct(spec(6, 5, 11, transA, transB, [], [3]), false, rng, seed);
    // Shared B over a long batch: the summed gradient takes split-K too.
    await checkProduct(spec(40, 4, 8, transA, transB, [9], []), false, rng, seed);
  });
}

/** The GPU's configurations and a few others, each tried on full and ragged shapes. */
const GPU_TILE_CASES: MatmulTiles[] = [
  { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, splits: 3 },
  { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 },
  { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 },
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, splits: 5 },
  { bm: 128, bn: 32, bk: 8, tm: 8, tn: 4 },
];

Deno.test("matmul: every tile configuration matches float64 on full and ragged shapes", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const tiles of GPU_TILE_CASES) {
    // Each operand is read either along the output dimension or along K, from a shape that
    // fills whole tiles (vec4 reads, no bounds checks) or from a ragged one (checked scalar
    // reads): the four layouts below take each operand through all four paths.
    const layouts = [
      [256, 128, 32, false, false],
      [256, 128, 32, true, true],
      [131, 67, 45, false, true],
      [131, 67, 45, true, false],
    ] as const;
    for (const [m, n, k, transA, transB] of layouts) {
      const s = spec(m, n, k, transA, transB);
      const d = productDims(s);
      const a = f32randn(rng, numel(s.aShape)), b = f32randn(rng, numel(s.bShape));
      const bias = f32randn(rng, d.n);
      const [got] = await readTensors([
        tidy(() =>
          matmul(
            Tensor.from(Float32Array.from(a), s.aShape),
            Tensor.from(Float32Array.from(b), s.bShape),
            {
              transA,
              transB,
              bias: Tensor.from(Float32Array.from(bias)),
              tiles,
            },
          )
        ),
      ]);
      assertClose(
        got,
        matmulRef(s, a, b, bias),
        1e-5,
        `${describe(s, true)} tiles ${JSON.stringify(tiles)} seed ${seed}`,
      );
    }
  }
});

Deno.test("matmul: split-K sums its partials deterministically", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const s = spec(7, 9, 3001, true, false);
  const a = f32randn(rng, numel(s.aShape)), b = f32randn(rng, numel(s.bShape));
  const bias = f32randn(rng, 9);
  const run = (splits?: number) =>
    tidy(() =>
      matmul(
        Tensor.from(Float32Array.from(a), s.aShape),
        Tensor.from(Float32Array.from(b), s.bShape),
        {
          transA: true,
          bias: Tensor.from(Float32Array.from(bias)),
          tiles: { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4, splits },
        },
      )
    );
  const [one, many, again, odd] = await readTensors([run(1), run(16), run(16), run(7)]);
  const want = matmulRef(s, a, b, bias);
  assertClose(one, want, 1e-5, `no split, seed ${seed}`);
  assertClose(many, want, 1e-5, `16 splits, seed ${seed}`);
  assertClose(odd, want, 1e-5, `7 splits, seed ${seed}`);
  assertEquals([...many], [...again], `split-K is not deterministic (seed ${seed})`);
});

Deno.test("matmul: split-K only for few output tiles over a long reduction", () => {
  const few = planMatmul(5, 7, 4096);
  const plenty = planMatmul(4096, 4096, 4096);
  const short = planMatmul(5, 7, 64);
  if (!(few.splits > 1)) throw new Error(`5×7 over K = 4096 is not split: ${JSON.stringify(few)}`);
  assertEquals(plenty.splits, 1);
  assertEquals(short.splits, 1);
  assertEquals(
    planMatmul(5, 7, 4096, 1, 1, { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4, splits: 3 }).splits,
    3,
  );
});

Deno.test("matmul: split-K fills one wave of workgroups at most, never a partial second", () => {
  // SSD4Rec's weight gradients on a GPU (target 264): 4, 32 and 64 tiles of 64 × 64.
  assertEquals(splitCount(4, 12_500, 264), 66);
  assertEquals(splitCount(32, 12_500, 264), 8);
  assertEquals(splitCount(64, 12_500, 264), 4);
  assertEquals(splitCount(132, 12_500, 264), 1);
  // Each split keeps at least 16 slices; a reduction too short for two is not split.
  assertEquals(splitCount(4, 100, 264), 6);
  assertEquals(splitCount(4, 20, 264), 1);
  for (const tiles of [1, 3, 5, 7, 31, 100, 131]) {
    const n = splitCount(tiles, 1e6, 264);
    if (n * tiles > 264 || (n > 1 && (n + 1) * tiles <= 264)) {
      throw new Error(`${tiles} tiles: ${n} splits make ${n * tiles} workgroups for 264`);
    }
  }
});

Deno.test(
  "matmul: weight gradients over a long odd reduction (K = 24,001) match float64 split or " +
    "not, in every tile configuration, and repeat bit for bit",
  async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    // dW = dYᵀ·X as the backward stores it: dY [K, 37], X [K, 45] → [37, 45].
    const s = spec(37, 45, 24_001, true, false);
    const a = f32randn(rng, numel(s.aShape)), b = f32randn(rng, numel(s.bShape));
    const want = matmulRef(s, a, b);
    const run = (tiles?: MatmulTiles) =>
      tidy(() =>
        matmul(
          Tensor.from(Float32Array.from(a), s.aShape),
          Tensor.from(Float32Array.from(b), s.bShape),
          { transA: true, tiles },
        )
      );
    const plans: (MatmulTiles | undefined)[] = [undefined, ...GPU_TILE_CASES];
    // The reduction tiles with their own split count (8 on a CPU, 264 / tiles on a GPU).
    plans.push({ bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 });
    for (const tiles of plans) {
      const [got, again] = await readTensors([run(tiles), run(tiles)]);
      const what = `[${s.aShape}]ᵀ·[${s.bShape}] tiles ${JSON.stringify(tiles ?? "default")}`;
      assertClose(got, want, 1e-5, `${what} seed ${seed}`);
      assertEquals([...again], [...got], `${what} is not deterministic (seed ${seed})`);
    }
  },
);

Deno.test("matmul: a larger batched Linear layer with the default tiles", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const s = spec(150, 97, 131, false, true, [2], []);
  const a = f32randn(rng, numel(s.aShape)), b = f32randn(rng, numel(s.bShape));
  const bias = f32randn(rng, 97);
  const [got] = await readTensors([
    tidy(() =>
      matmul(
        Tensor.from(Float32Array.from(a), s.aShape),
        Tensor.from(Float32Array.from(b), s.bShape),
        {
          transB: true,
          bias: Tensor.from(Float32Array.from(bias)),
        },
      )
    ),
  ]);
  assertClose(got, matmulRef(s, a, b, bias), 1e-5, `Linear [2, 150, 131]·[97, 131]ᵀ seed ${seed}`);
});

Deno.test("matmul: bad input names the op and the shapes before dispatching", () => {
  const t = (shape: number[]) => Tensor.from(new Float32Array(numel(shape)).fill(1), shape);
  assertThrows(
    () => matmul(t([2, 3]), t([4, 5])),
    RangeError,
    "matmul: inner dimensions do not match: a [2, 3] gives K = 3, b [4, 5] gives K = 4",
  );
  assertThrows(
    () => matmul(t([2, 3]), t([5, 4]), { transB: true }),
    RangeError,
    "b [5, 4] gives K = 4 (with transB)",
  );
  assertThrows(
    () => matmul(t([2, 2, 3]), t([3, 3, 4])),
    RangeError,
    "matmul: batch dimensions do not match: a [2, 2, 3] and b [3, 3, 4]",
  );
  assertThrows(() => matmul(t([3]), t([3, 4])), RangeError, "at least 2 dimensions");
  assertThrows(
    () => matmul(t([2, 3]), t([3, 4]), { bias: t([3]) }),
    RangeError,
    "matmul: bias [3] must have shape [4]",
  );
  assertThrows(
    () => matmul(Tensor.from(new Int32Array(6), [2, 3]), t([3, 4])),
    TypeError,
    "matmul: expected a f32 tensor",
  );
  assertThrows(
    () => matmul(t([2, 3]), t([3, 4]), { tiles: { bm: 32, bn: 32, bk: 6, tm: 4, tn: 4 } }),
    RangeError,
    "bk must be a multiple of 4",
  );
});
