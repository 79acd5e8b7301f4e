/**
 * Every run record of a folder (by default `results/runs/`), found by what it holds rather than by
 * its file name: its model, dataset, seed and model variant ({@link RunKey}), whether the checked-out code made it
 * ({@link recordStaleness}) and where its settings differ from the model's preset for the dataset
 * (the paper's settings). A record with other training settings is kept in the index but never
 * stands for a run of the paper's settings; one with other model settings or variant training
 * settings (`run/model_variant.ts`) stands for a run of its variant (an ablation's or a sweep's
 * row), never for the paper's model.
 *
 * @module
 */
import { join } from "node:path";
import { trainConfig } from "../models/config.ts";
import { findModel } from "../models/registry.ts";
import { type CodeVersion, codeVersion } from "./code_version.ts";
import { variantTrainSettings } from "./model_variant.ts";
import {
  defaultRunsDirectory,
  readRunRecord,
  recordKey,
  type RecordStaleness,
  recordStaleness,
  type RunKey,
  type RunRecord,
} from "./run_record.ts";

/** One record of a {@link RunIndex}. */
export interface IndexedRecord {
  /** Where the record is. */
  readonly path: string;
  /** The record. */
  readonly record: RunRecord;
  /** Its model, dataset, seed and model variant. */
  readonly key: RunKey;
  /** Whether the checked-out code made it. */
  readonly staleness: RecordStaleness;
  /**
   * Where its training settings differ from the model's preset for the dataset, one line each
   * (`maxLength: recorded 20, preset 200`); empty for a run of the paper's training settings.
   * Its model settings' differences are its key's variant.
   */
  readonly settingsDifferences: readonly string[];
}

/** The training settings that change a run's numbers (the rest only say where and how loudly). */
const COMPARED_TRAIN_KEYS = [
  "epochs",
  "batchSize",
  "learningRate",
  "weightDecay",
  "clipGradNorm",
  "stoppingStep",
  "validMetric",
  "maxLength",
  "trainingMode",
  "maskRatio",
  "varLen",
  "padTo",
] as const;

/** A value as the difference lines print it. */
function shownValue(value: unknown): string {
  return value === undefined ? "unset" : JSON.stringify(value);
}

/**
 * Where a record's settings differ from those its model's preset gives on its dataset with its
 * seed: the training settings that change the numbers, and every model setting the preset sets.
 * A record of a model the registry does not know differs by that alone.
 */
export function presetSettingsDifferences(record: RunRecord): string[] {
  let model;
  try {
    model = findModel(record.model);
  } catch {
    return [`model: '${record.model}' is not a registered model`];
  }
  const preset = Object.hasOwn(model.presets, record.dataset)
    ? model.presets[record.dataset]
    : undefined;
  const expected = trainConfig({
    ...model.trainDefaults,
    ...preset?.train,
    seed: record.trainConfig.seed,
  }) as unknown as Record<string, unknown>;
  const recorded = record.trainConfig as unknown as Record<string, unknown>;
  const out: string[] = [];
  for (const key of COMPARED_TRAIN_KEYS) {
    const a = recorded[key], b = expected[key];
    if (JSON.stringify(a ?? null) !== JSON.stringify(b ?? null)) {
      out.push(`${key}: recorded ${shownValue(a)}, preset ${shownValue(b)}`);
    }
  }
  for (const [key, value] of Object.entries(preset?.model ?? {})) {
    const a = record.modelConfig[key];
    if (JSON.stringify(a ?? null) !== JSON.stringify(value ?? null)) {
      out.push(`model.${key}: recorded ${shownValue(a)}, preset ${shownValue(value)}`);
    }
  }
  return out;
}

/**
 * The lines of {@link presetSettingsDifferences} that a record's key does not carry: a variant's
 * model settings and variant training settings are its key's, not differences.
 */
function differencesOutsideVariant(record: RunRecord, key: RunKey): string[] {
  if (key.variant === undefined) return presetSettingsDifferences(record);
  const train = variantTrainSettings(
    record.model,
    record.dataset,
    record.trainConfig as unknown as Record<string, unknown>,
  );
  return presetSettingsDifferences(record).filter((line) =>
    !line.startsWith("model.") && !Object.hasOwn(train, line.slice(0, line.indexOf(":")))
  );
}

/** The records of a folder, looked up by {@link RunKey}. */
export class RunIndex {
  /** Every record, by path. */
  readonly records: readonly IndexedRecord[];

  /** Indexes `records` (see {@link readRunIndex}). */
  constructor(records: readonly IndexedRecord[]) {
    this.records = [...records].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * The record of the paper's training settings for `key` (of its variant: the paper's model
   * settings when it has none); of several, the one that finished last. `undefined` when there
   * is none.
   */
  find(key: RunKey): IndexedRecord | undefined {
    const matching = this.records.filter((r) =>
      r.settingsDifferences.length === 0 && r.key.model === key.model &&
      r.key.dataset === key.dataset && r.key.seed === key.seed &&
      (r.key.variant ?? "") === (key.variant ?? "")
    );
    return matching.sort((a, b) =>
      a.record.finishedAt < b.record.finishedAt
        ? 1
        : a.record.finishedAt > b.record.finishedAt
        ? -1
        : 0
    )[0];
  }

  /**
   * The records of `model` on `dataset` with the paper's settings (of `variant`, if given), any
   * seed, by path.
   */
  ofModelAndDataset(model: string, dataset: string, variant?: string): IndexedRecord[] {
    return this.records.filter((r) =>
      r.settingsDifferences.length === 0 && r.key.model === model && r.key.dataset === dataset &&
      (r.key.variant ?? "") === (variant ?? "")
    );
  }
}

/**
 * Reads every `*.json` record of `directory` (default `results/runs/`) into a {@link RunIndex},
 * comparing each with `current` (default: this checkout's code). A file that is not a run record
 * fails naming it; a missing folder gives an empty index.
 */
export async function readRunIndex(
  directory: string = defaultRunsDirectory(),
  current?: CodeVersion,
): Promise<RunIndex> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(directory)) {
      if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new RunIndex([]);
    throw error;
  }
  const now = current ?? await codeVersion();
  const records: IndexedRecord[] = [];
  for (const name of names) {
    const path = join(directory, name);
    const record = await readRunRecord(path);
    if (!record) continue;
    const key = recordKey(record);
    records.push({
      path,
      record,
      key,
      staleness: await recordStaleness(record, now),
      settingsDifferences: differencesOutsideVariant(record, key),
    });
  }
  return new RunIndex(records);
}
