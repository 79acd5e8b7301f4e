/**
 * Streaming against recomputing for a one-layer SSD4Rec (the Amazon presets' model: d 256,
 * d_inner 512, 32 heads, N 64): the events a batch of users absorbs per second through
 * {@link SSD4RecStream.observe}, against recomputing each user's representation from its window
 * of the last L = 50 items (the Amazon presets' maxLength) with the full model's forward over
 * packed windows.
 *
 * Sizes: 10,000 users over 12,102 items (Amazon Beauty's catalogue); windows recomputed in
 * packed passes of 2,000 windows (100,000 tokens, whose input projection stays under a 2 GiB
 * binding). With `--quick` (and on CPU implementations) 64 users, L 12 and a small model.
 *
 * The floor of one observe call (the bytes its row counts): per user both directions' states
 * (`[N, d_inner]` each) read and written, the window of projected rows and the small rings read
 * and written, the oldest token's inputs read: 10,000 × 2·2·64·512 floats is 2.6 GB, 0.9 ms at
 * 3 TB/s; the products (in_proj, two output projections, the feed-forward) are ~3.1 GFLOP.
 *
 * Registered with `bench/harness.ts` (`deno task bench --only "serve ssd4rec"`); standalone,
 * `deno run -A bench/serve_ssd4rec.ts [--quick] [--profile]`.
 *
 * @module
 */
import { packHistories } from "../data/mod.ts";
import {
  packedInputs,
  type PackedModelInputs,
  SSD4Rec,
  ssd4recConfig,
  SSD4RecStream,
} from "../models/mod.ts";
import { noGrad, tidy } from "../ops/mod.ts";
import { benchmark, type BenchmarkDef, printTimings, standaloneContext } from "./harness.ts";

/** Users, window length and catalogue of the comparison, full and quick. */
const SIZES = {
  full: { users: 10000, length: 50, numItems: 12102, windowsPerPass: 2000 },
  quick: { users: 64, length: 12, numItems: 300, windowsPerPass: 32 },
};

/** The model: SSD4Rec's defaults with one layer (the Amazon presets), or a small one. */
function benchModel(quick: boolean): SSD4Rec {
  const { numItems } = quick ? SIZES.quick : SIZES.full;
  return new SSD4Rec(ssd4recConfig({
    numItems,
    numLayers: 1,
    beta: 0.1,
    dropoutProb: 0,
    ...(quick ? { hiddenSize: 32, dState: 16, headDim: 8 } : {}),
  }));
}

/** Item ids `1 … numItems − 1`, a fixed sequence. */
function items(count: number, numItems: number, seed: number): Int32Array {
  return Int32Array.from(
    { length: count },
    (_, i) => 1 + ((i * 7919 + seed * 104729) % (numItems - 1)),
  );
}

const models = new Map<boolean, SSD4Rec>();
const modelFor = (quick: boolean) => {
  if (!models.has(quick)) models.set(quick, benchModel(quick));
  return models.get(quick)!;
};

interface ObserveState {
  model: SSD4Rec;
  stream: SSD4RecStream;
  users: Int32Array;
  rounds: Int32Array[];
  next: number;
}

const observe: BenchmarkDef<ObserveState> = {
  name: "serve ssd4rec observe",
  setup: (ctx) => {
    const { users, numItems } = ctx.quick ? SIZES.quick : SIZES.full;
    const model = modelFor(ctx.quick);
    const stream = new SSD4RecStream(model, { capacity: users });
    const all = Int32Array.from({ length: users }, (_, i) => i);
    // A few events first, so that every direction's terms are past the window.
    const rounds = [1, 2, 3, 4, 5].map((seed) => items(users, numItems, seed));
    for (const round of rounds) stream.observe(all, round);
    return { model, stream, users: all, rounds, next: 0 };
  },
  run: (s) => {
    s.stream.observe(s.users, s.rounds[s.next]);
    s.next = (s.next + 1) % s.rounds.length;
  },
  teardown: (s) => s.stream.dispose(),
  bytes: (s) => {
    const { hiddenSize: d, expand, dState: N, dConv, headDim } = s.model.config;
    const inner = expand * d, H = inner / headDim, convDim = inner + 2 * N;
    const perUser = 2 * (2 * N * inner + (dConv - 1) * (convDim + 2 * H) + H) +
      (2 * inner + N);
    return 4 * s.users.length * perUser;
  },
  note: (s) => `${s.users.length} users × 1 event, one layer`,
};

interface RecomputeState {
  model: SSD4Rec;
  passes: PackedModelInputs[];
  windows: number;
  length: number;
}

const recompute: BenchmarkDef<RecomputeState> = {
  name: "serve ssd4rec recompute windows",
  setup: (ctx) => {
    const { users, length, numItems, windowsPerPass } = ctx.quick ? SIZES.quick : SIZES.full;
    const model = modelFor(ctx.quick);
    const passes: PackedModelInputs[] = [];
    for (let at = 0; at < users; at += windowsPerPass) {
      const windows = Math.min(windowsPerPass, users - at);
      const ids = items(windows * length, numItems, at + 11);
      const batch = packHistories(
        Array.from({ length: windows }, (_, b) => ids.subarray(b * length, (b + 1) * length)),
      );
      passes.push(packedInputs(batch, model.config.chunkSize));
    }
    return { model, passes, windows: users, length };
  },
  run: (s) => tidy(() => noGrad(() => s.passes.forEach((p) => void s.model.forward(p, false)))),
  teardown: (s) => s.passes.forEach((p) => p.dispose()),
  note: (s) => `${s.windows} windows × L ${s.length}, ${s.passes.length} packed passes`,
};

benchmark(observe as BenchmarkDef);
benchmark(recompute as BenchmarkDef);

if (import.meta.main) {
  await printTimings([observe, recompute] as BenchmarkDef[], await standaloneContext());
}
