/**
 * Streaming against recomputing, on the GPU alone: the events a batch of users absorbs per second
 * through {@link Mamba4RecStream.observe} (one event per user, each user's state stepped in
 * place), against recomputing each user's representation from its window of the last L items
 * with the full model's forward (the RecBole way: every event reruns the user's window).
 *
 * Sizes: 10,000 users and windows of L = 200 items (Mamba4Rec's ML-1M window), on Mamba4Rec's
 * default configuration (d 64, d_state 32, one layer) over 10,000 items; with `--quick` (and on
 * CPU implementations) 256 users, L = 20 and a smaller model. The windows are recomputed in
 * forward passes of at most `INIT_TOKENS_PER_PASS` tokens (eight at full size), the passes the
 * stream's own initialisation takes, which keep every activation within WebGPU's default binding
 * size. Events per second are users / time per iteration; the table gives the time per
 * iteration.
 *
 * The floor of one observe call ({@link observeFloorBytes}, the bytes its row's throughput counts):
 * each user's SSM state read and written once (at full size 10,000 × 128 × 32 floats each way,
 * 327.7 MB), its convolution window likewise (10,000 × 3 × 128 floats each way, 30.7 MB), its
 * item's embedding row read and its representation written (2.6 MB each) and the weights read once
 * (0.3 MB): 363.9 MB, 0.121 ms at 3 TB/s, of which the state alone is 0.109 ms. Its arithmetic,
 * about 155 kFLOP and 4,096 exponentials per user (1.5 GFLOP), is 0.6 FLOP per byte of state, so
 * observe is bound by memory. With one Mamba layer observe runs 8 dispatches: the item embedding
 * with its LayerNorm, one product for the block's x and z, the fused step `mambaStep`, the output
 * projection, LayerNorm, the feed-forward network (two products, GELU and the residual sum in
 * their epilogues) and its LayerNorm, which writes the representations. `layerTail`
 * (`Mamba4RecStream`'s `fusedTail`) runs the five dispatches after the step as one kernel, 4
 * dispatches in all, and the step can make the input projection itself (`fusedInProjection`), 3.
 *
 * Measured (`--profile`), H200: observe 0.484 ms, of which the fused step 0.291 ms (1.2 TB/s of its
 * 374 MB), the four products 0.126 ms, the three LayerNorms 0.023 ms; recomputation 12.97 ms
 * (26.8×). H100: observe 0.50 ms, the fused step 0.315 ms with 8 states loaded at a time
 * (`STATE_BATCH` in `mamba_step.ts`), 0.332 ms with 16 and 0.376 ms with 32. H100, source
 * ec5e40ee: kernels 0.357 ms, of which the layers after the step about 0.14 ms. H100, source
 * c67d4a3e (`--profile --streams 1,2,4`, the whole state row prefetched or not, both tails): observe 0.361 ms with the
 * separate ops against 0.660 ms with `layerTail`, whose profile gave it 0.404 ms of 0.627 (the
 * step 0.168): the prediction had been about 0.04 ms for its 0.82 GFLOP. Its invocations waited on
 * one weight load at a time. Two or four streams per workgroup and the prefetched state row did
 * not help (0.366, 0.376; 0.395 ms); recomputation 13.32 ms, so observe with the separate ops is
 * 36.9× faster. H100, source 4b66514b (`--profile --fused-tail --fused-in-projection
 * --prefetch-states 8,16`): separate ops 0.361 ms (kernels 0.356: step 0.169, four products
 * 0.125, three LayerNorms 0.023, GELU 0.013, write 0.012, sum 0.008, embedding 0.007);
 * `layerTail` issuing eight weight loads at a time took 0.224 ms of kernel against about 0.15 ms
 * for the ops it replaces (observe 0.459 ms), and the step with its input projection 0.200 ms
 * against 0.169 + 0.027 (observe 0.369 ms); both together 0.475 ms; recomputation 13.29 ms. The
 * tail's invocations then read one staged value per multiply-add (one output column each); they
 * now take four adjacent columns, reading the weights as vectors, and sixteen share each
 * LayerNorm row's sums (not yet timed). H100, source d7fdc6fc (`--profile --fused-tail
 * --fused-in-projection --weight-loads 8,32`): separate ops 0.338 ms (kernels 0.330: step 0.163,
 * four products 0.140); `layerTail` 0.155 ms of kernel against 0.16 for what it replaces
 * (observe 0.377 ms); the step with its input projection 0.185 ms (observe 0.355 ms);
 * recomputation 13.26 ms (39.2×). Timed alone (`bench/matmul_sweep.ts --only matmul --small
 * --shapes serve --kernel-time`) each product took about as long with 64 × 64 tiles as with the
 * best smaller ones (64→256 23 µs, 128→64 15–16, 256→64 24–27), but inside observe, where the
 * four took 0.141 ms, smaller tiles for products with few output tiles and a short reduction
 * (`few` in `ops/dense/matmul/plan.ts`) gave: 32 × 32 × 8 observe 0.304 ms (kernels 0.292: step
 * 0.161, four products 0.107), 64 × 32 × 8 0.323, 32 × 64 × 8 0.323, 64 × 64 × 4 0.341;
 * recomputation 13.21 ms (43.5×).
 *
 * Registered with `bench/harness.ts` (run by `deno task bench --only serve`); standalone,
 * `deno run -A bench/serve.ts [--quick] [--profile] [--state-batch B[,B…]]
 * [--prefetch-states P[,P…]] [--streams S[,S…]] [--weight-loads L[,L…]] [--users N] [--fused-tail]
 * [--tail-rows R[,R…]] [--fused-in-projection]`, where `--users` sets the users of both rows
 * (does the cost per event fall with larger batches?), `--profile` first prints the GPU time of
 * every kernel of one observe call and one recomputation (timestamp queries), and the last four
 * time observe once per tuning of the fused step (`MambaStepTuning`: states loaded at a time, the
 * state row loaded first, streams per workgroup, weights loaded at a time in its products), the
 * results of which are the same bit for bit.
 * `--fused-tail` also times each of those with the layers after the block as one kernel,
 * `layerTail`, instead of the model's own ops (the same scores to rounding), once per
 * `--tail-rows R` (`LayerTailTuning.rowsPerInvocation`, the same results bit for bit), and
 * `--fused-in-projection` each with the input projection made inside the step
 * (`mambaStepFromHidden`, the same scores bit for bit) instead of by a product before it.
 * `scripts/serve_bench.ts` measures the same pair on a checkpoint's model next to its HTTP load.
 *
 * @module
 */
