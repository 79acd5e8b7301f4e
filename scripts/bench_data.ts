/**
 * Benchmarks the data pipeline on ML-1M (or the dataset named as the first argument):
 *
 *     deno run -A scripts/bench_data.ts [dataset] [--runs N]
 *
 * Measures, in this process: text to split with the cache written; reload from the cache; one
 * epoch of prefix batches (L = 200, the default training batch) with fresh and with reused arrays;
 * one epoch of packed batches (ρ = 0.1, batch 1024); one epoch of all-positions batches. Also measures a
 * whole `deno task data stats` process reading the cache. Prints the first (cold), median and best
 * of N runs.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  allPositionsBatches,
  DEFAULT_TRAIN_BATCH_SIZE,
  loadDatasetWithInfo,
  packedBatches,
  prefixBatches,
  type SequentialDataset,
} from "../data/mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { runs: { type: "string", default: "5" } },
});
const name = positionals[0] ?? "ml-1m";
const runs = Math.max(1, Number(values.runs));
const cacheDirectory = await Deno.makeTempDir({ prefix: "ssmrec-bench-" });

/** The window length L of the prefix and all-positions epochs (Mamba4Rec's on ML-1M). */
const MAX_LENGTH = 200;

/** Samples per packed batch (SSD4Rec's training batch). */
const PACKED_BATCH_SIZE = 1024;

/** The mask ratio ρ of the packed epoch. */
const PACKED_MASK_RATIO = 0.1;

/** Seconds of each of `runs` calls. */
async function time(fn: () => unknown | Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    await fn();
    out.push((performance.now() - start) / 1000);
  }
  return out;
}

const rows: [string, number[], string][] = [];
function record(label: string, seconds: number[], note = ""): void {
  rows.push([label, seconds, note]);
}

try {
  let dataset!: SequentialDataset;
  record(
    "text -> split, cache written",
    await time(async () => {
      const info = await loadDatasetWithInfo(name, { cacheDirectory, cache: "refresh" });
      dataset = info.dataset;
    }),
  );
  record(
    "cache -> split",
    await time(async () => {
      const info = await loadDatasetWithInfo(name, { cacheDirectory });
      if (!info.fromCache) throw new Error("expected a cache hit");
    }),
  );
  const script = fileURLToPath(new URL("./data.ts", import.meta.url));
  record(
    "whole `data stats` process, cached",
    await time(async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, "stats", name, "--json", "--cache-dir", cacheDirectory],
        stdout: "null",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error("data stats failed");
    }),
    "includes Deno start-up and module loading",
  );
  const samples = dataset.statistics.trainSamples;
  for (const reuseBuffers of [false, true]) {
    let count = 0;
    record(
      `prefix epoch, L=${MAX_LENGTH}, B=${DEFAULT_TRAIN_BATCH_SIZE}, ` +
        `${reuseBuffers ? "reused" : "fresh"} arrays`,
      await time(() => {
        count = 0;
        const options = { maxLength: MAX_LENGTH, reuseBuffers, epoch: count };
        for (const b of prefixBatches(dataset, options)) {
          count += b.size;
        }
      }),
      `${count.toLocaleString("en-US")} samples`,
    );
  }
  let tokens = 0;
  record(
    `packed epoch, untruncated, rho=${PACKED_MASK_RATIO}, B=${PACKED_BATCH_SIZE}`,
    await time(() => {
      tokens = 0;
      const options = { maskRatio: PACKED_MASK_RATIO, batchSize: PACKED_BATCH_SIZE };
      for (const b of packedBatches(dataset, options)) tokens += b.tokens;
    }),
    `${(tokens / 1e6).toFixed(1)}M tokens`,
  );
  record(
    `all-positions epoch, L=${MAX_LENGTH}, B=${DEFAULT_TRAIN_BATCH_SIZE}`,
    await time(() => {
      for (const _ of allPositionsBatches(dataset, { maxLength: MAX_LENGTH })) { /* build only */ }
    }),
  );
  const s = dataset.statistics;
  console.log(
    `${s.name}: ${s.users} users, ${s.items} items, ${s.interactions} interactions, ` +
      `${samples} training samples; ${navigator.hardwareConcurrency} cores; Deno ${Deno.version.deno}; ${runs} runs`,
  );
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(`${"".padEnd(width)}  first s  median s  best s`);
  for (const [label, seconds, note] of rows) {
    const sorted = [...seconds].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const columns = [seconds[0].toFixed(3).padStart(7), median.toFixed(3).padStart(8)];
    columns.push(sorted[0].toFixed(3).padStart(6));
    console.log(`${label.padEnd(width)}  ${columns.join("  ")}${note ? `  ${note}` : ""}`);
  }
} finally {
  await Deno.remove(join(cacheDirectory), { recursive: true });
}
