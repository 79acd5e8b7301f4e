import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { basename, join } from "node:path";
import type { GpuDevice } from "../run/gpu_pinning.ts";
import type { PlannedRun } from "../run/reproduction_plan.ts";
import { runRecordPath } from "../run/run_record.ts";
import { runSchedule } from "../run/run_scheduler.ts";
import {
  estimatedWallSeconds,
  runsAlone,
  type ScheduledRun,
  WorkerPool,
} from "../run/scheduled_runs.ts";
import { scheduleLines } from "../run/scheduled_training.ts";
import type { WorkerJob } from "../run/train_worker.ts";
import { withTempDir } from "./temp_files.ts";

/** A scheduled run of `model` on `dataset` with `seed` and an estimate, without real arguments. */
function fakeRun(
  model: string,
  dataset: string,
  seed: number,
  estimateSeconds: number | undefined,
): ScheduledRun {
  const key = { model, dataset, seed };
  const planned: PlannedRun = { key, status: "missing", record: undefined, estimateSeconds };
  const stem = basename(runRecordPath(key, "/r"), ".json");
  const recordPath = join("results", "runs", `${stem}.json`);
  return { planned, stem, recordPath, args: ["--seed", String(seed), "--record", recordPath] };
}

/** A run that fills a GPU (Caser on ML-1M). */
const heavy = (seed: number, estimate?: number) => fakeRun("caser", "ml-1m", seed, estimate);
/** A run that shares a GPU well (Mamba4Rec on Beauty). */
const light = (seed: number, estimate?: number) =>
  fakeRun("mamba4rec", "amazon-beauty", seed, estimate);

/** Every step the pool takes now, as `stem@worker` or `stem waits for GPU g`. */
function steps(pool: WorkerPool): string[] {
  const taken: string[] = [];
  for (let step = pool.next(); step !== undefined; step = pool.next()) {
    taken.push(
      "worker" in step
        ? `${step.run.planned.key.seed}@${step.worker}`
        : `${step.run.planned.key.seed} waits for GPU ${step.waitsForGpu}`,
    );
  }
  return taken;
}

Deno.test("runs alone: Caser and SSD4Rec on ML-1M, whatever the seed and variant; nothing else", () => {
  assert(runsAlone({ model: "caser", dataset: "ml-1m", seed: 2021 }));
  assert(runsAlone({ model: "ssd4rec", dataset: "ml-1m", seed: 2020, variant: "beta-0" }));
  assert(!runsAlone({ model: "caser", dataset: "amazon-beauty", seed: 2020 }));
  assert(!runsAlone({ model: "mamba4rec", dataset: "ml-1m", seed: 2020 }));
});

Deno.test("worker pool: light runs share a GPU; a heavy one waits for its GPU to empty and has it alone", () => {
  // One GPU, two workers: light 1 runs; heavy 2 waits for it; light 3 may not start beside either.
  const pool = new WorkerPool([light(1, 100), heavy(2, 50), light(3, 10)], 2, 1);
  assertEquals(steps(pool), ["1@0", "2 waits for GPU 0"]);
  pool.finished(0);
  assertEquals(steps(pool), ["2@0"], "the heavy run starts once its GPU is empty, alone");
  pool.finished(0);
  assertEquals(steps(pool), ["3@0"]);
  assert(pool.allStarted);

  // Two GPUs, two workers each (worker i on GPU i mod 2): the heavy run takes the empty GPU 1,
  // and the light runs share GPU 0.
  const two = new WorkerPool([light(1, 100), heavy(2, 50), light(3, 10), light(4, 5)], 4, 2);
  assertEquals(steps(two), ["1@0", "2@1", "3@2"]);
  two.finished(1);
  assertEquals(steps(two), ["4@1"], "GPU 1 is shared again once the heavy run ended");
});

Deno.test("worker pool: with no GPU empty a heavy run takes the one with the fewest runs; the queue goes on elsewhere", () => {
  const pool = new WorkerPool(
    [light(1, 90), light(2, 80), light(3, 70), heavy(4, 60), light(5, 50), light(6, 40)],
    4,
    2,
  );
  // GPU 0 runs 1 and 3, GPU 1 runs 2: the heavy run waits for GPU 1, whose worker 3 stays idle.
  assertEquals(steps(pool), ["1@0", "2@1", "3@2", "4 waits for GPU 1"]);
  pool.finished(0);
  assertEquals(steps(pool), ["5@0"], "the queue goes on on GPU 0");
  pool.finished(1);
  assertEquals(steps(pool), ["4@1"]);
  pool.finished(2);
  assertEquals(steps(pool), ["6@2"]);
  assertEquals(pool.takeRest(), []);
});

