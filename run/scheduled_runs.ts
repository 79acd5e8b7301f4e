/**
 * What the run scheduler (`run/run_scheduler.ts`) trains: each run of a reproduction plan that
 * has no record (and, when asked, each stale one) as the `deno task train` arguments that train it
 * as the notebooks would, the order the runs start in (longest first, or shortest first), which
 * runs need a GPU to themselves, each worker's checkpoint options, and the wall time they should
 * take.
 *
 * @module
 */
import { basename, join, relative } from "node:path";
import { requireProjectRoot } from "./code_version.ts";
import { gridRunKey, gridRunTraining } from "./grid_runs.ts";
import type { GridVariant, RunGrid } from "./run_grid.ts";
import type { PlannedRun, ReproductionPlan } from "./reproduction_plan.ts";
import { retrainArguments } from "./retrain_stale.ts";
import type { IndexedRecord, RunIndex } from "./run_index.ts";
import { type RunKey, runRecordPath } from "./run_record.ts";

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
 * The stale records of `index` that `runs` do not train again: those of other notebooks, of
 * datasets outside the selection, or of other settings than the grids', which
 * `deno task reproduce --retrain-stale` leaves as they are.
 */
export function staleRecordsLeftOut(
  index: RunIndex,
  runs: readonly ScheduledRun[],
): IndexedRecord[] {
  const retrained = new Set(
    runs.flatMap((r) =>
      r.planned.status === "stale" && r.planned.record ? [r.planned.record.path] : []
    ),
  );
  return index.records.filter((r) => r.staleness.stale && !retrained.has(r.path));
}

/**
 * The order runs start in: `"longest-first"` (the default) ends the whole schedule soonest, since
 * the long runs do not wait behind the short ones; `"shortest-first"` finishes the most runs
 * within a time budget, for a machine whose checkpoints are lost when it goes away.
 */
export type StartOrder = "longest-first" | "shortest-first";

/**
 * `runs` in the order the scheduler starts them by default: those without an estimate first
 * (nothing of their model and dataset is recorded yet, and the long cells are the ones least
 * often run), then the longest estimated first; ties keep plan order.
 */
export function longestFirst(runs: readonly ScheduledRun[]): ScheduledRun[] {
  return byEstimate(runs, -1);
}

/**
 * `runs` with the shortest estimated first and those without an estimate last; ties keep plan
 * order.
 */
export function shortestFirst(runs: readonly ScheduledRun[]): ScheduledRun[] {
  return byEstimate(runs, 1);
}

/**
 * `runs` sorted by their estimates, an unknown one counting as infinite, ascending (`sign` 1) or
 * descending (−1); ties keep plan order.
 */
function byEstimate(runs: readonly ScheduledRun[], sign: 1 | -1): ScheduledRun[] {
  const rank = (r: ScheduledRun) => r.planned.estimateSeconds ?? Infinity;
  return runs.map((run, i) => ({ run, i }))
    .sort((a, b) => sign * (rank(a.run) - rank(b.run)) || a.i - b.i)
    .map((e) => e.run);
}

/** `runs` in `order` ({@link longestFirst} or {@link shortestFirst}). */
export function inStartOrder(
  runs: readonly ScheduledRun[],
  order: StartOrder = "longest-first",
): ScheduledRun[] {
  return order === "shortest-first" ? shortestFirst(runs) : longestFirst(runs);
}

/**
 * The models and datasets whose runs keep a GPU busy by themselves: Caser on ML-1M (windows of
 * L = 200) and SSD4Rec on ML-1M. Every run sharing a GPU with one of them slows to a crawl, so the
 * scheduler runs them with no companion on their GPU ({@link runsAlone}).
 */
export const GPU_SATURATING_RUNS: readonly Readonly<{ model: string; dataset: string }>[] = Object
  .freeze([
    Object.freeze({ model: "caser", dataset: "ml-1m" }),
    Object.freeze({ model: "ssd4rec", dataset: "ml-1m" }),
  ]);

/**
 * Whether the run of `key` (any seed and variant) must have its GPU to itself: its model and
 * dataset are among {@link GPU_SATURATING_RUNS}.
 */
