import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { basename, join } from "node:path";
import { type CodeVersion, requireProjectRoot } from "../run/code_version.ts";
import {
  driPrimeTag,
  type GpuDevice,
  gpuPinningEnvironment,
  parseNvidiaSmiGpus,
} from "../run/gpu_pinning.ts";
import { MAMBA4REC_ABLATION } from "../run/paper_grids.ts";
import type { RunGrid } from "../run/run_grid.ts";
import { TrainingProgress } from "../run/progress.ts";
import { type PlannedRun, planReproduction } from "../run/reproduction_plan.ts";
import { readRunIndex } from "../run/run_index.ts";
import { type RunRecord, runRecordPath } from "../run/run_record.ts";
import { describeExit, runSchedule } from "../run/run_scheduler.ts";
import {
  estimatedWallSeconds,
  inStartOrder,
  longestFirst,
  type ScheduledRun,
  scheduledRuns,
  shortestFirst,
  workerArguments,
} from "../run/scheduled_runs.ts";
import { scheduleLines, workerGpus } from "../run/scheduled_training.ts";
import {
  parseTrainLine,
  processSpawner,
  trainTaskArguments,
  type WorkerExit,
  type WorkerJob,
} from "../run/train_worker.ts";
import { withTempDir } from "./temp_files.ts";
import { fakeBeautyRecord } from "./fake_run_result.ts";

const NOW: CodeVersion = {
  commit: "a".repeat(40),
  dirty: false,
  sourceHash: `sha256:${"1".repeat(64)}`,
};

/** An epoch line exactly as `deno task train` prints it. */
function epochLine(epoch: number, hit: number): string {
  let text = "";
  const progress = new TrainingProgress(true, "hit@10", {
    write: (t) => (text += t),
    terminal: false,
    now: () => 0,
  });
  progress.epochFinished(
    {
      epoch: epoch - 1,
      loss: 0.5,
      valid: { "hit@10": hit, "ndcg@10": hit / 2 },
      trainSeconds: 1,
      evalSeconds: 0.5,
    } as Parameters<TrainingProgress["epochFinished"]>[0],
    true,
    hit,
  );
  return text.trimEnd();
}

/** A scheduled run of its own key (no real arguments), with an estimate. */
function fakeRun(seed: number, estimateSeconds: number | undefined): ScheduledRun {
  const key = { model: "mamba4rec", dataset: "amazon-beauty", seed };
  const planned: PlannedRun = { key, status: "missing", record: undefined, estimateSeconds };
  const stem = basename(runRecordPath(key, "/r"), ".json");
  const recordPath = join("results", "runs", `${stem}.json`);
  return { planned, stem, recordPath, args: ["--seed", String(seed), "--record", recordPath] };
}

/** The value after `flag` in `args`. */
const valueOf = (args: readonly string[], flag: string) => args[args.indexOf(flag) + 1];

Deno.test("train lines: the epoch, test and pause lines of deno task train are read", () => {
  assertEquals(parseTrainLine(epochLine(3, 0.125)), {
    kind: "epoch",
    epoch: 3,
    loss: 0.5,
    valid: "hit@10 0.1250  ndcg@10 0.0625",
  });
  assertEquals(
    parseTrainLine("test (best epoch's weights): hit@10 0.2000  ndcg@10 0.1000  mrr@10 0.0800"),
    { kind: "test", metrics: { "hit@10": 0.2, "ndcg@10": 0.1, "mrr@10": 0.08 } },
  );
  assertEquals(parseTrainLine("paused after epoch 7: run the same command with --continue"), {
    kind: "paused",
    epoch: 7,
  });
  assertEquals(
    parseTrainLine("epoch 3  step 120/488 (25%)  1,234 samples/s  ETA 2m 10s"),
    undefined,
  );
});

