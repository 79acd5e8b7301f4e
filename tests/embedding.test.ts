import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { checkEmbeddingIds, embedding } from "../ops/dense/embedding.ts";
import { backward, noGrad, requireGrad } from "../ops/core/autograd.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { embeddingGradRef, embeddingRef } from "./embedding_reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/**
 * Ids with a popularity skew (id ≈ V·u³ concentrates on the first rows) and a share of PAD (0)
 * tokens, as padded sequences of a recommender have.
 */
function skewedIds(rng: () => number, count: number, rows: number, padShare: number): Int32Array {
  const ids = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    ids[i] = rng() < padShare ? 0 : Math.min(rows - 1, Math.floor(rows * rng() ** 3));
  }
  return ids;
}

/**
 * The PAD row is a constant of the lookup (PyTorch's padding_idx): the reference reads it from
 * the unperturbed table `data`, so finite differences see no gradient there either.
 */
function padDetacher(data: Float64Array, dim: number, paddingIdx: number | undefined) {
  return (table: Float64Array) => {
    if (paddingIdx === undefined) return table;
    const t = Float64Array.from(table);
    for (let c = 0; c < dim; c++) t[paddingIdx * dim + c] = data[paddingIdx * dim + c];
    return t;
  };
}

const CASES: { rows: number; dim: number; shape: number[]; paddingIdx?: number }[] = [
  { rows: 1, dim: 1, shape: [7] },
  { rows: 1, dim: 5, shape: [3], paddingIdx: 0 },
  { rows: 7, dim: 5, shape: [4, 9], paddingIdx: 0 },
  { rows: 7, dim: 1, shape: [100] },
  { rows: 3417, dim: 5, shape: [1001], paddingIdx: 3 },
  { rows: 3417, dim: 64, shape: [64, 50], paddingIdx: 0 },
  { rows: 3417, dim: 64, shape: [2048, 50], paddingIdx: 0 },
];

Deno.test("embedding: lookup and deterministic gradient match float64 (PAD, popular ids)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const { rows, dim, shape, paddingIdx } of CASES) {
    const count = shape.reduce((a, b) => a * b, 1);
    const ids = skewedIds(rng, count, rows, 0.3);
    const idTensor = Tensor.from(ids, shape, "i32");
    const data = randn(rng, rows * dim, 0.5);
    const detachPad = padDetacher(data, dim, paddingIdx);
    await gradCheck({
      what: `embedding V=${rows} D=${dim} ids [${shape}] pad ${paddingIdx} seed ${seed}`,
      inputs: [{ data, shape: [rows, dim] }],
      gpu: ([table]) => embedding(idTensor, table, { paddingIdx }),
      ref: ([table]) => embeddingRef(ids, detachPad(table), dim),
      refGrad: (_xs, g) => [embeddingGradRef(ids, rows, dim, g, paddingIdx)],
      rng,
      probes: 8,
    });
    idTensor.dispose();
  }
});

/**
 * Mostly distinct ids, as a last-token gather draws them: a shuffled sample of the rows, with a
 * few repeats, PAD and out-of-range ids mixed in when `extras`.
 */
function mostlyDistinctIds(rng: () => number, count: number, rows: number, extras: boolean) {
  const order = Array.from({ length: rows }, (_, i) => i);
  for (let i = rows - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const ids = Int32Array.from({ length: count }, (_, i) => order[i % rows]);
  if (extras && count > 3) {
    ids[count - 1] = ids[0]; // a repeat (also the last token)
    ids[Math.floor(count / 2)] = ids[1]; // another, further in
    ids[2] = rows; // out of range: a zero row, no gradient
  }
  return ids;
}

Deno.test("embedding: distinctIds gives the same lookup and gradient (repeats, PAD, bad ids)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const cases = [
    { rows: 1, dim: 1, count: 1, extras: false },
    { rows: 9, dim: 3, count: 9, extras: false },
    { rows: 50, dim: 7, count: 13, extras: true, paddingIdx: 0 },
    { rows: 1001, dim: 64, count: 257, extras: true },
    { rows: 3000, dim: 5, count: 5000, extras: true, paddingIdx: 7 },
  ];
  for (const { rows, dim, count, extras, paddingIdx } of cases) {
    const ids = mostlyDistinctIds(rng, count, rows, extras);
    const idTensor = Tensor.from(ids, [count], "i32");
    const data = randn(rng, rows * dim, 0.5);
    const detachPad = padDetacher(data, dim, paddingIdx);
    await gradCheck({
      what: `embedding distinctIds V=${rows} D=${dim} ids ${count} pad ${paddingIdx} seed ${seed}`,
      inputs: [{ data, shape: [rows, dim] }],
      gpu: ([table]) => embedding(idTensor, table, { paddingIdx, distinctIds: true }),
      ref: ([table]) => embeddingRef(ids, detachPad(table), dim),
      refGrad: (_xs, g) => [embeddingGradRef(ids, rows, dim, g, paddingIdx)],
      rng,
      probes: 8,
    });
    idTensor.dispose();
    if (extras) {
      await assertRejects(() => checkEmbeddingIds(), RangeError, `largest ${rows})`);
    }
  }
});

