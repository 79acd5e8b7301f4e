/**
 * Trains many runs at once: each run of a reproduction plan that has no record (and, when asked,
 * each stale one) is one `deno task train` command whose output is its run record, so the
 * scheduler keeps a number of worker processes busy with them, the longest first, spreading the
 * workers over the host's GPUs (`run/gpu_pinning.ts`).
 *
 * Each run checkpoints into `.runs/<record stem>/` and a missing run starts with `--continue`,
 * so a run killed with its worker or with the scheduler goes on from its last epoch when the
 * scheduler runs again; a record is written atomically when its run is over, so a rerun trains
 * exactly what is still missing. A stale run starts from scratch: its checkpoint folder may hold
 * the finished run of the older code. With a time budget every worker gets `--max-seconds` (what
 * is left of the budget), pauses at an epoch's end when it would run out, and the next rerun goes
 * on. Each worker's output goes to `results/logs/<record stem>.log`; the scheduler reports one
 * line per event (started, each epoch, finished with its test HR@10, paused, failed with its
 * command and the end of its log).
 *
 * @module
 */
import { basename, join, relative } from "node:path";
import { requireProjectRoot } from "./code_version.ts";
import { type GpuDevice, gpuPinningEnvironment } from "./gpu_pinning.ts";
import { gridRunKey, gridRunTraining } from "./grid_runs.ts";
import type { GridVariant, RunGrid } from "./paper_grids.ts";
import { formatDuration } from "./progress.ts";
import type { PlannedRun, ReproductionPlan } from "./reproduction_plan.ts";
import { retrainArguments } from "./retrain_stale.ts";
import { runRecordPath } from "./run_record.ts";
import {
  parseTrainLine,
  processSpawner,
  shownMetric,
  type WorkerExit,
  type WorkerSpawner,
} from "./train_worker.ts";

/** A run the scheduler trains: one `deno task train` command. */
export interface ScheduledRun {
  /** The planned run (its key, status and estimate). */
  readonly planned: PlannedRun;
  /** The record file's name without `.json`: names the log and the checkpoint folder. */
  readonly stem: string;
  /** The record's path relative to the project root. */
  readonly recordPath: string;
  /** The `deno task train` arguments that train and record it (no checkpoint options). */
  readonly args: readonly string[];
}

/** Where the checkpoints of scheduled runs go, relative to the project root. */
export const SCHEDULED_CHECKPOINTS: string = ".runs";

/** Where the logs of scheduled runs go, relative to the project root. */
export const SCHEDULED_LOGS: string = join("results", "logs");

/** A run is not started with less of the time budget left than this many seconds. */
export const MIN_START_SECONDS: number = 60;

/** Lines of a failed worker's log that its report shows. */
const FAILURE_TAIL_LINES = 15;

/** Options of {@link scheduledRuns}. */
export interface ScheduledRunsOptions {
  /** Schedule the stale runs too. */
  readonly retrainStale?: boolean;
  /** Only runs on these datasets (canonical names); all when unset or empty. */
  readonly datasets?: readonly string[];
  /** Where dataset names are looked up (default: the datasets directory). */
  readonly datasetsDirectory?: string;
  /** The project root the record paths are relative to (default: this checkout's). */
  readonly root?: string;
}

/** The variant of each run of `grids`, by its key as JSON. */
function variantsByRun(grids: readonly RunGrid[]): Map<string, GridVariant | undefined> {
  const variants = new Map<string, GridVariant | undefined>();
  for (const grid of grids) {
    for (const model of grid.models) {
      for (const variant of grid.variants ?? [undefined]) {
        for (const dataset of grid.datasets) {
          for (const seed of grid.seeds) {
            const key = JSON.stringify(gridRunKey(model, dataset, seed, variant));
            if (!variants.has(key)) variants.set(key, variant);
          }
        }
      }
    }
  }
  return variants;
}

/**
 * The runs of `plan` (made from `grids`) that the scheduler trains: the missing ones and, with
 * `retrainStale`, the stale ones, each with the arguments that train it as the notebooks would
 * (`gridRunTraining`), in plan order.
 */
