/**
 * Whether two runs of `deno task bench` agree: reads two `--json` outputs of the same adapter and
 * prints, benchmark by benchmark, the median time of each run and their relative difference,
 * largest first, marking those past the limit (3% by default: the benchmarks' repeatability bar).
 *
 *     deno task bench --json > a.json
 *     deno task bench --json > b.json
 *     deno run -A bench/compare.ts a.json b.json [--limit 0.03]
 *
 * Exit status 0 when every figure both runs share is within the limit, 1 when one is not, 2 on
 * bad input (a file that is not a benchmark JSON, two different adapters, quick-mode figures,
 * no benchmark in common). Benchmarks only one run has are listed, not judged.
 *
 * @module
 */
import type { BenchResult } from "./harness.ts";

/** What `deno task bench --json` writes. */
export interface BenchRun {
  /** The adapter's description. */
  adapter: string;
  /** Whether the adapter is a CPU implementation. */
  isCpu: boolean;
  /** Whether the problems were the small ones of quick mode. */
  quick: boolean;
  /** The fixed cost of one wait for the GPU in milliseconds (null in quick mode). */
  gpuWaitMs: number | null;
  /** Every benchmark's result. */
  results: Pick<BenchResult, "name" | "ms">[];
}

/** One benchmark in both runs. */
export interface BenchDifference {
  /** Benchmark name. */
  name: string;
  /** Median milliseconds per iteration in the first run. */
  first: number;
  /** The same in the second run. */
  second: number;
  /** |second − first| / first. */
  relative: number;
  /** Whether `relative` is within the limit. */
  within: boolean;
}

/** The comparison of two runs. */
export interface BenchComparison {
  /** The benchmarks both runs have, largest relative difference first. */
  shared: BenchDifference[];
  /** Benchmarks only one run has, by name, with the run (1 or 2) that has them. */
  unmatched: { name: string; run: 1 | 2 }[];
  /** Whether every shared benchmark is within the limit. */
  agree: boolean;
}

/** Bad input to {@link compareBenchRuns}; the message says what and where. */
export class BenchCompareError extends Error {
  /** Names the error. */
  override name = "BenchCompareError";
}

/**
 * Parses one `deno task bench --json` output; `where` names its source in errors. The JSON is the
 * last line that starts with `{` (the task runner may print a line before it).
 */
export function parseBenchRun(text: string, where: string): BenchRun {
  const line = text.split("\n").reverse().find((l) => l.trimStart().startsWith("{"));
  let run: BenchRun;
  try {
    run = JSON.parse(line ?? "");
  } catch {
    throw new BenchCompareError(
      `${where}: no JSON object found; write it with 'deno task bench --json > ${where}'`,
    );
  }
  if (
    typeof run?.adapter !== "string" || !Array.isArray(run.results) ||
    run.results.some((r) => typeof r?.name !== "string" || !(r.ms > 0))
  ) {
    throw new BenchCompareError(
      `${where}: not a benchmark run (expected { adapter, results: [{ name, ms }] } as ` +
        "'deno task bench --json' writes)",
    );
  }
  return run;
}

/**
 * Compares two runs benchmark by benchmark against `limit` (a fraction, 0.03 for 3%). Throws a
 * {@link BenchCompareError} when they come from different adapters, either holds quick-mode
 * figures, or they share no benchmark.
 */
export function compareBenchRuns(a: BenchRun, b: BenchRun, limit = 0.03): BenchComparison {
  if (a.adapter !== b.adapter) {
    throw new BenchCompareError(
      `the runs come from different adapters ('${a.adapter}' and '${b.adapter}'); timings ` +
        "compare only on the same device",
    );
  }
  if (a.quick || b.quick) {
    throw new BenchCompareError(
      "a run holds quick-mode figures (small problems, or a CPU adapter); compare full runs",
    );
  }
  const second = new Map(b.results.map((r) => [r.name, r.ms]));
  const firstNames = new Set(a.results.map((r) => r.name));
  const shared: BenchDifference[] = [];
  for (const r of a.results) {
    const ms = second.get(r.name);
    if (ms === undefined) continue;
    const relative = Math.abs(ms - r.ms) / r.ms;
    shared.push({ name: r.name, first: r.ms, second: ms, relative, within: relative <= limit });
  }
  if (shared.length === 0) {
    throw new BenchCompareError("the runs share no benchmark; run the same --only selection twice");
  }
  shared.sort((x, y) => y.relative - x.relative);
  const unmatched = [
    ...a.results.filter((r) => !second.has(r.name)).map((r) => ({ name: r.name, run: 1 as const })),
    ...b.results.filter((r) => !firstNames.has(r.name)).map((r) => ({
      name: r.name,
      run: 2 as const,
    })),
  ];
  return { shared, unmatched, agree: shared.every((d) => d.within) };
}

/** The comparison as text: one line per shared benchmark, then the unmatched ones. */
export function formatComparison(c: BenchComparison, limit: number): string {
  const width = Math.max(...c.shared.map((d) => d.name.length), 9);
  const lines = [
    `${"benchmark".padEnd(width)}  ${"run 1 ms".padStart(10)}  ${"run 2 ms".padStart(10)}  ` +
    "difference",
  ];
  for (const d of c.shared) {
    lines.push(
      `${d.name.padEnd(width)}  ${d.first.toFixed(3).padStart(10)}  ` +
        `${d.second.toFixed(3).padStart(10)}  ${(100 * d.relative).toFixed(2).padStart(6)}%` +
        (d.within ? "" : `  past ${(100 * limit).toFixed(1)}%`),
    );
  }
  for (const u of c.unmatched) lines.push(`${u.name}: only in run ${u.run}`);
  const past = c.shared.filter((d) => !d.within).length;
  lines.push(
    past === 0
      ? `all ${c.shared.length} figures within ${(100 * limit).toFixed(1)}%`
      : `${past} of ${c.shared.length} figures differ by more than ${(100 * limit).toFixed(1)}%`,
  );
  return lines.join("\n");
}

if (import.meta.main) {
  const files: string[] = [];
  let limit = 0.03;
  for (let i = 0; i < Deno.args.length; i++) {
    const arg = Deno.args[i];
    if (arg === "--limit") limit = Number(Deno.args[++i]);
    else files.push(arg);
  }
  if (files.length !== 2 || !(limit > 0)) {
    console.error("usage: deno run -A bench/compare.ts a.json b.json [--limit 0.03]");
    Deno.exit(2);
  }
  try {
    const [a, b] = await Promise.all(
      files.map(async (f) => parseBenchRun(await Deno.readTextFile(f), f)),
    );
    console.log(`adapter: ${a.adapter}`);
    const comparison = compareBenchRuns(a, b, limit);
    console.log(formatComparison(comparison, limit));
    Deno.exit(comparison.agree ? 0 : 1);
  } catch (error) {
    if (!(error instanceof BenchCompareError || error instanceof Deno.errors.NotFound)) throw error;
    console.error(`bench/compare: ${error.message}`);
    Deno.exit(2);
  }
}
