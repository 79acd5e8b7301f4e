/**
 * Caser's horizontal convolutions at its ML-1M training size: batch 2,048, window L 200, E 64,
 * nh 8 filters of every height 1 … 200, ReLU and max-over-time. "forward" is the op's forward
 * (the same kernels train and evaluate); "backward" repeats the backward of one recorded
 * forward (dx, dweight and dbias) from a given output gradient.
 *
 * Floor. Height h has L − h + 1 positions of h·E multiply-adds per filter, so the forward is
 * nh · E · Σ_h (L − h + 1)·h = nh · E · L(L + 1)(L + 2)/6 = 8 · 64 · 1,353,400 = 692.9 M
 * multiply-adds per row, 1.419 T per batch: 2.84 TFLOP. The backward reads one winning window
 * per output: dx and dweight take nh · E · L(L + 1)/2 = 10.3 M multiply-adds per row each,
 * 42.2 G per batch in all (84 GFLOP; dbias adds 3.3 M terms). The bytes that must move: x
 * (105 MB), the packed filters (41 MB), the outputs and their winning positions (13 MB each);
 * the backward reads those and writes dx (105 MB) and dweight (41 MB). At about 20 TFLOP/s
 * (strict f32, no tensor cores) the forward takes at least 142 ms (an evaluation batch of 4,096
 * rows 284 ms) and the backward at least 4.2 ms; the bytes alone take about 0.1 ms each at
 * 3.35 TB/s, so both are bound by arithmetic.
 *
 * What the kernels issue (`ops/sequence/caser/horizontal_forward.ts`, `horizontal_backward.ts`).
 * The forward sums 8 filters × a tile of positions per invocation, reading each step's x values
 * side by side across a workgroup's rows (from a transposed copy of x: one more pass over x, and
 * 105 MB more at the peak) and each filter value once for the whole workgroup. Per step, with a
 * schedule of `rows × shifts` positions (see `ForwardSchedule`):
 *
 *     schedule   x reads  filter reads  products  x bytes per multiply-add
 *     4 × 2      4        16            64        0.25  (the op's default)
 *     2 × 4      2        32            64        0.125
 *     4 × 1      4        8             32        0.5
 *
 * With the default that is 0.08 reads per multiply-add, and a warp's reads touch 0.5 cache lines
 * per 128 multiply-adds (4 lines for each x read, 1 for each filter read). The x bytes, 355 GB
 * for the batch unless the L1 cache keeps the rows a tile reads again, come from the L2 cache.
 * Expected on an H100: forward ≈ 70-140 ms (20-40 TFLOP/s of the count above); the "forward 2×4"
 * and "forward 4×1" rows time the other schedules, which give the same bits. Backward ≈ 20-30 ms,
 * bound by reading one filter row (dx) or window row (dweight) per winning output and vec4 of E,
 * 84 GB each from the L2 cache.
 *
 * Registered with `bench/harness.ts` (`deno task bench --only caser`); on CPU implementations,
 * or with `--quick`, the sizes shrink and the figures only show that everything runs.
 *
 * @module
 */
import { memoryStats, packedFilterSize, resetPeakMemory, sync, type Tensor } from "../ops/mod.ts";
import { caserHorizontalConvScheduled } from "../ops/sequence/caser/horizontal.ts";
import {
  DEFAULT_SCHEDULE,
  type ForwardSchedule,
} from "../ops/sequence/caser/horizontal_forward.ts";
import { type BenchContext, benchmark, randomTensor, releaseRecorded } from "./harness.ts";

/** Sizes of one horizontal-convolution problem. */
interface CaserSize {
  batch: number;
  length: number;
  dim: number;
  filters: number;
}

const FULL: CaserSize = { batch: 2048, length: 200, dim: 64, filters: 8 };
const QUICK: CaserSize = { batch: 4, length: 12, dim: 8, filters: 2 };

