/**
 * The tile configurations of the matrix-product kernel and how one product is planned: which
 * tiles a device uses, how many workgroups split a long reduction (split-K), and the checks a
 * configuration must pass before it is compiled.
 *
 * Floors on an NVIDIA H100 or H200 (about 67 TFLOP/s fp32 without tensor cores, 3.3–4.8 TB/s):
 * - 4096³: 137 GFLOP → 2.05 ms at peak; 201 MB of operands → 0.05 ms: compute bound.
 * - (409600×64)·(64×256) and (409600×256)·(256×64), each 13.4 GFLOP → 0.2 ms at peak; they move
 *   105 MB + 419 MB → 0.12 ms: still compute bound, but only K/bk = 4–16 slices per tile, so the
 *   prologue and the C stores weigh more.
 * - An SSD4Rec ML-1M step (T = 200,000 packed tokens, d 256, d_inner 512, FFN 1024; four Mamba-2
 *   passes, two directions of two layers): each pass's projections have N (forward), K (dA) or
 *   M (dB) of 512, 512, 64, 64 and 32 (in_proj's z, x, B, C, dt rows) and 256 ↔ 512 (out_proj),
 *   K = 256 otherwise; the first layer's FFN adds 256 ↔ 1024. Forward, dA and dB are each ≈ 0.9
 *   TFLOP a step → 13.5 ms apiece at peak, 18 ms at 50 TFLOP/s; operands move ≈ 0.2–0.8 GB per
 *   product (≤ 0.3 ms), so every one is compute bound. A weight gradient dW = dYᵀ·X reduces over
 *   all T tokens into at most 1024 × 256 outputs (≤ 64 tiles of 64 × 64): split-K, its partials
 *   ≤ 2.1 MB, summed by a second pass in microseconds.
 *
 * @module
 */
import { runtime } from "../../core/runtime.ts";

/** A tile configuration of the matrix-product kernel. */
export interface MatmulTiles {
  /** Rows of C per workgroup (a multiple of `tm`). */
  bm: number;
  /** Columns of C per workgroup (a multiple of `tn`). */
  bn: number;
  /** Reduction slice staged in workgroup memory per step (a multiple of 4). */
  bk: number;
  /** Rows of C per thread (a multiple of 4). */
  tm: number;
  /** Columns of C per thread (a multiple of 4). */
  tn: number;
  /** Workgroups that split the reduction dimension (split-K); chosen from the shape if absent. */
  splits?: number;
}

/**
 * GPU tile configurations, from sweeps on an NVIDIA H200 and H100 (bench/matmul_sweep.ts):
 * - `output`: 64×64 tiles with 8×8 outputs per thread (64 threads) were within the run-to-run
 *   spread (±5 %) of the best configuration on 1024³–4096³ and on the 409600-row products
 *   (26–29 TFLOP/s and 23–25 TFLOP/s), and make the most workgroups for small outputs. They also
 *   stayed best on products of about 10k rows (an SSD4Rec step on Amazon Beauty, forward and dA:
 *   20–24 TFLOP/s), where smaller tiles (32×32, 32×64, 64×32 of 4×4, 8×4 or 4×8 per thread) made
 *   more workgroups but ran at 15–21 (`bench/matmul_sweep.ts --small`, H100).
 * - `reduction`: for products with few output tiles and a long reduction (weight gradients),
 *   split-K with 64×64 tiles of 4×4 per thread (256 threads, more warps per workgroup to hide
 *   latency when workgroups are few) and 16-deep slices: 21.9 TFLOP/s, against 14–20 for the
 *   output configuration at any split count.
 * - `narrow`: products of at most 32 columns with no split (SSD4Rec's dt projection, N = 32) fill
 *   only half of a 64-wide tile; 128 × 32 tiles of 8 × 4 per thread (128 threads) do no wasted
 *   work (bench/matmul_bench.ts).
 * - `few`: products with few output tiles and a short reduction (the streaming form's per-event
 *   products for 10,000 users: 157 or 628 tiles of 64 × 64, K 64–256) give an SM one to five
 *   workgroups of two warps, too few to hide memory latency; 32 × 32 tiles of 4 × 4 per thread
 *   (64 threads) make four times the workgroups. The four
 *   products of one event took 0.107 ms of kernel time against 0.141 ms with `output` tiles
 *   (H100, `bench/serve.ts --profile`).
 *
 * Tiles do not change the order of any sum without split-K, so the results are the same.
 */
const GPU_TILES = {
  output: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 },
  reduction: { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  narrow: { bm: 128, bn: 32, bk: 8, tm: 8, tn: 4 },
  few: { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 },
} satisfies Record<string, MatmulTiles>;

/** Columns up to which an unsplit GPU product takes the `narrow` tiles. */
const NARROW_COLUMNS = 32;

/**
 * An unsplit GPU product with fewer `output` tiles than this and a reduction of at most
 * {@link FEW_TILES_MAX_K} takes the `few` tiles.
 */
