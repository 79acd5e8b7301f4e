/**
 * Selective-scan and causal-conv1d benchmarks at Mamba4Rec training sizes: batch 2048 × length
 * 200 and batch 256 × length 2,000, d_inner 128, d_state 32, with D, z, deltaBias and softplus as
 * the Mamba block calls the scan. "forward" is the training forward (it saves the backward's
 * checkpoints); "forward+backward" adds the scan's own backward (every gradient), without the
 * loss around it. Both layouts.
 *
 * Registered with `bench/harness.ts` (run by `deno task bench`); standalone:
 * `deno run -A bench/selective_scan.ts [--variants] [--quick] [--profile] [--filter=text,…]`,
 * where `--variants` adds the work-splitting alternatives (segments, channel groups, intervals)
 * for tuning, `--profile` prints the GPU time of every kernel of one iteration before each timing
 * and `--filter` keeps the benchmarks whose name contains one of the texts. On CPU
 * implementations the sizes shrink and the figures only show that everything runs.
 *
 * Reference (mamba_ssm 1.1.4 CUDA kernel on an H200, same sizes): forward 5.7 ms and
 * forward+backward 23.6 ms at batch 2048 × 200; 5.2 ms and 24.1 ms at batch 256 × 2,000.
 * Measured here on the H200 (bld): forward 1.83–2.33 ms (4 staged steps) and 3.46–3.94 ms (8
 * staged steps) at the two sizes; forward+backward 15.9 ms at batch 2048 × 200 (2 intervals per
 * state workgroup; 24.0 ms with 4) and 28.8 ms at batch 256 × 2,000 (4 per workgroup; 24.0 ms
 * with 8-step intervals).
 *
 * Floor on an H200 at batch 2048, d 128, l 200, n 32: b·d·l·n = 1.68e9 state steps. Forward: one
 * exp each (≈ 4e12 exp/s on the special-function units → 0.4 ms) and ≈ 1 GB of u, Δ, z and out
 * traffic (0.25 ms at 4 TB/s), plus checkpoints (b·d·n·l/TS·4 B = 0.44 GB at TS 16). Backward:
 * two exps per state step (adjoint, re-run; the walk back reuses the re-run's: 0.8 ms), ≈ 3.5 GB
 * of traffic (0.8 ms). The state kernel alone: one exp (0.4 ms), ≈ 12 FMAs (0.6 ms at 33e12
 * FMA/s) and ≈ 3 workgroup-memory words (0.6 ms at 32 words/clock/SM) per state step, ≈ 1 ms.
 *
 * Tuning history on the H200 (`--variants`, bld, D, z, deltaBias, softplus), batch 2048 × 200:
 * forward 1.8–2.3 ms with 4 staged steps (3.1 ms with 8). Forward + backward with 16-step
 * intervals: 34.0 ms before the state kernel kept its per-step values in registers and split the
 * dΔ state sum over all invocations; after, 24.0 ms with 4 intervals per state workgroup,
 * 15.9 ms with 2 (16.9 ms with 8-step intervals, 23.2 ms with 8 × 8). At batch 256 × 2,000:
 * 28.8 ms with 4 intervals per workgroup (24.0 ms with 8-step intervals), 2 not yet measured.
 * The state kernel, by difference about 10 ms, is still far above its ≈ 1 ms floor. These set
 * the planner's defaults (`ops/sequence/selective_scan/plan.ts`): 16-step intervals, since the
 * state kernel at 32 steps (64 register accumulators per invocation) took 1.4× as long; and 64
 * invocations per state workgroup (2 intervals at n 32), which took 15.9 ms forward + backward
 * against 24.0 ms with 4 intervals and 23.2 ms with 8 (8-step intervals). Its profile on an
 * H100 at batch 2048 × 200: state kernel 10.04 ms, adjoint 2.66, forward 2.39, parameter sums
 * 0.37 (15.5 ms). Staging fewer channels at a time in the state kernel (`stateChunk`), H100:
 * 8 channels 15.69 ms (b 256 × 2,000: 20.80), 4 15.18 (19.99), 2 12.99 (17.39), 1 13.75; two
 * is the default since. The results are the same bit for bit.
 *
 * The scan read at one step per row ("scan prefix", Mamba4Rec's last layer in prefix training:
 * low-rank Δ, D, deltaBias, softplus, positions spread over the length, mean 100 of 200), on an
 * H100: forward + backward 8.98 ms by the adjoint and state passes (`rescan=false`). The re-scan
 * backward: 7.88 ms with two steps staged at a time and each state's column of λ·Δu summed over
 * the channels by one invocation; 6.70 ms staging one step; 6.35 ms summing the columns in
 * slices by all invocations; 4.86 ms with both (the default). From the 7.88 ms version, leaving
 * out the column sums gave 5.55 ms, the suffix-sum pre-pass 7.36 ms, the workgroup-memory
 * writes of λ·Δu 7.16 ms, and the second exponential or dA's registers nothing measurable. 16
 * states per invocation with sliced sums: 5.26 ms staging two steps, 6.88 ms staging one. Since
 * then the forward forms the suffix sums of Δ that the pre-pass recomputed; on an H200 that kernel
 * gives 4.52 ms (its profile: backward 3.40 ms in four launches, forward 0.95 ms) against 8.80 ms
 * by the adjoint and state passes (backward 7.25, forward 1.28).
 *
 * @module
 */