Deno.test("embedding: a table tied to the output layer gets both gradients", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [rows, dim, count] of [[7, 5, 13], [3417, 64, 40]]) {
    const ids = skewedIds(rng, count, rows, 0.25);
    const idTensor = Tensor.from(ids, [count], "i32");
    const data = randn(rng, rows * dim, 0.5);
    // h = E[ids] (PAD row constant for the lookup), logits = h · Eᵀ.
    const lookup = (table: Float64Array) => {
      const h = new Float64Array(count * dim);
      ids.forEach((id, t) => {
        const src = id === 0 ? data : table;
        for (let c = 0; c < dim; c++) h[t * dim + c] = src[id * dim + c];
      });
      return h;
    };
    const logitsOf = (table: Float64Array) => {
      const h = lookup(table);
      const out = new Float64Array(count * rows);
      for (let t = 0; t < count; t++) {
        for (let v = 0; v < rows; v++) {
          let s = 0;
          for (let c = 0; c < dim; c++) s += h[t * dim + c] * table[v * dim + c];
          out[t * rows + v] = s;
        }
      }
      return out;
    };
    await gradCheck({
      what: `tied embedding V=${rows} D=${dim} tokens ${count} seed ${seed}`,
      inputs: [{ data, shape: [rows, dim] }],
      gpu: ([table]) =>
        matmul(embedding(idTensor, table, { paddingIdx: 0 }), table, { transB: true }),
      ref: ([table]) => logitsOf(table),
      refGrad: ([table], g) => {
        const h = lookup(table);
        const grad = new Float64Array(rows * dim);
        const dh = new Float64Array(count * dim);
        for (let t = 0; t < count; t++) {
          for (let v = 0; v < rows; v++) {
            for (let c = 0; c < dim; c++) {
              grad[v * dim + c] += g[t * rows + v] * h[t * dim + c];
              dh[t * dim + c] += g[t * rows + v] * table[v * dim + c];
            }
          }
        }
        const lookupGrad = embeddingGradRef(ids, rows, dim, dh, 0);
        return [grad.map((v, i) => v + lookupGrad[i])];
      },
      rng,
      probes: 12,
    });
    idTensor.dispose();
  }
});

async function tableGradient(ids: Tensor, table: Tensor, g: Tensor, paddingIdx?: number) {
  table.grad?.dispose();
  table.grad = null;
  tidy(() => backward(sumAll(mul(embedding(ids, table, { paddingIdx }), g))));
  const [grad] = await readTensors([table.grad!]);
  return new Uint32Array(grad.buffer, grad.byteOffset, grad.length).slice();
}

Deno.test("embedding: the gradient is bitwise identical run to run; PAD row exactly zero", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // Few rows and many tokens: thousands of colliding adds per entry, gradients of mixed sign and
  // magnitude, the worst case for order-dependent float summation.
  const rows = 7, dim = 64, count = 20000;
  const ids = skewedIds(rng, count, rows, 0.2);
  const g = randn(rng, count * dim).map((v, i) => v * (i % 3 === 0 ? 1e-3 : 1));
  const idTensor = Tensor.from(ids, [count], "i32");
  const gTensor = Tensor.from(Float32Array.from(g), [count, dim]);
  const table = requireGrad(Tensor.from(Float32Array.from(randn(rng, rows * dim)), [rows, dim]));
  const first = await tableGradient(idTensor, table, gTensor, 0);
  const second = await tableGradient(idTensor, table, gTensor, 0);
  assertEquals(second, first, `bits differ between two runs, seed ${seed}`);
  for (let c = 0; c < dim; c++) assertEquals(first[c], 0, `PAD row gradient, seed ${seed}`);
  const want = embeddingGradRef(ids, rows, dim, Float64Array.from(Float32Array.from(g)), 0);
  const got = new Float32Array(first.buffer);
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  assert(Math.sqrt(num / den) < 1e-5, `relative error ${Math.sqrt(num / den)}, seed ${seed}`);
});

