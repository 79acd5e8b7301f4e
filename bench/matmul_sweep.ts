/**
 * Tile-configuration sweep for the matrix-product kernel and work-split sweep for the copy
 * kernel: times every configuration on the benchmark shapes and prints one table per kernel, so
 * one GPU session picks the defaults (`GPU_TILES` in ops/matmul.ts, `DEFAULT_COPY_CONFIG` in
 * ops/copy.ts). Each matmul configuration is first checked against a float64 product.
 *
 * `deno run -A bench/matmul_sweep.ts [--quick] [--json <file>] [--only copy|matmul|split]
 * [--ssd4rec] [--small] [--shapes <substring>] [--kernel-time]`: `--ssd4rec` sweeps the products of an SSD4Rec ML-1M training step instead
 * of the square and Mamba-block shapes; `--small` the products with few rows, where a 64 × 64 tile
 * leaves the GPU's SMs short of workgroups: an SSD4Rec step on Amazon Beauty (about 10k packed
 * tokens) and the streaming form's per-event products (10,000 users). `--shapes serve` keeps the
 * shapes whose name contains `serve`. Each shape's first row, `default`, is the plan `matmul`
 * picks. `--kernel-time` times each product by timestamp queries (the median kernel time of
 * {@link KERNEL_TIME_DISPATCHES} dispatches) instead of the wall time of back-to-back calls, whose
 * fixed cost per call (tens of µs) hides the differences between tiles on small products.
 *
 * @module
 */
import { initGpu, readTensors, startProfile, stopProfile } from "../ops/mod.ts";
import { runtime } from "../ops/core/runtime.ts";
import { matmul, type MatmulOptions, type MatmulTiles } from "../ops/dense/matmul/mod.ts";
import { type CopyConfig, copyTensor } from "../ops/pointwise/copy.ts";
import { type BenchContext, measure, randomTensor } from "./harness.ts";