Deno.test("scheduler: never more workers at once than asked, every run finished", async () => {
  await withTempDir("ssmrec-sched-", async (root) => {
    let running = 0;
    let most = 0;
    // Each run waits until three run at once (or 5 s went by), so that a slow file check of the
    // scheduler cannot let the first run end before the third starts.
    let release = () => {};
    const threeRunning = new Promise<void>((resolve) => (release = resolve));
    const fallback = setTimeout(release, 5_000);
    const spawn = async (job: WorkerJob) => {
      running++;
      most = Math.max(most, running);
      if (running === 3) release();
      await threeRunning;
      await new Promise((r) => setTimeout(r, 5 + 5 * (Number(valueOf(job.args, "--seed")) % 3)));
      await Deno.mkdir(join(root, "results", "runs"), { recursive: true });
      await Deno.writeTextFile(join(root, valueOf(job.args, "--record")), "{}");
      running--;
      return { code: 0, signal: null };
    };
    const runs = Array.from({ length: 8 }, (_, i) => fakeRun(i, 10 * i));
    const result = await runSchedule(runs, { workers: 3, spawn, root, report: () => {} });
    clearTimeout(fallback);
    assertEquals(most, 3);
    assertEquals(result.outcomes.length, 8);
    assert(result.outcomes.every((o) => o.status === "finished"), JSON.stringify(result.outcomes));
    assertEquals(result.exitStatus, 0);
  });
});

Deno.test("scheduler: unknown estimates first, then the longest first", async () => {
  const runs = [fakeRun(1, 30), fakeRun(2, undefined), fakeRun(3, 90), fakeRun(4, 60)];
  assertEquals(longestFirst(runs).map((r) => r.planned.key.seed), [2, 3, 4, 1]);
  const started: number[] = [];
  await withTempDir("ssmrec-sched-", async (root) => {
    await runSchedule(runs, {
      workers: 1,
      root,
      report: () => {},
      spawn: (job) => {
        started.push(Number(valueOf(job.args, "--seed")));
        return Promise.resolve({ code: 0, signal: null });
      },
    });
  });
  assertEquals(started, [2, 3, 4, 1]);
  // 90 | 60 + 30 on two workers; the unknown run is left out of the estimate.
  assertEquals(estimatedWallSeconds(runs, 2), 90);
});

Deno.test("scheduler: shortest first puts the unknown estimates last; ties keep plan order", async () => {
  const runs = [
    fakeRun(1, 30),
    fakeRun(2, undefined),
    fakeRun(3, 90),
    fakeRun(4, 30),
    fakeRun(5, 10),
  ];
  assertEquals(shortestFirst(runs).map((r) => r.planned.key.seed), [5, 1, 4, 3, 2]);
  assertEquals(inStartOrder(runs, "shortest-first"), shortestFirst(runs));
  assertEquals(inStartOrder(runs), longestFirst(runs));
  const started: number[] = [];
  await withTempDir("ssmrec-sched-", async (root) => {
    await runSchedule(runs, {
      workers: 1,
      root,
      order: "shortest-first",
      report: () => {},
      spawn: (job) => {
        started.push(Number(valueOf(job.args, "--seed")));
        return Promise.resolve({ code: 0, signal: null });
      },
    });
  });
  assertEquals(started, [5, 1, 4, 3, 2]);
  // On two workers 10 + 30 | 30 + 90 ends at 120; longest first, 90 | 30 + 30 + 10 at 90.
  assertEquals(estimatedWallSeconds(runs, 2, 1, "shortest-first"), 120);
  assertEquals(estimatedWallSeconds(runs, 2, 1, "longest-first"), 90);
});

Deno.test("scheduler: one line per event, the worker's GPU pinned, paused runs said so", async () => {
  await withTempDir("ssmrec-sched-", async (root) => {
    const lines: string[] = [];
    // By seed: the two workers' spawns may come in either order.
    const envs = new Map<string, Record<string, string>>();
    const gpus: GpuDevice[] = [
      { index: 0, name: "g", pciBusId: "00000000:19:00.0" },
      { index: 1, name: "g", pciBusId: "00000000:3B:00.0" },
    ];
    const result = await runSchedule([fakeRun(1, 20), fakeRun(2, 10)], {
      workers: 2,
      gpus,
      root,
      report: (line) => lines.push(line),
      spawn: async (job) => {
        envs.set(valueOf(job.args, "--seed"), { ...job.env });
        job.onLine("mamba4rec on amazon-beauty (…)");
        job.onLine(epochLine(1, 0.1));
        if (valueOf(job.args, "--seed") === "2") {
          job.onLine("paused after epoch 1: run the same command with --continue to go on");
          return { code: 0, signal: null };
        }
        job.onLine("test (best epoch's weights): hit@10 0.2000  ndcg@10 0.1000");
        await Deno.mkdir(join(root, "results", "runs"), { recursive: true });
        await Deno.writeTextFile(join(root, valueOf(job.args, "--record")), "{}");
        return { code: 0, signal: null };
      },
    });
    const text = lines.join("\n");
    const [first, second] = [fakeRun(1, 0).stem, fakeRun(2, 0).stem];
    assertStringIncludes(text, `[1/2] ${first}: started by worker 0 on GPU 0 (estimated 20s;`);
    assertStringIncludes(text, `[2/2] ${second}: started by worker 1 on GPU 1`);
    assertStringIncludes(text, `${first}: epoch 1, loss 0.5000, valid hit@10 0.1000`);
    assertStringIncludes(text, `${first}: finished in 0s: test hit@10 0.2000`);
    assertStringIncludes(text, `${second}: paused after epoch 1`);
    assertStringIncludes(text, "1 finished, 0 failed, 1 paused, 0 not started");
    assertEquals(envs.get("1")?.DRI_PRIME, "pci-0000_19_00_0", "worker 0 on GPU 0");
    assertEquals(envs.get("2")?.DRI_PRIME, "pci-0000_3b_00_0", "worker 1 on GPU 1");
    assertEquals(result.exitStatus, 3);
  });
});

