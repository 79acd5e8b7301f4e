import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  add,
  addScalar,
  backward,
  exp,
  gelu,
  mul,
  readTensors,
  relu,
  requireGrad,
  reshape,
  rowMean,
  rowSum,
  scale,
  sigmoid,
  silu,
  softplus,
  sub,
  sumAll,
  sumLeading,
  Tensor,
  tidy,
  unary,
  type UnaryName,
} from "../ops/mod.ts";
import { runtime } from "../ops/core/runtime.ts";
import { map, rowSumRef, sumRowsRef, unaryRef } from "./reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randn, uniform } from "./util.ts";

const SHAPES = [[1], [7], [3, 5], [2, 3, 97], [1031], [65, 257]];

for (const name of Object.keys(unaryRef) as UnaryName[]) {
  Deno.test(`unary ${name}: forward and gradient match float64 on awkward shapes`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    for (const shape of SHAPES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const a = name === "scale" || name === "addScalar" ? 0.5 + rng() * 2 : 0;
      // Spread inputs over the interesting range; exp stays moderate.
      const x = randn(rng, n, name === "exp" ? 1 : 3);
      if (name === "relu") { for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 1e-2) x[i] = 0.5; }
      const ref = unaryRef[name];
      await gradCheck({
        what: `${name} [${shape}] seed ${seed}`,
        inputs: [{ data: x, shape }],
        gpu: ([t]) => unary(name, t, a),
        ref: ([v]) => map(v, (u) => ref.f(u, a)),
        refGrad: ([v], g) => [map(v, (u, i) => g[i] * ref.df(u, a))],
        rng,
      });
    }
  });
}

Deno.test("softplus follows PyTorch across the threshold and for very negative inputs", async () => {
  const xs = [-90, -30, -15, -1e-3, 0, 1e-3, 5, 19.9, 20.1, 60];
  const got = await softplus(Tensor.from(xs)).toArray();
  assertClose(got, xs.map(unaryRef.softplus.f as (x: number) => number), 1e-6, "softplus");
  for (const i of [1, 2]) {
    const rel = Math.abs(got[i] - Math.exp(xs[i])) / Math.exp(xs[i]);
    if (rel > 1e-5) throw new Error(`softplus(${xs[i]}) = ${got[i]}, relative error ${rel}`);
  }
});

for (const op of ["add", "sub", "mul"] as const) {
  Deno.test(`${op}: same shape and suffix broadcast, forward and both gradients`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const f = {
      add: (a: number, b: number) => a + b,
      sub: (a: number, b: number) => a - b,
      mul: (a: number, b: number) => a * b,
    }[op];
    const gpu = { add, sub, mul }[op];
    for (
      const [shape, bshape] of [
        [[1], [1]],
        [[5, 3], [5, 3]],
        [[4, 7, 13], [13]],
        [[3, 129], [129]],
        [[2, 5, 3], [5, 3]],
        [[300, 1], [1]],
      ]
    ) {
      const a = randn(
        rng,
        shape.reduce((x, y) => x * y, 1),
      );
      const b = randn(rng, bshape.reduce((x, y) => x * y, 1));
      await gradCheck({
        what: `${op} [${shape}] ⊕ [${bshape}] seed ${seed}`,
        inputs: [{ data: a, shape }, { data: b, shape: bshape }],
        gpu: ([x, y]) => gpu(x, y),
        ref: ([x, y]) => map(x, (v, i) => f(v, y[i % y.length])),
        refGrad: ([x, y], g) => {
          const ga = map(x, (_v, i) => (op === "mul" ? g[i] * y[i % y.length] : g[i]));
          const gbFull = map(x, (v, i) => (op === "mul" ? g[i] * v : op === "sub" ? -g[i] : g[i]));
          return [ga, sumRowsRef(gbFull, y.length)];
        },
        refGradScale: ([x, y], g) => {
          const terms = map(x, (v, i) => Math.abs(op === "mul" ? g[i] * v : g[i]));
          return [null, sumRowsRef(terms, y.length)];
        },
        rng,
      });
    }
  });
}

Deno.test("rowSum and rowMean: forward and gradient on awkward row lengths", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const shape of [[1, 1], [3, 1], [1, 1000], [7, 257], [2, 3, 513], [70000, 3]]) {
    const cols = shape.at(-1)!;
    // Positive values: a sum of mixed signs can cancel to far below its rounding error in f32,
    // which would test the condition number rather than the kernel.
    const x = uniform(rng, shape.reduce((a, b) => a * b, 1), 0.1, 1.1);
    for (const [fn, s] of [[rowSum, 1], [rowMean, 1 / cols]] as const) {
      await gradCheck({
        what: `${fn === rowSum ? "rowSum" : "rowMean"} [${shape}] seed ${seed}`,
        inputs: [{ data: x, shape }],
        gpu: ([t]) => fn(t),
        ref: ([v]) => rowSumRef(v, cols, s),
        refGrad: ([v], g) => [map(v, (_u, i) => g[Math.floor(i / cols)] * s)],
        rng,
        probes: 8,
      });
    }
  }
});