const FEW_TILES = 1024;
/** The longest reduction for which a product with few output tiles takes the `few` tiles. */
const FEW_TILES_MAX_K = 256;

/** On CPU implementations: small kernels that compile quickly; speed is not the point there. */
const CPU_TILES: MatmulTiles = { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 };

/**
 * Split-K fills at most this many workgroups, one wave of two 256-thread reduction workgroups per
 * SM of an H100 or H200 (132 SMs): 66 splits of the 4 output tiles of a 64×256 weight gradient
 * measured best, ahead of 33 and 132. A wave and a bit takes as long as two waves, so the split
 * count is rounded down (bench/matmul_bench.ts).
 */
const GPU_TARGET_WORKGROUPS = 264;
/** On a CPU a few workgroups suffice; split-K still runs, so the tests there exercise it. */
const CPU_TARGET_WORKGROUPS = 8;
/** A split-K slice covers at least this many reduction steps: shorter ones cost a dispatch more
 * than they gain. */
const MIN_STEPS_PER_SPLIT = 16;

/** How one product runs: its tiles and how many workgroups split its reduction. */
export interface MatmulPlan {
  /** The tile configuration. */
  tiles: MatmulTiles;
  /** Workgroups along the reduction dimension (1: no split-K). */
  splits: number;
}

/**
 * The tiles and split-K count {@link matmul} uses on this device for `outputs` products of
 * `M × N` (summed over `innerBatch` products each) with reduction length `K`, unless `override`
 * fixes the tiles (and possibly the splits).
 */
export function planMatmul(
  m: number,
  n: number,
  k: number,
  outputs = 1,
  innerBatch = 1,
  override?: MatmulTiles,
): MatmulPlan {
  const cpu = runtime().info.isCpu;
  const target = cpu ? CPU_TARGET_WORKGROUPS : GPU_TARGET_WORKGROUPS;
  const outputTiles = (t: MatmulTiles) => Math.ceil(m / t.bm) * Math.ceil(n / t.bn) * outputs;
  const autoSplits = (t: MatmulTiles) =>
    splitCount(outputTiles(t), innerBatch * Math.ceil(k / t.bk), target);
  if (override) return { tiles: override, splits: override.splits ?? autoSplits(override) };
  if (cpu) return { tiles: CPU_TILES, splits: autoSplits(CPU_TILES) };
  if (autoSplits(GPU_TILES.output) === 1) {
    if (n <= NARROW_COLUMNS) return { tiles: GPU_TILES.narrow, splits: 1 };
    if (outputTiles(GPU_TILES.output) < FEW_TILES && k <= FEW_TILES_MAX_K) {
      return { tiles: GPU_TILES.few, splits: 1 };
    }
    return { tiles: GPU_TILES.output, splits: 1 };
  }
  return { tiles: GPU_TILES.reduction, splits: autoSplits(GPU_TILES.reduction) };
}

/**
 * Workgroups along the reduction for `outTiles` output tiles of `steps` reduction slices each,
 * aiming at `target` workgroups in all: none (1) once the tiles alone make half the target; else
 * as many as fit in the target without exceeding it (a partial second wave would take as long as
 * a full one), and no more than leave each split {@link MIN_STEPS_PER_SPLIT} slices.
 */
export function splitCount(outTiles: number, steps: number, target: number): number {
  if (outTiles * 2 >= target) return 1;
  return Math.max(
    1,
    Math.min(Math.floor(target / outTiles), Math.floor(steps / MIN_STEPS_PER_SPLIT)),
  );
}

/** Bytes of workgroup memory the double-buffered operand slices of tiles `t` take, with `padA`,
 * `padB` extra floats per row of each operand's slice. */
export function tileBytes(t: MatmulTiles, padA: number, padB: number): number {
  return 2 * t.bk * (t.bm + padA + t.bn + padB) * 4;
}

/** Throws a RangeError naming `op` and every problem when tiles `t` cannot run on this device. */
export function checkTiles(op: string, t: MatmulTiles): void {
  const rt = runtime();
  const threads = (t.bm / t.tm) * (t.bn / t.tn);
  const problems: string[] = [];
  for (const [name, v] of Object.entries(t)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) problems.push(`${name} = ${v}`);
  }
  if (t.tm % 4 !== 0 || t.tn % 4 !== 0) problems.push("tm and tn must be multiples of 4");
  if (t.bk % 4 !== 0) problems.push("bk must be a multiple of 4");
  if (t.bm % t.tm !== 0 || t.bn % t.tn !== 0) problems.push("bm, bn must be multiples of tm, tn");
  if (threads > rt.info.maxInvocations) {
    problems.push(`${threads} threads exceed the device's ${rt.info.maxInvocations}`);
  }
  if (tileBytes(t, 0, 0) > rt.info.maxWorkgroupBytes) {
    problems.push(`workgroup memory exceeds the device's ${rt.info.maxWorkgroupBytes} bytes`);
  }
  if (problems.length > 0) {
    throw new RangeError(`${op}: invalid tiles ${JSON.stringify(t)}: ${problems.join("; ")}`);
  }
}