Deno.test("estimated wall time: a heavy run keeps its GPU's other workers idle", () => {
  // Heavy 100 alone, then lights 60 and 50 side by side: 160 (110 if the heavy run shared).
  assertEquals(estimatedWallSeconds([heavy(1, 100), light(2, 60), light(3, 50)], 2, 1), 160);
  assertEquals(estimatedWallSeconds([light(1, 100), light(2, 60), light(3, 50)], 2, 1), 110);
  // On two GPUs the heavy run has GPU 1 to itself, the lights share GPU 0.
  assertEquals(estimatedWallSeconds([heavy(1, 100), light(2, 60), light(3, 50)], 4, 2), 100);
  const lines = scheduleLines(
    [heavy(1, 100), light(2, 60), light(3, 50)],
    { count: 1, devices: [], warnings: [] },
    2,
  ).join("\n");
  assertStringIncludes(lines, "about 2m 40s for the 3 run(s)");
  assertStringIncludes(lines, "1 run(s) that fill a GPU (caser on ml-1m, ssd4rec on ml-1m)");
});

Deno.test("scheduler: with 2 workers per GPU a heavy run never overlaps another on its GPU, light runs share", async () => {
  await withTempDir("ssmrec-sched-alone-", async (root) => {
    const gpus: GpuDevice[] = [
      { index: 0, name: "g", pciBusId: "00000000:19:00.0" },
      { index: 1, name: "g", pciBusId: "00000000:3B:00.0" },
    ];
    const runs = [
      heavy(1, 90),
      light(2, 80),
      fakeRun("ssd4rec", "ml-1m", 3, 70),
      light(4, 60),
      light(5, 50),
      heavy(6, 40),
      light(7, 30),
      light(8, 20),
      light(9, 10),
    ];
    const byStem = new Map(runs.map((r) => [r.stem, r]));
    const onGpu = new Map<string, Set<ScheduledRun>>();
    const overlaps: string[] = [];
    let mostLightTogether = 0;
    // Light runs wait until two share a GPU (or 5 s went by), so that a slow file check of the
    // scheduler cannot let one end before its companion starts.
    let share = () => {};
    const shared = new Promise<void>((resolve) => (share = resolve));
    const fallback = setTimeout(share, 5_000);
    const spawn = async (job: WorkerJob) => {
      const gpu = job.env.DRI_PRIME;
      const record = job.args[job.args.indexOf("--record") + 1];
      const run = byStem.get(basename(record, ".json"))!;
      const companions = onGpu.get(gpu) ?? new Set();
      onGpu.set(gpu, companions);
      if (
        companions.size > 0 &&
        (runsAlone(run.planned.key) || [...companions].some((c) => runsAlone(c.planned.key)))
      ) {
        overlaps.push(
          `${run.stem} beside ${[...companions].map((c) => c.stem).join(", ")} on ${gpu}`,
        );
      }
      companions.add(run);
      if (!runsAlone(run.planned.key)) {
        mostLightTogether = Math.max(mostLightTogether, companions.size);
        if (mostLightTogether >= 2) share();
        await shared;
      }
      await new Promise((r) => setTimeout(r, 5 + (run.planned.key.seed % 4) * 3));
      companions.delete(run);
      await Deno.mkdir(join(root, "results", "runs"), { recursive: true });
      await Deno.writeTextFile(join(root, record), "{}");
      return { code: 0, signal: null };
    };
    const lines: string[] = [];
    const result = await runSchedule(runs, {
      workers: 4,
      gpus,
      spawn,
      root,
      report: (l) => lines.push(l),
    });
    clearTimeout(fallback);
    assertEquals(overlaps, [], lines.join("\n"));
    assertEquals(mostLightTogether, 2, "light runs share a GPU");
    assertEquals(result.outcomes.filter((o) => o.status === "finished").length, runs.length);
    assertEquals(result.exitStatus, 0);
    assertStringIncludes(lines.join("\n"), `${heavy(1).stem}: started by worker 0 on GPU 0, alone`);
  });
});