/** Tile configurations tried on every shape. */
export const SWEEP_TILES: Record<string, MatmulTiles> = {
  "64x64x8 8x8": { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 },
  "64x64x16 8x8": { bm: 64, bn: 64, bk: 16, tm: 8, tn: 8 },
  "128x64x8 8x8": { bm: 128, bn: 64, bk: 8, tm: 8, tn: 8 },
  "64x128x8 8x8": { bm: 64, bn: 128, bk: 8, tm: 8, tn: 8 },
  "128x128x8 8x8": { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
  "128x128x16 8x8": { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 },
  "128x128x8 16x8": { bm: 128, bn: 128, bk: 8, tm: 16, tn: 8 },
  "64x64x16 4x4": { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  "128x32x8 8x4": { bm: 128, bn: 32, bk: 8, tm: 8, tn: 4 },
  "32x64x16 4x4": { bm: 32, bn: 64, bk: 16, tm: 4, tn: 4 },
  "128x64x16 8x4": { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 },
  "64x128x16 4x8": { bm: 64, bn: 128, bk: 16, tm: 4, tn: 8 },
};

/** Smaller tiles, tried (with the default) on the `--small` shapes. */
export const SMALL_TILES: Record<string, MatmulTiles> = {
  "64x64x8 8x8": SWEEP_TILES["64x64x8 8x8"],
  "64x64x16 4x4": SWEEP_TILES["64x64x16 4x4"],
  "32x64x16 4x4": SWEEP_TILES["32x64x16 4x4"],
  "64x32x16 4x4": { bm: 64, bn: 32, bk: 16, tm: 4, tn: 4 },
  "32x32x16 4x4": { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 },
  "32x32x8 4x4": { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 },
  "64x32x8 8x4": { bm: 64, bn: 32, bk: 8, tm: 8, tn: 4 },
  "32x64x8 4x8": { bm: 32, bn: 64, bk: 8, tm: 4, tn: 8 },
};

/** Configurations also tried with these split-K counts on the long-K weight gradients. */
const SPLIT_SWEEP = {
  configs: ["64x64x8 8x8", "64x64x16 8x8", "64x64x16 4x4", "128x128x8 8x8", "64x128x16 4x8"],
  splits: [16, 33, 66, 132, 264],
};

interface Shape {
  name: string;
  aShape: number[];
  bShape: number[];
  options: MatmulOptions;
}

/**
 * The products of an SSD4Rec ML-1M training step (d 256, d_inner 512, d_state 64, 32 heads,
 * FFN 1024) over T = 200,000 packed tokens: each Mamba-2 projection (z and x 512 rows of
 * in_proj, B and C 64, dt 32), out_proj and the feed-forward layers, forward, dA and dB.
 */
function ssd4recShapes(quick: boolean): Shape[] {
  const T = quick ? 4096 : 200_000;
  const list: Shape[] = [];
  // [in, out] of every Linear layer, each once.
  for (const [k, n] of [[256, 512], [256, 64], [256, 32], [512, 256], [256, 1024], [1024, 256]]) {
    const tag = `${k}→${n}`;
    list.push(
      { name: `${tag} fwd`, aShape: [T, k], bShape: [n, k], options: { transB: true } },
      { name: `${tag} dA`, aShape: [T, n], bShape: [n, k], options: {} },
      // dW = dYᵀ·X: [n, k] from dY [T, n] and X [T, k].
      { name: `${tag} dB`, aShape: [T, n], bShape: [T, k], options: { transA: true } },
    );
  }
  return list;
}

/**
 * Products with few rows: an SSD4Rec training step on Amazon Beauty (10,240 packed tokens; in_proj
 * 256→1184, out_proj 512→256, the feed-forward 256↔1024; forward and dA, whose outputs have the
 * step's rows) and the streaming form's products for 10,000 users (Mamba4Rec d 64: in_proj
 * 64→256, out_proj 128→64, the feed-forward 64↔256).
 */
function smallShapes(quick: boolean): Shape[] {
  const T = quick ? 1024 : 10_240, users = quick ? 1000 : 10_000;
  const list: Shape[] = [];
  for (const [k, n] of [[256, 1184], [512, 256], [256, 1024], [1024, 256]]) {
    const tag = `${k}→${n}`;
    list.push(
      { name: `${tag} fwd`, aShape: [T, k], bShape: [n, k], options: { transB: true } },
      { name: `${tag} dA`, aShape: [T, n], bShape: [n, k], options: {} },
    );
  }
  for (const [k, n] of [[64, 256], [128, 64], [256, 64]]) {
    list.push({
      name: `serve ${k}→${n}`,
      aShape: [users, k],
      bShape: [n, k],
      options: { transB: true },
    });
  }
  return list;
}

function shapes(quick: boolean): Shape[] {
  const n = quick ? 256 : 4096, rows = quick ? 4096 : 409_600;
  const list: Shape[] = [];
  for (const q of [n / 4, n / 2, n]) {
    list.push({ name: `${q}³`, aShape: [q, q], bShape: [q, q], options: {} });
  }
  list.push({ name: `${n}³ ·Bᵀ`, aShape: [n, n], bShape: [n, n], options: { transB: true } });
  for (const [k, m] of [[64, 256], [256, 64]]) {
    list.push(
      { name: `${k}→${m} fwd`, aShape: [rows, k], bShape: [k, m], options: {} },
      { name: `${k}→${m} dA`, aShape: [rows, m], bShape: [k, m], options: { transB: true } },
      { name: `${k}→${m} dB`, aShape: [rows, k], bShape: [rows, m], options: { transA: true } },
    );
  }
  return list;
}

function flopsOf(s: Shape): number {
  const m = s.options.transA ? s.aShape[1] : s.aShape[0];
  const k = s.options.transA ? s.aShape[0] : s.aShape[1];
  const n = s.options.transB ? s.bShape[0] : s.bShape[1];
  return 2 * m * n * k;
}

/** Largest relative error (2-norm) of a configuration over the four layouts of a ragged product. */
async function checkTiles(tiles: MatmulTiles): Promise<number> {
  const [m, n, k] = [259, 263, 129];
  let worst = 0;
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = randomTensor(transA ? [k, m] : [m, k], 11);
      const b = randomTensor(transB ? [n, k] : [k, n], 12);
      const c = matmul(a, b, { transA, transB, tiles });
      const [ha, hb, hc] = await readTensors([a, b, c]);
      let num = 0, den = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let q = 0; q < k; q++) {
            s += ha[transA ? q * m + i : i * k + q] * hb[transB ? j * k + q : q * n + j];
          }
          num += (hc[i * n + j] - s) ** 2;
          den += s * s;
        }
      }
      worst = Math.max(worst, Math.sqrt(num / den));
      for (const t of [a, b, c]) t.dispose();
    }
  }
  return worst;
}

