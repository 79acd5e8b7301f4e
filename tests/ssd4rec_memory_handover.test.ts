/**
 * The tape hands a gradient that a node passes through (a sum's operands) to one input instead of
 * copying it for each: SSD4Rec's residual and direction sums take their gradients so. The values
 * stay exact, also where the input that takes the gradient over already holds one and sums it at
 * once, and a sum of two leaves holds two gradients at the backward's peak, not three. A gradient
 * summed from several consumers is summed in place, exactly as out of place.
 */
import { assert, assertEquals } from "@std/assert";
import {
  add,
  backward,
  memoryStats,
  mul,
  readTensors,
  requireGrad,
  resetPeakMemory,
  sizeClass,
  sumAll,
  sync,
  Tensor,
  tidy,
  zeroGrad,
} from "../ops/mod.ts";
import { freshSeed, makeRng, randn } from "./util.ts";

Deno.test("backward: a passed-through gradient is exact when the inputs already hold gradients", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const n = 1000;
  const [pv, qv, cv, wv] = [0, 1, 2, 3].map(() => Float32Array.from(randn(rng, n)));
  const p = requireGrad(Tensor.from(pv));
  const q = requireGrad(Tensor.from(qv));
  tidy(() => {
    const c = Tensor.from(cv), w = Tensor.from(wv);
    // The product's backward runs first, so p holds a gradient when the sum hands the same one
    // to p and q; (p + p) hands one gradient to the same input twice.
    const s = add(add(add(p, q), mul(p, c)), add(q, q));
    backward(sumAll(mul(s, w)));
  });
  const [dp, dq] = await readTensors([p.grad!, q.grad!]);
  for (let i = 0; i < n; i++) {
    const w = wv[i];
    assertEquals(dp[i], Math.fround(Math.fround(w * cv[i]) + w), `seed ${seed}: dp[${i}]`);
    assertEquals(dq[i], Math.fround(w + Math.fround(w + w)), `seed ${seed}: dq[${i}]`);
  }
  zeroGrad([p, q]);
  p.dispose();
  q.dispose();
});

Deno.test("backward: a sum of two leaves holds two gradients at its peak, not three", async () => {
  const n = 1 << 16;
  const bytes = sizeClass(n * 4);
  const a = requireGrad(Tensor.from(new Float32Array(n).fill(1)));
  const b = requireGrad(Tensor.from(new Float32Array(n).fill(2)));
  let peak = 0;
  tidy(() => {
    const loss = sumAll(mul(add(a, b), Tensor.from(new Float32Array(n).fill(0.5))));
    const before = memoryStats().liveBytes;
    resetPeakMemory();
    backward(loss);
    peak = memoryStats().peakLiveBytes - before;
  });
  await sync();
  const [da, db] = await readTensors([a.grad!, b.grad!]);
  assert(da.every((v) => v === 0.5) && db.every((v) => v === 0.5), "the gradients are 0.5");
  // The product's gradient and the sum's, then the sum's copied once for a; small tensors besides.
  const bound = 2 * bytes + 4 * sizeClass(16);
  assert(
    peak <= bound,
    `the backward of (a + b)·w peaked at ${peak} bytes, over ${bound}: the sum's gradient was ` +
      "copied for both operands",
  );
  zeroGrad([a, b]);
  a.dispose();
  b.dispose();
});

Deno.test("backward: a gradient summed from three consumers is summed in place, exactly and with one running sum", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const n = 1 << 16;
  const bytes = sizeClass(n * 4);
  // Small integers: every product and sum is exact in float32, whatever order the tape sums in.
  const ints = (values: number[]) =>
    Float32Array.from({ length: n }, () => values[Math.floor(rng() * values.length)]);
  const [c0, c1, c2, c3, wv] = [
    ints([1, 2, 4]),
    ints([-2, 1, 3]),
    ints([1, -1, 2]),
    ints([4, -3, 1]),
    ints([-1, 1, 2]),
  ];
  const p = requireGrad(Tensor.from(ints([1, 2, -1])));
  let peak = 0;
  tidy(() => {
    const h = mul(p, Tensor.from(c0));
    const terms = [c1, c2, c3].map((c) => mul(h, Tensor.from(c)));
    const loss = sumAll(mul(add(add(terms[0], terms[1]), terms[2]), Tensor.from(wv)));
    const before = memoryStats().liveBytes;
    resetPeakMemory();
    backward(loss);
    peak = memoryStats().peakLiveBytes - before;
  });
  await sync();
  const [dp] = await readTensors([p.grad!]);
  for (let i = 0; i < n; i++) {
    const want = wv[i] * (c1[i] + c2[i] + c3[i]) * c0[i];
    assertEquals(dp[i], want, `seed ${seed}: dp[${i}]`);
  }
  // Alive at once at worst, when the second term reaches h: h's running sum, the inner sum's two
  // gradients (its operands') and the new term; an out-of-place sum would hold a fifth.
  const bound = 4 * bytes + 4 * sizeClass(16);
  assert(
    peak <= bound,
    `seed ${seed}: the backward peaked at ${peak} bytes, over ${bound}: h's gradient was summed ` +
      "out of place",
  );
  zeroGrad([p]);
  p.dispose();
});
