/**
 * The benchmark harness: a registry that bench modules add to with {@link benchmark}, and the
 * timing rules every benchmark shares.
 *
 * To add benchmarks, write a module under `bench/` that calls {@link benchmark} at import time;
 * `bench/main.ts` imports every module in `bench/` (except itself, this harness and scripts listed
 * there) and runs what they registered, in registration order.
 *
 * Timing. The GPU runs asynchronously and each wait for it costs about 11 ms in Deno, so a GPU
 * benchmark submits N iterations back to back (each iteration's dispatches flushed as soon as they
 * are encoded, so the GPU starts while the host encodes the next) and waits once at the end. N is
 * calibrated so that the timed region lasts at least `targetMs` (200 ms on a GPU) and at least 50
 * times the fixed cost of one wait ({@link gpuWaitCost}, measured once per process), so that the
 * wait is under 2 % of every figure; nothing is subtracted. Warm-up iterations compile the
 * pipelines first; several repeats are timed and the median is reported. Each row also gives the
 * host's share (`host X ms`): the time per iteration until the last submission, before the
 * final wait. When it is close to the figure, the host's encoding sets the pace and the GPU idles.
 * A host benchmark times only the encoding on the host (no waiting), then submits and waits
 * outside the timed region; it first runs for `targetMs` untimed (V8 compiles the code up in
 * that time) and each timed region lasts a quarter of `targetMs`.
 *
 * @module
 */
import {
  type GpuInfo,
  initGpu,
  type ProfiledDispatch,
  runtime,
  startProfile,
  stopProfile,
  summarizeProfile,
  Tensor,
} from "../ops/mod.ts";

/** What a benchmark's setup learns about the run. */
export interface BenchContext {
  /** The adapter. */
  info: GpuInfo;
  /** Small problem sizes: set on CPU implementations (correctness only) or by `--quick`. */
  quick: boolean;
}

/** One registered benchmark. `S` is whatever its setup returns (inputs, sizes). */
export interface BenchmarkDef<S = unknown> {
  /** Unique name; `--only` filters on substrings of it. */
  name: string;
  /** Allocates inputs; may pick sizes from `ctx.quick`. Not timed. */
  setup: (ctx: BenchContext) => S | Promise<S>;
  /** Encodes one iteration (never waits on the GPU). Its outputs should be disposed inside. */
  run: (state: S) => void;
  /** Frees what setup allocated. */
  teardown?: (state: S) => void;
  /** Floating-point operations of one iteration (for TFLOP/s). */
  flops?: number | ((state: S) => number);
  /** Bytes moved to and from memory by one iteration (for GB/s). */
  bytes?: number | ((state: S) => number);
  /** A short description of the problem (shapes), shown in the table. */
  note?: string | ((state: S) => string);
  /** `gpu` (default) times GPU execution; `host` times only the encoding on the host. */
  kind?: "gpu" | "host";
}

/** The measurement of one benchmark. */
export interface BenchResult {
  /** Benchmark name. */
  name: string;
  /** Problem description. */
  note: string;
  /** Kind of time measured. */
  kind: "gpu" | "host";
  /** Median milliseconds per iteration. */
  ms: number;
  /** Milliseconds per iteration of every repeat. */
  samples: number[];
  /** Iterations per timed repeat. */
  iterations: number;
  /** Dispatches encoded per iteration. */
  dispatches: number;
  /** Throughput in TFLOP/s, when the benchmark declares its FLOPs. */
  tflops?: number;
  /** Throughput in GB/s, when the benchmark declares its bytes. */
  gbps?: number;
  /** Host benchmarks: milliseconds to encode 500 dispatches at this rate. */
  msPer500Dispatches?: number;
  /**
   * GPU benchmarks: median milliseconds per iteration the host spent encoding and submitting
   * (the timed region up to its final wait). Near {@link ms}, the figure is the host's pace, not
   * the GPU's.
   */
  hostMs?: number;
}

