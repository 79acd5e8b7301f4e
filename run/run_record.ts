/**
 * Finished training runs saved as small JSON files (`results/runs/<model>-<dataset>.json`): what
 * ran, on which adapter, with which command, and every epoch's numbers. A full-protocol run can
 * take longer than one command may run on a lent GPU; it is trained there across several resumed
 * commands (`deno task train … --record FILE`), and the notebooks show the recorded run.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { writeFileAtomic } from "../data/cache.ts";
import type { TrainConfig } from "../models/config.ts";
import type { TrainResult } from "../models/training/trainer.ts";

/** The `format` tag of a {@link RunRecord}. */
export const RUN_RECORD_FORMAT = "ssmrec-run-1";

/** A finished training run. */
export interface RunRecord {
  /** Always {@link RUN_RECORD_FORMAT}. */
  readonly format: typeof RUN_RECORD_FORMAT;
  /** Model name. */
  readonly model: string;
  /** Dataset name. */
  readonly dataset: string;
  /** Users and items after preprocessing (PAD not counted). */
  readonly users: number;
  /** Items after preprocessing (PAD not counted). */
  readonly items: number;
  /** The WebGPU adapter it ran on. */
  readonly adapter: string;
  /** When the run finished (ISO 8601). */
  readonly finishedAt: string;
  /** The command that trains it again (each resumed command is the same). */
  readonly command: string;
  /** The model's hyperparameters. */
  readonly modelConfig: Record<string, unknown>;
  /** The training configuration. */
  readonly trainConfig: TrainConfig;
  /** Number of trainable parameters. */
  readonly parameters: number;
  /** The outcome: every epoch, the best epoch, its validation and the test metrics. */
  readonly result: TrainResult;
}

/** `results/runs` in the project. */
export function defaultRunsDirectory(): string {
  return fileURLToPath(new URL("../results/runs/", import.meta.url));
}

/** Where the record of `model` on `dataset` lives: `<directory>/<model>-<dataset>.json`. */
export function runRecordPath(
  model: string,
  dataset: string,
  directory: string = defaultRunsDirectory(),
): string {
  const safe = (s: string) => s.toLowerCase().replace(/[^a-z0-9._-]+/g, "_");
  return join(directory, `${safe(model)}-${safe(dataset)}.json`);
}

/** Writes a record atomically (a temporary file, then a rename). */
export async function writeRunRecord(path: string, record: RunRecord): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(record, null, 1) + "\n"));
}

/**
 * Reads a record; `null` when the file does not exist. A file that is not a run record fails
 * with its path and what is wrong.
 */
export async function readRunRecord(path: string): Promise<RunRecord | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  let record: RunRecord;
  try {
    record = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not JSON (${(error as Error).message}); delete it to train again`);
  }
  if (record?.format !== RUN_RECORD_FORMAT) {
    throw new Error(
      `${path}: not a run record (format '${record?.format}', expected ` +
        `'${RUN_RECORD_FORMAT}'); delete it to train again`,
    );
  }
  const missing = ["model", "dataset", "adapter", "result", "trainConfig"].filter((k) =>
    !(k in record)
  );
  if (missing.length > 0 || !Array.isArray(record.result?.history)) {
    throw new Error(`${path}: run record without ${missing.join(", ") || "result.history"}`);
  }
  return record;
}

/** Mean training seconds per epoch over a run's whole history. */
export function meanEpochSeconds(result: TrainResult): number {
  const h = result.history;
  return h.length === 0 ? 0 : h.reduce((s, e) => s + e.trainSeconds, 0) / h.length;
}