import { noGrad } from "../ops/core/autograd.ts";
import { type Tensor, tidy } from "../ops/core/tensor.ts";
import {
  INIT_TOKENS_PER_PASS,
  Mamba4Rec,
  mamba4recConfig,
  Mamba4RecStream,
  type Mamba4RecStreamOptions,
} from "../models/mod.ts";
import { uploadSequences } from "../models/training/layouts.ts";
import type { LayerTailTuning } from "../ops/dense/layer_tail.ts";
import { checkMambaStepTuning, type MambaStepTuning } from "../ops/sequence/mamba_step.ts";
import {
  type BenchContext,
  benchmark,
  type BenchmarkDef,
  printTimings,
  standaloneContext,
} from "./harness.ts";

/** Users and window length of the comparison. */
export interface StreamBenchSizes {
  /** Users per observe call, and windows per recomputation. */
  readonly users: number;
  /** Items per recomputed window (L). */
  readonly length: number;
}

/** The sizes of the comparison: full, and small for `--quick` and CPU implementations. */
export const STREAM_BENCH_SIZES: { full: StreamBenchSizes; quick: StreamBenchSizes } = {
  full: { users: 10000, length: 200 },
  quick: { users: 256, length: 20 },
};

/**
 * The model benchmarked when none is given: Mamba4Rec's defaults over 10,000 items, or a small
 * one (d 16, d_state 8, 500 items) in quick mode. Dropout is off (serving is inference).
 */
export function benchModel(quick: boolean): Mamba4Rec {
  return new Mamba4Rec(mamba4recConfig(
    quick
      ? { numItems: 500, hiddenSize: 16, dState: 8, dropoutProb: 0 }
      : { numItems: 10000, dropoutProb: 0 },
  ));
}

/**
 * The bytes one observe call of `users` distinct users must move at least: per Mamba layer each
 * user's SSM state and convolution window read and written once, the users' embedding rows read
 * and their representations written, and every weight read once (4-byte floats; item ids and
 * slots as 4-byte integers). Intermediate results are not counted: a kernel that needs none
 * moves this much.
 */
export function observeFloorBytes(model: Mamba4Rec, users: number): number {
  const { hiddenSize: d, dState: n, dConv: w, expand, numLayers } = model.config;
  const inner = expand * d, rank = Math.ceil(d / 16);
  const pools = 2 * users * inner * (n + w - 1);
  const mambaWeights = 2 * inner * d + inner * (w + 1) + inner * (rank + 2 * n) +
    inner * (rank + 1) + inner * (n + 1) + inner * d;
  const tailWeights = 2 * d + 2 * 4 * d * d + 4 * d + d + 2 * d;
  const perLayer = pools + mambaWeights + tailWeights;
  return 4 * (numLayers * perLayer + 2 * users * d + 2 * users + 2 * d);
}