/** Timing options. */
export interface MeasureOptions {
  /**
   * Minimum length of one timed region in milliseconds (default 200; 20 in quick mode). Outside
   * quick mode a region also lasts at least {@link gpuWaitCost} / {@link MAX_WAIT_SHARE}.
   */
  targetMs?: number;
  /** Timed repeats whose median is reported (default 5). */
  repeats?: number;
  /** Untimed iterations first (default 2). */
  warmup?: number;
}

const registry: BenchmarkDef[] = [];

/** Registers a benchmark (call at module load). Names must be unique. */
export function benchmark<S>(def: BenchmarkDef<S>): void {
  if (registry.some((b) => b.name === def.name)) {
    throw new Error(`benchmark: a benchmark named '${def.name}' is already registered`);
  }
  registry.push(def as BenchmarkDef);
}

/** The registered benchmarks, in registration order. */
export function registeredBenchmarks(): readonly BenchmarkDef[] {
  return registry;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function value<S>(v: number | ((s: S) => number) | undefined, s: S): number | undefined {
  return typeof v === "function" ? v(s) : v;
}

/** Largest share of a timed region the fixed cost of its final GPU wait may take. */
export const MAX_WAIT_SHARE = 0.02;

let waitCost: Promise<number> | undefined;

/**
 * The fixed cost of one wait for the GPU in milliseconds: the median over 7 tries of a submit of
 * nothing and the wait for it (Deno polls the device on a timer, so this is about 11 ms whatever
 * the work). Measured once per process.
 */
export function gpuWaitCost(): Promise<number> {
  waitCost ??= (async () => {
    const rt = runtime();
    await rt.sync();
    const samples: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      await rt.sync();
      samples.push(performance.now() - t0);
    }
    return median(samples);
  })();
  return waitCost;
}

/** Submits `n` iterations back to back and waits once; returns the wall time in ms. */
async function timeGpu<S>(
  def: BenchmarkDef<S>,
  state: S,
  n: number,
): Promise<{ ms: number; hostMs: number }> {
  const rt = runtime();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    def.run(state);
    rt.flush();
  }
  const hostMs = performance.now() - t0;
  await rt.sync();
  return { ms: performance.now() - t0, hostMs };
}

/** Times one benchmark under the harness rules. */
export async function measure<S>(
  def: BenchmarkDef<S>,
  ctx: BenchContext,
  options: MeasureOptions = {},
): Promise<BenchResult> {
  const rt = runtime();
  const minimum = ctx.quick ? 0 : (await gpuWaitCost()) / MAX_WAIT_SHARE;
  const targetMs = Math.max(options.targetMs ?? (ctx.quick ? 20 : 200), minimum);
  const repeats = options.repeats ?? 5;
  const state = await def.setup(ctx);
  try {
    await rt.sync();
    const before = rt.dispatchCount;
    const warmup = Math.max(1, options.warmup ?? 2);
    for (let i = 0; i < warmup; i++) def.run(state);
    const dispatches = (rt.dispatchCount - before) / warmup;
    await rt.sync();
    const kind = def.kind ?? "gpu";
    const samples: number[] = [];
    const hostSamples: number[] = [];
    let iterations: number;
    if (kind === "host") {
      // Host time drifts while V8 tiers the code up and with garbage collection: run for a
      // target's time first, then time regions of a quarter target each (and at least 500
      // dispatches, or one iteration when nothing is dispatched), so that one collection or a
      // late recompilation moves one sample, not the median.
      let warmRuns = 0, warmMs = 0;
      while (warmMs < targetMs) {
        const t0 = performance.now();
        def.run(state);
        warmMs += performance.now() - t0;
        if (++warmRuns % 16 === 0) await rt.sync();
      }
      await rt.sync();
      const perRun = warmMs / warmRuns;
      iterations = Math.max(
        dispatches > 0 ? Math.ceil(500 / dispatches) : 1,
        Math.ceil(targetMs / 4 / perRun),
      );
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        for (let i = 0; i < iterations; i++) def.run(state);
        samples.push((performance.now() - t0) / iterations);
        await rt.sync();
      }
    } else {
      let n = 1, t = (await timeGpu(def, state, n)).ms;
      while (t < targetMs / 4 && n < 1 << 20) {
        n *= 4;
        t = (await timeGpu(def, state, n)).ms;
      }
      // The trial's time includes the fixed wait, so scaling it can fall short: grow the count
      // until one region really lasts the target (a few rounds at most).
      iterations = Math.max(1, Math.ceil((n * targetMs) / t));
      for (let round = 0; round < 4; round++) {
        const region = (await timeGpu(def, state, iterations)).ms;
        if (region >= targetMs) break;
        iterations = Math.ceil((iterations * targetMs * 1.2) / region);
      }
      for (let r = 0; r < repeats; r++) {
        const timed = await timeGpu(def, state, iterations);
        samples.push(timed.ms / iterations);
        hostSamples.push(timed.hostMs / iterations);
      }
    }
    const ms = median(samples);
    const flops = value(def.flops, state), bytes = value(def.bytes, state);
    const note = typeof def.note === "function" ? def.note(state) : def.note ?? "";
    return {
      name: def.name,
      note,
      kind,
      ms,
      samples,
      iterations,
      dispatches,
      tflops: flops !== undefined ? flops / (ms * 1e9) : undefined,
      gbps: bytes !== undefined ? bytes / (ms * 1e6) : undefined,
      msPer500Dispatches: kind === "host" && dispatches > 0 ? (ms * 500) / dispatches : undefined,
      hostMs: hostSamples.length > 0 ? median(hostSamples) : undefined,
    };
  } finally {
    def.teardown?.(state);
    await rt.sync();
    rt.trimPool();
  }
}

