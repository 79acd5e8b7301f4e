/**
 * The runs of a notebook's grid (`run/paper_grids.ts`) as the notebook shows them: every recorded
 * run of the paper's settings, whatever the mode (flagged when other code made it); for the runs
 * without a record, full mode trains each with the paper's protocol and records it, and quick mode
 * trains none of them but gives a smoke run to each cell without any record that the grid
 * smoke-tests (`smokesCell`: the cells of its `smokeCells`, or every cell of a trained dataset
 * where it names none): a couple of epochs on a tiny slice of the dataset, described by what the
 * slice holds, never compared with the paper.
 *
 * @module
 */
import type { SequentialDataset } from "../data/dataset.ts";
import { train, type TrainResult } from "../models/training/trainer.ts";
import { VARIANT_TRAIN_OPTIONS, variantTag } from "./model_variant.ts";
import { type GridVariant, type RunGrid, smokesCell } from "./run_grid.ts";
import { ORDER_LIMITED_DATASETS, type OrderLimit } from "./paper_values.ts";
import { TrainingProgress } from "./progress.ts";
import { type IndexedRecord, readRunIndex, type RunIndex } from "./run_index.ts";
import { defaultRunsDirectory, type RunKey, type RunRecord, runRecordPath } from "./run_record.ts";
import { planRun, type RunRequest, setupRun } from "./setup.ts";
import { runTraining } from "./training_run.ts";

/** What a slice of a dataset holds: its users, items and interactions after filtering. */
export interface SliceContents {
  /** Users kept. */
  readonly users: number;
  /** Items kept. */
  readonly items: number;
  /** Interactions kept. */
  readonly interactions: number;
}

/** A smoke run: a quick run on a tiny slice, which only shows that the pipeline works. */
export interface SmokeRun {
  /** What the slice held. */
  readonly slice: SliceContents;
  /** The adapter it ran on. */
  readonly adapter: string;
  /** The outcome. */
  readonly result: TrainResult;
  /** Wall seconds of loading, building and training. */
  readonly seconds: number;
}

/** One cell of a grid: a model on a dataset, over the grid's seeds. */
export interface GridCell {
  /** Model name. */
  readonly model: string;
  /** Canonical dataset name. */
  readonly dataset: string;
  /** The ablation row (model settings over the preset's), in an ablation grid. */
  readonly variant?: GridVariant;
  /** The recorded runs of the paper's settings, by seed (those trained now included). */
  readonly runs: readonly IndexedRecord[];
  /** The grid's seeds without a record. */
  readonly missingSeeds: readonly number[];
  /** Quick mode, a cell without any record that the grid smoke-tests: its smoke run. */
  readonly smoke: SmokeRun | undefined;
  /**
   * Why its recorded numbers cannot be compared with the paper's cell by cell, when one of its
   * runs read the dataset from a file whose order differs from the paper's pipeline.
   */
  readonly orderLimit: OrderLimit | undefined;
}

/** Users a smoke run keeps from the start of the dataset, by dataset (others: {@link SMOKE_USERS}). */
export const SMOKE_USERS_BY_DATASET: Readonly<Record<string, number>> = Object.freeze({
  // Long histories: 10 users hold about 1,600 interactions (99 after 5-core filtering).
  "ml-1m": 10,
});

/**
 * Users a smoke run keeps where {@link SMOKE_USERS_BY_DATASET} does not say (Amazon: short
 * histories; 500 Video Games users hold 93 after 5-core filtering, 250 none).
 */
export const SMOKE_USERS = 500;

/** The training settings of a smoke run. */
export const SMOKE_TRAIN: Readonly<Record<string, unknown>> = Object.freeze({
  epochs: 2,
  batchSize: 256,
  maxLength: 20,
});

/** Options of {@link gridRuns}. */
export interface GridRunOptions {
  /** `quick`: smoke runs for cells without records; `full`: train and record the missing runs. */
  readonly mode: "quick" | "full";
  /** The records (default: {@link readRunIndex} of `directory`). */
  readonly index?: RunIndex;
  /** Where records are read and written (default `results/runs/`). */
  readonly directory?: string;
  /** Where dataset names are looked up (default: the datasets directory). */
  readonly datasetsDirectory?: string;
  /** Users a smoke run keeps (default: {@link SMOKE_USERS_BY_DATASET}, else {@link SMOKE_USERS}). */
  readonly smokeUsers?: number;
  /** Receives a line per run trained. */
  readonly log?: (line: string) => void;
}

