/**
 * What `deno task reproduce` will show and train, worked out before any notebook runs: every run
 * of the selected notebooks' grids (see `run/paper_grids.ts`) is recorded by the checked-out code,
 * recorded by other code (stale), or missing; the missing ones' GPU time is estimated from the
 * recorded runs of the same model and dataset (their epochs' training and evaluation seconds),
 * else scaled from the same model's runs on other datasets ({@link scaledRunSeconds}), else
 * unknown, and a stale one's is its own record's.
 *
 * @module
 */
import type { TrainResult } from "../models/training/trainer.ts";
import { gridRunKey } from "./grid_runs.ts";
import { type RunGrid, smokesCell } from "./run_grid.ts";
import { formatDuration } from "./progress.ts";
import type { IndexedRecord, RunIndex } from "./run_index.ts";
import type { RunKey } from "./run_record.ts";

/** Where one planned run stands. */
export type PlannedRunStatus = "recorded" | "stale" | "missing";

/** One run of a grid, with its record if there is one. */
export interface PlannedRun {
  /** Model, dataset and seed. */
  readonly key: RunKey;
  /** Recorded by the checked-out code, by other code, or not at all. */
  readonly status: PlannedRunStatus;
  /** The record of the paper's settings, when recorded. */
  readonly record: IndexedRecord | undefined;
  /**
   * A missing run's estimated GPU seconds, or a stale run's recorded ones (what training it again
   * takes, as the scheduler orders runs by); `undefined` when current or unknown.
   */
  readonly estimateSeconds: number | undefined;
}

/** The plan of a reproduction: {@link planReproduction}'s result. */
export interface ReproductionPlan {
  /** Every run of the grids, once each (a run in two grids counts once), in grid order. */
  readonly runs: readonly PlannedRun[];
  /** Runs recorded by the checked-out code. */
  readonly recorded: number;
  /** Runs recorded by other code. */
  readonly stale: number;
  /** Runs without a record of the paper's settings. */
  readonly missing: number;
  /** Estimated GPU seconds of the missing runs that have an estimate. */
  readonly missingSeconds: number;
  /** The stale runs' recorded GPU seconds: what training them again takes. */
  readonly staleSeconds: number;
  /**
   * The missing runs whose estimate is scaled from other datasets ({@link scaledRunSeconds}):
   * nothing is recorded of their model on their dataset.
   */
  readonly scaled: readonly RunKey[];
  /** The missing runs without an estimate (nothing recorded to estimate it from). */
  readonly unknown: readonly RunKey[];
  /**
   * Grid cells of the trained datasets (model and dataset; one per variant) without any recorded
   * seed.
   */
  readonly cellsWithoutRecord: readonly PlannedCell[];
  /**
   * The cells without any recorded seed that a quick run smoke-tests: those its grid chooses
   * (`RunGrid.smokeCells`; every one where a grid chooses none).
   */
  readonly smokeCells: readonly PlannedCell[];
}

/** A grid cell in the plan: a model on a dataset, as one row of its grid. */
export interface PlannedCell {
  /** Registered model name. */
  readonly model: string;
  /** Canonical dataset name. */
  readonly dataset: string;
  /** The row's label; left out in a grid without rows. */
  readonly row?: string;
}

/** GPU seconds of a recorded run: every epoch's training and evaluation time. */
export function recordedSeconds(result: TrainResult): number {
  return result.history.reduce((s, e) => s + e.trainSeconds + e.evalSeconds, 0);
}

/**
 * The GPU seconds a run of `model` on `dataset` is expected to take: the mean of the recorded
 * runs of the same model and dataset (any seed, any code); `undefined` when there are none.
 */
export function estimateRunSeconds(
  index: RunIndex,
  model: string,
  dataset: string,
): number | undefined {
  const records = index.ofModelAndDataset(model, dataset);
  if (records.length === 0) return undefined;
  return records.reduce((s, r) => s + recordedSeconds(r.record.result), 0) / records.length;
}

