import { assertEquals, assertThrows } from "@std/assert";
import { layerNorm, layerNormInto, layerNormOfRows } from "../ops/dense/layernorm.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { noGrad, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { writeSlotRows } from "../ops/sequence/selective_step.ts";
import { layerNormRef } from "./layernorm_reference.ts";
import { assertClose, freshSeed, makeRng, randint, randn } from "./util.ts";

const f32 = (data: Float64Array, shape: number[]) => Tensor.from(Float32Array.from(data), shape);

/** Row lengths: one value, odd (scalar rows), a multiple of 4 (vec4 rows), and long. */
const COLUMNS = [1, 7, 64, 260];

Deno.test("layerNormOfRows: the rows of a table by id match float64 and layerNorm(embedding) bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const cols of COLUMNS) {
    const tableRows = 11;
    const table = randn(rng, tableRows * cols, 2).map(Math.fround);
    const w = randn(rng, cols).map(Math.fround), b = randn(rng, cols).map(Math.fround);
    // 2 × 19 ids with repeats; 19 rows is not a multiple of any team count.
    const ids = randint(rng, 38, tableRows);
    const [got, separate] = await readTensors(tidy(() => {
      const t = f32(table, [tableRows, cols]), wt = f32(w, [cols]), bt = f32(b, [cols]);
      const idt = Tensor.from(ids, [2, 19]);
      return [
        layerNormOfRows(t, idt, wt, bt, 1e-12),
        layerNorm(embedding(idt, t), wt, bt, 1e-12),
      ];
    }));
    const gathered = new Float64Array(38 * cols);
    ids.forEach((id, r) => gathered.set(table.subarray(id * cols, (id + 1) * cols), r * cols));
    const what = `D ${cols}, seed ${seed}`;
    assertClose(got, layerNormRef(gathered, w, b, cols, 1e-12), 1e-5, what);
    assertEquals([...got], [...separate], `against layerNorm(embedding), ${what}`);
  }
});

Deno.test("layerNormOfRows: an id outside the table reads a zero row, whose result is the bias", async () => {
  const w = new Float32Array([2, 3, 4]), b = new Float32Array([0.5, -1, 7]);
  const [got] = await readTensors([tidy(() =>
    layerNormOfRows(
      Tensor.from(new Float32Array([1, 2, 4, -3, 0, 9]), [2, 3]),
      Tensor.from(new Int32Array([1, -1, 2, 0])),
      Tensor.from(w),
      Tensor.from(b),
      1e-12,
    )
  )]);
  const row1 = layerNormRef(
    Float64Array.from([-3, 0, 9]),
    Float64Array.from(w),
    Float64Array.from(b),
    3,
    1e-12,
  );
  const row0 = layerNormRef(
    Float64Array.from([1, 2, 4]),
    Float64Array.from(w),
    Float64Array.from(b),
    3,
    1e-12,
  );
  assertClose(got, Float64Array.from([...row1, ...b, ...b, ...row0]), 1e-6, "ids 1, -1, 2, 0");
});

Deno.test("layerNormInto: each row lands in its target row, others untouched, like layerNorm + writeSlotRows", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const cols of COLUMNS) {
    const count = 19, targetRows = 29;
    const x = randn(rng, count * cols, 3).map(Math.fround);
    const w = randn(rng, cols).map(Math.fround), b = randn(rng, cols).map(Math.fround);
    const start = randn(rng, targetRows * cols).map(Math.fround);
    // Distinct target rows in a shuffled order.
    const order = Int32Array.from({ length: targetRows }, (_, i) => i);
    for (let i = targetRows - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const rows = order.slice(0, count);
    const [fused, separate] = await readTensors(tidy(() => {
      const wt = f32(w, [cols]), bt = f32(b, [cols]), xt = f32(x, [count, cols]);
      const rt = Tensor.from(rows);
      const a = f32(start, [targetRows, cols]), c = f32(start, [targetRows, cols]);
      layerNormInto(xt, wt, bt, 1e-12, a, rt);
      writeSlotRows(c, rt, layerNorm(xt, wt, bt, 1e-12));
      return [a, c];
    }));
    const want = Float64Array.from(start);
    const normed = layerNormRef(x, w, b, cols, 1e-12);
    rows.forEach((row, r) => want.set(normed.subarray(r * cols, (r + 1) * cols), row * cols));
    const what = `D ${cols}, seed ${seed}`;
    assertClose(fused, want, 1e-5, what);
    assertEquals([...fused], [...separate], `against layerNorm + writeSlotRows, ${what}`);
  }
});

Deno.test("layerNormInto: a row number outside the target writes nothing", async () => {
  const [got] = await readTensors([tidy(() => {
    const target = Tensor.from(new Float32Array([9, 9, 9, 9]), [2, 2]);
    layerNormInto(
      Tensor.from(new Float32Array([1, 3, 5, 6, 0, 2]), [3, 2]),
      Tensor.from(new Float32Array([1, 1])),
      Tensor.from(new Float32Array([0, 0])),
      1e-12,
      target,
      Tensor.from(new Int32Array([5, 1, -2])),
    );
    return target;
  })]);
  assertClose(got, Float64Array.from([9, 9, -1, 1]), 1e-6, "only x row 1 written, to row 1");
});

Deno.test("layerNormOfRows and layerNormInto: refused gradients and bad arguments name the op", () => {
  tidy(() => {
    const table = requireGrad(Tensor.from(new Float32Array(6), [2, 3]));
    const w = Tensor.from(new Float32Array(3)), b = Tensor.from(new Float32Array(3));
    const ids = Tensor.from(new Int32Array([0, 1]));
    assertThrows(() => layerNormOfRows(table, ids, w, b, 1e-12), RangeError, "no backward");
    noGrad(() => layerNormOfRows(table, ids, w, b, 1e-12));
    const plain = Tensor.from(new Float32Array(6), [2, 3]);
    assertThrows(
      () => layerNormOfRows(plain, Tensor.from(new Float32Array([0, 1])), w, b, 1e-12),
      TypeError,
      "layerNormOfRows: ids must be an i32 tensor",
    );
    assertThrows(
      () => layerNormOfRows(plain, ids, Tensor.from(new Float32Array(4)), b, 1e-12),
      RangeError,
      "weight has shape [4]",
    );
    assertThrows(
      () => layerNormInto(plain, w, b, 1e-12, Tensor.from(new Float32Array(8), [2, 4]), ids),
      RangeError,
      "must share D",
    );
    assertThrows(
      () => layerNormInto(plain, w, b, 1e-12, plain, Tensor.from(new Int32Array([0]))),
      RangeError,
      "rows must be [2], one per row of x",
    );
    assertThrows(
      () => layerNormInto(requireGrad(plain), w, b, 1e-12, plain, ids),
      RangeError,
      "no backward",
    );
  });
});
