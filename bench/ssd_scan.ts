/**
 * SSD scan benchmarks at SSD4Rec batch sizes: one packed row of T tokens holding 1,024 segments of
 * random lengths (1,023 random cut points), H 32 heads of P 16, N 64 states, G 1 group, dt softplus
 * with bias, D given, no z: T = 200,000 (an ML-1M batch) and T = 46,000 (a KuaiRand batch).
 * "forward" is the training forward (it keeps what the backward needs); "forward+backward" adds
 * the scan's own backward (every gradient), without a loss around it.
 *
 * Peer: mamba_ssm 2.2's Triton `mamba_chunk_scan_combined` on an H200 at the same sizes (float32
 * inputs, its default TF32 dots, chunk 256): forward 4.32 ms and forward+backward 15.36 ms at
 * T = 200,000; 1.10 ms and 4.44 ms at T = 46,000.
 *
 * Floor, per call at T = 200,000 (scales with T): the recurrence S ← a·S + Δx ⊗ B, y = S·C does
 * 5·T·H·P·N = 33 GFLOP (non-tensor float32 peak ≈ 67 TFLOP/s on an H100 or H200 → 0.5 ms); the
 * forward reads x, dt, B, C and writes y, ≈ 0.93 GB (0.2 ms at 4.8 TB/s). The backward does about
 * twice the forward's arithmetic (the adjoint state, dx, dB, dC and the decay gradient) and moves
 * ≈ 2.4 GB. The dual form inside a chunk adds ≈ (L/2)·P per token and head for chunks of L tokens.
 *
 * History (T = 200,000; ms). First version (one invocation per token, chunk 64), H200: forward
 * 23.6, forward + backward 144.7 (T = 46,000: 4.6 and 33.6). With pair matrices in 64 × 64 tiles,
 * registers instead of indexed arrays and vec4 reads, H100: 10.3 / 48.2 (2.17 / 11.2); its profile
 * (timestamps, `--profile`): head gradients 28.1 of 45.4, output 7.3, chunk states 1.55 each way.
 * Every heavy kernel as a chunk product (`ops/sequence/ssd_scan/chunk_gemm.ts`), H100: with 8 × 8
 * outputs per thread its kernels profiled 2–6× slower than before (chunk states 8.6 ms against
 * 1.55); with 4 × 4 per thread and the decays precomputed per token, 9.2 / 24.0 (1.91 / 5.63);
 * the finishing kernel's reads coalesced and masked pairs skipped, 7.5 / 20.8 (1.61 / 5.18), same
 * call as the next; the state and pair terms of y and of û fused into one product each: 6.8 / 18.0
 * (1.23 / 4.42); per-head products in 32-row tiles (causal slices skipped per tile): 6.4 / 17.2
 * (1.21 / 3.98), against 6.2 / 17.3 (1.23 / 4.13) without, in the same call. Chunk 32 is slower
 * (7.6 / 27.5). Profile of that last version (16.2 ms): output 3.24, chunk states 1.49 and 1.11,
 * carries 0.42 and 0.45, input gradient 2.51, finishing kernel 2.49, W 1.94 (2.63 while its
 * masked weights were a branch, now a select), dB 1.24, dC 0.93. A profile taken right after
 * `--check` read every kernel about four times slower than the benchmark: take profiles first.
 * The recurrent forward (the default for up to 64 states), H100: 5.10 / 16.0 (1.24 / 3.87), its
 * kernel 4.81 ms, against the chunked forward's 5.40 / 16.4 (1.13 / 3.77) in the same call; with B
 * and C staged as zero-padded vec4 rows and Δ, x and the decays per round, 4.44 / 15.3 (1.08 /
 * 3.70), kernel 4.15 ms (two calls agree within 0.6%); with 4 channels × 16 states per invocation
 * instead of 1 × 32 the kernel took 6.52 ms (reverted). On an H200, the layouts of the recurrent
 * forward (workgroup of 64 / 128 / 256 invocations, 16 / 32 / 64 states per invocation, 4 to 32
 * tokens staged per round; fwd / fwd + bwd at T = 200,000): two invocations sharing a row of 64,
 * 128 invocations, 8 tokens (the layout then) 4.38 / 15.37 (1.06 / 3.76); with 4 tokens 4.08; 16
 * or 32 tokens 5.99 and 9.41; 64 or 256 invocations 5.08 and 4.66; four invocations of 16 states
 * 7.18; **one invocation holding the whole row of 64, 128 invocations, 8 tokens 3.04 / 14.04
 * (0.757 / 3.46)**, the default since (with 4 tokens 3.32, 16 tokens 3.95, 64 invocations 3.13,
 * 256 invocations 4.53). Its float64 check at full size: y 3.5e-7, every gradient ≤ 3.2e-6.
 * `--forward=chunked` times the chunked forward beside the default.
 *
 * Registered with `bench/harness.ts` (run by `deno task bench`); standalone:
 * `deno run -A bench/ssd_scan.ts [--quick] [--chunks=64,128] [--forward=chunked] [--check]
 * [--profile | --profile-only]`: `--chunks` adds those chunk sizes, `--forward` those forms of the
 * forward; `--profile` prints the GPU time of every kernel of one forward + backward (timestamp
 * queries) before the timings, `--profile-only` instead of them;
 * "last" rows time `ssdScanLast`, the scan read at each segment's last token (SSD4Rec's last
 * layer), at the same sizes.
 * `--check` first compares one forward and backward at the benchmark sizes with the float64
 * reference (the output gradient is zero outside 16 sampled segments, the longest among them, so
 * the reference runs only those, each alone). On CPU implementations the sizes shrink and the
 * figures only show that everything runs.
 *
 * @module
 */
