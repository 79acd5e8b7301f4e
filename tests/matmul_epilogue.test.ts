import { assertEquals, assertThrows } from "@std/assert";
import { noGrad, readTensors, requireGrad, Tensor, tidy } from "../ops/mod.ts";
import { matmul, type MatmulTiles } from "../ops/dense/matmul/mod.ts";
import { add, gelu } from "../ops/pointwise/elementwise.ts";
import { normalCdf } from "../ops/pointwise/normal_cdf_reference.ts";
import { matmulGradRef, matmulRef, productDims, productSpec } from "./matmul_reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/** Normal values already representable in f32. */
const f32randn = (rng: () => number, n: number) => randn(rng, n).map(Math.fround);
const numel = (shape: number[]) => shape.reduce((p, d) => p * d, 1);
const f32 = (data: Float64Array, shape: number[]) => Tensor.from(Float32Array.from(data), shape);

/** op(A): M × K and op(B): K × N stored as `matmul` takes them, with optional batches. */
const spec = (
  [m, n, k]: readonly [number, number, number],
  transA: boolean,
  transB: boolean,
  aBatch: number[] = [],
  bBatch: number[] = aBatch,
) => productSpec(m, n, k, transA, transB, aBatch, bBatch);

/** Shapes from one element to several tiles, N a multiple of 4 (vec4 stores) or not, and a long
 * reduction that the plan splits (split-K: the epilogue then runs in the sum of the partials). */
const SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [1, 8, 5],
  [37, 29, 53],
  [33, 64, 17],
  [3, 5, 701],
];

/** The plan's tiles (undefined), and tiles forcing a split of the reduction. */
const TILES: readonly (MatmulTiles | undefined)[] = [
  undefined,
  { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4, splits: 3 },
];

Deno.test("matmul epilogue: bias + addend and GELU equal the separate ops bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const dims of SHAPES) {
    for (const [transA, transB] of [[false, true], [true, false]] as const) {
      for (const tiles of TILES) {
        const s = spec(dims, transA, transB, dims[0] === 37 ? [2] : []);
        const d = productDims(s);
        const a = f32(f32randn(rng, numel(s.aShape)), s.aShape);
        const b = f32(f32randn(rng, numel(s.bShape)), s.bShape);
        const bias = f32(f32randn(rng, d.n), [d.n]);
        const addend = f32(f32randn(rng, numel(d.outShape)), d.outShape);
        const what = `[${s.aShape}]${transA ? "ᵀ" : ""}·[${s.bShape}]${transB ? "ᵀ" : ""} ` +
          `tiles ${JSON.stringify(tiles)} seed ${seed}`;
        const options = { transA, transB, bias, tiles };
        const [fusedSum, separateSum, fusedGelu, separateGelu] = await readTensors(
          tidy(() => [
            matmul(a, b, { ...options, addend }),
            add(matmul(a, b, options), addend),
            matmul(a, b, { ...options, activation: "gelu" }),
            gelu(matmul(a, b, options)),
          ]),
        );
        assertEquals([...fusedSum], [...separateSum], `sum, ${what}`);
        assertEquals([...fusedGelu], [...separateGelu], `GELU, ${what}`);
        for (const t of [a, b, bias, addend]) t.dispose();
      }
    }
  }
});

Deno.test("matmul epilogue: GELU of the sum with an addend matches float64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const dims of SHAPES) {
    for (const tiles of TILES) {
      const s = spec(dims, false, true);
      const d = productDims(s);
      const a = f32randn(rng, numel(s.aShape)), b = f32randn(rng, numel(s.bShape));
      const bias = f32randn(rng, d.n), addend = f32randn(rng, numel(d.outShape));
      const [got] = await readTensors([
        tidy(() =>
          matmul(f32(a, s.aShape), f32(b, s.bShape), {
            transB: true,
            bias: f32(bias, [d.n]),
            addend: f32(addend, d.outShape),
            activation: "gelu",
            tiles,
          })
        ),
      ]);
      const want = matmulRef(s, a, b, bias).map((v, i) => {
        const x = v + addend[i];
        return x * normalCdf(x);
      });
      assertClose(got, want, 1e-5, `[${dims}] tiles ${JSON.stringify(tiles)} seed ${seed}`);
    }
  }
});

Deno.test("matmul epilogue: the addend's gradient is the incoming one, by finite differences", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [dims, aBatch, bBatch] of [[[13, 11, 7], [3], []], [[3, 5, 701], [], []]] as const) {
    const s = spec(dims, false, true, [...aBatch], [...bBatch]);
    const d = productDims(s);
    await gradCheck({
      what: `matmul [${s.aShape}]·[${s.bShape}]ᵀ + bias + addend seed ${seed}`,
      inputs: [
        { data: f32randn(rng, numel(s.aShape)), shape: s.aShape },
        { data: f32randn(rng, numel(s.bShape)), shape: s.bShape },
        { data: f32randn(rng, d.n), shape: [d.n] },
        { data: f32randn(rng, numel(d.outShape)), shape: d.outShape },
      ],
      gpu: ([x, y, bias, addend]) => matmul(x, y, { transB: true, bias, addend }),
      ref: ([x, y, bias, addend]) => matmulRef(s, x, y, bias).map((v, i) => v + addend[i]),
      refGrad: ([x, y], g) => {
        const r = matmulGradRef(s, x, y, g);
        return [r.da, r.db, r.dbias, g];
      },
      rng,
      probes: 8,
    });
  }
});

Deno.test("matmul epilogue: GELU is refused where a gradient would be recorded; bad addends", () => {
  tidy(() => {
    const a = requireGrad(Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]));
    const b = Tensor.from(new Float32Array([0.5, -1, 2, 0.25]), [2, 2]);
    assertThrows(() => matmul(a, b, { activation: "gelu" }), RangeError, "no backward");
    noGrad(() => matmul(a, b, { activation: "gelu" }));
    const c = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
    assertThrows(
      () => matmul(c, b, { addend: Tensor.from(new Float32Array(6), [2, 3]) }),
      RangeError,
      "addend [2, 3] must have the result's shape [2, 2]",
    );
    assertThrows(
      // @ts-expect-error: an activation the op does not know
      () => matmul(c, b, { activation: "relu" }),
      RangeError,
      'activation must be "gelu"',
    );
  });
});
