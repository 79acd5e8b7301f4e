/**
 * Depthwise causal 1-D convolution (the short convolution of the Mamba block), with an optional
 * fused SiLU and optional segment ids for packed sequences.
 *
 * Forward: each invocation walks one channel (4 as a vec4 when channels-last with a multiple of
 * 4 channels) along a run of positions with the last `w ≤ 4` inputs in registers. Backward: one kernel walks runs the same way, recomputing the
 * pre-activation where SiLU is fused, writes `dx` and per-workgroup partial sums of `dweight` and
 * `dbias` (a tree in workgroup memory), and a second small kernel adds the partials in a fixed
 * order. Deterministic; no atomics. The kernels are in `causal_conv1d_shaders.ts`.
 *
 * Floors at SSD4Rec's ML-1M shapes (one packed row of T ≈ 200,000 tokens; x 512 channels, B and
 * C 64 each, f32) at ~3 TB/s: the forward reads x and writes y, 2 · T · 640 · 4 B ≈ 1.0 GB ≈
 * 0.34 ms per block; the backward reads x and dy and writes dx, ≈ 1.5 GB ≈ 0.51 ms; the segment
 * ids (0.8 MB) and the partial sums (≤ 1024 rows · 512 · 5 floats, 10.5 MB) are small. FLOPs (≈ 20
 * per element in the backward) are negligible. Each element is read from memory once, so the
 * forward should come within 2× of its floor and the backward within 3× (the halo of each run is
 * re-read from cache and a run's loads wait on one another); `bench/causal_conv1d_bench.ts`
 * measures both.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups } from "../wgsl/grid.ts";
import {
  backwardLanes,
  backwardShader,
  CONV_WG,
  type ConvSpec,
  finishShader,
  forwardShader,
} from "./causal_conv1d_shaders.ts";

const OP = "causalConv1d";
/** Positions each forward invocation walks (a halo of W − 1 ≤ 3 is re-read from cache). */
const FORWARD_RUN = 32;
/** Fewest positions each backward invocation walks (the halo of W − 1 positions at either end
 * is then at most 3/8 of the reads). */
const MIN_BACKWARD_RUN = 16;
/**
 * Most runs a channel is cut into: more positions lengthen the runs (T = 200,000 walks runs of
 * 49). Each backward workgroup adds its runs into one partial-sum row.
 */
const MAX_RUNS = 4096;

/** Options of {@link causalConv1d}. */
export interface CausalConv1dOptions {
  /** Activation fused after the bias: `"silu"` or none (default). */
  activation?: "silu" | null;
  /**
   * Segment id per token, i32 of shape (batch, length), for several sequences packed into one
   * row: a tap never reaches across a change of segment id (each segment starts with zero
   * padding). For non-decreasing ids this equals causal-conv1d's `seq_idx` rule.
   */
  seqIdx?: Tensor;
  /**
   * `"bdl"` (default): x is (batch, channels, length). `"bld"`: x is (batch, length, channels),
   * channels-last as a linear projection produces it.
   */
  layout?: "bdl" | "bld";
}

function validate(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  o: CausalConv1dOptions,
): { batch: number; channels: number; length: number } {
  assertDType(OP, x, "f32");
  assertDType(OP, weight, "f32");
  if (bias) assertDType(OP, bias, "f32");
  const layout = o.layout ?? "bdl";
  if (layout !== "bdl" && layout !== "bld") {
    throw new RangeError(`${OP}: layout must be "bdl" or "bld", got ${JSON.stringify(layout)}`);
  }
  if (o.activation !== undefined && o.activation !== null && o.activation !== "silu") {
    throw new RangeError(`${OP}: activation must be "silu" or null, got ${o.activation}`);
  }
  if (x.shape.length !== 3 || x.size === 0) {
    throw new RangeError(
      `${OP}: x must be a non-empty (batch, ${
        layout === "bdl" ? "channels, length" : "length, channels"
      }) tensor, got ${x.describe()}`,
    );
  }
  const [batch, second, third] = x.shape;
  const [channels, length] = layout === "bdl" ? [second, third] : [third, second];
  const width = weight.shape[1];
  if (weight.shape.length !== 2 || weight.shape[0] !== channels || !(width >= 2 && width <= 4)) {
    throw new RangeError(
      `${OP}: weight must be (channels ${channels}, width 2..4), got ${weight.describe()} ` +
        `for x ${x.describe()} (layout ${layout})`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== channels)) {
    throw new RangeError(`${OP}: bias must be (${channels}), got ${bias.describe()}`);
  }
  const seq = o.seqIdx;
  if (seq) {
    assertDType(OP, seq, "i32");
    if (seq.shape.length !== 2 || seq.shape[0] !== batch || seq.shape[1] !== length) {
      throw new RangeError(
        `${OP}: seqIdx must be i32 (batch ${batch}, length ${length}), got ${seq.describe()}`,
      );
    }
  }
  return { batch, channels, length };
}