import {
  backward,
  initGpu,
  mul,
  readTensors,
  requireGrad,
  ssdPieces,
  ssdScan,
  ssdScanLast,
  ssdScanReference,
  ssdScanReferenceBackward,
  sumAll,
  Tensor,
  tidy,
} from "../ops/mod.ts";
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
} from "./harness.ts";

/** Heads, head dimension, states, groups and segments of every SSD benchmark. */
export const SHAPE = { heads: 32, headDim: 16, states: 64, groups: 1, segments: 1024 };

/** Tokens of the two batches, and their small stand-ins on CPU implementations. */
const LENGTHS = {
  "ml-1m": { full: 200_000, quick: 2_000 },
  kuairand: { full: 46_000, quick: 800 },
};

/** The peer's H200 milliseconds, [forward, forward+backward]. */
const PEER: Record<keyof typeof LENGTHS, [number, number]> = {
  "ml-1m": [4.32, 15.36],
  kuairand: [1.1, 4.44],
};

/** Segment ids of `segments` segments over `length` tokens, from random cut points. */
export function randomPacking(length: number, segments: number, seed = 1): Int32Array {
  let a = seed >>> 0;
  const next = () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
  const cuts = new Set<number>();
  while (cuts.size < Math.min(segments, length) - 1) {
    cuts.add(1 + Math.floor(next() * (length - 1)));
  }
  const ids = new Int32Array(length);
  let id = 0;
  for (let t = 0; t < length; t++) {
    if (cuts.has(t)) id++;
    ids[t] = id;
  }
  return ids;
}

interface SsdState {
  tensors: Tensor[];
  pieces: { dispose(): void };
  run: () => void;
  note: string;
  flops: number;
  bytes: number;
}

/** The forward's form, as `ssdScan`'s `forward` option takes it. */
type ForwardForm = "auto" | "recurrent" | "chunked";

/** Which output is read: every token's (`ssdScan`), or each segment's last (`ssdScanLast`). */
type Read = "all" | "last";