import { requireGrad, Tensor } from "../ops/mod.ts";
import { causalConv1d } from "../ops/sequence/causal_conv1d.ts";
import {
  selectiveScan,
  selectiveScanAt,
  type SelectiveScanTuning,
} from "../ops/sequence/selective_scan/mod.ts";
import {
  type BenchContext,
  benchmark,
  formatHeader,
  formatRow,
  measure,
  printKernelProfile,
  randomTensor,
  registeredBenchmarks,
  releaseRecorded,
  standaloneContext,
} from "./harness.ts";

/** Problem sizes of one scan benchmark. */
interface ScanSize {
  batch: number;
  channels: number;
  length: number;
  states: number;
}

const SIZES: Record<"train" | "long", { full: ScanSize; quick: ScanSize }> = {
  train: {
    full: { batch: 2048, channels: 128, length: 200, states: 32 },
    quick: { batch: 4, channels: 16, length: 64, states: 32 },
  },
  long: {
    full: { batch: 256, channels: 128, length: 2000, states: 32 },
    quick: { batch: 2, channels: 16, length: 500, states: 32 },
  },
};

interface ScanState {
  tensors: Tensor[];
  run: () => void;
  bytes: number;
  note: string;
}

function scanSetup(
  ctx: BenchContext,
  which: "train" | "long",
  layout: "bdl" | "bld",
  withBackward: boolean,
  tuning?: SelectiveScanTuning,
): ScanState {
  const size = ctx.quick ? SIZES[which].quick : SIZES[which].full;
  const { batch: b, channels: d, length: l, states: n } = size;
  const dShape = layout === "bdl" ? [b, d, l] : [b, l, d];
  const nShape = layout === "bdl" ? [b, n, l] : [b, l, n];
  // Uniform [-1, 1) data; Δ = softplus(delta + bias) then lies in about (0.3, 1.4), and A is the
  // S4D-real initialisation −(1..n), so the recurrence neither vanishes nor explodes.
  const u = requireGrad(randomTensor(dShape, 1));
  const delta = requireGrad(randomTensor(dShape, 2));
  const z = requireGrad(randomTensor(dShape, 3));
  const B = requireGrad(randomTensor(nShape, 4));
  const C = requireGrad(randomTensor(nShape, 5));
  const D = requireGrad(randomTensor([d], 6));
  const deltaBias = requireGrad(randomTensor([d], 7));
  const A = requireGrad(Tensor.from(new Float32Array(d * n).map((_, i) => -(1 + (i % n))), [d, n]));
  const gout = randomTensor(dShape, 9);
  const options = { D, z, deltaBias, deltaSoftplus: true, layout, tuning };
  const run = () => {
    const out = selectiveScan(u, delta, A, B, C, options);
    if (withBackward) { for (const g of out.node!.backward(gout)) g?.dispose(); }
    releaseRecorded(out);
  };
  // Compulsory DRAM traffic. Forward: u, delta, z in, out and y before the gate out, B, C, and
  // the checkpoints. Backward: the adjoint and the state kernel each read u, delta, z, the
  // output gradient, B and C; plus y, checkpoints and λ, and du, ddelta, dz, dB, dC out.
  const big = b * d * l * 4, small = b * n * l * 4, ck = b * Math.ceil(l / 16) * d * n * 4;
  const forwardBytes = 5 * big + 2 * small + ck;
  const backwardBytes = 2 * (4 * big + 2 * small) + big + 3 * ck + 4 * big + 2 * small;
  return {
    tensors: [u, delta, z, B, C, D, deltaBias, A, gout],
    run,
    bytes: forwardBytes + (withBackward ? backwardBytes : 0),
    note: `b${b} d${d} l${l} n${n} ${layout}`,
  };
}

