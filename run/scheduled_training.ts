/**
 * The training step of `deno task reproduce --full`: the selected notebooks' missing runs (and,
 * with `--retrain-stale`, their stale ones) trained by the run scheduler (`run/run_scheduler.ts`)
 * on the host's GPUs before any notebook runs, or printed as commands for another scheduler
 * (`--print-commands`).
 *
 * @module
 */
import { deviceSelectLayerFound, type GpuDevice, listNvidiaGpus } from "./gpu_pinning.ts";
import type { RunGrid } from "./run_grid.ts";
import { formatDuration } from "./progress.ts";
import type { ReproductionPlan } from "./reproduction_plan.ts";
import { runSchedule } from "./run_scheduler.ts";
import {
  estimatedWallSeconds,
  GPU_SATURATING_RUNS,
  inStartOrder,
  runsAlone,
  type ScheduledRun,
  scheduledRuns,
  type ScheduledRunsOptions,
  type StartOrder,
  workerArguments,
} from "./scheduled_runs.ts";
import type { WorkerSpawner } from "./train_worker.ts";

/**
 * How `deno task reproduce` trains the missing runs: which runs (the missing ones, with
 * `retrainStale` the stale ones too, on `datasets`), and on what.
 */
export interface ScheduledTrainingOptions extends ScheduledRunsOptions {
  /** GPUs to use (default: those `nvidia-smi` lists; 1 when it lists none). */
  readonly gpus?: number;
  /** Workers per GPU (default 1). */
  readonly workersPerGpu?: number;
  /** The time budget in seconds (each worker gets `--max-seconds` of what is left). */
  readonly maxSeconds?: number;
  /** The order runs start in (default `"longest-first"`). */
  readonly order?: StartOrder;
  /** Runs a worker (default: `deno task train` in the project root). */
  readonly spawn?: WorkerSpawner;
  /** Receives the lines for people (default: `console.log`). */
  readonly log?: (line: string) => void;
}

/** The GPUs the workers are spread over, and what people should know about them. */
export interface WorkerGpus {
  /** How many GPUs the workers are spread over. */
  readonly count: number;
  /** The GPUs, with their PCI addresses; empty when `nvidia-smi` lists none. */
  readonly devices: readonly GpuDevice[];
  /** Warnings about the pinning. */
  readonly warnings: readonly string[];
}

/**
 * The GPUs for `requested` (`--gpus`; default: every GPU `nvidia-smi` lists, 1 when none) among
 * `found`; fails when more are asked for than are listed. `layerFound` says whether Mesa's
 * device-select layer, which pins a worker to its GPU, is installed.
 */
export function workerGpus(
  requested: number | undefined,
  found: readonly GpuDevice[],
  layerFound: boolean,
): WorkerGpus {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 1)) {
    throw new RangeError(`--gpus must be a positive integer, got ${requested}`);
  }
  if (found.length === 0) {
    const count = requested ?? 1;
    return {
      count,
      devices: [],
      warnings: count > 1
        ? [`nvidia-smi lists no GPU, so the workers cannot be pinned: all use the default one`]
        : [],
    };
  }
  if (requested !== undefined && requested > found.length) {
    throw new RangeError(
      `--gpus ${requested}, but nvidia-smi lists ${found.length} GPU(s); give at most ` +
        `${found.length}`,
    );
  }
  const devices = found.slice(0, requested ?? found.length);
  const warnings = devices.length > 1 && !layerFound
    ? [
      "Mesa's Vulkan device-select layer is not installed (apt-get install mesa-vulkan-drivers), " +
      "so the workers cannot be pinned to their GPUs: all use the first one",
    ]
    : [];
  return { count: devices.length, devices, warnings };
}

/**
 * The lines that describe a schedule: runs, workers, GPUs and the estimated wall time with the
 * runs started in `order`.
 */