function ssdSetup(
  ctx: BenchContext,
  which: keyof typeof LENGTHS,
  withBackward: boolean,
  chunk?: number,
  forward: ForwardForm = "auto",
  read: Read = "all",
): SsdState {
  const T = ctx.quick ? LENGTHS[which].quick : LENGTHS[which].full;
  const { heads: H, headDim: P, states: N, groups: G, segments } = SHAPE;
  const pieces = ssdPieces(1, T, randomPacking(T, segments), chunk);
  // x, B, C uniform in [−1, 1); Δ = softplus(dt + bias) with dt, bias in [−1, 1) lies in about
  // (0.13, 2.1); A = −(1..H)/8 keeps the decays away from both 0 and 1.
  const x = requireGrad(randomTensor([1, T, H, P], 1));
  const dt = requireGrad(randomTensor([1, T, H], 2));
  const A = requireGrad(Tensor.from(Float32Array.from({ length: H }, (_, h) => -(1 + h) / 8)));
  const B = requireGrad(randomTensor([1, T, G, N], 4));
  const C = requireGrad(randomTensor([1, T, G, N], 5));
  const D = requireGrad(randomTensor([H], 6));
  const dtBias = requireGrad(randomTensor([H], 7));
  const gy = randomTensor(read === "last" ? [pieces.segments, H, P] : [1, T, H, P], 9);
  const options = { D, dtBias, dtSoftplus: true, seqIdx: pieces };
  const run = () => {
    const y = read === "last"
      ? ssdScanLast(x, dt, A, B, C, options)
      : ssdScan(x, dt, A, B, C, { ...options, forward }).y;
    if (withBackward) { for (const g of y.node!.backward(gy)) g?.dispose(); }
    releaseRecorded(y);
  };
  const big = T * H * P * 4, small = T * G * N * 4, step = T * H * 4;
  if (read === "last") {
    // Forward: x, B, dt read, a weight per (token, head) and B·C per token. Backward: x, B, dt
    // read again; dx, dB, dC written; ∂dt and the decays' weights written, read and rewritten.
    return {
      tensors: [x, dt, A, B, C, D, dtBias, gy],
      pieces,
      run,
      note: `T${T} H${H} P${P} N${N}, each segment's last token`,
      flops: (withBackward ? 3 : 1) * 2 * T * (H * P + G * N),
      bytes: big + small + step + (withBackward ? 2 * big + 3 * small + 6 * step : 0),
    };
  }
  const forwardBytes = 2 * big + 2 * small + step;
  const backwardBytes = 3 * big + 4 * small + 2 * step;
  const recurrence = T * H * P * N;
  return {
    tensors: [x, dt, A, B, C, D, dtBias, gy],
    pieces,
    run,
    note: `T${T} H${H} P${P} N${N} chunk ${pieces.chunk}; H200 peer ${
      PEER[which][withBackward ? 1 : 0]
    } ms`,
    flops: (withBackward ? 15 : 5) * recurrence,
    bytes: forwardBytes + (withBackward ? backwardBytes : 0),
  };
}

function registerSsd(
  which: keyof typeof LENGTHS,
  withBackward: boolean,
  chunk?: number,
  forward: ForwardForm = "auto",
  read: Read = "all",
): void {
  const form = forward === "auto" ? "" : ` ${forward}`;
  benchmark<SsdState>({
    name: `ssd ${which}${read === "last" ? " last" : ""} ${withBackward ? "fwd+bwd" : "fwd"}${
      chunk ? ` chunk ${chunk}` : ""
    }${form}`,
    setup: (ctx) => ssdSetup(ctx, which, withBackward, chunk, forward, read),
    run: (s) => s.run(),
    teardown: (s) => {
      s.tensors.forEach((t) => t.dispose());
      s.pieces.dispose();
    },
    flops: (s) => s.flops,
    bytes: (s) => s.bytes,
    note: (s) => s.note,
  });
}

for (const which of ["ml-1m", "kuairand"] as const) {
  registerSsd(which, false);
  registerSsd(which, true);
  registerSsd(which, false, undefined, "auto", "last");
  registerSsd(which, true, undefined, "auto", "last");
}

/** Tokens [start, end) of every segment of a packing. */
function segmentRanges(ids: Int32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let t = 0; t < ids.length; t++) {
    if (t === 0 || ids[t] !== ids[t - 1]) out.push([t, t + 1]);
    else out[out.length - 1][1] = t + 1;
  }
  return out;
}

/** ‖got − want‖ / ‖want‖. */
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/**
 * Compares one forward and backward at the benchmark size of `which` with the float64 reference
 * on 16 sampled segments (the output gradient is zero elsewhere, so every gradient, the parameter
 * sums included, comes from those segments alone). Returns the relative error of each result.
 */