/** Options of {@link runBenchmarks}. */
export interface RunOptions extends MeasureOptions {
  /** Run only benchmarks whose name contains one of these substrings (all when empty). */
  only?: string[];
  /** Force small sizes (default: on CPU implementations). */
  quick?: boolean;
  /** Called after each benchmark (e.g. to print a table row as it completes). */
  onResult?: (r: BenchResult) => void;
}

/** Starts the GPU if needed and runs the registered benchmarks that match the filters. */
export async function runBenchmarks(options: RunOptions = {}): Promise<BenchResult[]> {
  const info = await initGpu();
  const ctx: BenchContext = { info, quick: options.quick ?? info.isCpu };
  const only = options.only ?? [];
  const results: BenchResult[] = [];
  for (const def of registry) {
    if (only.length > 0 && !only.some((s) => def.name.includes(s))) continue;
    const r = await measure(def, ctx, options);
    results.push(r);
    options.onResult?.(r);
  }
  return results;
}

/** One table row: name, problem, time, throughput, dispatches. */
export function formatRow(r: BenchResult): string {
  const time = r.kind === "host" ? `${r.ms.toFixed(3)} ms host` : `${r.ms.toFixed(3)} ms`;
  const rate = [
    r.tflops === undefined
      ? ""
      : r.tflops >= 0.1
      ? `${r.tflops.toFixed(2)} TFLOP/s`
      : `${(r.tflops * 1000).toFixed(2)} GFLOP/s`,
    r.gbps === undefined
      ? ""
      : r.gbps >= 1
      ? `${r.gbps.toFixed(1)} GB/s`
      : `${(r.gbps * 1000).toFixed(1)} MB/s`,
    r.msPer500Dispatches !== undefined
      ? `encoding 500 dispatches: ${r.msPer500Dispatches.toFixed(2)} ms host`
      : "",
    r.hostMs !== undefined ? `host ${r.hostMs.toFixed(3)} ms` : "",
  ].filter((s) => s).join(", ");
  const spread = r.samples.length > 1
    ? ` (±${((100 * (Math.max(...r.samples) - Math.min(...r.samples))) / (2 * r.ms)).toFixed(0)}%)`
    : "";
  return `${r.name.padEnd(28)} ${r.note.padEnd(34)} ${(time + spread).padStart(22)}  ` +
    `${String(r.dispatches).padStart(4)} disp  ${rate}`;
}

