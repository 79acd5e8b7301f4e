/**
 * From a request (model name, dataset name or file, explicit settings) to a model ready to
 * train, in one place for the command line, the notebooks' experiments and the reproduction:
 *
 * 1. {@link planRun}, cheap and without GPU or data work: the model's registry entry, the
 *    dataset's canonical name (`ML1M`, `movielens-1m` and `path/to/ml-1m.inter` are all `ml-1m`),
 *    the model's preset for that dataset, and the validated training and model configurations
 *    (explicit settings beat the preset, the preset beats the model's training defaults, which
 *    beat RecBole's), checked against the model's input layout;
 * 2. {@link setupRun}: the GPU, the dataset (or the slice of its first users) and the model.
 *
 * @module
 */
import type { SequentialDataset } from "../data/dataset.ts";
import { basename } from "node:path";
import type { InteractionFormat } from "../data/formats.ts";
import { loadDatasetWithInfo } from "../data/load.ts";
import {
  type DatasetSource,
  DEFAULT_KUAIRAND_LOGS,
  KUAIRAND_PURE_LOGS,
  type KuaiRandLogSet,
  resolveDatasetSource,
} from "../data/paths.ts";
import { initGpu } from "../ops/core/runtime.ts";
import { ConfigError, type TrainConfig, trainConfig } from "../models/config.ts";
import {
  type DatasetPreset,
  type DatasetSizes,
  datasetSizes,
  findModel,
  type ModelEntry,
} from "../models/registry.ts";
import type { TrainableModel } from "../models/model.ts";
import { type RunSettings, runSettings } from "../models/training/checkpoint.ts";
import { checkLayoutSettings } from "../models/training/layouts.ts";
import { firstUsersName, loadFirstUsers } from "./dataset_slice.ts";

/** What to train: {@link planRun}'s input. */
export interface RunRequest {
  /** Model name (default `mamba4rec`). */
  readonly model?: string;
  /** Dataset name (`ml-1m`, an alias such as `ML1M`) or file (`path/to/amazon-beauty.inter`). */
  readonly dataset: string;
  /** Interaction format of the file (detected when left out). */
  readonly format?: InteractionFormat;
  /** Train on the first this many users only (a quick slice; default: every user). */
  readonly maxUsers?: number;
  /** Explicit training settings (`TrainConfig` keys); `undefined` values are left out. */
  readonly train?: Readonly<Record<string, unknown>>;
  /** Explicit model hyperparameters; `undefined` values are left out. */
  readonly modelConfig?: Readonly<Record<string, unknown>>;
  /** Where dataset names are looked up (default: the datasets directory). */
  readonly datasetsDirectory?: string;
  /**
   * Which KuaiRand-Pure logs a KuaiRand folder contributes (default `standard-early`, the one
   * SSD4Rec's KuaiRand was built from); only for KuaiRand datasets.
   */
  readonly kuaiRandLogs?: KuaiRandLogSet;
}

/** A checked request: everything known before any GPU or data work. */
export interface RunPlan {
  /** The request it was made from. */
  readonly request: RunRequest;
  /** The model's registry entry. */
  readonly model: ModelEntry;
  /** The dataset file and its canonical name. */
  readonly source: DatasetSource;
  /** The name the trained dataset will have: the canonical name, or its slice's. */
  readonly datasetName: string;
  /** The model's preset for the dataset, if its paper has one. */
  readonly preset: DatasetPreset | undefined;
  /** The validated training configuration. */
  readonly config: TrainConfig;
  /**
   * The model hyperparameters to build with (validated; `numItems`, and `numUsers` for a model
   * with a user table, come with the data).
   */
  readonly modelConfig: Readonly<Record<string, unknown>>;
}

/** The settings keys a plan cannot know before the data is loaded. */
export const SETTINGS_KNOWN_AFTER_LOADING: readonly string[] = Object.freeze([
  "model.numItems",
  "model.numUsers",
]);

/** The dataset sizes a plan validates with until the data is loaded. */
const STAND_IN_SIZES: DatasetSizes = { numItems: 2, numUsers: 2 };