export async function checkAgainstReference(
  which: keyof typeof LENGTHS,
  quick: boolean,
): Promise<Record<string, number>> {
  const T = quick ? LENGTHS[which].quick : LENGTHS[which].full;
  const { heads: H, headDim: P, states: N, groups: G, segments } = SHAPE;
  const ids = randomPacking(T, segments);
  const ranges = segmentRanges(ids);
  const longest = ranges.reduce(
    (m, r, i) => (r[1] - r[0] > ranges[m][1] - ranges[m][0] ? i : m),
    0,
  );
  const sample = new Set([longest]);
  for (let i = 0; sample.size < Math.min(16, ranges.length); i++) {
    sample.add((i * 7919) % ranges.length);
  }
  const inputs = [
    randomTensor([1, T, H, P], 1),
    randomTensor([1, T, H], 2),
    Tensor.from(Float32Array.from({ length: H }, (_, h) => -(1 + h) / 8)),
    randomTensor([1, T, G, N], 4),
    randomTensor([1, T, G, N], 5),
    randomTensor([H], 6),
    randomTensor([H], 7),
  ];
  const raw = (await readTensors(inputs)).map((a) => Float64Array.from(a as Float32Array));
  const gyHost = new Float64Array(T * H * P);
  let a = 12345;
  for (const s of sample) {
    for (let i = ranges[s][0] * H * P; i < ranges[s][1] * H * P; i++) {
      a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
      gyHost[i] = a / 2147483648 - 1;
    }
  }
  const results = tidy(() => {
    const [x, dt, A, B, C, D, dtBias] = inputs.map((t) => requireGrad(t));
    const { y } = ssdScan(x, dt, A, B, C, { D, dtBias, dtSoftplus: true, seqIdx: ids });
    backward(sumAll(mul(y, Tensor.from(Float32Array.from(gyHost), y.shape))));
    return [y, x.grad!, dt.grad!, A.grad!, B.grad!, C.grad!, D.grad!, dtBias.grad!];
  });
  const got = await readTensors(results);
  results.forEach((t) => t.dispose());
  inputs.forEach((t) => t.dispose());
  const names = ["y", "dx", "ddt", "dA", "dB", "dC", "dD", "ddtBias"];
  const want = names.map((_, i) => new Float64Array(i === 3 || i >= 6 ? H : got[i].length));
  const gotSampled = names.map((_, i) => (i === 3 || i >= 6 ? got[i] : new Float64Array(0)));
  const slices: number[][] = names.map(() => []);
  for (const s of sample) {
    const [t0, t1] = ranges[s];
    const L = t1 - t0;
    const cut = (arr: Float64Array, w: number) => arr.slice(t0 * w, t1 * w);
    const p = { batch: 1, length: L, heads: H, headDim: P, groups: G, states: N, dtSoftplus: true };
    const inp = {
      x: cut(raw[0], H * P),
      dt: cut(raw[1], H),
      A: raw[2],
      B: cut(raw[3], G * N),
      C: cut(raw[4], G * N),
      D: raw[5],
      dtBias: raw[6],
    };
    const ref = ssdScanReference(p, inp);
    const g = ssdScanReferenceBackward(p, inp, cut(gyHost, H * P));
    const perToken: [number, Float64Array, number][] = [
      [0, ref.y, H * P],
      [1, g.x, H * P],
      [2, g.dt, H],
      [4, g.B, G * N],
      [5, g.C, G * N],
    ];
    for (const [k, arr, w] of perToken) {
      want[k].set(arr, t0 * w);
      for (let i = t0 * w; i < t1 * w; i++) slices[k].push(i);
    }
    for (let h = 0; h < H; h++) {
      want[3][h] += g.A[h];
      want[6][h] += g.D![h];
      want[7][h] += g.dtBias![h];
    }
  }
  const errors: Record<string, number> = {};
  names.forEach((name, k) => {
    if (gotSampled[k].length) {
      errors[name] = relativeError(got[k], want[k]);
    } else {
      const idx = slices[k];
      errors[name] = relativeError(idx.map((i) => got[k][i]), idx.map((i) => want[k][i]));
    }
  });
  return errors;
}

if (import.meta.main) {
  const chunks = (Deno.args.find((a) => a.startsWith("--chunks="))?.slice(9) ?? "")
    .split(",").filter((s) => s).map(Number);
  for (const c of chunks) {
    for (const which of ["ml-1m", "kuairand"] as const) {
      registerSsd(which, false, c);
      registerSsd(which, true, c);
    }
  }
  const forms = (Deno.args.find((a) => a.startsWith("--forward="))?.slice(10) ?? "")
    .split(",").filter((s) => s) as ForwardForm[];
  for (const f of forms) {
    for (const which of ["ml-1m", "kuairand"] as const) {
      registerSsd(which, false, undefined, f);
      registerSsd(which, true, undefined, f);
    }
  }
  const info = await initGpu();
  const quick = Deno.args.includes("--quick") || info.isCpu;
  console.log(`adapter: ${info.description}`);
  if (Deno.args.includes("--check")) {
    for (const which of ["kuairand", "ml-1m"] as const) {
      const errors = await checkAgainstReference(which, quick);
      const list = Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`);
      console.log(`float64 check ${which}: relative error ${list.join(", ")}`);
    }
  }
  if (Deno.args.includes("--profile") || Deno.args.includes("--profile-only")) {
    for (const def of registeredBenchmarks()) {
      if (def.name === "ssd ml-1m fwd+bwd" || def.name === "ssd kuairand fwd+bwd") {
        await printKernelProfile(def, { info, quick });
      }
    }
  }
  if (!Deno.args.includes("--profile-only")) {
    console.log(formatHeader());
    for (const def of registeredBenchmarks()) {
      if (!def.name.startsWith("ssd ")) continue;
      console.log(formatRow(await measure(def, { info, quick })));
    }
  }
}
