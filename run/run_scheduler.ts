/**
 * Trains many runs at once: each run of a reproduction plan that has no record (and, when asked,
 * each stale one) is one `deno task train` command whose output is its run record, so the
 * scheduler keeps a number of worker processes busy with them, the longest first (or, asked, the
 * shortest first), spreading the workers over the host's GPUs (`run/gpu_pinning.ts`). A run that
 * fills a GPU by itself (`runsAlone` in `run/scheduled_runs.ts`) runs with no companion on its
 * GPU: its GPU starts nothing new until its runs have ended, then nothing beside it
 * (`WorkerPool`).
 *
 * Each run checkpoints into `.runs/<record stem>/` and a missing run starts with `--continue`,
 * so a run killed with its worker or with the scheduler goes on from its last epoch when the
 * scheduler runs again; a record is written atomically when its run is over, so a rerun trains
 * exactly what is still missing. A stale run starts from scratch: its checkpoint folder may hold
 * the finished run of the older code. With a time budget every worker gets `--max-seconds` (what
 * is left of the budget), pauses at an epoch's end when it would run out, and the next rerun goes
 * on. Each worker's output goes to `results/logs/<record stem>.log`; the scheduler reports one
 * line per event (started, each epoch, finished with its test HR@10, paused, failed with its
 * command and the end of its log). On SIGINT or SIGTERM it ends its workers (SIGTERM), starts no
 * other run and returns; the stopped runs go on from their checkpoints when it runs again.
 *
 * @module
 */
import { join, relative } from "node:path";
import { requireProjectRoot } from "./code_version.ts";
import { type GpuDevice, gpuPinningEnvironment } from "./gpu_pinning.ts";
import { formatDuration } from "./progress.ts";
import {
  runsAlone,
  SCHEDULED_CHECKPOINTS,
  type ScheduledRun,
  type StartOrder,
  workerArguments,
  WorkerPool,
} from "./scheduled_runs.ts";
import {
  parseTrainLine,
  processSpawner,
  shownMetric,
  type WorkerExit,
  type WorkerSpawner,
} from "./train_worker.ts";

/** Where the logs of scheduled runs go, relative to the project root. */
export const SCHEDULED_LOGS: string = join("results", "logs");

/** A run is not started with less of the time budget left than this many seconds. */
export const MIN_START_SECONDS: number = 60;

/** Lines of a failed worker's log that its report shows. */
const FAILURE_TAIL_LINES = 15;

/** How a scheduled run ended. */
export type RunOutcomeStatus = "finished" | "paused" | "failed" | "stopped" | "not started";

/** One scheduled run's outcome. */
export interface RunOutcome {
  /** The run. */
  readonly run: ScheduledRun;
  /**
   * Finished (record written), paused (budget spent), failed, stopped (the scheduler was
   * interrupted), or not started (budget spent or interrupted).
   */
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
  /**
   * 0 when every run finished, 1 when one failed, 130 when the scheduler was interrupted, 3 when
   * the budget ran out first.
   */
  readonly exitStatus: number;
}

/** Options of {@link runSchedule}. */
export interface ScheduleOptions {
  /**
   * Workers at once (at least 1). A run that `runsAlone` leaves its GPU's other workers idle
   * while it runs.
   */
  readonly workers: number;
  /** The GPUs the workers are spread over (worker i on GPU i mod their count); none: no pinning. */
  readonly gpus?: readonly GpuDevice[];
  /** The time budget in seconds: no run starts after it, and each stops by it. */
  readonly maxSeconds?: number;
  /** The order runs start in (default `"longest-first"`). */
  readonly order?: StartOrder;
  /** Runs a worker (default: {@link processSpawner}: the `train` task in the project root). */
  readonly spawn?: WorkerSpawner;
  /** The project root: logs, checkpoints and records are relative to it (default: this one). */
  readonly root?: string;
  /** Receives one line per event. */
  readonly report?: (line: string) => void;
  /** Seconds on a monotonic clock (default: `performance.now()`). */
  readonly now?: () => number;
  /** Stop on SIGINT and SIGTERM as the module documentation says (default true). */
  readonly stopOnSignals?: boolean;
}

/** Signal names by number (Linux), for exit codes above 128. */
const SIGNAL_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: "SIGHUP",
  2: "SIGINT",
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
});

