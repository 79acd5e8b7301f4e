/**
 * The causal convolution at SSD4Rec's ML-1M sizes: one packed row of T = 200,000 tokens holding
 * 1,024 segments of random lengths, width 4, bias and fused SiLU, channels-last, for the 512
 * channels of x and the 64 of B (C is the same size). "forward" times the convolution alone;
 * "backward" times its backward alone (dx, the partial sums of the weight and bias gradients and
 * the pass that finishes them) on a recorded forward.
 *
 * Floor at ~3 TB/s: the forward reads x and writes y (8 B per element: 0.82 GB → 0.27 ms for 512
 * channels, 0.03 ms for 64); the backward reads x and dy and writes dx (12 B per element: 1.23 GB
 * → 0.41 ms, 0.05 ms). Quick mode (`--quick`, or any CPU implementation): T = 4,096.
 *
 * History (H100, T = 200,000, ms; timed regions of 150 ms that include one ~11 ms wait). One
 * invocation per element, the backward recomputing the pre-activation of every later tap and
 * walking the segment ids tap by tap: 512 channels forward 1.39, backward 6.87; 64 channels 0.20
 * and 1.16. Each invocation walking one channel along a run with a sliding window (forward runs
 * of 32, backward 49): 512 channels 0.49 (1.7 TB/s) and 1.11; 64 channels 0.10 and 0.41. In an
 * SSD4Rec ML-1M step (4 Mamba-2 passes, each x, B and C) that is ≈ 7 → 2.8 ms forward and
 * ≈ 37 → 7.7 ms backward. Not measured yet: the finishing pass's tree (instead of up to 512
 * sequential adds per gradient) and 4 channels per invocation as a vec4 (a quarter of the loads
 * and invocations, for the 64-channel calls one wave instead of two).
 *
 * @module
 */
import { type Tensor, Tensor as TensorClass } from "../ops/mod.ts";
import { causalConv1d } from "../ops/sequence/causal_conv1d.ts";
import { benchmark, randomTensor, releaseRecorded } from "./harness.ts";

/** Tokens of an ML-1M batch (1,024 histories), and of quick mode. */
const TOKENS = 200_000, QUICK_TOKENS = 4096;
/** Histories packed into the row. */
const SEGMENTS = 1024;
/** SSD4Rec's convolution width. */
const WIDTH = 4;

/** Non-decreasing segment ids for `tokens` positions: `segments` runs cut at random points. */
function packedIds(tokens: number, segments: number): Int32Array {
  const cuts = new Set<number>();
  let s = 2463534242;
  while (cuts.size < Math.min(segments, tokens) - 1) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    cuts.add(1 + ((s >>> 0) % (tokens - 1)));
  }
  const ids = new Int32Array(tokens);
  let id = 0;
  for (let t = 0; t < tokens; t++) {
    if (cuts.has(t)) id++;
    ids[t] = id;
  }
  return ids;
}

interface ConvState {
  x: Tensor;
  weight: Tensor;
  bias: Tensor;
  seq: Tensor;
  gy: Tensor;
  /** The recorded forward whose backward the backward benchmark repeats. */
  y: Tensor | null;
  elements: number;
  note: string;
}

function register(channels: number, pass: "forward" | "backward"): void {
  benchmark<ConvState>({
    name: `causalConv1d ${channels} channels ${pass}`,
    setup: (ctx) => {
      const tokens = ctx.quick ? QUICK_TOKENS : TOKENS;
      const shape = [1, tokens, channels];
      const x = randomTensor(shape, 1);
      const weight = randomTensor([channels, WIDTH], 2);
      const bias = randomTensor([channels], 3);
      x.requiresGrad = weight.requiresGrad = bias.requiresGrad = pass === "backward";
      const seq = TensorClass.from(packedIds(tokens, SEGMENTS), [1, tokens]);
      const gy = randomTensor(shape, 4);
      const state: ConvState = {
        x,
        weight,
        bias,
        seq,
        gy,
        y: null,
        elements: tokens * channels,
        note: `[1, ${tokens}, ${channels}] w ${WIDTH} SiLU seqIdx`,
      };
      if (pass === "backward") state.y = convolve(state);
      return state;
    },
    run: (state) => {
      if (state.y) {
        for (const g of state.y.node!.backward(state.gy)) g?.dispose();
      } else {
        convolve(state).dispose();
      }
    },
    teardown: (state) => {
      if (state.y) releaseRecorded(state.y);
      for (const t of [state.x, state.weight, state.bias, state.seq, state.gy]) t.dispose();
    },
    bytes: ({ elements }) => (pass === "forward" ? 8 : 12) * elements,
    note: ({ note }) => note,
  });
}

function convolve(s: ConvState): Tensor {
  return causalConv1d(s.x, s.weight, s.bias, {
    activation: "silu",
    seqIdx: s.seq,
    layout: "bld",
  });
}

for (const channels of [512, 64]) {
  register(channels, "forward");
  register(channels, "backward");
}