export function scheduleLines(
  runs: readonly ScheduledRun[],
  gpus: WorkerGpus,
  workersPerGpu: number,
  order: StartOrder = "longest-first",
): string[] {
  const workers = gpus.count * workersPerGpu;
  const names = gpus.devices.length > 0
    ? `: ${gpus.devices.map((g) => `${g.index} ${g.name}`).join(", ")}`
    : "";
  const lines = [
    `train: ${runs.length} run(s) on ${workers} worker(s) (${gpus.count} GPU(s) × ` +
    `${workersPerGpu}${names})`,
  ];
  const unknown = runs.filter((r) => r.planned.estimateSeconds === undefined).length;
  // Without nvidia-smi's list every worker uses the default GPU.
  const used = Math.max(1, gpus.devices.length);
  const wall = estimatedWallSeconds(runs, workers, used, order);
  if (runs.length > unknown) {
    lines.push(
      `train: estimated wall time about ${formatDuration(wall)} for the ${
        runs.length - unknown
      } run(s) with an estimate, if workers sharing a GPU do ` +
        "not slow each other down" +
        (unknown > 0
          ? `; ${unknown} run(s) of unknown time start ${
            order === "shortest-first" ? "last" : "first"
          }`
          : ""),
    );
  } else if (unknown > 0) {
    lines.push(`train: estimated wall time unknown (nothing recorded of these runs' cells)`);
  }
  const alone = runs.filter((r) => runsAlone(r.planned.key)).length;
  if (alone > 0 && workers > used) {
    lines.push(
      `train: ${alone} run(s) that fill a GPU (${
        GPU_SATURATING_RUNS.map((r) => `${r.model} on ${r.dataset}`).join(", ")
      }) run alone on theirs`,
    );
  }
  return lines.concat(gpus.warnings.map((w) => `train: warning: ${w}`));
}

/**
 * The commands that train the scheduled runs of `plan` (made from `grids`) in their start order
 * (longest first unless `options.order` says otherwise), one a line, each to run in the project
 * root: what a cluster's job array runs.
 */
export function trainCommands(
  plan: ReproductionPlan,
  grids: readonly RunGrid[],
  options: ScheduledTrainingOptions = {},
): string[] {
  return inStartOrder(scheduledRuns(plan, grids, options), options.order).map((run) =>
    `deno task train ${workerArguments(run, options.maxSeconds).join(" ")}`
  );
}

/**
 * Trains the scheduled runs of `plan` (made from `grids`) as the module documentation describes,
 * printing the schedule and each event; returns the scheduler's exit status (0 all finished, 1
 * one failed, 3 the budget ran out first).
 */
export async function trainScheduled(
  plan: ReproductionPlan,
  grids: readonly RunGrid[],
  options: ScheduledTrainingOptions = {},
): Promise<number> {
  const log = options.log ?? ((line: string) => console.log(line));
  const runs = scheduledRuns(plan, grids, options);
  if (runs.length === 0) {
    log("train: every run of the selected notebooks is recorded; nothing to train");
    return 0;
  }
  const workersPerGpu = options.workersPerGpu ?? 1;
  if (!(Number.isInteger(workersPerGpu) && workersPerGpu >= 1)) {
    throw new RangeError(`--workers-per-gpu must be a positive integer, got ${workersPerGpu}`);
  }
  const gpus = workerGpus(options.gpus, await listNvidiaGpus(), deviceSelectLayerFound());
  for (const line of scheduleLines(runs, gpus, workersPerGpu, options.order)) log(line);
  const result = await runSchedule(runs, {
    workers: gpus.count * workersPerGpu,
    gpus: gpus.devices,
    maxSeconds: options.maxSeconds,
    order: options.order,
    spawn: options.spawn,
    root: options.root,
    report: (line) => log(`train: ${line}`),
  });
  if (result.exitStatus === 3) {
    log("train: the time budget ran out; run the same command again to go on");
  }
  return result.exitStatus;
}