/**
 * A rough estimate of the GPU seconds of `model` on `dataset` where nothing of that cell is
 * recorded: for every other dataset Y with runs of `model`, and every other model R with runs on
 * both Y and `dataset`, `model`'s mean on Y times R's ratio of `dataset` to Y; the geometric mean
 * of those. It takes the datasets' relative cost from models that ran on both, which holds as far
 * as the models' costs grow alike with the data (a model whose cost grows with the catalogue or
 * the length faster than the reference's is underestimated). `undefined` when no pair exists.
 */
export function scaledRunSeconds(
  index: RunIndex,
  model: string,
  dataset: string,
): number | undefined {
  const mean = (m: string, d: string) => estimateRunSeconds(index, m, d);
  const others = new Set(
    index.records.filter((r) => r.key.model === model && r.key.dataset !== dataset)
      .map((r) => r.key.dataset),
  );
  const references = new Set(
    index.records.filter((r) => r.key.dataset === dataset && r.key.model !== model)
      .map((r) => r.key.model),
  );
  // Each reference model's mean on `dataset`, once.
  const there = new Map([...references].map((r) => [r, mean(r, dataset)]));
  const logs: number[] = [];
  for (const other of others) {
    const own = mean(model, other);
    for (const reference of references) {
      const here = mean(reference, other), theirs = there.get(reference);
      if (own && theirs && here) logs.push(Math.log(own * theirs / here));
    }
  }
  if (logs.length === 0) return undefined;
  return Math.exp(logs.reduce((s, x) => s + x, 0) / logs.length);
}

/**
 * Every run of `grids` (each model's variants, each dataset, each seed), with where it stands in
 * `index`; a grid's recorded-only datasets add their recorded runs and nothing missing.
 */
export function planReproduction(grids: readonly RunGrid[], index: RunIndex): ReproductionPlan {
  const runs: PlannedRun[] = [];
  const scaled = new Set<RunKey>();
  const seen = new Set<string>();
  const cellsWithoutRecord = new Map<string, PlannedCell>();
  const smoked = new Set<string>();
  for (const grid of grids) {
    const recordedOnly = grid.recordedOnly ?? [];
    for (const model of grid.models) {
      for (const variant of grid.variants ?? [undefined]) {
        for (const dataset of [...grid.datasets, ...recordedOnly]) {
          const trains = !recordedOnly.includes(dataset);
          const tag = gridRunKey(model, dataset, 0, variant).variant;
          const cellKey = JSON.stringify([model, dataset, tag ?? null]);
          const records = grid.seeds.map((seed) => {
            const key = gridRunKey(model, dataset, seed, variant);
            return { key, record: index.find(key) };
          });
          if (trains && records.every((r) => r.record === undefined)) {
            // A cell in two grids is smoke-tested when either grid chooses it.
            const cell = { model, dataset, ...(variant ? { row: variant.label } : {}) };
            if (!cellsWithoutRecord.has(cellKey)) cellsWithoutRecord.set(cellKey, cell);
            if (smokesCell(grid, variant, dataset)) smoked.add(cellKey);
          }
          if (seen.has(cellKey)) continue;
          seen.add(cellKey);
          for (const { key, record } of records) {
            // A dataset the grid only shows where recorded is never missing.
            if (record === undefined && !trains) continue;
            const status = record === undefined
              ? "missing"
              : record.staleness.stale
              ? "stale"
              : "recorded";
            const sameCell = record === undefined
              ? estimateRunSeconds(index, model, dataset)
              : undefined;
            const scaledSeconds = record === undefined && sameCell === undefined
              ? scaledRunSeconds(index, model, dataset)
              : undefined;
            if (scaledSeconds !== undefined) scaled.add(key);
            const estimateSeconds = record === undefined
              ? sameCell ?? scaledSeconds
              : status === "stale"
              ? recordedSeconds(record.record.result)
              : undefined;
            runs.push({ key, status, record, estimateSeconds });
          }
        }
      }
    }
  }
  const missing = runs.filter((r) => r.status === "missing");
  const stale = runs.filter((r) => r.status === "stale");
  const seconds = (list: PlannedRun[]) => list.reduce((s, r) => s + (r.estimateSeconds ?? 0), 0);
  return {
    runs,
    recorded: runs.filter((r) => r.status === "recorded").length,
    stale: stale.length,
    missing: missing.length,
    missingSeconds: seconds(missing),
    staleSeconds: seconds(stale),
    scaled: missing.filter((r) => scaled.has(r.key)).map((r) => r.key),
    unknown: missing.filter((r) => r.estimateSeconds === undefined).map((r) => r.key),
    cellsWithoutRecord: [...cellsWithoutRecord.values()],
    smokeCells: [...cellsWithoutRecord].filter(([k]) => smoked.has(k)).map(([, cell]) => cell),
  };
}