Deno.test("scheduler: with a budget each worker gets what is left, and none starts late", async () => {
  await withTempDir("ssmrec-sched-", async (root) => {
    let clock = 0;
    const given: string[] = [];
    const result = await runSchedule([fakeRun(1, 30), fakeRun(2, 20), fakeRun(3, 10)], {
      workers: 1,
      maxSeconds: 600,
      root,
      now: () => clock,
      report: () => {},
      spawn: async (job) => {
        given.push(valueOf(job.args, "--max-seconds"));
        clock += 500;
        await Deno.mkdir(join(root, "results", "runs"), { recursive: true });
        await Deno.writeTextFile(join(root, valueOf(job.args, "--record")), "{}");
        return { code: 0, signal: null };
      },
    });
    assertEquals(given, ["600", "100"]);
    assertEquals(result.outcomes.map((o) => o.status), ["finished", "finished", "not started"]);
    assertEquals(result.exitStatus, 3);
  });
});

/** A record of Mamba4Rec on Beauty with the preset's settings and `seed`, by the code {@link NOW}. */
function beautyRecord(seed: number): RunRecord {
  return fakeBeautyRecord(seed, NOW, { dropoutProb: 0.4 });
}

/**
 * A stand-in for `deno task train`: prints an epoch line, is killed by SIGKILL when its seed is
 * `killSeed`, else copies its record from `templates` (atomically) and prints the test line.
 */
function fakeTrainScript(templates: string, killSeed: number): string {
  return `
const args = Deno.args;
const at = (flag) => args[args.indexOf(flag) + 1];
console.log(${JSON.stringify(epochLine(1, 0.1))});
if (at("--seed") === "${killSeed}") {
  console.error("worker about to die");
  Deno.kill(Deno.pid, "SIGKILL");
}
const record = at("--record");
const text = await Deno.readTextFile(${JSON.stringify(templates)} + "/" + record.split("/").pop());
await Deno.mkdir("results/runs", { recursive: true });
await Deno.writeTextFile(record + ".tmp", text);
await Deno.rename(record + ".tmp", record);
console.log("test (best epoch's weights): hit@10 0.2000  ndcg@10 0.1000");
`;
}

const BEAUTY_GRID: RunGrid = {
  notebook: "t",
  title: "t",
  models: ["mamba4rec"],
  datasets: ["amazon-beauty"],
  seeds: [2020, 2021, 2022],
};

