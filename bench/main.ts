/**
 * Runs the benchmarks: `deno task bench [--json] [--quick] [--only <name>]...`.
 *
 * Prints the adapter, then one table row per benchmark (or, with `--json`, one JSON object with
 * the adapter and every result). On CPU implementations (lavapipe, llvmpipe) problem sizes are
 * small and the figures only show that everything runs.
 *
 * Every module in `bench/` except this one, the harness and the scripts in {@link SCRIPTS} is
 * imported, and registers its benchmarks with `benchmark()` from `bench/harness.ts`.
 *
 * @module
 */
import { initGpu } from "../ops/mod.ts";
import {
  formatHeader,
  formatRow,
  gpuWaitCost,
  MAX_WAIT_SHARE,
  printAdapter,
  runBenchmarks,
} from "./harness.ts";

/** Modules of `bench/` that are not benchmark registrations. */
export const SCRIPTS = [
  "main.ts",
  "harness.ts",
  "compare.ts",
  "matmul_sweep.ts",
  "ssd_kernels.ts",
  "train_step.ts",
];

/** Imports every benchmark module of this folder, the ones this folder's owner wrote first. */
async function loadModules(): Promise<void> {
  const first = ["copy_bench.ts", "matmul_bench.ts", "encode_bench.ts"];
  const dir = new URL(".", import.meta.url);
  const others = [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((f) => f.endsWith(".ts") && !SCRIPTS.includes(f) && !first.includes(f))
    .sort();
  for (const f of [...first, ...others]) await import(new URL(f, dir).href);
}

function parseArgs(args: string[]): { json: boolean; quick?: boolean; only: string[] } {
  const out: { json: boolean; quick?: boolean; only: string[] } = { json: false, only: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--json") out.json = true;
    else if (a === "--quick") out.quick = true;
    else if (a === "--only") out.only.push(...(args[++i] ?? "").split(",").filter((s) => s));
    else if (a.startsWith("--only=")) out.only.push(...a.slice(7).split(",").filter((s) => s));
    else throw new Error(`bench: unknown argument '${a}' (use --json, --quick, --only <name>)`);
  }
  return out;
}

if (import.meta.main) {
  const args = parseArgs(Deno.args);
  const info = await initGpu();
  await loadModules();
  const quick = args.quick ?? info.isCpu;
  if (!args.json) {
    printAdapter(info, quick);
    if (!quick) {
      const wait = await gpuWaitCost();
      console.log(
        `fixed cost of one GPU wait: ${wait.toFixed(1)} ms; every timed region lasts at least ` +
          `${(wait / MAX_WAIT_SHARE).toFixed(0)} ms (the wait under ${MAX_WAIT_SHARE * 100} %)`,
      );
    }
    console.log(formatHeader());
  }
  const results = await runBenchmarks({
    only: args.only,
    quick,
    onResult: args.json ? undefined : (r) => console.log(formatRow(r)),
  });
  if (args.json) {
    const gpuWaitMs = quick ? null : await gpuWaitCost();
    console.log(
      JSON.stringify({ adapter: info.description, isCpu: info.isCpu, quick, gpuWaitMs, results }),
    );
  }
}
