/**
 * The memory of one SSD4Rec training step on a packed batch (the ML-1M preset's shape, scaled
 * down): what the forward leaves alive is no more than the tensors some backward reads, and the
 * step's peak no more than that plus the backward's working set, so that a tensor kept past its
 * last reader (or one more stored product) fails here.
 *
 * Per Mamba-2 block run (two per layer: the segments as they are and reversed) the backward reads
 * xBC, dt, x, B, C (`[T, ·]` pieces of the projection and the convolution), the scan's ŷ
 * (`[T, d_inner]`), C·Bᵀ of every chunk (Σ len²) and the states entering the cut segments' chunks
 * (the scan's backward recomputes its `[T, H]` decays), and the gated norm's input y, gate z and
 * output (`[·, d_inner]`) and reciprocal deviations, of every token or, in the last layer, of the
 * last tokens. The last layer's scan is read at the last tokens (`ssdScanLast`, which keeps
 * nothing of its own) and its gate projected there: it keeps instead the input's last-token rows
 * and the two pieces of the projection's weight. The reversed run's projection is the forward
 * run's reversed (no second product), so the reversed input is not kept. Per layer besides: the
 * LayerNorm's input (`[T, d]`; the blocks' outputs and their sums are freed once summed), the LayerNorm's mean and deviation, and
 * what the feed-forward's backward reads (of the last layer: at the last tokens only): its input
 * (the dropped LayerNorm output; the LayerNorm's own output is freed), W₁'s output and its
 * dropout's (GELU's output is freed), the residual sum and the LayerNorm's statistics, and its
 * output (W₂'s output and the LayerNorm's are freed once read).
 *
 * The bounds are the step's own figures with a small margin: one more `[T, d]` tensor kept by the
 * forward, or a `[T, d_inner]` one more at the peak, fails.
 */
