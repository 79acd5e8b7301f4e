import { assert, assertEquals } from "@std/assert";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { logitSlabRows } from "../ops/training/item_cross_entropy_slabs.ts";
import { backward } from "../ops/core/autograd.ts";
import { memoryStats, resetPeakMemory } from "../ops/core/runtime.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { requireGrad } from "../ops/core/autograd.ts";
import {
  crossEntropyRef,
  itemCrossEntropyGradRef,
  matmulTransBRef,
} from "./cross_entropy_reference.ts";
import { assertClose, freshSeed, gradCheck, makeRng, randint, randn } from "./util.ts";

/** A random shape, rows per slab that leave a ragged last slab, and targets with PAD rows. */
function randomCase(rng: () => number) {
  const rows = 5 + Math.floor(rng() * 60);
  const items = 2 + Math.floor(rng() * 400);
  const dim = 1 + Math.floor(rng() * 24);
  // At least two slabs, the last one shorter unless the rows divide evenly by chance.
  let slabRows = 1 + Math.floor(rng() * (rows - 1));
  if (rows % slabRows === 0 && slabRows > 1) slabRows--;
  const targets = randint(rng, rows, items);
  for (let r = 0; r < rows; r++) if (rng() < 0.25) targets[r] = 0;
  targets[rows - 1] = 0; // an ignored row in the ragged slab
  return { rows, items, dim, slabRows, targets };
}

Deno.test("logitSlabRows: the most rows whose logits fit the bytes, at least 1, at most all", () => {
  assertEquals(logitSlabRows(100, 10, 400), 10);
  assertEquals(logitSlabRows(100, 10, 439), 10);
  assertEquals(logitSlabRows(100, 10, 440), 11);
  assertEquals(logitSlabRows(100, 10, 1), 1);
  assertEquals(logitSlabRows(100, 10, 1e9), 100);
});

Deno.test("itemCrossEntropy in slabs: loss and gradients match float64 (ragged slabs, PAD rows)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (let k = 0; k < 4; k++) {
    const { rows, items, dim, slabRows, targets } = randomCase(rng);
    const kept = [...targets.keys()].filter((r) => targets[r] !== 0);
    const t = Tensor.from(targets, [rows], "i32");
    const keptTargets = Int32Array.from(kept.map((r) => targets[r]));
    const pick = (h: Float64Array) => {
      const out = new Float64Array(kept.length * dim);
      kept.forEach((r, i) => out.set(h.subarray(r * dim, (r + 1) * dim), i * dim));
      return out;
    };
    await gradCheck({
      what: `itemCrossEntropy slabs of ${slabRows} N=${rows} V=${items} D=${dim} seed ${seed}`,
      inputs: [
        { data: randn(rng, rows * dim), shape: [rows, dim] },
        { data: randn(rng, items * dim, 3 / Math.sqrt(dim)), shape: [items, dim] },
      ],
      gpu: ([h, e]) =>
        itemCrossEntropy(h, e, t, { ignoreIndex: 0, maxLogitBytes: slabRows * items * 4 }),
      ref: ([h, e]) =>
        kept.length
          ? crossEntropyRef(matmulTransBRef(pick(h), e, dim), keptTargets, items)
          : new Float64Array(1),
      refGrad: ([h, e], g) => {
        const dh = new Float64Array(rows * dim);
        if (!kept.length) return [dh, new Float64Array(items * dim)];
        const [dk, de] = itemCrossEntropyGradRef(pick(h), e, keptTargets, dim, g[0]);
        kept.forEach((r, i) => dh.set(dk.subarray(i * dim, (i + 1) * dim), r * dim));
        return [dh, de];
      },
      rng,
      probes: 8,
    });
  }
});

Deno.test("itemCrossEntropy in slabs equals the whole-logits op to rounding", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (let k = 0; k < 3; k++) {
    const { rows, items, dim, slabRows, targets } = randomCase(rng);
    const h = Float32Array.from(randn(rng, rows * dim));
    const e = Float32Array.from(randn(rng, items * dim, 3 / Math.sqrt(dim)));
    const run = (maxLogitBytes?: number) =>
      tidy(() => {
        const ht = requireGrad(Tensor.from(h, [rows, dim]));
        const et = requireGrad(Tensor.from(e, [items, dim]));
        const loss = itemCrossEntropy(ht, et, Tensor.from(targets, [rows], "i32"), {
          ignoreIndex: 0,
          ...(maxLogitBytes ? { maxLogitBytes } : {}),
        });
        backward(loss);
        return [loss, ht.grad!, et.grad!];
      });
    const whole = await readTensors(run());
    const slabs = await readTensors(run(slabRows * items * 4));
    const what = `slabs of ${slabRows}, N=${rows} V=${items} D=${dim} seed ${seed}`;
    ["loss", "dh", "dtable"].forEach((name, i) =>
      assertClose(slabs[i], whole[i], 1e-5, `${name}, ${what}`)
    );
  }
});

Deno.test("itemCrossEntropy in slabs never holds the whole logits, forward or backward", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const rows = 3000, items = 2000, dim = 8;
  const logitBytes = rows * items * 4; // 24 MB
  const slabBytes = logitBytes / 16;
  const targets = randint(rng, rows, items);
  const [peak, loss] = tidy(() => {
    const h = requireGrad(Tensor.from(Float32Array.from(randn(rng, rows * dim)), [rows, dim]));
    const e = requireGrad(Tensor.from(Float32Array.from(randn(rng, items * dim)), [items, dim]));
    const t = Tensor.from(targets, [rows], "i32");
    const before = memoryStats().liveBytes;
    resetPeakMemory();
    const loss = itemCrossEntropy(h, e, t, { maxLogitBytes: slabBytes });
    backward(loss);
    return [memoryStats().peakLiveBytes - before, loss] as const;
  });
  // A slab of logits and one of their gradient (pool classes round each up at most 2×), plus
  // the per-row arrays and the gradients of h and the table: well under the whole logits.
  assert(
    peak < logitBytes / 2,
    `peak ${peak} bytes over the inputs; the whole logits are ${logitBytes} (seed ${seed})`,
  );
  assert(Number.isFinite(await loss.item()), `loss not finite (seed ${seed})`);
});
