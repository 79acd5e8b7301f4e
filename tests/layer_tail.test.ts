import { assertEquals, assertThrows } from "@std/assert";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { layerTail, layerTailInto } from "../ops/dense/layer_tail.ts";
import { layerTailReference } from "../ops/dense/layer_tail_reference.ts";
import { layerNorm } from "../ops/dense/layernorm.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { add, gelu } from "../ops/pointwise/elementwise.ts";
import { assertClose, freshSeed, makeRng, randn, transposed } from "./util.ts";

const f32 = (a: Float64Array) => Float32Array.from(a);

// Mamba4Rec's streaming sizes; odd widths; a feed-forward wider than a workgroup's 256
// invocations (each invocation then takes several columns); row counts that fill no whole group.
const CASES = [
  { inner: 128, d: 64, ffn: 256, rows: 37, residual: false },
  { inner: 26, d: 13, ffn: 52, rows: 1, residual: true },
  { inner: 10, d: 5, ffn: 20, rows: 33, residual: true },
  { inner: 160, d: 80, ffn: 320, rows: 18, residual: false },
];

for (const { inner, d, ffn, rows, residual } of CASES) {
  Deno.test(`layerTail matches float64 and the separate ops (inner ${inner}, d ${d}, ffn ${ffn}, ${rows} rows${residual ? ", residual" : ""})`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const w = {
      out: randn(rng, d * inner, 1 / Math.sqrt(inner)),
      norm1: { weight: randn(rng, d, 0.3).map((v) => 1 + v), bias: randn(rng, d, 0.2) },
      w1: randn(rng, ffn * d, 1 / Math.sqrt(d)),
      b1: randn(rng, ffn, 0.2),
      w2: randn(rng, d * ffn, 1 / Math.sqrt(ffn)),
      b2: randn(rng, d, 0.2),
      norm2: { weight: randn(rng, d, 0.3).map((v) => 1 + v), bias: randn(rng, d, 0.2) },
      eps: 1e-12,
    };
    const y = randn(rng, rows * inner);
    const resid = residual ? randn(rng, rows * d) : null;
    const want = layerTailReference(y, rows, w, resid);
    // layerTailInto writes row i to a shuffled slot of a table with more rows than that.
    const capacity = rows + 3;
    const slots = Int32Array.from({ length: capacity }, (_, i) => i)
      .sort(() => rng() - 0.5).subarray(0, rows);
    const before = f32(randn(rng, capacity * d));
    const [fused, separate, table, ...tuned] = await tidy(() => {
      const t = (a: Float64Array, shape: number[]) => Tensor.from(f32(a), shape);
      const yT = t(y, [rows, inner]);
      const residT = resid ? t(resid, [rows, d]) : null;
      const norm = (n: typeof w.norm1) => ({ weight: t(n.weight, [d]), bias: t(n.bias, [d]) });
      const norm1 = norm(w.norm1), norm2 = norm(w.norm2);
      const b1 = t(w.b1, [ffn]), b2 = t(w.b2, [d]);
      const weights = {
        outT: t(transposed(w.out, d, inner), [inner, d]),
        norm1,
        w1T: t(transposed(w.w1, ffn, d), [d, ffn]),
        b1,
        w2T: t(transposed(w.w2, d, ffn), [ffn, d]),
        b2,
        norm2,
        eps: w.eps,
      };
      const fused = layerTail(yT, weights, residT);
      // Other shares of the products among invocations: the same results bit for bit.
      const tuned = [2, 4, 16].map((rowsPerInvocation) =>
        layerTail(yT, weights, residT, { rowsPerInvocation })
      );
      const table = Tensor.from(before, [capacity, d]);
      layerTailInto(yT, weights, residT, table, Tensor.from(slots, [rows], "i32"));
      // The same layers as the model runs them, one op each.
      let m = matmul(yT, t(w.out, [d, inner]), { transB: true });
      if (residT) m = add(m, residT);
      const n = layerNorm(m, norm1.weight, norm1.bias, w.eps);
      const a = gelu(matmul(n, t(w.w1, [ffn, d]), { transB: true, bias: b1 }));
      const f = matmul(a, t(w.w2, [d, ffn]), { transB: true, bias: b2 });
      const separate = layerNorm(add(f, n), norm2.weight, norm2.bias, w.eps);
      return readTensors([fused, separate, table, ...tuned]);
    });
    assertEquals(fused.length, rows * d);
    for (const [i, t] of tuned.entries()) {
      assertEquals(t, fused, `seed ${seed}: rows per invocation ${[2, 4, 16][i]}`);
    }
    const expected = Float32Array.from(before);
    slots.forEach((slot, i) => expected.set(fused.subarray(i * d, (i + 1) * d), slot * d));
    assertEquals(table, expected, `seed ${seed}: the rows written into the table`);
    assertClose(fused, want, 2e-6, `seed ${seed}: fused against float64`);
    assertClose(fused, separate, 2e-6, `seed ${seed}: fused against the separate ops`);
  });
}

Deno.test("layerTail: wrong shapes and tunings name the op and the argument", () => {
  tidy(() => {
    const z = (shape: number[]) =>
      Tensor.from(new Float32Array(shape.reduce((a, b) => a * b)), shape);
    const weights = {
      outT: z([8, 4]),
      norm1: { weight: z([4]), bias: z([4]) },
      w1T: z([4, 16]),
      b1: z([16]),
      w2T: z([16, 4]),
      b2: z([4]),
      norm2: { weight: z([4]), bias: z([4]) },
      eps: 1e-12,
    };
    assertThrows(
      () => layerTail(z([3, 7]), weights, null),
      RangeError,
      "layerTail: y must be [3, 8]",
    );
    assertThrows(
      () => layerTail(z([3, 8]), weights, z([2, 4])),
      RangeError,
      "layerTail: residual must be [3, 4]",
    );
    assertThrows(
      () => layerTail(z([3, 8]), { ...weights, b2: z([5]) }, null),
      RangeError,
      "layerTail: b2 must be [4]",
    );
    for (const rowsPerInvocation of [0, 17, 1.5]) {
      assertThrows(
        () => layerTail(z([3, 8]), weights, null, { rowsPerInvocation }),
        RangeError,
        "tuning.rowsPerInvocation",
      );
    }
  });
});