/**
 * Depthwise causal convolution: `out[b, c, t] = bias[c] + Σ_k weight[c, k] · x[b, c, t − (w − 1)
 * + k]`, zero where the index is negative or (with `seqIdx`) in another segment, then SiLU when
 * `activation` is `"silu"`. Equals PyTorch `Conv1d(d, d, w, groups=d, padding=w − 1)` cut to the
 * first `length` outputs. Gradients flow to x, weight and bias.
 * @param x (batch, channels, length), or (batch, length, channels) with `layout: "bld"`
 * @param weight (channels, width), width 2, 3 or 4
 * @param bias optional (channels)
 * @param options activation, segment ids, layout
 * @returns a tensor shaped like x
 */
export function causalConv1d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: CausalConv1dOptions = {},
): Tensor {
  const { batch, channels, length } = validate(x, weight, bias, options);
  const seq = options.seqIdx;
  const spec: ConvSpec = {
    width: weight.shape[1],
    bias: bias !== undefined,
    silu: options.activation === "silu",
    segments: seq !== undefined,
    channelsLast: options.layout === "bld",
    vec4: options.layout === "bld" && channels % 4 === 0,
  };
  // Channel groups of one invocation each.
  const groups = spec.vec4 ? channels / 4 : channels;
  const inputs = (withBias: boolean) => [
    x,
    weight,
    ...(withBias && bias ? [bias] : []),
    ...(seq ? [seq] : []),
  ];
  const positions = batch * length;
  const out = Tensor.empty(x.shape, "f32", OP);
  const runs = Math.ceil(positions / FORWARD_RUN);
  const g = grid(groups * runs, CONV_WG);
  launch(
    OP,
    forwardShader(spec),
    packParams([batch, groups, length, positions, runs, FORWARD_RUN, g.stride]),
    [...inputs(spec.bias), out],
    g.groups,
  );
  const differentiable = bias ? [x, weight, bias] : [x, weight];
  return record(out, OP, differentiable, (gy) => {
    const name = `${OP} backward`;
    const { ct, pt } = backwardLanes(spec, groups);
    const run = Math.max(MIN_BACKWARD_RUN, Math.ceil(positions / MAX_RUNS));
    const chunks = Math.ceil(positions / (pt * run));
    const dx = Tensor.empty(x.shape, "f32", name);
    const partial = Tensor.empty([chunks, channels, spec.width + 1], "f32", name);
    launch(
      name,
      backwardShader(spec, ct, pt),
      packParams([batch, groups, length, positions, chunks * pt, run, 0]),
      [...inputs(spec.bias && spec.silu), gy, dx, partial],
      [chunks, Math.ceil(groups / ct)],
    );
    const dweight = Tensor.empty(weight.shape, "f32", name);
    const finishGroups = foldWorkgroups(channels * (spec.width + 1));
    const dbias = bias ? Tensor.empty(bias.shape, "f32", name) : null;
    launch(
      name,
      finishShader(spec.width, spec.bias),
      packParams([channels, chunks, finishGroups[0]]),
      [partial, dweight, ...(dbias ? [dbias] : [])],
      finishGroups,
    );
    partial.dispose();
    return dbias ? [dx, dweight, dbias] : [dx, dweight];
  });
}