/** The entries of `values` whose value is not `undefined`. */
function defined(values: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/**
 * Checks a request without touching the GPU or the data (the dataset file is only looked up):
 * an unknown model or a bad setting fails with a {@link ConfigError} naming the key, a missing
 * dataset with `Deno.errors.NotFound` saying where it looked.
 */
export function planRun(request: RunRequest): RunPlan {
  const model = findModel(request.model ?? "mamba4rec");
  const { maxUsers } = request;
  if (maxUsers !== undefined && !(Number.isInteger(maxUsers) && maxUsers > 0)) {
    throw new ConfigError(
      `'maxUsers' must be a positive integer, got ${JSON.stringify(maxUsers)}`,
      "maxUsers",
    );
  }
  const logs = request.kuaiRandLogs;
  if (logs !== undefined && !Object.hasOwn(KUAIRAND_PURE_LOGS, logs)) {
    throw new ConfigError(
      `'kuaiRandLogs' must be one of ${Object.keys(KUAIRAND_PURE_LOGS).join(", ")}, got ` +
        JSON.stringify(logs),
      "kuaiRandLogs",
    );
  }
  const source = resolveDatasetSource(request.dataset, {
    datasetsDirectory: request.datasetsDirectory,
    kuaiRandLogs: logs,
  });
  const fromKuaiRand = source.files.some((f) => KUAIRAND_PURE_LOGS.all.includes(basename(f)));
  if (logs !== undefined && !fromKuaiRand) {
    throw new ConfigError(
      `'kuaiRandLogs' chooses the logs of a KuaiRand-Pure folder, but ${source.name} is read ` +
        `from ${source.path}; leave it out for this dataset`,
      "kuaiRandLogs",
    );
  }
  // Another log set is another dataset: its name says so, so that a checkpoint of one is never
  // resumed on the other.
  const name = logs !== undefined && logs !== DEFAULT_KUAIRAND_LOGS
    ? `${source.name} (${logs} logs)`
    : source.name;
  const preset = model.presets[source.name];
  const config = trainConfig({
    ...model.trainDefaults,
    ...preset?.train,
    ...defined(request.train),
  });
  checkLayoutSettings(model, config);
  const modelConfig: Record<string, unknown> = {
    seed: config.seed,
    ...preset?.model,
    ...defined(request.modelConfig),
  };
  // Validate now (the dataset's sizes are stand-ins until the data is loaded).
  const standIns = datasetSizes(model, STAND_IN_SIZES);
  const built = model.config({ ...modelConfig, ...standIns }) as { maxLength?: number };
  // A model whose tables are sized by the window (SASRec's positions) gets the training window
  // unless the request sets its own, which may not be shorter than the windows it will be given
  // (nor differ from them, for a model that takes windows of exactly its maxLength).
  if (built.maxLength !== undefined) {
    const explicit = request.modelConfig?.maxLength as number | undefined;
    if (explicit === undefined) modelConfig.maxLength = config.maxLength;
    else if (model.exactWindow && explicit !== config.maxLength) {
      throw new ConfigError(
        `model config: 'maxLength' is ${explicit}, but ${model.name} takes windows of exactly ` +
          `its maxLength and the training windows are ${config.maxLength} long ` +
          `(train.maxLength); give both the same length, or leave the model's out to take the ` +
          `training one`,
        "maxLength",
      );
    } else if (config.maxLength > explicit) {
      throw new ConfigError(
        `model config: 'maxLength' is ${explicit}, shorter than the training windows ` +
          `(train.maxLength ${config.maxLength}); give both the same length`,
        "maxLength",
      );
    }
    model.config({ ...modelConfig, ...standIns });
  }
  return {
    request,
    model,
    source,
    datasetName: maxUsers === undefined ? name : firstUsersName(name, maxUsers),
    preset,
    config,
    modelConfig,
  };
}

/**
 * The run settings the plan will train with, as checkpoints store them; the keys in
 * {@link SETTINGS_KNOWN_AFTER_LOADING} hold stand-ins.
 */
export function plannedSettings(plan: RunPlan): RunSettings {
  const config = plan.model.config({
    ...plan.modelConfig,
    ...datasetSizes(plan.model, STAND_IN_SIZES),
  });
  const { name, layout } = plan.model;
  return runSettings({ name, config, layout }, plan.datasetName, plan.config);
}

/** A run ready to train: {@link setupRun}'s result. */
export interface RunSetup {
  /** The plan it was set up from. */
  readonly plan: RunPlan;
  /** The GPU adapter's description. */
  readonly adapter: string;
  /** The dataset (or its slice). */
  readonly dataset: SequentialDataset;
  /** Whether the dataset came from the processed-dataset cache. */
  readonly fromCache: boolean;
  /** Seconds the dataset took to load. */
  readonly loadSeconds: number;
  /** The training configuration. */
  readonly config: TrainConfig;
  /** The model, with fresh weights. */
  readonly model: TrainableModel;
}

/**
 * Plans the request (unless given a plan), then starts the GPU, loads the dataset (or the slice
 * of its first users) and builds the model.
 */
export async function setupRun(request: RunRequest | RunPlan): Promise<RunSetup> {
  const plan = "source" in request ? request : planRun(request);
  const info = await initGpu();
  const start = performance.now();
  let dataset: SequentialDataset, fromCache = false, loadSeconds: number;
  if (plan.request.maxUsers !== undefined) {
    dataset = await loadFirstUsers(plan.source, plan.request.maxUsers, plan.request.format);
    loadSeconds = (performance.now() - start) / 1000;
  } else {
    const loaded = await loadDatasetWithInfo(plan.request.dataset, {
      format: plan.request.format,
      datasetsDirectory: plan.request.datasetsDirectory,
      kuaiRandLogs: plan.request.kuaiRandLogs,
    });
    ({ dataset, fromCache, seconds: loadSeconds } = loaded);
  }
  const model = plan.model.create(
    plan.model.config({ ...plan.modelConfig, ...datasetSizes(plan.model, dataset) }),
  );
  return {
    plan,
    adapter: info.description,
    dataset,
    fromCache,
    loadSeconds,
    config: plan.config,
    model,
  };
}
