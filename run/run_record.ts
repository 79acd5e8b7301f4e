/**
 * Finished training runs saved as small JSON files (`results/runs/<model>-<dataset>-seed<seed>.json`,
 * see {@link runRecordPath}): what ran, by which code (see {@link CodeVersion}), on which adapter
 * (and, for a run the scheduler pinned to a GPU, which GPU) and Deno, with which command and configuration (its seed included), and every epoch's numbers. A full-protocol run can take longer than one command
 * may run on a lent GPU; it is trained there across several resumed commands
 * (`deno task train … --record FILE`), and the notebooks show the recorded run.
 *
 * Older formats are still read. Records of format `ssmrec-run-1` predate the code version; they
 * count as made by code of unknown version, so {@link recordStaleness} calls them stale. Records
 * of format `ssmrec-run-2` predate the per-epoch efficiency figures: their epochs have no
 * `peakLiveBytes`, `tokens` or `tokensPerSecond`. Epochs of `ssmrec-run-3` records written before
 * the accounting by purpose lack its optional fields (`peakByPurpose`, `evalPeakLiveBytes`,
 * `evalPeakByPurpose`: what the training and validation peaks were made of).
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../host/mod.ts";
import { type PinnedGpu, pinnedGpu } from "./gpu_pinning.ts";
import { modelVariant } from "./model_variant.ts";
import {
  coversRun,
  equivalenceChain,
  SOURCE_EQUIVALENCES,
  type SourceEquivalence,
} from "./source_equivalence.ts";
import type { TrainConfig } from "../models/config.ts";
import type { TrainResult } from "../models/training/trainer.ts";
import {
  type CodeVersion,
  codeVersion,
  describeCodeVersion,
  requireProjectRoot,
} from "./code_version.ts";

/**
 * The `format` tag of the {@link RunRecord}s this code writes: every epoch of the history has
 * its peak live GPU storage and tokens trained (see `EpochRecord`).
 */
export const RUN_RECORD_FORMAT = "ssmrec-run-3";

/**
 * The formats {@link readRunRecord} reads: the current one, the one before the per-epoch
 * efficiency figures (`ssmrec-run-2`) and the one before the code version (`ssmrec-run-1`).
 */
export type RunRecordFormat = typeof RUN_RECORD_FORMAT | "ssmrec-run-2" | "ssmrec-run-1";

/** Every {@link RunRecordFormat}, newest first. */
const READABLE_FORMATS: readonly RunRecordFormat[] = [
  RUN_RECORD_FORMAT,
  "ssmrec-run-2",
  "ssmrec-run-1",
];

/** A finished training run. */
export interface RunRecord {
  /**
   * {@link RUN_RECORD_FORMAT}; `ssmrec-run-2` for a record whose epochs lack the efficiency
   * figures, `ssmrec-run-1` for one without code version either.
   */
  readonly format: RunRecordFormat;
  /** The code that trained it; absent in `ssmrec-run-1` records (unknown code). */
  readonly code?: CodeVersion;
  /** The Deno version that trained it; absent in `ssmrec-run-1` records. */
  readonly deno?: string;
  /** Model name. */
  readonly model: string;
  /** Dataset name. */
  readonly dataset: string;
  /** Users and items after preprocessing (PAD not counted). */
  readonly users: number;
  /** Items after preprocessing (PAD not counted). */
  readonly items: number;
  /** The WebGPU adapter it ran on (its description). */
  readonly adapter: string;
  /**
   * The GPU the run scheduler pinned it to (`nvidia-smi`'s index and the PCI address), where
   * WebGPU's adapter information cannot tell identical cards apart; absent for a run that was not
   * pinned (one GPU, no scheduler) and in records written before the field.
   */
  readonly gpu?: PinnedGpu;
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
  return join(requireProjectRoot(), "results", "runs");
}

/** What identifies a run of the paper's settings: the model, the dataset and the seed. */
export interface RunKey {
  /** Model name (`mamba4rec`). */
  readonly model: string;
  /** Canonical dataset name (`ml-1m`). */
  readonly dataset: string;
  /** The seed of the data order and the initial weights (`TrainConfig.seed`). */
  readonly seed: number;
  /**
   * The variant (`ffn-false`, `trainingMode-all-positions`; see `run/model_variant.ts`): the
   * model settings and variant training settings where the run differs from the paper's; unset
   * for the paper's settings.
   */
  readonly variant?: string;
}

/**
 * Where the record of a run lives: `<directory>/<model>-<dataset>-seed<seed>.json`, or
 * `…-seed<seed>-<variant>.json` for a model variant, names lower case with anything but letters,
 * digits, `.`, `_` and `-` replaced by `_`.
 */