/** Item ids `1 … numItems − 1` from a fixed-seed generator. */
function randomItems(count: number, numItems: number, seed: number): Int32Array {
  const out = new Int32Array(count);
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = 1 + ((s >>> 0) % (numItems - 1));
  }
  return out;
}

/** Users per observe call and per recomputation when `--users N` sets them (standalone runs). */
let usersOverride: number | undefined;

const sizesOf = (ctx: BenchContext): StreamBenchSizes => {
  const sizes = ctx.quick ? STREAM_BENCH_SIZES.quick : STREAM_BENCH_SIZES.full;
  return usersOverride === undefined ? sizes : { ...sizes, users: usersOverride };
};

interface ObserveState {
  model: Mamba4Rec;
  stream: Mamba4RecStream;
  users: Int32Array;
  /** A few rounds of events, cycled through. */
  rounds: Int32Array[];
  next: number;
}

interface RecomputeState {
  model: Mamba4Rec;
  /** The windows in passes of at most {@link INIT_TOKENS_PER_PASS} tokens. */
  passes: { items: Tensor; positions: Tensor }[];
  users: number;
  length: number;
}

/** {@link benchModel}, built once per process and size. */
const sharedModels = new Map<boolean, Mamba4Rec>();

/**
 * A tuning of the fused step, as benchmark names and notes show it: `stateBatch 4, prefetch 8`.
 */
export function describeStepTuning(tuning: MambaStepTuning): string {
  const parts = [
    ...(tuning.stateBatch !== undefined ? [`stateBatch ${tuning.stateBatch}`] : []),
    ...(tuning.prefetchStates ? [`prefetch ${tuning.prefetchStates}`] : []),
    ...(tuning.streamsPerWorkgroup !== undefined
      ? [`${tuning.streamsPerWorkgroup} streams/workgroup`]
      : []),
    ...(tuning.weightLoads !== undefined ? [`${tuning.weightLoads} weight loads`] : []),
  ];
  return parts.length > 0 ? parts.join(", ") : "default step";
}

/**
 * The pair of benchmarks on the model `modelFor` gives (default: {@link benchModel}, built once
 * and shared): one observe call for every user, by a stream of the given `form` (its step's
 * tuning and fusions, `Mamba4RecStreamOptions`), and one forward over every user's window. Both encode GPU work only (no readback), as the harness
 * times it.
 */
export function streamBenchmarks(
  modelFor: (ctx: BenchContext) => Mamba4Rec = (ctx) => {
    if (!sharedModels.has(ctx.quick)) sharedModels.set(ctx.quick, benchModel(ctx.quick));
    return sharedModels.get(ctx.quick)!;
  },
  form: Omit<Mamba4RecStreamOptions, "capacity"> = {},
): [BenchmarkDef<ObserveState>, BenchmarkDef<RecomputeState>] {
  const { stepTuning = {}, fusedTail = false, fusedInProjection = false, tailTuning = {} } = form;
  const tuned = Object.keys(stepTuning).length > 0;
  const tailRows = tailTuning.rowsPerInvocation;
  const variant = [
    ...(tuned ? [describeStepTuning(stepTuning)] : []),
    ...(fusedTail
      ? [`tail fused: layerTail${tailRows !== undefined ? ` ${tailRows} rows/invocation` : ""}`]
      : []),
    ...(fusedInProjection ? ["input projection in the step"] : []),
  ].join(", ");
  const observe: BenchmarkDef<ObserveState> = {
    name: variant ? `serve observe (${variant})` : "serve observe",
    setup: (ctx) => {
      const { users } = sizesOf(ctx);
      const model = modelFor(ctx);
      const stream = new Mamba4RecStream(model, { capacity: users, ...form });
      const numItems = model.config.numItems;
      const rounds = [1, 2, 3, 4].map((seed) => randomItems(users, numItems, seed));
      const all = Int32Array.from({ length: users }, (_, i) => i);
      return { model, stream, users: all, rounds, next: 0 };
    },
    run: (s) => {
      s.stream.observe(s.users, s.rounds[s.next]);
      s.next = (s.next + 1) % s.rounds.length;
    },
    teardown: (s) => s.stream.dispose(),
    bytes: (s) => observeFloorBytes(s.model, s.users.length),
    note: (s) =>
      `${s.users.length} users × 1 event${tuned ? `, ${describeStepTuning(stepTuning)}` : ""}`,
  };
  const recompute: BenchmarkDef<RecomputeState> = {
    name: "serve recompute windows",
    setup: (ctx) => {
      const { users, length } = sizesOf(ctx);
      const model = modelFor(ctx);
      const items = randomItems(users * length, model.config.numItems, 5);
      const perPass = Math.max(1, Math.floor(INIT_TOKENS_PER_PASS / length));
      const passes = [];
      for (let at = 0; at < users; at += perPass) {
        const size = Math.min(perPass, users - at);
        const lengths = new Int32Array(size).fill(length);
        passes.push(
          uploadSequences(items.subarray(at * length, (at + size) * length), lengths, size, length),
        );
      }
      return { model, passes, users, length };
    },
    run: (s) => tidy(() => noGrad(() => s.passes.forEach((p) => void s.model.forward(p, false)))),
    teardown: (s) => {
      for (const p of s.passes) {
        p.items.dispose();
        p.positions.dispose();
      }
    },
    note: (s) => {
      const n = s.passes.length;
      return `${s.users} windows × L ${s.length}, ${n} pass${n > 1 ? "es" : ""}`;
    },
  };
  return [observe, recompute];
}

