import { assert, assertGreater, assertStringIncludes } from "@std/assert";
import { formatRow, gpuWaitCost, MAX_WAIT_SHARE, measure } from "../bench/harness.ts";
import { initGpu } from "../ops/mod.ts";

Deno.test("bench harness: a timed region outlasts its final GPU wait fifty times over", async () => {
  const info = await initGpu();
  const wait = await gpuWaitCost();
  assertGreater(wait, 0);
  // Outside quick mode even a 1 ms target is raised until the wait is under 2 % of the region.
  const r = await measure(
    { name: "empty iteration", setup: () => null, run: () => {} },
    { info, quick: false },
    { targetMs: 1, repeats: 2, warmup: 1 },
  );
  const region = Math.min(...r.samples) * r.iterations;
  const minimum = wait / MAX_WAIT_SHARE;
  // Calibration aims at the minimum from a shorter trial; allow it to land a little under.
  assert(region >= 0.7 * minimum, `timed region ${region} ms, minimum ${minimum} ms`);
});

Deno.test("bench harness: a GPU row gives the host's share, which a host-bound run fills", async () => {
  const info = await initGpu();
  const busyMs = 2;
  const r = await measure(
    {
      name: "host-bound iteration",
      setup: () => null,
      run: () => {
        const end = performance.now() + busyMs;
        while (performance.now() < end) { /* the host's work */ }
      },
    },
    { info, quick: true },
    { targetMs: 10, repeats: 2, warmup: 1 },
  );
  const host = r.hostMs;
  if (host === undefined) throw new Error("a GPU benchmark reports its host time");
  assert(host >= busyMs, `host ${host} ms for ${busyMs} ms of host work an iteration`);
  assert(host <= r.ms, `host ${host} ms exceeds the whole iteration's ${r.ms} ms`);
  assertStringIncludes(formatRow(r), `host ${host.toFixed(3)} ms`);
});