Deno.test("scheduler: a worker killed by SIGKILL is reported, the others finish, a rerun trains only it", async () => {
  await withTempDir("ssmrec-sched-", async (root) => {
    const datasets = join(root, "datasets");
    const templates = join(root, "templates");
    const runsDir = join(root, "results", "runs");
    await Deno.mkdir(datasets);
    await Deno.mkdir(templates);
    await Deno.writeTextFile(join(datasets, "amazon-beauty.txt"), "");
    for (const seed of BEAUTY_GRID.seeds) {
      const key = { model: "mamba4rec", dataset: "amazon-beauty", seed };
      await Deno.writeTextFile(
        runRecordPath(key, templates),
        JSON.stringify(beautyRecord(seed)),
      );
    }
    const script = join(root, "fake_train.ts");
    await Deno.writeTextFile(script, fakeTrainScript(templates, 2021));
    const spawn = processSpawner({ prefix: ["run", "-A", script], cwd: root });
    const schedule = async () => {
      const plan = planReproduction([BEAUTY_GRID], await readRunIndex(runsDir, NOW));
      const runs = scheduledRuns(plan, [BEAUTY_GRID], { root, datasetsDirectory: datasets });
      const lines: string[] = [];
      const result = await runSchedule(runs, {
        workers: 2,
        root,
        spawn,
        report: (l) => lines.push(l),
      });
      return { runs, result, text: lines.join("\n") };
    };

    const first = await schedule();
    assertEquals(first.runs.map((r) => r.planned.key.seed), [2020, 2021, 2022]);
    const byStatus = (s: string) =>
      first.result.outcomes.filter((o) => o.status === s).map((o) => o.run.planned.key.seed);
    assertEquals(byStatus("failed"), [2021]);
    assertEquals(byStatus("finished").sort(), [2020, 2022]);
    assertEquals(first.result.exitStatus, 1);
    const killed = first.result.outcomes.find((o) => o.status === "failed")!;
    assertEquals(killed.exit?.signal, "SIGKILL");
    const stem = "mamba4rec-amazon-beauty-seed2021";
    assertStringIncludes(first.text, `${stem}: FAILED (killed by SIGKILL)`);
    assertStringIncludes(
      first.text,
      `deno task train --model mamba4rec --dataset amazon-beauty --seed 2021 --record ` +
        `results/runs/${stem}.json --checkpoint-dir .runs/${stem} --continue`,
    );
    assertStringIncludes(first.text, "    worker about to die");
    assertStringIncludes(
      await Deno.readTextFile(join(root, "results", "logs", `${stem}.log`)),
      "worker about to die",
    );

    const second = await schedule();
    assertEquals(second.runs.map((r) => r.planned.key.seed), [2021]);
    assertEquals(second.result.exitStatus, 1, "the same seed is killed again");
  });
});

Deno.test("scheduled runs: a variant's arguments are those the notebooks' training records", async () => {
  await withTempDir("ssmrec-sched-", async (root) => {
    const datasets = join(root, "datasets");
    await Deno.mkdir(datasets);
    await Deno.writeTextFile(join(datasets, "amazon-beauty.txt"), "");
    const plan = planReproduction([MAMBA4REC_ABLATION], await readRunIndex(join(root, "none")));
    const runs = scheduledRuns(plan, [MAMBA4REC_ABLATION], { root, datasetsDirectory: datasets });
    assertEquals(runs.length, 7 * 3, "every row and seed on Beauty; recorded-only datasets none");
    const position = runs.find((r) => r.planned.key.variant === "positionEmbedding-true")!;
    const record = `results/runs/${position.stem}.json`;
    assertEquals(position.args, [
      "--model",
      "mamba4rec",
      "--dataset",
      "amazon-beauty",
      "--seed",
      "2020",
      "--position-embedding",
      "true",
      "--model-max-len",
      "50",
      "--record",
      record,
    ]);
    assertEquals(workerArguments(position, 540.7).slice(position.args.length), [
      "--checkpoint-dir",
      `.runs/${position.stem}`,
      "--continue",
      "--max-seconds",
      "540",
    ]);
    assertEquals(
      scheduledRuns(plan, [MAMBA4REC_ABLATION], {
        root,
        datasetsDirectory: datasets,
        datasets: ["ml-1m"],
      }),
      [],
    );
  });
});

Deno.test("GPU pinning: nvidia-smi's list, the device-select tag, worker i on GPU i mod N", () => {
  const gpus = parseNvidiaSmiGpus(
    "0, NVIDIA H100 80GB HBM3, 00000000:19:00.0\n1, NVIDIA H100 80GB HBM3, 00000000:3B:00.0\n" +
      "No devices were found\n",
  );
  assertEquals(gpus, [
    { index: 0, name: "NVIDIA H100 80GB HBM3", pciBusId: "00000000:19:00.0" },
    { index: 1, name: "NVIDIA H100 80GB HBM3", pciBusId: "00000000:3B:00.0" },
  ]);
  assertEquals(driPrimeTag("0000:0a:1f.3"), "pci-0000_0a_1f_3");
  assertThrows(() => driPrimeTag("GPU-1234"), Error, "not of the form domain:bus:device.function");
  assertEquals(gpuPinningEnvironment(3, gpus), {
    DRI_PRIME: "pci-0000_3b_00_0",
    MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: "1",
    SSMREC_GPU_INDEX: "1",
    SSMREC_GPU_PCI_ADDRESS: "00000000:3B:00.0",
  });
  assertEquals(gpuPinningEnvironment(2, gpus).DRI_PRIME, "pci-0000_19_00_0");
  assertEquals(gpuPinningEnvironment(1, gpus.slice(0, 1)), {}, "one GPU: nothing to choose");
});

