/**
 * Matrix-product throughput: square products, the products of a Mamba block's projections at
 * training size (409,600 rows = batch × length) with both of their backward products, and the
 * products of an SSD4Rec ML-1M training step (T = 200,000 packed tokens, d 256: in_proj, out_proj
 * and the feed-forward, each forward, dA and dB; see `ops/dense/matmul/plan.ts` for their floors).
 *
 * History of the SSD4Rec products (H100, T = 200,000, `bench/matmul_sweep.ts --ssd4rec`, ms;
 * timed regions of 150 ms that include one ~11 ms wait). Weight gradients with split-K rounded up
 * to 264 workgroups (a partial second wave): 512×256 (9 splits, 288 workgroups) 3.03, 256×512
 * 3.07, 1024×256 (5 splits, 320) 6.16, 256×1024 5.65; at 16 splits (two full waves) 512×256 took
 * 1.98 and at 4 splits (one wave) 1024×256 took 3.97; 64×256 and 32×256 (66 splits) 0.31 either
 * way. Rounded down to one wave, the step's weight gradients should fall from ≈ 45 to ≈ 28 ms
 * (not yet measured in a whole step). The dt projection forward (N = 32): 0.29 in 64 × 64 tiles,
 * 0.20 in 128 × 32; the other forward and dA products of the step were fastest in the default
 * 64 × 64 tiles of 8 × 8 among 128 × 32, 128 × 64, 64 × 128 and 128 × 128 tiles.
 *
 * @module
 */
import type { Tensor } from "../ops/mod.ts";
import { matmul, type MatmulOptions } from "../ops/dense/matmul/mod.ts";
import { benchmark, randomTensor } from "./harness.ts";

interface ProductState {
  a: Tensor;
  b: Tensor;
  flops: number;
  note: string;
}

/**
 * Registers the benchmark of `op(a)·op(b)` for stored shapes `aShape`, `bShape`; `quick` shapes
 * replace them on CPU implementations.
 */
export function productBenchmark(
  name: string,
  full: { aShape: number[]; bShape: number[] },
  quick: { aShape: number[]; bShape: number[] },
  options: MatmulOptions = {},
): void {
  benchmark<ProductState>({
    name,
    setup: (ctx) => {
      const { aShape, bShape } = ctx.quick ? quick : full;
      const m = options.transA ? aShape[1] : aShape[0], k = options.transA ? aShape[0] : aShape[1];
      const n = options.transB ? bShape[0] : bShape[1];
      const t = (s: boolean) => (s ? "ᵀ" : "");
      return {
        a: randomTensor(aShape, 1),
        b: randomTensor(bShape, 2),
        flops: 2 * m * n * k,
        note: `(${aShape.join("×")})${t(!!options.transA)}·(${bShape.join("×")})${
          t(!!options.transB)
        }`,
      };
    },
    run: ({ a, b }) => matmul(a, b, options).dispose(),
    teardown: ({ a, b }) => {
      a.dispose();
      b.dispose();
    },
    flops: ({ flops }) => flops,
    note: ({ note }) => note,
  });
}

for (const n of [1024, 2048, 4096]) {
  const q = n / 16;
  productBenchmark(`matmul ${n}³`, { aShape: [n, n], bShape: [n, n] }, {
    aShape: [q, q],
    bShape: [q, q],
  });
}

/** Rows of the model-shaped products: batch 2048 × length 200 (quick: 4096). */
const ROWS = 409_600, QUICK_ROWS = 4096;

for (const [k, n] of [[64, 256], [256, 64]]) {
  const tag = `${k}→${n}`;
  // Forward: X [rows, k] · W [k, n].
  productBenchmark(
    `proj ${tag} forward`,
    { aShape: [ROWS, k], bShape: [k, n] },
    { aShape: [QUICK_ROWS, k], bShape: [k, n] },
  );
  // dX = dY · Wᵀ: dY [rows, n], W [k, n] read transposed.
  productBenchmark(
    `proj ${tag} backward dA`,
    { aShape: [ROWS, n], bShape: [k, n] },
    { aShape: [QUICK_ROWS, n], bShape: [k, n] },
    { transB: true },
  );
  // dW = Xᵀ · dY: a reduction over all rows (split-K).
  productBenchmark(
    `proj ${tag} backward dB`,
    { aShape: [ROWS, k], bShape: [ROWS, n] },
    { aShape: [QUICK_ROWS, k], bShape: [QUICK_ROWS, n] },
    { transA: true },
  );
}

/** Tokens of an SSD4Rec ML-1M batch (1,024 packed histories; quick: 4096). */
const SSD4REC_TOKENS = 200_000;

// SSD4Rec's Linear layers k → n as a Mamba-2 block and its layer run them: in_proj (z, x, B, C and
// dt in one product of 256 → 1184), out_proj (512 → 256) and the feed-forward (256 → 1024 → 256),
// each with its weight W stored [n, k] as PyTorch's Linear stores it. Their rates are the R that
// `deno task efficiency --matmul-tflops R` divides an epoch's projection FLOPs by.
for (const [k, n] of [[256, 1184], [512, 256], [256, 1024], [1024, 256]]) {
  const tag = `ssd4rec ${k}→${n}`;
  // Y = X · Wᵀ.
  productBenchmark(
    `${tag} forward`,
    { aShape: [SSD4REC_TOKENS, k], bShape: [n, k] },
    { aShape: [QUICK_ROWS, k], bShape: [n, k] },
    { transB: true },
  );
  // dX = dY · W.
  productBenchmark(
    `${tag} backward dA`,
    { aShape: [SSD4REC_TOKENS, n], bShape: [n, k] },
    { aShape: [QUICK_ROWS, n], bShape: [n, k] },
  );
  // dW = dYᵀ · X: [n, k] reduced over every token (split-K).
  productBenchmark(
    `${tag} backward dB`,
    { aShape: [SSD4REC_TOKENS, n], bShape: [SSD4REC_TOKENS, k] },
    { aShape: [QUICK_ROWS, n], bShape: [QUICK_ROWS, k] },
    { transA: true },
  );
}
