/**
 * What the run scheduler (`run/run_scheduler.ts`) trains: each run of a reproduction plan that
 * has no record (and, when asked, each stale one) as the `deno task train` arguments that train it
 * as the notebooks would, the order the runs start in (longest first), each worker's checkpoint
 * options, and the wall time they should take.
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
import { runRecordPath } from "./run_record.ts";

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