function registerScan(
  which: "train" | "long",
  layout: "bdl" | "bld",
  withBackward: boolean,
  tuning?: SelectiveScanTuning,
): void {
  const tag = tuning ? ` ${Object.entries(tuning).map(([k, v]) => `${k}=${v}`).join(",")}` : "";
  benchmark<ScanState>({
    name: `scan ${which} ${layout} ${withBackward ? "fwd+bwd" : "fwd"}${tag}`,
    setup: (ctx) => scanSetup(ctx, which, layout, withBackward, tuning),
    run: (s) => s.run(),
    teardown: (s) => s.tensors.forEach((t) => t.dispose()),
    bytes: (s) => s.bytes,
    note: (s) => s.note,
  });
}

/**
 * The scan read at one step per row (`selectiveScanAt`), as Mamba4Rec's last layer calls it in
 * prefix training: batch 2048 × length 200, a low-rank Δ (rank 4), D, deltaBias and softplus,
 * no gate; the rows' positions spread evenly over the length (mean ≈ l/2; ML-1M's prefixes
 * average 118.5 of 200). "fwd+bwd" adds its backward: the re-scan by default, the adjoint and
 * state passes with `rescan=false`.
 */
function registerScanAt(withBackward: boolean, tuning?: SelectiveScanTuning): void {
  const tag = tuning ? ` ${Object.entries(tuning).map(([k, v]) => `${k}=${v}`).join(",")}` : "";
  benchmark<ScanState>({
    name: `scan prefix bld ${withBackward ? "fwd+bwd" : "fwd"}${tag}`,
    setup: (ctx) => {
      const size = ctx.quick ? SIZES.train.quick : SIZES.train.full;
      const { batch: b, channels: d, length: l, states: n } = size;
      const rank = 4;
      const u = requireGrad(randomTensor([b, l, d], 1));
      const factor = requireGrad(randomTensor([b, l, rank], 2));
      const weight = requireGrad(randomTensor([d, rank], 3));
      const B = requireGrad(randomTensor([b, l, n], 4));
      const C = requireGrad(randomTensor([b, l, n], 5));
      const D = requireGrad(randomTensor([d], 6));
      const deltaBias = requireGrad(randomTensor([d], 7));
      const A = requireGrad(
        Tensor.from(new Float32Array(d * n).map((_, i) => -(1 + (i % n))), [d, n]),
      );
      const golden = (Math.sqrt(5) - 1) / 2;
      const at = Int32Array.from({ length: b }, (_, i) => Math.floor(((i * golden) % 1) * l));
      const positions = Tensor.from(at, [b], "i32");
      const gout = randomTensor([b, d], 9);
      const options = {
        D,
        deltaBias,
        deltaWeight: weight,
        deltaSoftplus: true,
        layout: "bld" as const,
        tuning,
      };
      const run = () => {
        const out = selectiveScanAt(u, factor, A, B, C, positions, options);
        if (withBackward) { for (const g of out.node!.backward(gout)) g?.dispose(); }
        releaseRecorded(out);
      };
      // Compulsory DRAM traffic up to the positions (a fraction f of the steps): the forward
      // reads u, B and C; the backward reads u and B and writes du, dΔ, dB and dC (whole).
      const f = at.reduce((sum, p) => sum + p + 1, 0) / (b * l);
      const big = b * d * l * 4, small = b * n * l * 4;
      const forwardBytes = f * (big + 2 * small);
      const backwardBytes = f * (big + small) + 2 * big + 2 * small;
      return {
        tensors: [u, factor, weight, B, C, D, deltaBias, A, positions, gout],
        run,
        bytes: forwardBytes + (withBackward ? backwardBytes : 0),
        note: `b${b} d${d} l${l} n${n} R${rank} at ${(f * l).toFixed(0)}/${l}`,
      };
    },
    run: (s) => s.run(),
    teardown: (s) => s.tensors.forEach((t) => t.dispose()),
    bytes: (s) => s.bytes,
    note: (s) => s.note,
  });
}

