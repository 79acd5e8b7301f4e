/**
 * The memory of one Mamba4Rec training step on a prefix batch (the ML-1M preset's shape, scaled
 * down): its peak stays within the tensors the step must hold at once, so that a tensor kept
 * longer than its last reader (or one more stored product) fails here.
 *
 * At the peak (the scan's backward, which re-scans from zero and reads no checkpoints) the step
 * holds, besides parameters and small `[B, ·]` rows: the convolution's input and output and the
 * scan's du and dΔ (`[B, L, d_inner]` each), the embedding LayerNorm's input and output
 * (`[B, L, d]`), B and C (`[B, L, N]`, their gradients written over them), the scan's per-row dA
 * partials (`[B, d_inner · N]`) and the forward's sums of Δ per interval (`[B, d_inner,
 * intervals]`), Δ's low-rank factor (`[B, L, dt_rank]`) and the LayerNorm's mean and reciprocal
 * deviation (`[B, L]`). A gradient summed from several consumers is summed in place, so no
 * second running sum is alive.
 */
import { assert } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { memoryStats, resetPeakMemory, sync } from "../ops/core/runtime.ts";
import { sizeClass } from "../ops/core/buffers.ts";
import { Tensor, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { createModel } from "../models/registry.ts";
import { freshSeed, makeRng, paddedItems, randn } from "./util.ts";

Deno.test("mamba4rec: one prefix training step's memory peak stays within the tensors it must hold", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 50, B = 16, L = 64, d = 32, N = 32, expand = 2;
  const inner = expand * d, dtRank = Math.ceil(d / 16);
  const model = createModel("mamba4rec", numItems, {
    hiddenSize: d,
    dState: N,
    expand,
    dConv: 4,
    numLayers: 1,
    dropoutProb: 0.2,
    seed: seed % 100000,
  });
  const params = model.params.entries().map(([, t]) => t);
  const lengths = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * L));
  lengths[0] = L;
  const items = paddedItems(rng, lengths, L, numItems);
  const positions = lengths.map((n) => n - 1);
  const weights = Float32Array.from(randn(rng, B * numItems));
  const step = () =>
    tidy(() => {
      const h = model.forward({
        items: Tensor.from(items, [B, L], "i32"),
        positions: Tensor.from(positions, [B], "i32"),
      }, true);
      const logits = matmul(h, model.itemTable, { transB: true });
      backward(sumAll(mul(logits, Tensor.from(weights, logits.shape))));
    });
  step(); // compiles the kernels
  zeroGrad(params);
  await sync();
  const before = memoryStats().liveBytes;
  resetPeakMemory();
  step();
  await sync();
  const peak = memoryStats().peakLiveBytes - before;
  zeroGrad(params);

  const bytes = (...shape: number[]) => sizeClass(shape.reduce((a, b) => a * b, 4));
  const intervals = Math.ceil(L / 16);
  const held = 4 * bytes(B, L, inner) + 2 * bytes(B, L, d) + 2 * bytes(B, L, N) +
    bytes(B, inner * N) + bytes(B, inner, intervals) + bytes(B, L, dtRank) + 2 * bytes(B, L);
  // Parameters' gradients and as much again for the products being summed into them, and the
  // rows past the scan: a few [B, ·] tensors. The step measures about 70 KB under the bound,
  // so one more [B, L, d] tensor (128 KB) crosses it.
  const parameterBytes = params.reduce((sum, t) => sum + sizeClass(t.size * 4), 0);
  const bound = held + 2 * parameterBytes + 4 * bytes(B, 4 * d);
  console.log(
    `peak of one step ${peak} bytes; held tensors ${held}, parameters ${parameterBytes}, bound ` +
      `${bound} (seed ${seed})`,
  );
  assert(
    peak <= bound,
    `seed ${seed}: one training step peaked at ${peak} bytes, over the bound ${bound} (held ` +
      `tensors ${held} + parameters' gradients and small rows): a tensor outlives its last reader`,
  );
  for (const t of params) t.dispose();
});