import { assert } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { memoryStats, resetPeakMemory, sync } from "../ops/core/runtime.ts";
import { sizeClass } from "../ops/core/buffers.ts";
import { Tensor, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { packedInputs, SSD4Rec, ssd4recConfig } from "../models/ssd4rec.ts";
import { packedBatch } from "./ssd4rec_cases.ts";
import { freshSeed, makeRng, randn } from "./util.ts";

Deno.test("ssd4rec: one packed training step's memory stays within the tensors its backward reads", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 60, d = 32, N = 16, P = 8, expand = 2, chunk = 16, layers = 2;
  const inner = expand * d, H = inner / P, ffn = 4 * d;
  const model = new SSD4Rec(ssd4recConfig({
    numItems,
    hiddenSize: d,
    dState: N,
    headDim: P,
    expand,
    numLayers: layers,
    dropoutProb: 0.2,
    chunkSize: chunk,
    seed: seed % 100000,
  }));
  const params = model.params.list();
  // Segments of 1 to 64 tokens, one of 64 (cut into four chunks).
  const lengths = Array.from({ length: 24 }, (_, b) => b === 0 ? 64 : 1 + Math.floor(rng() * 64));
  const histories = lengths.map((n) =>
    Array.from({ length: n }, () => Math.floor(rng() * numItems))
  );
  const targets = lengths.map(() => 1 + Math.floor(rng() * (numItems - 1)));
  const batch = packedBatch(histories, targets);
  const T = batch.tokens, B = batch.size;
  const weights = Float32Array.from(randn(rng, B * numItems));
  let forwardHeld = 0;
  const step = (before: number) =>
    tidy(() => {
      const inputs = packedInputs(batch, chunk);
      const h = model.forward(inputs, true);
      const logits = matmul(h, model.itemTable, { transB: true });
      const loss = sumAll(mul(logits, Tensor.from(weights, logits.shape)));
      forwardHeld = memoryStats().liveBytes - before;
      backward(loss);
      inputs.dispose();
    });
  step(memoryStats().liveBytes); // compiles the kernels
  zeroGrad(params);
  await sync();
  const before = memoryStats().liveBytes;
  resetPeakMemory();
  step(before);
  await sync();
  const peak = memoryStats().peakLiveBytes - before;
  zeroGrad(params);

  const bytes = (...shape: number[]) => sizeClass(Math.max(16, shape.reduce((a, b) => a * b, 4)));
  const chunkLengths = lengths.flatMap((n) =>
    Array.from({ length: Math.ceil(n / chunk) }, (_, k) => Math.min(chunk, n - k * chunk))
  );
  // Every chunk of a segment cut into several holds the state entering it.
  const slots = lengths.filter((n) => n > chunk).reduce((s, n) => s + Math.ceil(n / chunk), 0);
  const scan = bytes(T, inner) + bytes(chunkLengths.reduce((s, n) => s + n * n, 0)) +
    bytes(slots, H, P, N);
  // The gated norm's input, gate and output and its deviations are kept at every token, or at
  // the last tokens only in the last layer.
  const weightPieces = bytes(inner, d) + bytes(inner + 2 * N + H, d);
  const block = (last: boolean) =>
    bytes(T, inner) + bytes(T, inner + 2 * N) + bytes(T, H) + 2 * bytes(T, N) +
    (last ? bytes(B, d) : scan) + 3 * bytes(last ? B : T, inner) +
    bytes(last ? B : T) + 2 * bytes(H);
  // The dropped LayerNorm output, W₁'s output and its dropout's, the residual sum, the block's
  // output; both LayerNorms' means and deviations.
  const tokenwise = (rows: number) => 3 * bytes(rows, d) + 2 * bytes(rows, ffn) + 4 * bytes(rows);
  // Both directions' blocks (the reversed one's projection is the forward one's reversed, so
  // the reversed input is not kept; in the last layer both read one cut of the weight), and the
  // LayerNorm's input (the last layer's is gathered at the last tokens).
  const layer = (last: boolean) =>
    2 * block(last) +
    (last ? weightPieces + 2 * bytes(B, d) + tokenwise(B) : bytes(T, d) + tokenwise(T));
  const embedded = 2 * bytes(T, d) + 2 * bytes(T);
  const batchInputs = 3 * bytes(T) + bytes(B) + bytes(8 * chunkLengths.length) +
    bytes(4 * lengths.filter((n) => n > chunk).length) + bytes(slots);
  const held = batchInputs + embedded + layer(false) + layer(true) + 3 * bytes(B, numItems) +
    bytes(d) + 2 * bytes(1);
  // The backward's working set at its peak (a full scan's backward): the
  // parameters' gradients (at most all of them by then); the projection's whole gradient (made
  // when the gate's arrives); the scan's dx and the gathered rows' `[T, d_inner]` gradient; the
  // skip's `[T, d]` gradient; the states carried back; dB, dC and the pair weights; the
  // recomputed decays and ∂dt.
  const parameterBytes = params.reduce((sum, t) => sum + sizeClass(t.size * 4), 0);
  const working = parameterBytes + bytes(T, 2 * inner + 2 * N + H) + 2 * bytes(T, inner) +
    bytes(T, d) + bytes(slots, H, P, N) + 3 * bytes(T, N) + 6 * bytes(T, H);
  console.log(
    `T ${T}: the forward left ${forwardHeld} bytes (bound ${held}); the step peaked at ${peak} ` +
      `(bound ${held + working}; parameters ${parameterBytes}) (seed ${seed})`,
  );
  assert(
    forwardHeld <= held,
    `seed ${seed}: the forward left ${forwardHeld} bytes alive, over the ${held} its backward ` +
      `reads: a tensor no backward reads outlives its op`,
  );
  assert(
    peak <= held + working,
    `seed ${seed}: one training step peaked at ${peak} bytes, over the bound ${held + working}`,
  );
  for (const t of params) t.dispose();
});
