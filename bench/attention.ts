/**
 * Multi-head attention at SASRec's ML-1M training size, fused against unfused: batch 2048,
 * 2 heads, length 200, head size 32, the causal mask, pad keys (right-padded sequences of 100 to
 * 200 items) and dropout 0.5 on the probabilities, as RecBole's SASRec trains. "forward" is the
 * training forward (it keeps what the backward needs); "forward+backward" adds the backward of
 * q, k and v from a given output gradient, without a loss around it. Each row's note gives the
 * problem, its floor (the FLOPs and bytes below, whose rates the row shows) and the peak storage
 * one iteration holds (inputs included, rounded to pool sizes).
 *
 * Floor. FLOPs: 4·B·H·L²·d for the forward (Q·Kᵀ and P·V), 10·B·H·L²·d for the backward (the
 * scores again, dP = dO·Vᵀ, dV, dQ and dK), 5.24e9 · (4 | 14) = 21.0 GFLOP forward, 73.4 GFLOP
 * forward+backward, counted over the full L × L square although the causal mask hides half of it.
 * Bytes: Q, K, V read and O written once (4 · B·H·L·d · 4 B = 419 MB), and for the backward Q,
 * K, V, O, dO read and dQ, dK, dV written (839 MB more). In f32 without tensor cores (H100 and
 * H200: about 67 TFLOP/s, 3.35 and 4.8 TB/s) that is compute bound: forward ≥ 0.31 ms (the
 * bytes alone ≥ 0.13 ms on an H100), forward+backward ≥ 1.10 ms; half of each with the causal
 * half skipped, as the fused form does.
 *
 * Expected of the fused form on an H100 (its kernels' work is counted in
 * `ops/dense/flash_attention.ts`: whole tiles, about 64 GFLOP issued for both directions):
 * forward ≈ 0.6 ms and forward+backward ≈ 2.6 ms, rows showing about 35 and 28 TFLOP/s of
 * the full-square FLOPs above.
 *
 * Registered with `bench/harness.ts` (`deno task bench --only attention`); on CPU
 * implementations, or with `--quick`, the sizes shrink and the figures only show that
 * everything runs.
 *
 * @module
 */
import {
  attention,
  DropoutRng,
  memoryStats,
  requireGrad,
  resetPeakMemory,
  sync,
  Tensor,
  tidy,
} from "../ops/mod.ts";
import { type BenchContext, benchmark, randomTensor } from "./harness.ts";

/** Sizes of one attention problem. */
interface AttentionSize {
  batch: number;
  heads: number;
  length: number;
  dim: number;
}

const FULL: AttentionSize = { batch: 2048, heads: 2, length: 200, dim: 32 };
const QUICK: AttentionSize = { batch: 4, heads: 2, length: 40, dim: 8 };

/** SASRec's attention dropout. */
const DROP_P = 0.5;

interface AttentionState {
  tensors: Tensor[];
  run: () => void;
  flops: number;
  bytes: number;
  note: string;
}

/** Runs the tape below `t` from its gradient `g` (attention's tape is a tree). */
function backpropagate(t: Tensor, g: Tensor): void {
  const node = t.node;
  if (!node) return;
  const grads = node.backward(g);
  node.inputs.forEach((input, i) => {
    const gi = grads[i];
    if (gi && input.requiresGrad) backpropagate(input, gi);
  });
}

/** Right-padded sequences of `length / 2` to `length` items: 1 marks a pad key. */
function padKeys(batch: number, length: number): Int32Array {
  const pad = new Int32Array(batch * length);
  let s = 12345;
  for (let b = 0; b < batch; b++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const items = Math.ceil(length / 2) + (s % (Math.floor(length / 2) + 1));
    pad.fill(1, b * length + Math.min(items, length), (b + 1) * length);
  }
  return pad;
}

/** Bytes in MB, or kB below one MB. */
function bytesText(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(0)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

async function attentionSetup(
  ctx: BenchContext,
  fused: boolean,
  withBackward: boolean,
): Promise<AttentionState> {
  const size = ctx.quick ? QUICK : FULL;
  const { batch: b, heads: h, length: l, dim: d } = size;
  const shape = [b, h, l, d];
  const q = requireGrad(randomTensor(shape, 1));
  const k = requireGrad(randomTensor(shape, 2));
  const v = requireGrad(randomTensor(shape, 3));
  const gout = randomTensor(shape, 4);
  const pad = Tensor.from(padKeys(b, l), [b, l]);
  const rng = new DropoutRng(7);
  const run = () =>
    tidy(() => {
      const out = attention(q, k, v, {
        mask: "causal",
        keyPadding: pad,
        dropout: { p: DROP_P, rng },
        fused,
      });
      if (withBackward) backpropagate(out, gout);
    });
  await sync();
  resetPeakMemory();
  run();
  await sync();
  const peak = memoryStats().peakLiveBytes;
  const flops = (withBackward ? 14 : 4) * b * h * l * l * d;
  const bytes = (withBackward ? 12 : 4) * b * h * l * d * 4;
  return {
    tensors: [q, k, v, gout, pad],
    run,
    flops,
    bytes,
    note: `b${b} h${h} l${l} d${d}, floor ${(flops / 1e9).toFixed(flops < 1e9 ? 4 : 1)} ` +
      `GFLOP ${bytesText(bytes)}, peak ${bytesText(peak)}`,
  };
}

for (const withBackward of [false, true]) {
  for (const fused of [true, false]) {
    benchmark<AttentionState>({
      name: `attention ${fused ? "fused" : "unfused"} ${withBackward ? "fwd+bwd" : "fwd"}`,
      setup: (ctx) => attentionSetup(ctx, fused, withBackward),
      run: (s) => s.run(),
      teardown: (s) => s.tensors.forEach((t) => t.dispose()),
      flops: (s) => s.flops,
      bytes: (s) => s.bytes,
      note: (s) => s.note,
    });
  }
}