interface ConvState {
  tensors: Tensor[];
  run: () => void;
  bytes: number;
  note: string;
}

function registerConv(withBackward: boolean): void {
  benchmark<ConvState>({
    name: `causalConv1d bld ${withBackward ? "fwd+bwd" : "fwd"}`,
    setup: (ctx) => {
      const { batch: b, channels: d, length: l } = ctx.quick ? SIZES.train.quick : SIZES.train.full;
      const x = requireGrad(randomTensor([b, l, d], 1));
      const w = requireGrad(randomTensor([d, 4], 2));
      const bias = requireGrad(randomTensor([d], 3));
      const gout = randomTensor([b, l, d], 4);
      const run = () => {
        const out = causalConv1d(x, w, bias, { activation: "silu", layout: "bld" });
        if (withBackward) { for (const g of out.node!.backward(gout)) g?.dispose(); }
        releaseRecorded(out);
      };
      const big = b * d * l * 4;
      return {
        tensors: [x, w, bias, gout],
        run,
        bytes: withBackward ? 5 * big : 2 * big,
        note: `b${b} d${d} l${l} w4 silu`,
      };
    },
    run: (s) => s.run(),
    teardown: (s) => s.tensors.forEach((t) => t.dispose()),
    bytes: (s) => s.bytes,
    note: (s) => s.note,
  });
}

for (const which of ["train", "long"] as const) {
  for (const layout of ["bld", "bdl"] as const) {
    registerScan(which, layout, false);
    registerScan(which, layout, true);
  }
}
registerScanAt(false);
registerScanAt(true);
registerScanAt(true, { rescan: false });
registerConv(false);
registerConv(true);

if (import.meta.main) {
  const variants = Deno.args.includes("--variants");
  if (variants) {
    for (
      const tuning of [{ channelSteps: 8 }, { channelSteps: 2 }, { channelThreads: 128 }, {
        interval: 8,
      }]
    ) registerScan("train", "bld", false, tuning);
    for (
      const tuning of [
        { interval: 8 },
        { interval: 8, stateRows: 8 },
        { interval: 8, stateRows: 8, stateChunk: 4 },
        { interval: 8, stateRows: 2 },
        { interval: 4, stateRows: 8 },
        { interval: 4, stateRows: 16 },
        { stateChunk: 8 },
        { stateChunk: 4 },
        { stateChunk: 1 },
        { stateRows: 4 },
        { interval: 8, stateRows: 4 },
        { stateRows: 1, stateChunk: 4 },
        { stateRows: 2 },
        { stateRows: 1 },
        { stateRows: 1, stateChunk: 16 },
        { stateChunk: 16 },
      ]
    ) registerScan("train", "bld", true, tuning);
    registerScan("long", "bld", false, { segments: 2 });
    for (
      const tuning of [
        { segments: 2 },
        { interval: 8 },
        { interval: 8, stateRows: 8 },
        { stateChunk: 8 },
        { stateChunk: 4 },
      ]
    ) {
      registerScan("long", "bld", true, tuning);
    }
  }
  // --filter=a,b: only the benchmarks whose name contains one of the comma-separated texts.
  const filter = Deno.args.find((a) => a.startsWith("--filter="))?.slice(9).split(",");
  const ctx = await standaloneContext();
  console.log(formatHeader());
  for (const def of registeredBenchmarks()) {
    if (filter && !filter.some((f) => def.name.includes(f))) continue;
    if (Deno.args.includes("--profile")) await printKernelProfile(def, ctx);
    try {
      console.log(formatRow(await measure(def, ctx)));
    } catch (e) {
      console.log(`${def.name}: failed: ${e instanceof Error ? e.message : e}`);
    }
  }
}
