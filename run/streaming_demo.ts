/**
 * Streaming recommendation as a notebook shows it: a trained Mamba4Rec or one-layer SSD4Rec (a
 * given checkpoint, else the best checkpoint of a recorded run, else a smoke model trained now on
 * a tiny slice), and a few users' last events replayed one by one through the model's step form
 * (`openStream`), the top-k after each event checked against the full model's forward over the
 * same items.
 *
 * @module
 */
import { basename, isAbsolute, join } from "node:path";
import { isFile } from "../host/mod.ts";
import type { SequentialDataset } from "../data/dataset.ts";
import { noGrad } from "../ops/core/autograd.ts";
import { readTensors, type Tensor, tidy } from "../ops/core/tensor.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { Mamba4Rec } from "../models/mamba4rec.ts";
import { SSD4Rec } from "../models/ssd4rec.ts";
import {
  fullRepresentations,
  openStream,
  type StreamableModel,
} from "../models/streaming/streams.ts";
import { topKRows } from "../models/streaming/top_k.ts";
import { readCheckpoint, storedRunSettings } from "../models/training/checkpoint.ts";
import { train } from "../models/training/trainer.ts";
import { type RichTable, richTable } from "../viz/table.ts";
import { requireProjectRoot } from "./code_version.ts";
import { describeSlice, sliceContents, SMOKE_TRAIN, SMOKE_USERS } from "./grid_runs.ts";
import { TrainingProgress } from "./progress.ts";
import { readRunIndex, type RunIndex } from "./run_index.ts";
import { loadStreamableCheckpoint } from "./serve/model_loader.ts";
import { setupRun } from "./setup.ts";

/** The dataset a smoke model is trained on when there is no checkpoint. */
export const STREAMING_SMOKE_DATASET = "amazon-beauty";

/**
 * Largest difference allowed between a streamed score and the full forward's, relative to the
 * largest score of the user's row (float32 rounding of two summation orders stays far below it).
 */
export const STREAMED_SCORE_TOLERANCE = 1e-5;

/** A trained model ready to stream, with the dataset whose item ids it scores. */
export interface StreamingModel {
  /** The model, its trained weights loaded. */
  readonly model: StreamableModel;
  /** The dataset it was trained on (or the slice). */
  readonly dataset: SequentialDataset;
  /** The training window: the items the full forward reads per user (L). */
  readonly maxLength: number;
  /** `checkpoint`: trained weights loaded from a file; `smoke`: a smoke model trained now. */
  readonly origin: "checkpoint" | "smoke";
  /** The checkpoint file, for `origin` `checkpoint`. */
  readonly checkpoint: string | null;
  /** One line on where the weights came from, for a caption. */
  readonly description: string;
}

/** Options of {@link loadStreamingModel}. */
export interface StreamingModelOptions {
  /** The model streamed when no checkpoint is given: `mamba4rec` (default) or `ssd4rec`. */
  readonly model?: "mamba4rec" | "ssd4rec";
  /**
   * A checkpoint of a model with a step form to load (default: a recorded run's of `model`, see
   * {@link recordedCheckpoint}).
   */
  readonly checkpoint?: string;
  /** The run records looked in (default: `results/runs/`). */
  readonly index?: RunIndex;
  /** Where dataset names are looked up (default: the datasets directory). */
  readonly datasetsDirectory?: string;
  /** Users of the smoke model's slice (default {@link SMOKE_USERS}). */
  readonly smokeUsers?: number;
}

/** Where best checkpoints of recorded runs are kept in the repository, relative to its root. */
export const KEPT_CHECKPOINTS: string = "results/checkpoints";

/**
 * The best checkpoint of the first recorded run of `model` that has one here (for SSD4Rec, of one
 * layer), or `undefined`: `best.safetensors` in the record's checkpoint directory (taken from the
 * project root when relative), else the copy kept beside the records,
 * `results/checkpoints/<record name>.safetensors` ({@link KEPT_CHECKPOINTS}).
 */
