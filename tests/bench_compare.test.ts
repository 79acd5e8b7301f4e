/**
 * `bench/compare.ts`: two benchmark runs judged figure by figure against the repeatability limit,
 * on runs made up here (random timings drawn with a printed seed), and its refusals.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  BenchCompareError,
  type BenchRun,
  compareBenchRuns,
  formatComparison,
  parseBenchRun,
} from "../bench/compare.ts";
import { freshSeed, makeRng } from "./util.ts";

function run(results: [string, number][], extra: Partial<BenchRun> = {}): BenchRun {
  return {
    adapter: "NVIDIA H200",
    isCpu: false,
    quick: false,
    gpuWaitMs: 11.2,
    results: results.map(([name, ms]) => ({ name, ms })),
    ...extra,
  };
}

Deno.test("bench compare: each shared figure's relative difference, largest first, judged against the limit", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const names = Array.from({ length: 9 }, (_, i) => `bench ${i}`);
  const first = names.map((n) => [n, 0.1 + 20 * rng()] as [string, number]);
  // Differences of 0–6%, either way, so some figures pass a 3% limit and some do not.
  const factors = names.map(() => 1 + (rng() < 0.5 ? -1 : 1) * 0.06 * rng());
  const second = first.map(([n, ms], i) => [n, ms * factors[i]] as [string, number]);
  const c = compareBenchRuns(run(first), run([...second, ["only here", 1]]), 0.03);
  assertEquals(c.shared.length, names.length, `seed ${seed}`);
  for (let i = 1; i < c.shared.length; i++) {
    assert(c.shared[i - 1].relative >= c.shared[i].relative, `seed ${seed}: largest first`);
  }
  for (const d of c.shared) {
    const i = names.indexOf(d.name);
    const want = Math.abs(factors[i] - 1);
    assert(Math.abs(d.relative - want) < 1e-12, `seed ${seed}: ${d.name} ${d.relative} vs ${want}`);
    assertEquals(d.within, want <= 0.03, `seed ${seed}: ${d.name}`);
  }
  assertEquals(c.agree, factors.every((f) => Math.abs(f - 1) <= 0.03), `seed ${seed}`);
  assertEquals(c.unmatched, [{ name: "only here", run: 2 }]);
  const text = formatComparison(c, 0.03);
  assert(text.includes("only here: only in run 2"), text);
  const past = factors.filter((f) => Math.abs(f - 1) > 0.03).length;
  assert(
    text.endsWith(
      past === 0
        ? `all ${names.length} figures within 3.0%`
        : `${past} of ${names.length} figures differ by more than 3.0%`,
    ),
    `seed ${seed}: ${text}`,
  );
});

Deno.test("bench compare: identical runs agree; the task runner's line before the JSON is skipped", () => {
  const r = run([["matmul 4096", 4.7], ["copy 1 GiB", 0.58]]);
  const text = `Task bench deno run -A bench/main.ts '--json'\n${JSON.stringify(r)}\n`;
  const parsed = parseBenchRun(text, "a.json");
  const c = compareBenchRuns(parsed, parsed);
  assert(c.agree);
  assertEquals(c.shared.map((d) => d.relative), [0, 0]);
});

Deno.test("bench compare: refuses other adapters, quick figures, nothing shared and files that are not runs", () => {
  const a = run([["x", 1]]);
  assertThrows(
    () => compareBenchRuns(a, run([["x", 1]], { adapter: "NVIDIA H100 80GB HBM3" })),
    BenchCompareError,
    "the runs come from different adapters ('NVIDIA H200' and 'NVIDIA H100 80GB HBM3')",
  );
  assertThrows(
    () => compareBenchRuns(a, run([["x", 1]], { quick: true })),
    BenchCompareError,
    "a run holds quick-mode figures",
  );
  assertThrows(
    () => compareBenchRuns(a, run([["y", 1]])),
    BenchCompareError,
    "the runs share no benchmark",
  );
  assertThrows(
    () => parseBenchRun("adapter: NVIDIA H200\n| copy | 3.68 TB/s |", "b.txt"),
    BenchCompareError,
    "b.txt: no JSON object found; write it with 'deno task bench --json > b.txt'",
  );
  assertThrows(
    () => parseBenchRun('{"adapter": "NVIDIA H200", "results": [{"name": "x", "ms": -1}]}', "c"),
    BenchCompareError,
    "c: not a benchmark run",
  );
});