/** What a dataset holds, counted from the data (PAD not counted). */
export function sliceContents(dataset: SequentialDataset): SliceContents {
  return {
    users: dataset.numUsers - 1,
    items: dataset.numItems - 1,
    interactions: dataset.offsets[dataset.offsets.length - 1] - dataset.offsets[0],
  };
}

/** A slice as people read it: `11 users, 52 items, 93 interactions`. */
export function describeSlice(slice: SliceContents): string {
  const n = (v: number) => v.toLocaleString("en-US");
  return `${n(slice.users)} users, ${n(slice.items)} items, ${n(slice.interactions)} interactions`;
}

/** The `--dataset` value of a record's command, or `undefined`. */
function commandDataset(command: string): string | undefined {
  const tokens = command.split(/\s+/);
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === "--dataset") return tokens[i + 1];
    if (tokens[i].startsWith("--dataset=")) return tokens[i].slice("--dataset=".length);
  }
  return undefined;
}

/**
 * Why a record's numbers cannot be compared with the paper's cell by cell, or `undefined`: its
 * dataset is order-limited ({@link ORDER_LIMITED_DATASETS}) unless its command read a RecBole
 * `.inter` or MovieLens `ratings.dat` file, which keep the paper's order.
 */
export function recordOrderLimit(record: RunRecord): OrderLimit | undefined {
  const limit = Object.hasOwn(ORDER_LIMITED_DATASETS, record.dataset)
    ? ORDER_LIMITED_DATASETS[record.dataset]
    : undefined;
  const file = commandDataset(record.command) ?? "";
  return limit && !/\.(inter|dat)$/i.test(file) ? limit : undefined;
}

/** The `deno task train` options of model settings, by setting. */
const SETTING_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  dropoutProb: "--dropout",
  numLayers: "--layers",
  maxLength: "--model-max-len",
  ffn: "--ffn",
  layerNorm: "--layer-norm",
  positionEmbedding: "--position-embedding",
  beta: "--beta",
});

/**
 * The `deno task train` command that trains and records one run of the paper's settings, or of
 * its model `settings` and training settings `train` over them (an ablation's or a sweep's row).
 */
export function recordCommand(
  key: RunKey,
  recordPath: string,
  settings: Readonly<Record<string, unknown>> = {},
  train: Readonly<Record<string, unknown>> = {},
): string {
  const options = [
    ...Object.entries(settings).map(([k, v]) => `${SETTING_OPTIONS[k] ?? `--model-${k}`} ${v}`),
    ...Object.entries(train).map(([k, v]) => {
      if (!Object.hasOwn(VARIANT_TRAIN_OPTIONS, k)) {
        throw new Error(
          `a grid variant sets the training setting '${k}', which no variant may set; use one of ` +
            Object.keys(VARIANT_TRAIN_OPTIONS).join(", "),
        );
      }
      return `${VARIANT_TRAIN_OPTIONS[k]} ${v}`;
    }),
  ].map((o) => ` ${o}`).join("");
  return `deno task train --model ${key.model} --dataset ${key.dataset} --seed ${key.seed}` +
    `${options} --record ${recordPath}`;
}

/**
 * The model settings of a run of `variant` with training windows `window` items long: the
 * variant's, and the window length where the variant sizes a table by it; none without a variant.
 */
export function variantSettings(
  variant: GridVariant | undefined,
  window: number,
): Record<string, unknown> {
  if (!variant) return {};
  return variant.windowKey ? { ...variant.model, [variant.windowKey]: window } : {
    ...variant.model,
  };
}

