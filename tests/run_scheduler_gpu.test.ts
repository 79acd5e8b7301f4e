import { assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CodeVersion } from "../run/code_version.ts";
import { describePinnedGpu, type GpuDevice } from "../run/gpu_pinning.ts";
import type { PlannedRun } from "../run/reproduction_plan.ts";
import { readRunRecord, type RunRecord, runRecordPath } from "../run/run_record.ts";
import { runSchedule } from "../run/run_scheduler.ts";
import type { ScheduledRun } from "../run/scheduled_runs.ts";
import { processSpawner } from "../run/train_worker.ts";
import { withTempDir } from "./temp_files.ts";
import { fakeBeautyRecord } from "./fake_run_result.ts";

/** The project's files, which the fake workers import. */
const PROJECT = fileURLToPath(new URL("..", import.meta.url));

const CODE: CodeVersion = {
  commit: "c".repeat(40),
  dirty: false,
  sourceHash: `sha256:${"3".repeat(64)}`,
};

/** A record of Mamba4Rec on Beauty with `seed`, without a GPU (the writer adds it). */
function record(seed: number): RunRecord {
  return fakeBeautyRecord(seed, CODE);
}

/** A stand-in for `deno task train` that writes the record of its `--seed` with the project's writer. */
function fakeTrainScript(): string {
  const writer = new URL("../run/run_record.ts", import.meta.url).href;
  return `
import { writeRunRecord } from ${JSON.stringify(writer)};
const at = (flag) => Deno.args[Deno.args.indexOf(flag) + 1];
const records = JSON.parse(await Deno.readTextFile("records.json"));
await writeRunRecord(at("--record"), records[at("--seed")]);
`;
}

/** A scheduled run of Mamba4Rec on Beauty with `seed`, its record under `results/runs`. */
function scheduled(seed: number, estimateSeconds: number): ScheduledRun {
  const key = { model: "mamba4rec", dataset: "amazon-beauty", seed };
  const planned: PlannedRun = { key, status: "missing", record: undefined, estimateSeconds };
  const recordPath = runRecordPath(key, join("results", "runs"));
  const stem = `mamba4rec-amazon-beauty-seed${seed}`;
  return { planned, stem, recordPath, args: ["--seed", String(seed), "--record", recordPath] };
}

Deno.test("scheduler: a pinned worker's record says which GPU it ran on; an unpinned one's says none", async () => {
  await withTempDir("ssmrec-sched-gpu-", async (root) => {
    await Deno.mkdir(join(root, "results", "runs"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "records.json"),
      JSON.stringify({ 1: record(1), 2: record(2), 3: record(3) }),
    );
    const script = join(root, "fake_train.ts");
    await Deno.writeTextFile(script, fakeTrainScript());
    const spawn = processSpawner({
      prefix: ["run", "-A", "--config", join(PROJECT, "deno.json"), script],
      cwd: root,
    });
    const gpus: GpuDevice[] = [
      { index: 0, name: "g", pciBusId: "00000000:19:00.0" },
      { index: 1, name: "g", pciBusId: "00000000:3B:00.0" },
    ];
    const lines: string[] = [];
    const pinned = await runSchedule([scheduled(1, 20), scheduled(2, 10)], {
      workers: 2,
      gpus,
      root,
      spawn,
      report: (l) => lines.push(l),
    });
    assertEquals(pinned.exitStatus, 0, lines.join("\n"));
    const gpuOf = async (seed: number) =>
      (await readRunRecord(join(root, scheduled(seed, 0).recordPath)))?.gpu;
    assertEquals(await gpuOf(1), { index: 0, pciAddress: "00000000:19:00.0" }, "worker 0");
    assertEquals(await gpuOf(2), { index: 1, pciAddress: "00000000:3B:00.0" }, "worker 1");
    assertEquals(describePinnedGpu((await gpuOf(2))!), "GPU 1, PCI 00000000:3B:00.0");

    // One GPU: nothing to pin, so the record names no GPU (as records from before the field).
    const single = await runSchedule([scheduled(3, 10)], {
      workers: 1,
      gpus: gpus.slice(0, 1),
      root,
      spawn,
      report: (l) => lines.push(l),
    });
    assertEquals(single.exitStatus, 0, lines.join("\n"));
    assertEquals(await gpuOf(3), undefined);
  });
});

Deno.test("train: a malformed GPU identity fails before training, naming the variable", async () => {
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(PROJECT, "scripts", "train.ts"), "--dataset", "no-such-dataset"],
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  const bad = await run({ SSMREC_GPU_INDEX: "1", SSMREC_GPU_PCI_ADDRESS: "GPU-1234" });
  assertEquals(bad.code, 1, bad.stderr);
  assertMatch(bad.stderr, /^error: \$SSMREC_GPU_PCI_ADDRESS should be the GPU's PCI address/);
  const half = await run({ SSMREC_GPU_PCI_ADDRESS: "00000000:19:00.0" });
  assertMatch(half.stderr, /^error: \$SSMREC_GPU_INDEX should be .* set both/);
});