export function runsAlone(key: RunKey): boolean {
  return GPU_SATURATING_RUNS.some((r) => r.model === key.model && r.dataset === key.dataset);
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

/** What {@link WorkerPool.next} decided: a run starts on a worker, or waits for a GPU to empty. */
export type PoolStep =
  | { readonly run: ScheduledRun; readonly worker: number }
  | { readonly run: ScheduledRun; readonly waitsForGpu: number };

/**
 * Which worker starts which run, and when. Worker i is on GPU i mod the GPU count (one GPU when
 * none is known). Runs start in their {@link StartOrder} (longest first unless told), each on the
 * free worker of lowest number. A run that {@link runsAlone} starts only on a GPU where nothing
 * runs, and while it runs nothing starts beside it. When no GPU is empty, the first such run in
 * the queue takes the GPU with the fewest runs (the lowest-numbered of those), which starts
 * nothing new until its runs end; the runs behind it in the queue go on starting on the other
 * GPUs.
 */
export class WorkerPool {
  readonly #queue: ScheduledRun[];
  readonly #gpus: number;
  /** The run of each worker, or `undefined` while it is free. */
  readonly #runs: (ScheduledRun | undefined)[];
  /** Each GPU's run that waits for the GPU to empty, if any. */
  readonly #waiting: (ScheduledRun | undefined)[];

  /**
   * A pool of `workers` workers (at least 1) on `gpus` GPUs (at least 1) for `runs`, started in
   * `order`.
   */
  constructor(
    runs: readonly ScheduledRun[],
    workers: number,
    gpus: number,
    order: StartOrder = "longest-first",
  ) {
    this.#queue = inStartOrder(runs, order);
    const count = Math.max(1, Math.floor(workers));
    // A GPU without a worker of its own takes no part.
    this.#gpus = Math.min(count, Math.max(1, Math.floor(gpus)));
    this.#runs = new Array(count).fill(undefined);
    this.#waiting = new Array(this.#gpus).fill(undefined);
  }

  /** The GPU of `worker`: its number mod the GPU count. */
  gpuOf(worker: number): number {
    return worker % this.#gpus;
  }

  /** Whether every run has started (or been taken with {@link takeRest}). */
  get allStarted(): boolean {
    return this.#queue.length === 0 && this.#waiting.every((r) => r === undefined);
  }

  /** The next run that may start now and its worker (now busy), a run that waits, or none. */
  next(): PoolStep | undefined {
    for (let gpu = 0; gpu < this.#gpus; gpu++) {
      const run = this.#waiting[gpu];
      if (run !== undefined && this.#runsOn(gpu) === 0) {
        this.#waiting[gpu] = undefined;
        return this.#start(run, this.#freeWorkers(gpu)[0]);
      }
    }
    const run = this.#queue[0];
    if (run === undefined) return undefined;
    const open = this.#gpuNumbers().filter((g) =>
      this.#waiting[g] === undefined && !this.#alone(g)
    );
    if (!runsAlone(run.planned.key)) {
      const worker = open.flatMap((g) => this.#freeWorkers(g)).sort((a, b) => a - b)[0];
      return worker === undefined ? undefined : this.#start(this.#queue.shift()!, worker);
    }
    const empty = open.find((g) => this.#runsOn(g) === 0);
    if (empty !== undefined) return this.#start(this.#queue.shift()!, this.#freeWorkers(empty)[0]);
    if (open.length === 0) return undefined;
    const gpu = open.reduce((best, g) => this.#runsOn(g) < this.#runsOn(best) ? g : best);
    this.#waiting[gpu] = this.#queue.shift()!;
    return { run, waitsForGpu: gpu };
  }

  /** Frees `worker` when its run has ended. */
  finished(worker: number): void {
    if (this.#runs[worker] === undefined) {
      throw new Error(`worker ${worker} has no run to finish: the scheduler lost count of it`);
    }
    this.#runs[worker] = undefined;
  }

  /** The runs not started, waiting ones first, then the queue's in order; the pool keeps none. */
  takeRest(): ScheduledRun[] {
    const rest = [...this.#waiting.filter((r) => r !== undefined), ...this.#queue];
    this.#waiting.fill(undefined);
    this.#queue.length = 0;
    return rest;
  }

  #start(run: ScheduledRun, worker: number): PoolStep {
    this.#runs[worker] = run;
    return { run, worker };
  }

  #gpuNumbers(): number[] {
    return Array.from({ length: this.#gpus }, (_, g) => g);
  }

  #freeWorkers(gpu: number): number[] {
    return this.#runs.flatMap((r, w) => r === undefined && this.gpuOf(w) === gpu ? [w] : []);
  }

  #runsOn(gpu: number): number {
    return this.#runs.filter((r, w) => r !== undefined && this.gpuOf(w) === gpu).length;
  }

  /** Whether a run that must run alone runs on `gpu`. */
  #alone(gpu: number): boolean {
    return this.#runs.some((r, w) =>
      r !== undefined && this.gpuOf(w) === gpu && runsAlone(r.planned.key)
    );
  }
}

/**
 * The wall seconds `runs` take on `workers` workers spread over `gpus` GPUs, started as a
 * {@link WorkerPool} starts them in `order`, from their estimates (runs without one left out), if
 * workers sharing a GPU do not slow each other down.
 */
export function estimatedWallSeconds(
  runs: readonly ScheduledRun[],
  workers: number,
  gpus: number = 1,
  order: StartOrder = "longest-first",
): number {
  const pool = new WorkerPool(
    runs.filter((r) => r.planned.estimateSeconds !== undefined),
    workers,
    gpus,
    order,
  );
  const ends: { worker: number; at: number }[] = [];
  let clock = 0;
  for (;;) {
    for (let step = pool.next(); step !== undefined; step = pool.next()) {
      if ("worker" in step) {
        ends.push({ worker: step.worker, at: clock + step.run.planned.estimateSeconds! });
      }
    }
    if (ends.length === 0) {
      if (pool.allStarted) return clock;
      throw new Error("estimatedWallSeconds: runs left that no free worker may start");
    }
    ends.sort((a, b) => a.at - b.at);
    const end = ends.shift()!;
    clock = end.at;
    pool.finished(end.worker);
  }
}