export function recordedCheckpoint(
  index: RunIndex,
  root: string = requireProjectRoot(),
  model: "mamba4rec" | "ssd4rec" = "mamba4rec",
): string | undefined {
  for (const { path, record } of index.records) {
    if (record.model !== model) continue;
    if (model === "ssd4rec" && record.modelConfig?.numLayers !== 1) continue;
    const dir = record.trainConfig.checkpointDir;
    const places = [
      ...(dir ? [join(isAbsolute(dir) ? dir : join(root, dir), "best.safetensors")] : []),
      join(root, KEPT_CHECKPOINTS, `${basename(path, ".json")}.safetensors`),
    ];
    const found = places.find(isFile);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A stored setting of a checkpoint, which must be a string. */
function stringSetting(path: string, settings: Record<string, unknown>, key: string): string {
  const value = settings[key];
  if (typeof value !== "string") throw missingSetting(path, key, "string");
  return value;
}

/** A stored setting of a checkpoint, which must be a number. */
function numberSetting(path: string, settings: Record<string, unknown>, key: string): number {
  const value = settings[key];
  if (typeof value !== "number") throw missingSetting(path, key, "number");
  return value;
}

/** The error of a checkpoint whose run settings lack `key`. */
function missingSetting(path: string, key: string, type: string): Error {
  return new Error(
    `checkpoint ${path}: its run settings hold no ${type} ${key}; pass a checkpoint written by ` +
      "the trainer",
  );
}

/** Loads a checkpoint's model and the dataset named in its run settings. */
async function fromCheckpoint(path: string, options: StreamingModelOptions) {
  const settings = storedRunSettings(path, (await readCheckpoint(path)).metadata);
  const datasetName = stringSetting(path, settings, "dataset");
  const maxLength = numberSetting(path, settings, "train.maxLength");
  const model = await loadStreamableCheckpoint(path);
  const { dataset } = await setupRun({
    model: model.name,
    dataset: datasetName,
    datasetsDirectory: options.datasetsDirectory,
    train: { seed: numberSetting(path, settings, "train.seed"), maxLength },
  });
  if (dataset.numItems !== model.config.numItems) {
    throw new Error(
      `checkpoint ${path} scores ${model.config.numItems} item ids but ${dataset.name} has ` +
        `${dataset.numItems}: it was trained on another slice; pass a checkpoint of the whole ` +
        "dataset",
    );
  }
  return { model, dataset, maxLength };
}

/**
 * The model to stream: `options.checkpoint` when given, else a recorded run's best checkpoint of
 * `options.model`, else a smoke model: that model (SSD4Rec with its one-layer preset) trained for
 * {@link SMOKE_TRAIN}'s couple of epochs on the first users of {@link STREAMING_SMOKE_DATASET},
 * which only shows the mechanics.
 */
export async function loadStreamingModel(
  options: StreamingModelOptions = {},
): Promise<StreamingModel> {
  const name = options.model ?? "mamba4rec";
  const checkpoint = options.checkpoint ??
    recordedCheckpoint(options.index ?? await readRunIndex(), undefined, name);
  if (checkpoint !== undefined) {
    const { model, dataset, maxLength } = await fromCheckpoint(checkpoint, options);
    return {
      model,
      dataset,
      maxLength,
      origin: "checkpoint",
      checkpoint,
      description: `trained weights from ${checkpoint}`,
    };
  }
  const users = options.smokeUsers ?? SMOKE_USERS;
  const setup = await setupRun({
    model: name,
    dataset: STREAMING_SMOKE_DATASET,
    datasetsDirectory: options.datasetsDirectory,
    maxUsers: users,
    train: { ...SMOKE_TRAIN, verbose: false },
  });
  if (!(setup.model instanceof Mamba4Rec || setup.model instanceof SSD4Rec)) {
    throw new Error(`loadStreamingModel: the registry built another model for ${name}`);
  }
  const model = setup.model;
  await train(model, setup.dataset, setup.config, {
    observer: new TrainingProgress(false, setup.config.validMetric),
  });
  return {
    model,
    dataset: setup.dataset,
    maxLength: setup.config.maxLength,
    origin: "smoke",
    checkpoint: null,
    description: `smoke model: ${setup.config.epochs} epochs on ${setup.dataset.name} ` +
      `(${describeSlice(sliceContents(setup.dataset))}); no checkpoint given or recorded`,
  };
}

/** One row of a replay: the state after a user's history or after one more event. */
export interface ReplayStep {
  /** Events of the user's window observed so far. */
  readonly events: number;
  /** The last item observed. */
  readonly item: number;
  /** The best five items now. */
  readonly top5: readonly number[];
  /** The user's next true item, `null` after the last one. */
  readonly next: number | null;
  /** Whether {@link next} is in the top 10; `null` after the last item. */
  readonly nextInTop10: boolean | null;
  /**
   * Largest difference between the streamed scores and the full forward's over the same items,
   * relative to the row's largest score.
   */
  readonly scoreDifference: number;
}

/** One user's replay. */
export interface UserReplay {
  /** The user id in the dataset. */
  readonly user: number;
  /** The items the stream was initialised with (the window before the replayed events). */
  readonly history: number;
  /** The state after the history, then after each replayed event. */
  readonly steps: readonly ReplayStep[];
}

/** Options of {@link replayUsers}. */
export interface ReplayOptions {
  /** Users replayed (default 3). */
  readonly users?: number;
  /** Events replayed per user after its history (default 5). */
  readonly events?: number;
}

/**
 * The first `options.users` users with more than `options.events` items in their window: the
 * users' last `events` items (the validation and test items among them, never trained on) are
 * replayed one by one through the model's step form initialised from the window's items before
 * them (`initFromHistories`). After the history and after each event
 * the stream's top-10 is read, and its scores are checked against the full model's forward over
 * the same items (the window of at most L items ending there).
 * @throws Error when a streamed score differs from the full forward's by more than
 *   {@link STREAMED_SCORE_TOLERANCE}
 */
export async function replayUsers(
  source: StreamingModel,
  options: ReplayOptions = {},
): Promise<UserReplay[]> {
  const { model, dataset, maxLength } = source;
  const count = options.users ?? 3, events = options.events ?? 5;
  const windows: { user: number; items: Int32Array }[] = [];
  for (let u = 1; u < dataset.numUsers && windows.length < count; u++) {
    const seq = dataset.sequence(u);
    const items = seq.subarray(Math.max(0, seq.length - maxLength));
    if (items.length > events) windows.push({ user: u, items });
  }
  if (windows.length === 0) {
    throw new Error(
      `replayUsers: no user of ${dataset.name} has more than ${events} items in a window of ` +
        `${maxLength}; replay fewer events`,
    );
  }
  const slots = Int32Array.from(windows, (_, i) => i);
  const stream = openStream(model, { capacity: windows.length });
  const steps: ReplayStep[][] = windows.map(() => []);
  try {
    const start = windows.map((w) => w.items.length - events);
    stream.initFromHistories(slots, windows.map((w, i) => w.items.slice(0, start[i])));
    for (let e = 0; e <= events; e++) {
      if (e > 0) {
        stream.observe(
          slots,
          Int32Array.from(windows, (w, i) => w.items[start[i] + e - 1]),
        );
      }
      const seen = windows.map((w, i) => w.items.subarray(0, start[i] + e));
      const streamed = await readScores(stream.scores(slots));
      const full = await fullForwardScores(model, seen);
      const top = topKRows(streamed, windows.length, 10);
      windows.forEach((w, i) => {
        const difference = rowDifference(streamed, full, i, model.config.numItems);
        if (!(difference <= STREAMED_SCORE_TOLERANCE)) {
          throw new Error(
            `replayUsers: user ${w.user} after ${seen[i].length} items: streamed scores differ ` +
              `from the full forward's by ${difference.toExponential(2)} of the largest score ` +
              `(> ${STREAMED_SCORE_TOLERANCE}); the stream no longer matches the model`,
          );
        }
        const next = start[i] + e < w.items.length ? w.items[start[i] + e] : null;
        const best = Array.from(top.items.subarray(i * 10, (i + 1) * 10));
        steps[i].push({
          events: seen[i].length,
          item: seen[i][seen[i].length - 1],
          top5: best.slice(0, 5),
          next,
          nextInTop10: next === null ? null : best.includes(next),
          scoreDifference: difference,
        });
      });
    }
  } finally {
    stream.dispose();
  }
  return windows.map((w, i) => ({
    user: w.user,
    history: w.items.length - events,
    steps: steps[i],
  }));
}

/** Reads a score tensor back and disposes it. */
async function readScores(scores: Tensor): Promise<Float32Array> {
  try {
    return (await readTensors([scores]))[0] as Float32Array;
  } finally {
    scores.dispose();
  }
}

/** The full model's scores `[users, numItems]` at each history's last item (dropout off). */
function fullForwardScores(
  model: StreamableModel,
  histories: Int32Array[],
): Promise<Float32Array> {
  return readScores(
    tidy(() =>
      noGrad(() => matmul(fullRepresentations(model, histories), model.itemTable, { transB: true }))
    ),
  );
}

/** Row `row`'s largest |streamed − full|, relative to its largest |full| score (at least 1). */
function rowDifference(
  streamed: Float32Array,
  full: Float32Array,
  row: number,
  numItems: number,
): number {
  let diff = 0, scale = 1;
  for (let j = row * numItems; j < (row + 1) * numItems; j++) {
    diff = Math.max(diff, Math.abs(streamed[j] - full[j]));
    scale = Math.max(scale, Math.abs(full[j]));
  }
  return diff / scale;
}

/** A user's replay as a table: a row per state, the item ids as the dataset numbers them. */
export function replayTable(replay: UserReplay, dataset: SequentialDataset): RichTable {
  const token = (item: number) => dataset.itemTokens[item] ?? String(item);
  const rows = replay.steps.map((s, i) => ({
    event: i === 0 ? `history (${s.events} items)` : `+${i} (item ${s.events})`,
    item: token(s.item),
    "top-5": s.top5.map(token).join(", "),
    next: s.next === null ? "—" : token(s.next),
    "next in top-10": s.nextInTop10 === null ? "—" : s.nextInTop10 ? "yes" : "no",
    "score difference": s.scoreDifference.toExponential(1),
  }));
  return richTable(rows, {
    caption: `User ${dataset.userTokens[replay.user] ?? replay.user}: the top-10 after each event`,
    note: "score difference: largest |streamed − full forward| over every item, relative to the " +
      `row's largest score (checked ≤ ${STREAMED_SCORE_TOLERANCE})`,
  });
}
