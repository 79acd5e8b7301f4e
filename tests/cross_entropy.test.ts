import { assert, assertThrows } from "@std/assert";
import { crossEntropy, itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { noGrad, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor } from "../ops/core/tensor.ts";
import {
  crossEntropyGradRef,
  crossEntropyRef,
  itemCrossEntropyGradRef,
  matmulTransBRef,
} from "./cross_entropy_reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randint, randn } from "./util.ts";

Deno.test("crossEntropy: mean loss and gradient match float64 (V up to 20,011)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [rows, cols] of [[1, 1], [3, 7], [300, 5], [5, 1000], [64, 3417], [17, 20011]]) {
    const targets = randint(rng, rows, cols);
    const t = Tensor.from(targets, [rows], "i32");
    await gradCheck({
      what: `crossEntropy [${rows}, ${cols}] seed ${seed}`,
      inputs: [{ data: randn(rng, rows * cols, 3), shape: [rows, cols] }],
      gpu: ([x]) => crossEntropy(x, t),
      ref: ([x]) => crossEntropyRef(x, targets, cols),
      refGrad: ([x], g) => [crossEntropyGradRef(x, targets, cols, g[0])],
      rng,
      probes: 12,
    });
  }
});

Deno.test("crossEntropy: stable for logits far from zero (±5000 row offsets)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const rows = 6, cols = 513;
  const x = randn(rng, rows * cols, 3).map((v, i) =>
    v + [5000, -5000, 80, -80, 0, 300][Math.floor(i / cols)]
  );
  const targets = randint(rng, rows, cols);
  const t = Tensor.from(targets, [rows], "i32");
  await gradCheck({
    what: `crossEntropy offsets seed ${seed}`,
    inputs: [{ data: x.map(Math.fround), shape: [rows, cols] }],
    gpu: ([v]) => crossEntropy(v, t),
    ref: ([v]) => crossEntropyRef(v, targets, cols),
    refGrad: ([v], g) => [crossEntropyGradRef(v, targets, cols, g[0])],
    rng,
    probes: 12,
    // A step of 1e-4·|x| ≈ 0.5 at |x| = 5000 is too coarse for the softmax; use a fixed one.
    eps: 1e-3,
    // f32 values near 5000 are 4.9e-4 apart, so x − logsumexp(x), and with it every
    // probability, is only known to ~2.4e-4 relative: no f32 kernel can do better. The test is
    // that nothing overflows and the result keeps that precision.
    tol: 1e-3,
  });
});

Deno.test("itemCrossEntropy: loss of h · Eᵀ and gradients of h and E match float64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [rows, items, dim] of [[1, 1, 1], [3, 7, 5], [4, 1001, 3], [33, 3417, 64]]) {
    const targets = randint(rng, rows, items);
    const t = Tensor.from(targets, [rows], "i32");
    // Logits of spread ~3: h ~ N(0, 1), E ~ N(0, 3/√D).
    await gradCheck({
      what: `itemCrossEntropy B=${rows} V=${items} D=${dim} seed ${seed}`,
      inputs: [
        { data: randn(rng, rows * dim), shape: [rows, dim] },
        { data: randn(rng, items * dim, 3 / Math.sqrt(dim)), shape: [items, dim] },
      ],
      gpu: ([h, e]) => itemCrossEntropy(h, e, t),
      ref: ([h, e]) => crossEntropyRef(matmulTransBRef(h, e, dim), targets, items),
      refGrad: ([h, e], g) => itemCrossEntropyGradRef(h, e, targets, dim, g[0]),
      rng,
      probes: 8,
    });
  }
});

Deno.test("crossEntropy: a target outside [0, V) makes the loss NaN (no ignore_index)", async () => {
  const logits = Tensor.from([0.5, 1, -1, 2, 0, 1], [2, 3]);
  for (const bad of [3, -1, -100]) {
    const loss = noGrad(() =>
      crossEntropy(logits, Tensor.from(new Int32Array([0, bad]), [2], "i32"))
    );
    assert(Number.isNaN(await loss.item()), `target ${bad} should give NaN`);
  }
  const ok = noGrad(() => crossEntropy(logits, Tensor.from(new Int32Array([0, 2]), [2], "i32")));
  assert(Number.isFinite(await ok.item()));
});