Deno.test("worker GPUs: nvidia-smi's by default, a count without it, warnings where unpinned", () => {
  const h100 = (index: number): GpuDevice => ({
    index,
    name: "NVIDIA H100 80GB HBM3",
    pciBusId: `00000000:${19 + index}:00.0`,
  });
  const four = [0, 1, 2, 3].map(h100);
  assertEquals(workerGpus(undefined, four, true), { count: 4, devices: four, warnings: [] });
  assertEquals(workerGpus(2, four, true).devices, four.slice(0, 2));
  assertThrows(() => workerGpus(5, four, true), RangeError, "nvidia-smi lists 4 GPU(s)");
  assertStringIncludes(workerGpus(2, four, false).warnings.join(), "device-select layer");
  assertEquals(workerGpus(1, four, false).warnings, [], "one GPU needs no pinning");
  assertEquals(workerGpus(undefined, [], false), { count: 1, devices: [], warnings: [] });
  assertStringIncludes(workerGpus(2, [], true).warnings.join(), "cannot be pinned");
  const lines = scheduleLines(
    [fakeRun(1, 600), fakeRun(2, 300), fakeRun(3, 300), fakeRun(4, undefined)],
    workerGpus(1, four, true),
    2,
  ).join("\n");
  assertStringIncludes(lines, "4 run(s) on 2 worker(s) (1 GPU(s) × 2: 0 NVIDIA H100 80GB HBM3)");
  assertStringIncludes(lines, "about 10m 00s for the 3 run(s) with an estimate");
  assertStringIncludes(lines, "1 run(s) of unknown time start first");
});

Deno.test("scheduler: SIGTERM ends the workers and starts no other run", async () => {
  await withTempDir("ssmrec-sched-", async (root) => {
    const lines: string[] = [];
    let spawned = 0;
    const result = await runSchedule([fakeRun(1, 30), fakeRun(2, 20), fakeRun(3, 10)], {
      workers: 1,
      root,
      report: (line) => lines.push(line),
      spawn: (job) => {
        spawned++;
        // A signal alone keeps no event loop alive; a real worker process does.
        const alive = setTimeout(() => {}, 20_000);
        const ended = new Promise<WorkerExit>((resolve) =>
          job.signal?.addEventListener("abort", () => {
            clearTimeout(alive);
            resolve({ code: 143, signal: "SIGTERM" });
          })
        );
        Deno.kill(Deno.pid, "SIGTERM");
        return ended;
      },
    });
    assertEquals(spawned, 1);
    assertEquals(result.outcomes.map((o) => o.status), ["stopped", "not started", "not started"]);
    assertEquals(result.exitStatus, 130);
    assertStringIncludes(lines.join("\n"), "interrupted: ending the workers");
  });
  assertEquals(describeExit({ code: 137, signal: null }), "exit status 137: killed by SIGKILL");
  assertEquals(describeExit({ code: 2, signal: null }), "exit status 2");
});

Deno.test("train task: a worker runs deno.json's train command itself, and only a plain one", async () => {
  assertEquals(trainTaskArguments(requireProjectRoot()).at(-1), "scripts/train.ts");
  await withTempDir("ssmrec-sched-", async (root) => {
    await Deno.writeTextFile(
      join(root, "deno.json"),
      JSON.stringify({ tasks: { train: "deno run -A a.ts && echo done" } }),
    );
    assertThrows(() => trainTaskArguments(root), Error, "one plain 'deno …' command");
    await Deno.writeTextFile(
      join(root, "deno.json"),
      JSON.stringify({ tasks: { train: "deno run -A  --preload p.ts t.ts" } }),
    );
    assertEquals(trainTaskArguments(root), ["run", "-A", "--preload", "p.ts", "t.ts"]);
  });
});
