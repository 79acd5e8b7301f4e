import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import type { CodeVersion } from "../run/code_version.ts";
import { reproduce } from "../run/reproduce.ts";
import {
  RUN_RECORD_FORMAT,
  type RunKey,
  type RunRecord,
  runRecordPath,
} from "../run/run_record.ts";
import { planRun } from "../run/setup.ts";
import type { WorkerJob } from "../run/train_worker.ts";
import { withTempDir } from "./temp_files.ts";
import { fakeRunResult } from "./fake_run_result.ts";

/** Code that is not the checkout's: every record it made is stale. */
const OTHER: CodeVersion = {
  commit: "b".repeat(40),
  dirty: false,
  sourceHash: `sha256:${"2".repeat(64)}`,
};

/** The datasets the test's records and notebooks name. */
const DATASETS = ["ml-1m", "amazon-beauty", "amazon-video-games"];

/** A record of `key` with the preset's settings (as planned from its request), made by OTHER. */
function staleRecord(key: RunKey, datasetsDirectory: string): RunRecord {
  const plan = planRun({
    model: key.model,
    dataset: key.dataset,
    datasetsDirectory,
    train: { seed: key.seed },
  });
  return {
    format: RUN_RECORD_FORMAT,
    code: OTHER,
    deno: Deno.version.deno,
    model: key.model,
    dataset: key.dataset,
    users: 2,
    items: 2,
    adapter: "test adapter",
    finishedAt: "2026-01-01T00:00:00.000Z",
    command: `deno task train --model ${key.model} --dataset ${key.dataset} --seed ${key.seed}`,
    modelConfig: plan.modelConfig,
    trainConfig: plan.config,
    parameters: 1,
    result: fakeRunResult(),
  };
}

/** Runs `body` with `console.log` and `console.error` collected; returns what they printed. */
async function printed(body: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await body();
  } finally {
    console.log = log;
    console.error = error;
  }
  return lines.join("\n");
}

Deno.test("reproduce --retrain-stale: the selection's stale runs go to the scheduler, other stale records stay as they are", async () => {
  await withTempDir("ssmrec-retrain-selection-", async (root) => {
    const datasets = join(root, "datasets");
    const runs = join(root, "results", "runs");
    await Deno.mkdir(datasets);
    await Deno.mkdir(runs, { recursive: true });
    await Deno.mkdir(join(root, "notebooks", "ssd4rec"), { recursive: true });
    await Deno.writeTextFile(join(root, "notebooks", "ssd4rec", "table4_overall.ipynb"), "{}");
    for (const name of DATASETS) {
      await Deno.writeTextFile(join(datasets, `${name}.txt`), "1 1\n1 2\n2 1\n2 2\n");
    }
    const inside: RunKey = { model: "ssd4rec", dataset: "amazon-beauty", seed: 2021 };
    const outsideDatasets: RunKey = { model: "ssd4rec", dataset: "ml-1m", seed: 2020 };
    const outsideNotebooks: RunKey = { model: "mamba4rec", dataset: "ml-1m", seed: 2020 };
    const before = new Map<string, string>();
    for (const key of [inside, outsideDatasets, outsideNotebooks]) {
      const path = runRecordPath(key, runs);
      const text = JSON.stringify(staleRecord(key, datasets));
      await Deno.writeTextFile(path, text);
      before.set(path, text);
    }

    const spawned: string[][] = [];
    const spawn = async (job: WorkerJob) => {
      spawned.push([...job.args]);
      const record = job.args[job.args.indexOf("--record") + 1];
      await Deno.writeTextFile(join(root, record), "{}");
      return { code: 0, signal: null };
    };
    let status = -1;
    const text = await printed(async () => {
      status = await reproduce({
        root,
        only: ["ssd4rec/table4_overall"],
        mode: "full",
        retrainStale: true,
        trainOnly: true,
        training: {
          gpus: 1,
          workersPerGpu: 3,
          datasets: ["amazon-beauty", "amazon-video-games"],
          datasetsDirectory: datasets,
          spawn,
        },
      });
    });
    assertEquals(status, 0, text);

    // The 6 runs of Beauty and Video Games: 5 missing, 1 stale; nothing else.
    const trained = spawned.map((args) => {
      const at = (flag: string) => args[args.indexOf(flag) + 1];
      return `${at("--model")} ${at("--dataset")} ${at("--seed")}`;
    }).sort();
    assertEquals(trained, [
      "ssd4rec amazon-beauty 2020",
      "ssd4rec amazon-beauty 2021",
      "ssd4rec amazon-beauty 2022",
      "ssd4rec amazon-video-games 2020",
      "ssd4rec amazon-video-games 2021",
      "ssd4rec amazon-video-games 2022",
    ]);
    const staleArgs = spawned.find((a) => a.includes("2021") && a.includes("amazon-beauty"))!;
    assert(!staleArgs.includes("--continue"), "a stale run trains again from scratch");
    assertStringIncludes(text, "plan: 2 stale record(s) outside the selection left as they are");
    for (const serial of ["retrain:", "recorded run(s) made by other code", "retraining "]) {
      assert(!text.includes(serial), `the serial retraining ran:\n${text}`);
    }
    for (const key of [outsideDatasets, outsideNotebooks]) {
      const path = runRecordPath(key, runs);
      assertEquals(await Deno.readTextFile(path), before.get(path), `${path} was touched`);
    }
    assert(
      (await Deno.readTextFile(runRecordPath(inside, runs))) !== before.get(
        runRecordPath(inside, runs),
      ),
      "the selection's stale record is trained again",
    );
  });
});