/** `model on dataset` pairs of `keys`, each once, as a list. */
function cellList(keys: readonly { model: string; dataset: string }[]): string {
  const cells = [...new Set(keys.map((k) => `${k.model} on ${k.dataset}`))];
  return cells.length <= 4 ? cells.join(", ") : `${cells.slice(0, 4).join(", ")}, …`;
}

/** What {@link planLines} tells besides the plan itself. */
export interface PlanLineOptions {
  /**
   * With `--retrain-stale`: how many stale records the selected notebooks and datasets do not
   * train again (they are left as they are).
   */
  readonly staleLeftOut?: number;
}

/**
 * The plan for people, one line each: how many runs are recorded, stale and missing, the missing
 * ones' GPU time, and what the mode does about them (full: trains them with the paper's
 * protocol; quick: trains none of them, smoke-tests the chosen cells without any record on a tiny
 * slice).
 */
export function planLines(
  plan: ReproductionPlan,
  mode: "quick" | "full",
  options: PlanLineOptions = {},
): string[] {
  const total = plan.runs.length;
  const leftOut = options.staleLeftOut
    ? [`plan: ${options.staleLeftOut} stale record(s) outside the selection left as they are`]
    : [];
  if (total === 0) {
    return ["plan: the selected notebooks neither train nor show any run", ...leftOut];
  }
  const lines = [
    `plan: ${total} run(s) in the selected notebooks: ${plan.recorded + plan.stale} recorded ` +
    `(${plan.stale} of them by other code: stale), ${plan.missing} missing`,
  ];
  if (plan.missing > 0) {
    const known = plan.missing - plan.unknown.length;
    const sameCell = known - plan.scaled.length;
    const bases = [
      ...(sameCell > 0
        ? [`${sameCell} from the recorded epoch times of the same model and dataset`]
        : []),
      ...(plan.scaled.length > 0
        ? [
          `${plan.scaled.length} scaled, roughly, from the same model's runs on other datasets by ` +
          `how much longer other models ran there: ${cellList(plan.scaled)}`,
        ]
        : []),
    ];
    const estimate = known === 0
      ? "unknown"
      : `about ${formatDuration(plan.missingSeconds)} for ${known} of them (${bases.join("; ")})`;
    const unknown = plan.unknown.length === 0 || known === 0
      ? ""
      : `; unknown for ${plan.unknown.length} (nothing recorded of ${cellList(plan.unknown)})`;
    lines.push(`plan: GPU time of the missing runs: ${estimate}${unknown}`);
  }
  if (plan.stale > 0) {
    lines.push(
      "plan: stale runs are shown flagged; `--full --retrain-stale` trains them again (about " +
        `${formatDuration(plan.staleSeconds)} of GPU time by their records)`,
    );
  }
  lines.push(...leftOut);
  if (mode === "quick") {
    const smoke = plan.smokeCells.length;
    const without = plan.cellsWithoutRecord.length;
    const count = smoke === without ? `${smoke}` : `${smoke} of the ${without}`;
    lines.push(
      `plan: quick mode trains no missing run; ${count} cell(s) without any record get a smoke ` +
        "run on a tiny slice, shown without the paper's numbers",
    );
  } else if (plan.missing > 0) {
    lines.push(`plan: full mode trains the ${plan.missing} missing run(s) and records them`);
  }
  return lines;
}