export function scheduledRuns(
  plan: ReproductionPlan,
  grids: readonly RunGrid[],
  options: ScheduledRunsOptions = {},
): ScheduledRun[] {
  const root = options.root ?? requireProjectRoot();
  const variants = variantsByRun(grids);
  const datasets = options.datasets ?? [];
  return plan.runs.filter((r) =>
    (r.status === "missing" || (r.status === "stale" && options.retrainStale)) &&
    (datasets.length === 0 || datasets.includes(r.key.dataset))
  ).map((planned) => {
    const recordPath = relative(root, runRecordPath(planned.key, join(root, "results", "runs")));
    const variant = variants.get(JSON.stringify(planned.key));
    const { command } = gridRunTraining(
      planned.key,
      variant,
      recordPath,
      options.datasetsDirectory,
    );
    return {
      planned,
      stem: basename(recordPath, ".json"),
      recordPath,
      args: retrainArguments(command, recordPath).first,
    };
  });
}

/**
 * `runs` in the order the scheduler starts them: those without an estimate first (nothing of
 * their model and dataset is recorded yet, and the long cells are the ones least often run), then
 * the longest estimated first; ties keep plan order.
 */
export function longestFirst(runs: readonly ScheduledRun[]): ScheduledRun[] {
  const rank = (r: ScheduledRun) => r.planned.estimateSeconds ?? Infinity;
  return runs.map((run, i) => ({ run, i }))
    .sort((a, b) => rank(b.run) - rank(a.run) || a.i - b.i)
    .map((e) => e.run);
}

/**
 * The `deno task train` arguments of a worker: the run's, its checkpoint folder, `--continue`
 * for a missing run, and `--max-seconds` when a budget is given.
 */
export function workerArguments(run: ScheduledRun, maxSeconds?: number): string[] {
  return [
    ...run.args,
    "--checkpoint-dir",
    `${SCHEDULED_CHECKPOINTS}/${run.stem}`,
    ...(run.planned.status === "missing" ? ["--continue"] : []),
    ...(maxSeconds === undefined ? [] : ["--max-seconds", String(Math.floor(maxSeconds))]),
  ];
}

/**
 * The wall seconds `runs` take on `workers` workers, each started in order on the first free
 * worker, from their estimates (runs without one left out), if workers sharing a GPU do not slow
 * each other down.
 */
export function estimatedWallSeconds(runs: readonly ScheduledRun[], workers: number): number {
  const free = new Array<number>(Math.max(1, workers)).fill(0);
  for (const run of longestFirst(runs)) {
    const seconds = run.planned.estimateSeconds;
    if (seconds === undefined) continue;
    const i = free.indexOf(Math.min(...free));
    free[i] += seconds;
  }
  return Math.max(...free);
}

/** How a scheduled run ended. */
export type RunOutcomeStatus = "finished" | "paused" | "failed" | "not started";

/** One scheduled run's outcome. */
export interface RunOutcome {
  /** The run. */
  readonly run: ScheduledRun;
  /** Finished (record written), paused (budget spent), failed, or not started (budget spent). */
  readonly status: RunOutcomeStatus;
  /** The worker that ran it, from 0. */
  readonly worker?: number;
  /** Wall seconds it ran. */
  readonly seconds?: number;
  /** The test HR@10 it printed. */
  readonly testHit10?: number;
  /** How its process ended. */
  readonly exit?: WorkerExit;
  /** The worker's command line. */
  readonly command?: string;
}

/** {@link runSchedule}'s result. */
export interface ScheduleResult {
  /** Every run's outcome, in the order they ended. */
  readonly outcomes: readonly RunOutcome[];
  /** 0 when every run finished, 1 when one failed, 3 when the budget ran out first. */
  readonly exitStatus: number;
}

/** Options of {@link runSchedule}. */
export interface ScheduleOptions {
  /** Workers at once (at least 1). */
  readonly workers: number;
  /** The GPUs the workers are spread over (worker i on GPU i mod their count); none: no pinning. */
  readonly gpus?: readonly GpuDevice[];
  /** The time budget in seconds: no run starts after it, and each stops by it. */
  readonly maxSeconds?: number;
  /** Runs a worker (default: {@link processSpawner}: `deno task train` in the project root). */
  readonly spawn?: WorkerSpawner;
  /** The project root: logs, checkpoints and records are relative to it (default: this one). */
  readonly root?: string;
  /** Receives one line per event. */
  readonly report?: (line: string) => void;
  /** Seconds on a monotonic clock (default: `performance.now()`). */
  readonly now?: () => number;
}

/** The modification time of a file in milliseconds, or `undefined` when it does not exist. */
async function modified(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** The last `count` lines of a file (fewer when it is shorter; none when it is missing). */
async function lastLines(path: string, count: number): Promise<string[]> {
  try {
    const lines = (await Deno.readTextFile(path)).split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-count);
  } catch {
    return [];
  }
}