for (const def of streamBenchmarks()) benchmark(def as BenchmarkDef);

/** The integers ≥ 1 of the comma-separated value after `flag` in `args`; [undefined] without it. */
function integerList(args: readonly string[], flag: string): (number | undefined)[] {
  const at = args.indexOf(flag);
  if (at < 0) return [undefined];
  return (args[at + 1] ?? "").split(",").map((v) => {
    const b = Number(v);
    if (!Number.isInteger(b) || b < 1) {
      throw new RangeError(`${flag}: expected integers ≥ 1 separated by commas, got ${v}`);
    }
    return b;
  });
}

/**
 * The fused step's tunings that `--state-batch B[,B…]`, `--prefetch-states P[,P…]`,
 * `--streams S[,S…]` and `--weight-loads L[,L…]` ask for: each state batch (the default when
 * none is given), each without prefetched states and with each P of them loaded first, each with
 * every count of streams per workgroup and of weight loads in flight (the defaults when none is
 * given).
 */
export function stepTuningsOf(args: readonly string[]): MambaStepTuning[] {
  const batches = integerList(args, "--state-batch");
  const streams = integerList(args, "--streams");
  const loads = integerList(args, "--weight-loads");
  const prefetched = integerList(args, "--prefetch-states");
  const prefetch = [0, ...prefetched.filter((p) => p !== undefined)];
  return batches.flatMap((stateBatch) =>
    prefetch.flatMap((p) =>
      streams.flatMap((streamsPerWorkgroup) =>
        loads.map((weightLoads) => ({
          ...(stateBatch !== undefined ? { stateBatch } : {}),
          ...(p ? { prefetchStates: p } : {}),
          ...(streamsPerWorkgroup !== undefined ? { streamsPerWorkgroup } : {}),
          ...(weightLoads !== undefined ? { weightLoads } : {}),
        }))
      )
    )
  );
}

/**
 * The fused tail's tunings that `--tail-rows R[,R…]` asks for (each R rows per invocation), or
 * the default alone.
 */
export function tailTuningsOf(args: readonly string[]): LayerTailTuning[] {
  return integerList(args, "--tail-rows").map((rows) =>
    rows !== undefined ? { rowsPerInvocation: rows } : {}
  );
}

/** The `--users N` of `args` (users per observe call and recomputation), undefined without it. */
export function usersOf(args: readonly string[]): number | undefined {
  const [users] = integerList(args, "--users");
  return users;
}

/** Whether the fused step of `model` takes `tuning` (prefetching needs few enough channels). */
function takesTuning(model: Mamba4Rec, tuning: MambaStepTuning): boolean {
  const { hiddenSize, expand, dState } = model.config;
  try {
    checkMambaStepTuning(tuning, expand * hiddenSize, dState);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const ctx = await standaloneContext();
  usersOverride = usersOf(Deno.args);
  const model = benchModel(ctx.quick);
  sharedModels.set(ctx.quick, model);
  const tunings = stepTuningsOf(Deno.args).filter((tuning) => {
    const taken = takesTuning(model, tuning);
    if (!taken) console.log(`skipped (the step does not take it): ${describeStepTuning(tuning)}`);
    return taken;
  });
  // --fused-tail adds observe with the layers after each block as one kernel (once per
  // --tail-rows R), and --fused-in-projection with the input projection made inside the step,
  // for comparison.
  const tails = [
    {},
    ...(Deno.args.includes("--fused-tail") ? tailTuningsOf(Deno.args) : []).map((tailTuning) => ({
      fusedTail: true,
      tailTuning,
    })),
  ];
  const inputs = Deno.args.includes("--fused-in-projection") ? [false, true] : [false];
  const defs = [
    ...inputs.flatMap((fusedIn) =>
      tails.flatMap((tail) =>
        tunings.map((stepTuning) =>
          streamBenchmarks(undefined, { stepTuning, ...tail, fusedInProjection: fusedIn })[0]
        )
      )
    ),
    streamBenchmarks()[1],
  ] as BenchmarkDef[];
  await printTimings(defs, ctx);
}