/** Dispatches whose median kernel time `--kernel-time` reports. */
export const KERNEL_TIME_DISPATCHES = 30;

/** The median GPU time of `run`'s one dispatch over {@link KERNEL_TIME_DISPATCHES} calls, in ms. */
async function medianKernelMs(run: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) run();
  await runtime().sync();
  startProfile();
  for (let i = 0; i < KERNEL_TIME_DISPATCHES; i++) run();
  const ms = (await stopProfile()).map((d) => d.ms).sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

interface Row {
  kernel: string;
  config: string;
  shape: string;
  ms: number;
  tflops?: number;
  gbps?: number;
  error?: string;
}

async function sweepMatmul(
  ctx: BenchContext,
  rows: Row[],
  splitsOnly: boolean,
  set: "default" | "ssd4rec" | "small",
  shapeFilter: string,
  kernelTime: boolean,
): Promise<void> {
  const configs = Object.entries(set === "small" ? SMALL_TILES : SWEEP_TILES);
  if (!splitsOnly) {
    for (const [name, tiles] of configs) {
      let err: number;
      try {
        err = await checkTiles(tiles);
      } catch (e) {
        console.log(`check ${name} failed: ${e}`);
        err = NaN;
      }
      console.log(`check ${name.padEnd(16)} max relative error ${err.toExponential(2)}`);
      if (!(err < 1e-5)) {
        rows.push({ kernel: "matmul", config: name, shape: "check", ms: NaN, error: `${err}` });
      }
    }
  }
  const shapeList = set === "ssd4rec"
    ? ssd4recShapes(ctx.quick)
    : set === "small"
    ? smallShapes(ctx.quick)
    : shapes(ctx.quick);
  for (const s of shapeList.filter((s) => s.name.includes(shapeFilter))) {
    console.log(`${new Date().toISOString()} ${s.name}`);
    const a = randomTensor(s.aShape, 1), b = randomTensor(s.bShape, 2);
    const flops = flopsOf(s);
    const variants: [string, MatmulTiles | undefined][] = [["default", undefined]];
    if (!splitsOnly) variants.push(...configs);
    if (s.options.transA) {
      // The long-K weight gradients: split counts around the number of SMs.
      for (const name of SPLIT_SWEEP.configs) {
        for (const splits of SPLIT_SWEEP.splits) {
          variants.push([`${name} s${splits}`, { ...SWEEP_TILES[name], splits }]);
        }
      }
    }
    for (const [name, tiles] of variants) {
      const options = { ...s.options, tiles };
      try {
        const run = () => matmul(a, b, options).dispose();
        const r = kernelTime
          ? await medianKernelMs(run).then((ms) => ({ ms, tflops: flops / ms / 1e9 }))
          : await measure(
            { name, setup: () => null, run, flops },
            ctx,
            { targetMs: ctx.quick ? 10 : 100, repeats: 3, warmup: 1 },
          );
        rows.push({ kernel: "matmul", config: name, shape: s.name, ms: r.ms, tflops: r.tflops });
        console.log(
          `${s.name.padEnd(12)} ${name.padEnd(22)} ${r.ms.toFixed(3).padStart(9)} ms ` +
            `${r.tflops!.toFixed(2).padStart(7)} TFLOP/s`,
        );
      } catch (e) {
        rows.push({ kernel: "matmul", config: name, shape: s.name, ms: NaN, error: String(e) });
        console.log(`${s.name.padEnd(12)} ${name.padEnd(22)} failed: ${e}`);
      }
    }
    a.dispose();
    b.dispose();
  }
}

