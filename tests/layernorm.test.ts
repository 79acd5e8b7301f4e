import { assertEquals, assertThrows } from "@std/assert";
import { layerNorm } from "../ops/dense/layernorm.ts";
import { noGrad, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor } from "../ops/core/tensor.ts";
import { runtime } from "../ops/core/runtime.ts";
import { layerNormGradRef, layerNormRef } from "./layernorm_reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randn, uniform } from "./util.ts";

const EPS = 1e-12;

// Rows of mean ≈ 3 (the kernel must centre) and unit spread; D = 1 is degenerate (output = bias).
const SHAPES: number[][] = [
  [1, 1],
  [7, 1],
  [5, 3],
  [1, 64],
  [2, 3, 64],
  [1001, 64],
  [5000, 3],
  [33, 257],
  [3, 1000],
  [4999, 64],
  // More rows than the backward's 1,024 workgroups × rows per workgroup: each workgroup loops.
  [20011, 64],
  [2100, 257],
  // vec4 rows with several units per invocation (units > 256).
  [5, 2052],
];

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Values already rounded to f32, so the float64 reference sees exactly what the GPU sees. */
function f32(v: Float64Array): Float64Array {
  return v.map(Math.fround);
}

/**
 * Rows of `offset + std·N(0, 1)`. A row whose spread is far below `std` is ill-conditioned (the
 * gradient grows like 1/spread², amplifying the f32 rounding of the mean), so such rows (likely
 * only for tiny D) are redrawn: the bound then measures the kernel, not the conditioning.
 */
function lnInputs(rng: () => number, shape: number[], std = 1, offset = 3) {
  const cols = shape.at(-1)!;
  const x = new Float64Array(numel(shape));
  for (let r = 0; r < x.length / cols; r++) {
    let row: Float64Array;
    do {
      row = randn(rng, cols, std);
    } while (cols > 1 && spread(row) < 0.5 * std);
    x.set(row.map((v) => v + offset), r * cols);
  }
  // Weights of both signs away from zero, biases random.
  const w = uniform(rng, cols, 0.5, 1.5).map((v) => (rng() < 0.3 ? -v : v));
  const b = randn(rng, cols);
  return { x: f32(x), w: f32(w), b: f32(b), cols };
}

function spread(row: Float64Array): number {
  const mean = row.reduce((a, b) => a + b, 0) / row.length;
  return Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length);
}

Deno.test("layerNorm: forward and gradients of x, weight and bias match float64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const shape of SHAPES) {
    const { x, w, b, cols } = lnInputs(rng, shape);
    await gradCheck({
      what: `layerNorm [${shape}] seed ${seed}`,
      inputs: [{ data: x, shape }, { data: w, shape: [cols] }, { data: b, shape: [cols] }],
      gpu: ([tx, tw, tb]) => layerNorm(tx, tw, tb, EPS),
      ref: ([vx, vw, vb]) => layerNormRef(vx, vw, vb, cols, EPS),
      refGrad: ([vx, vw], g) => layerNormGradRef(vx, vw, cols, EPS, g),
      rng,
      probes: 12,
    });
  }
});

Deno.test("layerNorm: eps is applied (small-variance rows with eps = 1e-5)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // var ≈ 1e-4, so eps = 1e-5 changes the scale by ~5%: a kernel ignoring eps fails.
  for (const shape of [[9, 64], [4, 37]]) {
    const { x, w, b, cols } = lnInputs(rng, shape, 0.01, 0);
    await gradCheck({
      what: `layerNorm eps 1e-5 [${shape}] seed ${seed}`,
      inputs: [{ data: x, shape }, { data: w, shape: [cols] }, { data: b, shape: [cols] }],
      gpu: ([tx, tw, tb]) => layerNorm(tx, tw, tb, 1e-5),
      ref: ([vx, vw, vb]) => layerNormRef(vx, vw, vb, cols, 1e-5),
      refGrad: ([vx, vw], g) => layerNormGradRef(vx, vw, cols, 1e-5, g),
      rng,
      probes: 8,
    });
  }
});

Deno.test("layerNorm: constant rows with eps = 1e-12 give exactly the bias", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // 0.75 · 64 sums exactly, so the centred values are exactly 0 and rstd = 1e6 stays finite.
  const cols = 64;
  const x = new Float32Array(3 * cols).fill(0.75);
  const b = Float32Array.from(randn(rng, cols));
  const w = Float32Array.from(uniform(rng, cols, 0.5, 1.5));
  const y = await noGrad(() =>
    layerNorm(Tensor.from(x, [3, cols]), Tensor.from(w), Tensor.from(b), EPS)
  )
    .toArray();
  for (let i = 0; i < y.length; i++) {
    assertEquals(y[i], b[i % cols], `constant row, element ${i}, seed ${seed}`);
  }
});