/** How a worker ended, for people: `killed by SIGKILL`, `exit status 1`. */
export function describeExit(exit: WorkerExit): string {
  if (exit.signal !== null) return `killed by ${exit.signal}`;
  const signal = exit.code > 128 ? SIGNAL_NAMES[exit.code - 128] : undefined;
  return signal === undefined
    ? `exit status ${exit.code}`
    : `exit status ${exit.code}: killed by ${signal}`;
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

/** What {@link trainOne} needs of its schedule. */
interface ScheduleContext {
  readonly root: string;
  readonly spawn: WorkerSpawner;
  readonly now: () => number;
  readonly report: (line: string) => void;
  readonly gpus: readonly GpuDevice[];
  readonly stop: AbortSignal;
  /** The `[n/total]` of the start line. */
  readonly position: () => string;
}

/** Trains one run on worker `worker` (with `left` seconds of budget), reporting each event. */
async function trainOne(
  run: ScheduledRun,
  worker: number,
  left: number | undefined,
  context: ScheduleContext,
): Promise<RunOutcome> {
  // Taken before the first await, so runs are numbered in the order the workers take them.
  const position = context.position();
  const { root, now, report, gpus } = context;
  const args = workerArguments(run, left);
  const command = `deno task train ${args.join(" ")}`;
  const logPath = join(root, SCHEDULED_LOGS, `${run.stem}.log`);
  const recordPath = join(root, run.recordPath);
  const before = await modified(recordPath);
  const gpu = (gpus.length > 0 ? ` on GPU ${gpus[worker % gpus.length].index}` : "") +
    (runsAlone(run.planned.key) ? ", alone" : "");
  const estimate = run.planned.estimateSeconds;
  report(
    `${position} ${run.stem}: started by worker ${worker}${gpu} ` +
      `(estimated ${estimate === undefined ? "unknown" : formatDuration(estimate)}; log ` +
      `${relative(root, logPath)})`,
  );
  const begun = now();
  let testHit10: number | undefined;
  let pausedAt: number | undefined;
  const exit = await context.spawn({
    args,
    env: gpuPinningEnvironment(worker, gpus),
    logPath,
    signal: context.stop,
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
  if ((exit.code !== 0 || exit.signal !== null) && context.stop.aborted) {
    report(`${run.stem}: stopped after ${took}; the same command goes on from its checkpoint`);
    return { ...base, status: "stopped" };
  }
  if (exit.code !== 0 || exit.signal !== null) {
    const tail = await lastLines(logPath, FAILURE_TAIL_LINES);
    report(
      `${run.stem}: FAILED (${describeExit(exit)}) after ${took}: ${command}\n` +
        `  last lines of ${relative(root, logPath)}:\n` +
        tail.map((l) => `    ${l}`).join("\n"),
    );
    return { ...base, status: "failed" };
  }
  const after = await modified(recordPath);
  if (after !== undefined && after !== before) {
    const hit = testHit10 === undefined ? "" : `: test hit@10 ${testHit10.toFixed(4)}`;
    report(`${run.stem}: finished in ${took}${hit}`);
    return { ...base, status: "finished", testHit10 };
  }
  const at = pausedAt === undefined ? "" : ` after epoch ${pausedAt}`;
  report(
    `${run.stem}: paused${at} in ${took} (time budget); the same command goes on from ` +
      `${SCHEDULED_CHECKPOINTS}/${run.stem}/`,
  );
  return { ...base, status: "paused" };
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
  const now = options.now ?? (() => performance.now() / 1000);
  const report = options.report ?? ((line: string) => console.log(line));
  const start = now();
  const outcomes: RunOutcome[] = [];
  const stop = new AbortController();
  let started = 0;
  const context: ScheduleContext = {
    root,
    spawn: options.spawn ?? processSpawner({ cwd: root }),
    now,
    report,
    gpus: options.gpus ?? [],
    stop: stop.signal,
    position: () => `[${++started}/${runs.length}]`,
  };
  const pool = new WorkerPool(
    runs,
    options.workers,
    Math.max(1, context.gpus.length),
    options.order,
  );
  const active = new Set<Promise<void>>();
  /** Starts every run that may start now; once stopped or out of budget, none. */
  const startWhatMay = () => {
    for (;;) {
      const left = options.maxSeconds === undefined
        ? undefined
        : options.maxSeconds - (now() - start);
      if (stop.signal.aborted || (left !== undefined && left < MIN_START_SECONDS)) {
        for (const run of pool.takeRest()) outcomes.push({ run, status: "not started" });
        return;
      }
      const step = pool.next();
      if (step === undefined) return;
      if ("waitsForGpu" in step) {
        const gpu = context.gpus[step.waitsForGpu];
        report(
          `${step.run.stem}: waits for ${
            gpu === undefined ? "the other workers' runs" : `the runs on GPU ${gpu.index}`
          } to end: it runs alone on its GPU`,
        );
        continue;
      }
      const { run, worker } = step;
      const ended: Promise<void> = trainOne(run, worker, left, context).then((outcome) => {
        outcomes.push(outcome);
        pool.finished(worker);
        active.delete(ended);
      });
      active.add(ended);
    }
  };
  const signals: Deno.Signal[] = options.stopOnSignals === false ? [] : ["SIGINT", "SIGTERM"];
  const onSignal = () => {
    if (stop.signal.aborted) return;
    report("interrupted: ending the workers; the same command goes on where they stopped");
    stop.abort();
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    for (startWhatMay(); active.size > 0; startWhatMay()) await Promise.race(active);
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  if (!pool.allStarted) {
    throw new Error("runSchedule: runs left that no free worker may start (a WorkerPool bug)");
  }

  const count = (s: RunOutcomeStatus) => outcomes.filter((o) => o.status === s).length;
  const stopped = count("stopped") > 0 ? `${count("stopped")} stopped, ` : "";
  report(
    `${count("finished")} finished, ${count("failed")} failed, ${count("paused")} paused, ` +
      `${stopped}${count("not started")} not started, in ${formatDuration(now() - start)}`,
  );
  const exitStatus = count("failed") > 0
    ? 1
    : stop.signal.aborted
    ? 130
    : count("paused") + count("not started") > 0
    ? 3
    : 0;
  return { outcomes, exitStatus };
}