Deno.test("autograd: shared subexpressions accumulate, reshape passes gradients, tidy frees", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const x = randn(rng, 12);
  // f(x) = Σ (x·x + silu(x)) ⊙ reshape(x) ; df/dx = 3x² ... computed from the reference below.
  await gradCheck({
    what: `shared subexpression seed ${seed}`,
    inputs: [{ data: x, shape: [3, 4] }],
    gpu: ([t]) => mul(add(mul(t, t), silu(t)), reshape(reshape(t, [12]), [3, 4])),
    ref: ([v]) => map(v, (u) => (u * u + unaryRef.silu.f(u, 0)) * u),
    rng,
  });
  const live = tidy(() => {
    const a = Tensor.from([1, 2, 3]);
    const b = exp(a);
    return { keepMe: b, gone: [a] };
  });
  assertEquals(live.keepMe.disposed, false);
  assertEquals(live.gone[0].disposed, false);
  const inner = tidy(() => {
    const a = Tensor.from([1, 2, 3]);
    sigmoid(a);
    return a;
  });
  inner.dispose();
  assertThrows(() => inner.storage, ReferenceError, "disposed");
  await assertRejects(() => inner.toArray(), ReferenceError, "disposed");
});

Deno.test("autograd: gradients accumulate across backward calls until zeroed", async () => {
  const w = requireGrad(Tensor.from([0.5, -1, 2]));
  for (let k = 0; k < 3; k++) tidy(() => backward(sumAll(scale(relu(addScalar(w, 1)), 2))));
  const [g] = await readTensors([w.grad!]);
  assertEquals([...g], [6, 0, 6]);
});

Deno.test("bad input: mismatched shapes name the op and both shapes", () => {
  const a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = Tensor.from([1, 2], [2]);
  assertThrows(() => add(a, b), RangeError, "add: shapes do not match: [2, 3] and [2]");
  assertThrows(() => mul(b, a), RangeError, "mul: shapes do not match: [2] and [2, 3]");
  assertThrows(() => Tensor.from([1, 2, 3], [2, 2]), RangeError, "do not fill shape [2, 2]");
  assertThrows(() => backward(a), RangeError, "one-element loss");
  assertThrows(
    () => gelu(Tensor.from(new Int32Array([1]))),
    TypeError,
    "gelu: expected a f32 tensor",
  );
});

Deno.test("sumLeading folds more than 65,535 workgroups of columns", async () => {
  const cols = 64 * 65535 + 77, rows = 2;
  if (rows * cols * 4 > runtime().info.maxBindingBytes) return;
  const seed = freshSeed();
  const rng = makeRng(seed);
  const x = Float32Array.from(uniform(rng, rows * cols, -1, 1));
  const got = await sumLeading(Tensor.from(x, [rows, cols]), [cols]).toArray();
  const want = Float64Array.from({ length: cols }, (_, c) => x[c] + x[cols + c]);
  assertClose(got, want, 1e-6, `sumLeading seed ${seed}`);
});

/**
 * sumLeading's tree in float32, as the host would add: passes of 64-row chunks (wider past 65,535
 * chunks), each chunk summed in row order from zero, until one row is left.
 */
function sumLeadingTree(x: Float32Array, rows: number, cols: number): Float32Array {
  let cur = x, n = rows;
  do {
    const chunk = Math.max(64, Math.ceil(n / 65535));
    const chunks = Math.ceil(n / chunk);
    const next = new Float32Array(chunks * cols);
    for (let j = 0; j < chunks; j++) {
      for (let c = 0; c < cols; c++) {
        let s = 0;
        for (let r = j * chunk; r < Math.min((j + 1) * chunk, n); r++) {
          s = Math.fround(s + cur[r * cols + c]);
        }
        next[j * cols + c] = s;
      }
    }
    cur = next;
    n = chunks;
  } while (n > 1);
  return cur;
}

Deno.test("sumLeading: the same fixed tree, bit for bit, whatever the passes it takes", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // One pass (≤ 64 rows), the last two passes fused (65 … 4,096), and a pass before them.
  for (
    const [rows, cols] of [[1, 5], [64, 3], [65, 33], [146, 32], [4096, 1], [4097, 7], [9335, 32]]
  ) {
    const x = Float32Array.from(uniform(rng, rows * cols, -1, 1));
    const got = await sumLeading(Tensor.from(x, [rows, cols]), [cols]).toArray();
    assertEquals(got, sumLeadingTree(x, rows, cols), `${rows}×${cols}, seed ${seed}`);
  }
});