export function runRecordPath(key: RunKey, directory: string = defaultRunsDirectory()): string {
  const safe = (s: string) => s.toLowerCase().replace(/[^a-z0-9._-]+/g, "_");
  if (!(Number.isInteger(key.seed) && key.seed >= 0)) {
    throw new RangeError(`a run's seed must be a non-negative integer, got ${key.seed}`);
  }
  const variant = key.variant ? `-${safe(key.variant)}` : "";
  return join(directory, `${safe(key.model)}-${safe(key.dataset)}-seed${key.seed}${variant}.json`);
}

/**
 * The {@link RunKey} of a record: its model, dataset, training seed and variant (its model
 * settings and variant training settings that differ from the preset's).
 */
export function recordKey(record: RunRecord): RunKey {
  const key = { model: record.model, dataset: record.dataset, seed: record.trainConfig.seed };
  const variant = modelVariant(
    record.model,
    record.dataset,
    record.modelConfig,
    record.trainConfig as unknown as Record<string, unknown>,
  );
  return variant === undefined ? key : { ...key, variant };
}

/**
 * Writes a record atomically (a temporary file, then a rename). A record of a format with a code
 * version (all but `ssmrec-run-1`) gets the code version of this checkout, the running Deno
 * version and the GPU this process was pinned to (`pinnedGpu`, when the scheduler pinned it)
 * where it has none; a `ssmrec-run-1` record is written as given.
 */
export async function writeRunRecord(path: string, record: RunRecord): Promise<void> {
  const { format, code, deno, gpu, ...rest } = record;
  // What ran it goes first in the file, where a reader looks.
  const stamped: RunRecord = format !== "ssmrec-run-1"
    ? {
      format,
      code: code ?? await codeVersion(),
      deno: deno ?? Deno.version.deno,
      gpu: gpu ?? pinnedGpu(),
      ...rest,
    }
    : record;
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(stamped, null, 1) + "\n"));
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
  if (!READABLE_FORMATS.includes(record?.format)) {
    throw new Error(
      `${path}: not a run record (format '${record?.format}', expected one of ` +
        `${READABLE_FORMATS.map((f) => `'${f}'`).join(", ")}); delete it to train again`,
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

/** Whether a record was made by the code checked out now, and a line that says so. */
export interface RecordStaleness {
  /**
   * The record's source hash differs from the current one and no chain of registered
   * equivalences (`./source_equivalence.ts`) links them, or the record has none.
   */
  readonly stale: boolean;
  /** The record's code ({@link describeCodeVersion}), or `unknown code` for a record without. */
  readonly recordedBy: string;
  /** The current code ({@link describeCodeVersion}). */
  readonly current: string;
  /**
   * The changes between the record's sources and the current ones that compute the same numbers
   * (empty when the hashes are equal or the record is stale).
   */
  readonly equivalentChanges: readonly SourceEquivalence[];
  /** One line for people: which code recorded it, which code runs now, and what to do. */
  readonly message: string;
}

/**
 * A run table's code column: `current`, `current (… same numbers)` for a record kept current by
 * registered equivalences, or `other code (…)` for a stale one.
 */
export function codeLabel(staleness: RecordStaleness): string {
  if (staleness.stale) return `other code (${staleness.recordedBy})`;
  return staleness.equivalentChanges.length === 0
    ? "current"
    : `current (${staleness.recordedBy}: same numbers)`;
}

/** The command that retrains every stale record; the README and notebooks name it. */
export const RETRAIN_STALE_COMMAND = "deno task reproduce --full --retrain-stale";

/**
 * Compares a record's code with `current` (default: this checkout's {@link codeVersion}): only
 * the source hash counts, so a commit that leaves `ops/`, `models/` and `data/` as they were
 * keeps a record current, and so does a chain of changes registered in `equivalences` (default
 * {@link SOURCE_EQUIVALENCES}) as computing every number as before (for runs trained with the
 * record's settings: see `notFor`).
 */
export async function recordStaleness(
  record: RunRecord,
  current?: CodeVersion,
  equivalences: readonly SourceEquivalence[] = SOURCE_EQUIVALENCES,
): Promise<RecordStaleness> {
  const now = current ?? await codeVersion();
  const recordedBy = record.code ? describeCodeVersion(record.code) : "unknown code";
  const covering = equivalences.filter((e) => coversRun(e, record.trainConfig, record.model));
  const chain = record.code
    ? equivalenceChain(record.code.sourceHash, now.sourceHash, covering)
    : null;
  const stale = chain === null;
  const currentText = describeCodeVersion(now);
  let message: string;
  if (stale) {
    message = `recorded by ${recordedBy}, current code ${currentText}: numbers may differ; ` +
      `rerun with \`${RETRAIN_STALE_COMMAND}\``;
  } else if (chain.length === 0) {
    message = `recorded by the current code (${currentText})`;
  } else {
    message = `recorded by ${recordedBy}, current code ${currentText}: the sources changed ` +
      `only in ways that compute the same numbers (${chain.map((c) => c.change).join("; ")})`;
  }
  return {
    stale,
    recordedBy,
    current: currentText,
    equivalentChanges: stale ? [] : chain,
    message,
  };
}