/** The table header matching {@link formatRow}. */
export function formatHeader(): string {
  return `${"benchmark".padEnd(28)} ${"problem".padEnd(34)} ${
    "time/iter (spread)".padStart(22)
  }  ` +
    `${"dispatches".padStart(10)}  throughput`;
}

/**
 * A tensor of uniform values in [-1, 1) from a fixed-seed generator (benchmarks use random data:
 * constant inputs can run faster than real ones).
 */
export function randomTensor(shape: readonly number[], seed = 1): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = new Float32Array(n);
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = (s >>> 0) / 2147483648 - 1;
  }
  return Tensor.from(data, shape);
}

/**
 * Frees an op's recorded output together with what its tape node keeps for the backward, for
 * benchmarks that run an op's forward (and its node's backward) without a loss around it.
 */
export function releaseRecorded(out: Tensor): void {
  for (const s of out.node?.saved ?? []) s.dispose();
  out.node = null;
  out.dispose();
}

/**
 * Prints profiled dispatches summed by kernel, largest first (at most `top` of them), under
 * `title` and their total GPU time.
 */
export function printProfileRows(
  title: string,
  dispatches: readonly ProfiledDispatch[],
  top = Infinity,
): void {
  const rows = summarizeProfile(dispatches).sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  console.log(`${title}: ${total.toFixed(3)} ms of kernels`);
  for (const r of rows.slice(0, top)) {
    const share = (100 * r.ms / total).toFixed(1).padStart(5);
    console.log(
      `  ${r.kernel.padEnd(44)} ${String(r.launches).padStart(4)}× ${
        r.ms.toFixed(3).padStart(8)
      } ms ${share}%`,
    );
  }
}

/**
 * Prints the GPU time of every kernel of one iteration of `def` (timestamp queries), largest
 * first, under a line with their sum; one untimed iteration first compiles the kernels. Says so
 * instead where the adapter has no timestamp queries.
 */
export async function printKernelProfile<S>(
  def: BenchmarkDef<S>,
  ctx: BenchContext,
): Promise<void> {
  if (!ctx.info.timestamps) {
    console.log(`profile: ${ctx.info.description} has no timestamp queries`);
    return;
  }
  const state = await def.setup(ctx);
  try {
    def.run(state);
    await runtime().sync();
    startProfile();
    def.run(state);
    const dispatches = await stopProfile();
    const note = typeof def.note === "function" ? def.note(state) : def.note;
    printProfileRows(`profile of ${def.name}${note ? ` (${note})` : ""}`, dispatches);
  } finally {
    def.teardown?.(state);
  }
}

/**
 * Prints the adapter and, in quick mode, that the problems are small (on a CPU implementation,
 * that the figures show correctness only).
 */
export function printAdapter(info: GpuInfo, quick: boolean): void {
  console.log(`adapter: ${info.description}${info.isCpu ? " (CPU implementation)" : ""}`);
  if (quick) {
    console.log(
      "quick mode: small problems" +
        (info.isCpu ? "; CPU figures show correctness only, not GPU performance" : ""),
    );
  }
}

/**
 * The context of a bench module run by itself, its adapter printed: quick with `--quick` in
 * `args` or on a CPU implementation.
 */
export async function standaloneContext(
  args: readonly string[] = Deno.args,
): Promise<BenchContext> {
  const info = await initGpu();
  const ctx: BenchContext = { info, quick: args.includes("--quick") || info.isCpu };
  printAdapter(info, ctx.quick);
  return ctx;
}

/**
 * Times `defs` as a module run by itself does: with `--profile` in `args` every one's kernels
 * first ({@link printKernelProfile}), then the table of their timings.
 */
export async function printTimings(
  defs: readonly BenchmarkDef[],
  ctx: BenchContext,
  args: readonly string[] = Deno.args,
): Promise<void> {
  if (args.includes("--profile")) {
    for (const def of defs) await printKernelProfile(def, ctx);
  }
  console.log(formatHeader());
  for (const def of defs) console.log(formatRow(await measure(def, ctx)));
}