Deno.test("crossEntropy / itemCrossEntropy: bad input names the op and the shapes", () => {
  const x = Tensor.from(new Float32Array(6), [2, 3]);
  assertThrows(
    () => crossEntropy(x, Tensor.from(new Int32Array(3), [3], "i32")),
    RangeError,
    "crossEntropy: targets have shape [3] but logits are [2, 3]; expected [2]",
  );
  assertThrows(
    () => crossEntropy(x, Tensor.from([0, 1])),
    TypeError,
    "crossEntropy: expected a i32",
  );
  assertThrows(
    () =>
      crossEntropy(
        Tensor.from(new Float32Array(6), [6]),
        Tensor.from(new Int32Array(6), [6], "i32"),
      ),
    RangeError,
    "crossEntropy: logits must be a non-empty [B, V], got [6] f32",
  );
  assertThrows(
    () =>
      itemCrossEntropy(
        x,
        Tensor.from(new Float32Array(8), [4, 2]),
        Tensor.from(new Int32Array(2), [2], "i32"),
      ),
    RangeError,
    "itemCrossEntropy: h must be [B, D] and table [V, D] with the same D, got h [2, 3] and table [4, 2]",
  );
});

Deno.test("crossEntropy: 70,000 rows and 17 million logits (2-D workgroup grids)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [rows, cols] of [[70000, 3], [1000, 17011]]) {
    const x = new Float32Array(rows * cols).map(() => 6 * rng() - 3);
    const targets = randint(rng, rows, cols);
    const logits = requireGrad(Tensor.from(x, [rows, cols]));
    const loss = crossEntropy(logits, Tensor.from(targets, [rows], "i32"));
    const [dx] = loss.node!.backward(Tensor.from([1], []));
    const [l, g] = await readTensors([loss, dx!]);
    const x64 = Float64Array.from(x);
    const what = `[${rows}, ${cols}] seed ${seed}`;
    assertClose(l, crossEntropyRef(x64, targets, cols), 1e-5, `loss ${what}`);
    assertClose(g, crossEntropyGradRef(x64, targets, cols, 1), 1e-5, `gradient ${what}`);
  }
});

Deno.test("crossEntropy with ignoreIndex: ignored rows add nothing and leave the mean", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [rows, cols] of [[1, 3], [9, 7], [257, 41]]) {
    const targets = randint(rng, rows, cols);
    targets[0] = 0; // at least one ignored row
    const kept = [...targets.keys()].filter((r) => targets[r] !== 0);
    const t = Tensor.from(targets, [rows], "i32");
    // The reference: the plain loss over the kept rows only, its gradient zero on ignored rows.
    const pick = (x: Float64Array) => {
      const out = new Float64Array(kept.length * cols);
      kept.forEach((r, k) => out.set(x.subarray(r * cols, (r + 1) * cols), k * cols));
      return out;
    };
    const keptTargets = Int32Array.from(kept.map((r) => targets[r]));
    await gradCheck({
      what: `crossEntropy ignoreIndex [${rows}, ${cols}] seed ${seed}`,
      inputs: [{ data: randn(rng, rows * cols, 3), shape: [rows, cols] }],
      gpu: ([x]) => crossEntropy(x, t, { ignoreIndex: 0 }),
      ref: ([x]) => kept.length ? crossEntropyRef(pick(x), keptTargets, cols) : new Float64Array(1),
      refGrad: ([x], g) => {
        const full = new Float64Array(rows * cols);
        if (kept.length) {
          const part = crossEntropyGradRef(pick(x), keptTargets, cols, g[0]);
          kept.forEach((r, k) => full.set(part.subarray(k * cols, (k + 1) * cols), r * cols));
        }
        return [full];
      },
      rng,
      probes: 12,
    });
  }
});