/** Runs square products for a while so the clocks are up before the first measurement. */
async function warmUp(ctx: BenchContext): Promise<void> {
  const n = ctx.quick ? 128 : 4096;
  const a = randomTensor([n, n], 1);
  const t0 = performance.now();
  while (performance.now() - t0 < (ctx.quick ? 100 : 2000)) {
    for (let i = 0; i < 20; i++) matmul(a, a).dispose();
    await readTensors([a]);
  }
  a.dispose();
}

async function sweepCopy(ctx: BenchContext, rows: Row[]): Promise<void> {
  const n = ctx.quick ? 1 << 20 : 1 << 28;
  const src = randomTensor([n]);
  for (const workgroup of [128, 256, 512]) {
    for (const vec4PerThread of [1, 2, 4, 8]) {
      const config: CopyConfig = { workgroup, vec4PerThread };
      const name = `wg${workgroup} v${vec4PerThread}`;
      const r = await measure(
        {
          name,
          setup: () => null,
          run: () => copyTensor(src, config).dispose(),
          bytes: 8 * n,
        },
        ctx,
        { targetMs: ctx.quick ? 10 : 100, repeats: 3, warmup: 1 },
      );
      rows.push({
        kernel: "copy",
        config: name,
        shape: `${(4 * n) / 2 ** 20} MiB`,
        ms: r.ms,
        gbps: r.gbps,
      });
      console.log(
        `copy ${name.padEnd(10)} ${r.ms.toFixed(3).padStart(8)} ms ${
          r.gbps!.toFixed(0).padStart(6)
        } GB/s`,
      );
    }
  }
  src.dispose();
}

if (import.meta.main) {
  const args = Deno.args;
  const info = await initGpu();
  const quick = args.includes("--quick") || info.isCpu;
  const jsonAt = args.indexOf("--json");
  const onlyAt = args.indexOf("--only");
  const only = onlyAt >= 0 ? args[onlyAt + 1] : "";
  console.log(`adapter: ${info.description}${quick ? " (quick: small problems)" : ""}`);
  const ctx: BenchContext = { info, quick };
  const rows: Row[] = [];
  await warmUp(ctx);
  if (!only || only === "copy") await sweepCopy(ctx, rows);
  if (!only || only === "matmul" || only === "split") {
    const set = args.includes("--ssd4rec")
      ? "ssd4rec"
      : args.includes("--small")
      ? "small"
      : "default";
    const shapesAt = args.indexOf("--shapes");
    const shapeFilter = shapesAt >= 0 ? args[shapesAt + 1] : "";
    const kernelTime = args.includes("--kernel-time");
    if (kernelTime && !info.timestamps) {
      throw new Error(`--kernel-time: ${info.description} has no timestamp queries`);
    }
    await sweepMatmul(ctx, rows, only === "split", set, shapeFilter, kernelTime);
  }
  if (jsonAt >= 0) {
    await Deno.writeTextFile(args[jsonAt + 1], JSON.stringify({ adapter: info.description, rows }));
  }
  // Best configuration per shape.
  const best = new Map<string, Row>();
  for (const r of rows) {
    if (r.kernel !== "matmul" || !(r.tflops! > 0)) continue;
    const cur = best.get(r.shape);
    if (!cur || r.tflops! > cur.tflops!) best.set(r.shape, r);
  }
  for (const [shape, r] of best) {
    console.log(`best ${shape.padEnd(12)} ${r.config.padEnd(22)} ${r.tflops!.toFixed(2)} TFLOP/s`);
  }
}