Deno.test("embedding: out-of-range ids read as zero rows, get no gradient, and are reported", async () => {
  const ids = Tensor.from(new Int32Array([-3, 0, 2, 9, 1, 3]), [6], "i32");
  const table = requireGrad(Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]));
  const out = embedding(ids, table);
  tidy(() => backward(sumAll(out)));
  const [y, grad] = await readTensors([out, table.grad!]);
  assertEquals([...y], [0, 0, 1, 2, 5, 6, 0, 0, 3, 4, 0, 0]);
  assertEquals([...grad], [1, 1, 1, 1, 1, 1]);
  await assertRejects(
    () => checkEmbeddingIds(),
    RangeError,
    "embedding: 3 ids were outside the table (smallest -3, largest 9)",
  );
  await checkEmbeddingIds(); // cleared by the previous check
  // The same through the vec4 path (D a multiple of 4).
  const wide = noGrad(() =>
    embedding(
      Tensor.from(new Int32Array([-1, 1, 5]), [3], "i32"),
      Tensor.from(Float32Array.from({ length: 12 }, (_, i) => i + 1), [3, 4]),
    )
  );
  assertEquals([...await wide.toArray()], [0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0]);
  await assertRejects(
    () => checkEmbeddingIds(),
    RangeError,
    "embedding: 2 ids were outside the table (smallest -1, largest 5)",
  );
  noGrad(() => embedding(Tensor.from(new Int32Array([0, 1, 2]), [3], "i32"), table));
  await checkEmbeddingIds(); // in-range ids raise nothing
});

Deno.test("embedding: bad input names the op and the shapes", () => {
  const table = Tensor.from(new Float32Array(6), [3, 2]);
  const ids = Tensor.from(new Int32Array([0, 1]), [2], "i32");
  assertThrows(
    () => embedding(Tensor.from([0, 1]), table),
    TypeError,
    "embedding: expected a i32 tensor",
  );
  assertThrows(
    () => embedding(ids, Tensor.from(new Float32Array(6), [6])),
    RangeError,
    "embedding: the table must be [V, D], got [6] (ids [2])",
  );
  assertThrows(
    () => embedding(ids, table, { paddingIdx: 3 }),
    RangeError,
    "embedding: paddingIdx 3 is not a row of the table [3, 2]",
  );
});

Deno.test("embedding: 409,600 tokens (2-D workgroup grid), V = 20,000, D = 64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const rows = 20000, dim = 64, count = 409600;
  const ids = skewedIds(rng, count, rows, 0.3);
  const table = new Float32Array(rows * dim).map(() => rng() - 0.5);
  const g = new Float32Array(count * dim).map(() => rng() - 0.5);
  const t = requireGrad(Tensor.from(table, [rows, dim]));
  const out = embedding(Tensor.from(ids, [count], "i32"), t, { paddingIdx: 0 });
  // The tape node's backward with dy = g directly (cheaper here than a loss Σ out ⊙ g).
  const [grad] = out.node!.backward(Tensor.from(g, [count, dim]));
  const [y, dt] = await readTensors([out, grad!]);
  const want = embeddingRef(ids, Float64Array.from(table), dim);
  for (let i = 0; i < want.length; i++) {
    if (y[i] !== want[i]) {
      throw new Error(`lookup element ${i}: ${y[i]} ≠ ${want[i]}, seed ${seed}`);
    }
  }
  const wantGrad = embeddingGradRef(ids, rows, dim, Float64Array.from(g), 0);
  assertClose(dt, wantGrad, 1e-5, `gradient, seed ${seed}`);
});