/**
 * Trains `runs` on `options.workers` workers as the module documentation describes, longest
 * first; returns every run's outcome and the exit status.
 */
export async function runSchedule(
  runs: readonly ScheduledRun[],
  options: ScheduleOptions,
): Promise<ScheduleResult> {
  const root = options.root ?? requireProjectRoot();
  const spawn = options.spawn ?? processSpawner();
  const now = options.now ?? (() => performance.now() / 1000);
  const report = options.report ?? ((line: string) => console.log(line));
  const gpus = options.gpus ?? [];
  const workers = Math.max(1, Math.floor(options.workers));
  const start = now();
  const queue = longestFirst(runs);
  const outcomes: RunOutcome[] = [];
  let started = 0;

  const runOne = async (run: ScheduledRun, worker: number, left?: number) => {
    const args = workerArguments(run, left);
    const command = `deno task train ${args.join(" ")}`;
    const logPath = join(root, SCHEDULED_LOGS, `${run.stem}.log`);
    const recordPath = join(root, run.recordPath);
    const before = await modified(recordPath);
    const gpu = gpus.length > 0 ? ` on GPU ${gpus[worker % gpus.length].index}` : "";
    const estimate = run.planned.estimateSeconds;
    report(
      `[${++started}/${runs.length}] ${run.stem}: started by worker ${worker}${gpu} ` +
        `(estimated ${estimate === undefined ? "unknown" : formatDuration(estimate)}; log ` +
        `${relative(root, logPath)})`,
    );
    const begun = now();
    let testHit10: number | undefined;
    let pausedAt: number | undefined;
    const exit = await spawn({
      args,
      env: gpuPinningEnvironment(worker, gpus),
      logPath,
      onLine: (line) => {
        const event = parseTrainLine(line);
        if (event?.kind === "epoch") {
          report(
            `${run.stem}: epoch ${event.epoch}, loss ${event.loss.toFixed(4)}, valid ` +
              `${shownMetric(event.valid)} (${formatDuration(now() - begun)})`,
          );
        } else if (event?.kind === "test") {
          testHit10 = event.metrics["hit@10"];
        } else if (event?.kind === "paused") {
          pausedAt = event.epoch;
        }
      },
    });
    const seconds = now() - begun;
    const took = formatDuration(seconds);
    const base = { run, worker, seconds, exit, command };
    if (exit.code !== 0 || exit.signal !== null) {
      const how = exit.signal !== null ? `killed by ${exit.signal}` : `exit status ${exit.code}`;
      const tail = await lastLines(logPath, FAILURE_TAIL_LINES);
      report(
        `${run.stem}: FAILED (${how}) after ${took}: ${command}\n` +
          `  last lines of ${relative(root, logPath)}:\n` +
          tail.map((l) => `    ${l}`).join("\n"),
      );
      outcomes.push({ ...base, status: "failed" });
      return;
    }
    const after = await modified(recordPath);
    if (after !== undefined && after !== before) {
      const hit = testHit10 === undefined ? "" : `: test hit@10 ${testHit10.toFixed(4)}`;
      report(`${run.stem}: finished in ${took}${hit}`);
      outcomes.push({ ...base, status: "finished", testHit10 });
      return;
    }
    const at = pausedAt === undefined ? "" : ` after epoch ${pausedAt}`;
    report(
      `${run.stem}: paused${at} in ${took} (time budget); the same command goes on from ` +
        `${SCHEDULED_CHECKPOINTS}/${run.stem}/`,
    );
    outcomes.push({ ...base, status: "paused" });
  };

  const worker = async (index: number) => {
    for (let run = queue.shift(); run !== undefined; run = queue.shift()) {
      let left: number | undefined;
      if (options.maxSeconds !== undefined) {
        left = options.maxSeconds - (now() - start);
        if (left < MIN_START_SECONDS) {
          outcomes.push({ run, status: "not started" });
          continue;
        }
      }
      await runOne(run, index, left);
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, runs.length) }, (_, i) => worker(i)));

  const count = (s: RunOutcomeStatus) => outcomes.filter((o) => o.status === s).length;
  report(
    `${count("finished")} finished, ${count("failed")} failed, ${count("paused")} paused, ` +
      `${count("not started")} not started, in ${formatDuration(now() - start)}`,
  );
  const exitStatus = count("failed") > 0 ? 1 : count("paused") + count("not started") > 0 ? 3 : 0;
  return { outcomes, exitStatus };
}