/** Trains a smoke run of `model` (as `variant`) on the first users of `dataset`. */
async function smokeRun(
  model: string,
  dataset: string,
  variant: GridVariant | undefined,
  options: GridRunOptions,
): Promise<SmokeRun> {
  const start = performance.now();
  const settings: Record<string, unknown> = { ...SMOKE_TRAIN, ...variant?.train, verbose: false };
  const setup = await setupRun({
    model,
    dataset,
    modelConfig: variantSettings(variant, settings.maxLength as number),
    datasetsDirectory: options.datasetsDirectory,
    maxUsers: options.smokeUsers ?? SMOKE_USERS_BY_DATASET[dataset] ?? SMOKE_USERS,
    train: settings,
  });
  const result = await train(setup.model, setup.dataset, setup.config, {
    observer: new TrainingProgress(false, setup.config.validMetric),
  });
  const slice = sliceContents(setup.dataset);
  const row = variant ? ` (${variant.label})` : "";
  options.log?.(`smoke run of ${model}${row} on ${dataset} (${describeSlice(slice)}) done`);
  return {
    slice,
    adapter: setup.adapter,
    result,
    seconds: (performance.now() - start) / 1000,
  };
}

/**
 * What trains one run of a grid with the paper's protocol (as `variant`, if given) and records it
 * in `recordPath`: the request, and the `deno task train` command that does the same (the
 * record's command, and what the run scheduler runs).
 */
export function gridRunTraining(
  key: RunKey,
  variant: GridVariant | undefined,
  recordPath: string,
  datasetsDirectory?: string,
): { request: RunRequest; command: string } {
  const request = {
    model: key.model,
    dataset: key.dataset,
    datasetsDirectory,
    train: { ...variant?.train, seed: key.seed, verbose: true },
  };
  const modelConfig = variantSettings(variant, planRun(request).config.maxLength);
  return {
    request: { ...request, modelConfig },
    command: recordCommand(key, recordPath, modelConfig, variant?.train),
  };
}

/**
 * Trains one missing run with the paper's protocol (as `variant`, if given) and records it;
 * returns its record.
 */
async function trainAndRecord(
  key: RunKey,
  variant: GridVariant | undefined,
  directory: string,
  options: GridRunOptions,
): Promise<IndexedRecord> {
  const path = runRecordPath(key, directory);
  const { request, command } = gridRunTraining(key, variant, path, options.datasetsDirectory);
  await runTraining({ request, record: path, command, log: options.log });
  const found = (await readRunIndex(directory)).find(key);
  if (!found) throw new Error(`${path}: the run finished but its record does not read back`);
  return found;
}

/**
 * The key of a run of `model` on `dataset` with `seed`, as `variant` (its tag, from the variant's
 * own settings: the window length is no part of it).
 */
export function gridRunKey(
  model: string,
  dataset: string,
  seed: number,
  variant: GridVariant | undefined,
): RunKey {
  const tag = variant ? variantTag(variant.model, variant.train) : undefined;
  return tag === undefined ? { model, dataset, seed } : { model, dataset, seed, variant: tag };
}

/**
 * The runs of every cell of `grid`, as the module documentation describes, in grid order (each
 * model's variants in order, each over the datasets); the grid's recorded-only datasets come
 * last and are never trained nor smoke-tested.
 */
export async function gridRuns(grid: RunGrid, options: GridRunOptions): Promise<GridCell[]> {
  const directory = options.directory ?? defaultRunsDirectory();
  const index = options.index ?? await readRunIndex(directory);
  const recordedOnly = grid.recordedOnly ?? [];
  const cells: GridCell[] = [];
  for (const model of grid.models) {
    for (const variant of grid.variants ?? [undefined]) {
      for (const dataset of [...grid.datasets, ...recordedOnly]) {
        const trains = !recordedOnly.includes(dataset);
        const runs: IndexedRecord[] = [];
        const missingSeeds: number[] = [];
        for (const seed of grid.seeds) {
          const key = gridRunKey(model, dataset, seed, variant);
          let found = index.find(key);
          if (!found && trains && options.mode === "full") {
            found = await trainAndRecord(key, variant, directory, options);
          }
          if (found) runs.push(found);
          else missingSeeds.push(seed);
        }
        const smoke = runs.length === 0 && options.mode === "quick" &&
            smokesCell(grid, variant, dataset)
          ? await smokeRun(model, dataset, variant, options)
          : undefined;
        const orderLimit = runs.map((r) => recordOrderLimit(r.record)).find((l) => l !== undefined);
        cells.push({ model, dataset, variant, runs, missingSeeds, smoke, orderLimit });
      }
    }
  }
  return cells;
}