Deno.test("layerNorm: only x differentiable (no parameter gradients requested)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [17, 64];
  const { x, w, b, cols } = lnInputs(rng, shape);
  await gradCheck({
    what: `layerNorm x-only [${shape}] seed ${seed}`,
    inputs: [
      { data: x, shape },
      { data: w, shape: [cols], differentiable: false },
      { data: b, shape: [cols], differentiable: false },
    ],
    gpu: ([tx, tw, tb]) => layerNorm(tx, tw, tb, EPS),
    ref: ([vx, vw, vb]) => layerNormRef(vx, vw, vb, cols, EPS),
    refGrad: ([vx, vw], g) => [layerNormGradRef(vx, vw, cols, EPS, g)[0], null, null],
    rng,
  });
});

Deno.test("layerNorm: bad input names the op and the shapes", () => {
  const x = Tensor.from(new Float32Array(12), [3, 4]);
  const w4 = Tensor.from(new Float32Array(4));
  const w3 = Tensor.from(new Float32Array(3));
  assertThrows(
    () => layerNorm(x, w3, w4, EPS),
    RangeError,
    "layerNorm: weight has shape [3] but x has shape [3, 4]; expected [4]",
  );
  assertThrows(() => layerNorm(x, w4, w3, EPS), RangeError, "layerNorm: bias has shape [3]");
  assertThrows(
    () => layerNorm(Tensor.from(new Int32Array(4)), w4, w4, EPS),
    TypeError,
    "layerNorm: expected a f32 tensor",
  );
  assertThrows(() => layerNorm(x, w4, w4, -1), RangeError, "layerNorm: eps must be");
  assertThrows(
    () => layerNorm(Tensor.empty([2, 0]), w4, w4, EPS),
    RangeError,
    "layerNorm: weight has shape [4] but x has shape [2, 0]",
  );
});

// Rows of 516 take a whole workgroup each, so 65,600 rows need a 2-D grid of workgroups; the
// 135 MB input exceeds a CPU Vulkan's 128 MiB binding limit, so this runs on GPUs only.
const GRID_SHAPE = [65600, 516];
Deno.test({
  name: "layerNorm: more than 65,535 workgroups (2-D grid): 65,600 rows of 516",
  ignore: runtime().info.maxBindingBytes < 4 * GRID_SHAPE[0] * GRID_SHAPE[1],
  fn: async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const shape = GRID_SHAPE;
    const cols = shape[1];
    // Uniform values (cheap to draw in these numbers): rows of 516 never have a tiny spread.
    const x = f32(uniform(rng, shape[0] * cols, 1, 5));
    const g = f32(uniform(rng, x.length, -1, 1));
    const w = f32(uniform(rng, cols, 0.5, 1.5));
    const b = f32(uniform(rng, cols, -1, 1));
    const tx = requireGrad(Tensor.from(Float32Array.from(x), shape));
    const tw = requireGrad(Tensor.from(Float32Array.from(w)));
    const tb = requireGrad(Tensor.from(Float32Array.from(b)));
    const y = layerNorm(tx, tw, tb, EPS);
    // The tape node's backward with dy = g directly (a loss Σ y ⊙ g would add a 34M-element
    // single-workgroup sum).
    const grads = y.node!.backward(Tensor.from(Float32Array.from(g), shape));
    const host = await readTensors([y, ...grads.map((t) => t!)]);
    const want = [layerNormRef(x, w, b, cols, EPS), ...layerNormGradRef(x, w, cols, EPS, g)];
    ["y", "dx", "dweight", "dbias"].forEach((what, i) =>
      assertClose(host[i], want[i], 1e-5, `layerNorm [${shape}] ${what}, seed ${seed}`)
    );
  },
});

Deno.test("layerNorm: a last dimension over the limit is refused", () => {
  const w = Tensor.from(new Float32Array(4097));
  assertThrows(
    () => layerNorm(Tensor.empty([2, 4097]), w, w, EPS),
    RangeError,
    "layerNorm: last dimension 4097 of [2, 4097] is outside 1..4096",
  );
});