interface CaserState {
  x: Tensor;
  weight: Tensor;
  bias: Tensor;
  gout: Tensor;
  /** The recorded forward whose backward the backward benchmark repeats. */
  out: Tensor | null;
  /** The forward's schedule. */
  schedule: ForwardSchedule;
  flops: number;
  bytes: number;
  note: string;
}

/** Bytes in MB, or kB below one MB. */
function bytesText(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(0)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

/** Multiply-adds of the forward: nh · E · L(L + 1)(L + 2)/6 per row. */
function forwardMacs(s: CaserSize): number {
  return s.batch * s.filters * s.dim * (s.length * (s.length + 1) * (s.length + 2) / 6);
}

/** Multiply-adds of dx and of dweight each: nh · E · L(L + 1)/2 per row. */
function backwardMacs(s: CaserSize): number {
  return s.batch * s.filters * s.dim * (s.length * (s.length + 1) / 2);
}

async function caserSetup(
  ctx: BenchContext,
  pass: "forward" | "backward",
  schedule: ForwardSchedule,
): Promise<CaserState> {
  const size = ctx.quick ? QUICK : FULL;
  const { batch: b, length: l, dim: e, filters: nh } = size;
  const packed = packedFilterSize({ length: l, dim: e, filters: nh });
  const x = randomTensor([b, l, e], 1);
  const weight = randomTensor([packed], 2);
  const bias = randomTensor([l, nh], 3);
  const gout = randomTensor([b, l * nh], 4);
  x.requiresGrad = weight.requiresGrad = bias.requiresGrad = pass === "backward";
  await sync();
  resetPeakMemory();
  const out = caserHorizontalConvScheduled(x, weight, bias, schedule);
  if (pass === "backward") {
    for (const g of out.node!.backward(gout)) g?.dispose();
  }
  await sync();
  const peak = memoryStats().peakLiveBytes;
  const xBytes = 4 * b * l * e, wBytes = 4 * packed, outBytes = 4 * b * l * nh;
  const flops = pass === "forward" ? 2 * forwardMacs(size) : 4 * backwardMacs(size);
  // Forward: x, the filters and the biases read, out and winners written. Backward: x, the
  // filters, winners and the output gradient read, dx, dweight and dbias written.
  const bytes = pass === "forward"
    ? xBytes + wBytes + 4 * l * nh + 2 * outBytes
    : 2 * (xBytes + wBytes) + 2 * outBytes + 4 * l * nh;
  const state: CaserState = {
    x,
    weight,
    bias,
    gout,
    out: pass === "backward" ? out : null,
    schedule,
    flops,
    bytes,
    note: `b${b} L${l} E${e} nh${nh}, floor ${(flops / 1e9).toFixed(flops < 1e9 ? 4 : 1)} ` +
      `GFLOP ${bytesText(bytes)}, peak ${bytesText(peak)}`,
  };
  if (pass === "forward") releaseRecorded(out);
  return state;
}

/** The benchmarks: the op as it runs, then the forward's other schedules. */
const RUNS: { name: string; pass: "forward" | "backward"; schedule?: ForwardSchedule }[] = [
  { name: "forward", pass: "forward" },
  { name: "backward", pass: "backward" },
  { name: "forward 2×4", pass: "forward", schedule: { rows: 2, shifts: 4 } },
  { name: "forward 4×1", pass: "forward", schedule: { rows: 4, shifts: 1 } },
];

for (const { name, pass, schedule } of RUNS) {
  benchmark<CaserState>({
    name: `caser horizontal ${name}`,
    setup: (ctx) => caserSetup(ctx, pass, schedule ?? DEFAULT_SCHEDULE),
    run: (s) => {
      if (s.out) {
        for (const g of s.out.node!.backward(s.gout)) g?.dispose();
      } else {
        releaseRecorded(caserHorizontalConvScheduled(s.x, s.weight, s.bias, s.schedule));
      }
    },
    teardown: (s) => {
      if (s.out) releaseRecorded(s.out);
      for (const t of [s.x, s.weight, s.bias, s.gout]) t.dispose();
    },
    flops: (s) => s.flops,
    bytes: (s) => s.bytes,
    note: (s) => s.note,
  });
}
