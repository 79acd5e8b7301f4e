/**
 * Recorded runs made by other code than the checked-out one (see {@link recordStaleness}): finds
 * them, turns a `deno task train …` command into the arguments that train its run again from
 * scratch (the run scheduler's arguments, `run/scheduled_runs.ts`, through which
 * `deno task reproduce --full --retrain-stale` trains the selected notebooks' stale runs), and
 * retrains one record by itself through its stored command, continuing it command after command
 * when it stops early (`--max-seconds`, `--epochs-this-run`), until the record is rewritten by
 * this code.
 *
 * @module
 */
import { join, relative } from "node:path";
import { type CodeVersion, codeVersion, requireProjectRoot } from "./code_version.ts";
import {
  defaultRunsDirectory,
  readRunRecord,
  type RecordStaleness,
  recordStaleness,
  type RunRecord,
} from "./run_record.ts";

/** A record whose code differs from the checked-out code. */
export interface StaleRecord {
  /** Where the record is. */
  readonly path: string;
  /** The record. */
  readonly record: RunRecord;
  /** How its code differs. */
  readonly staleness: RecordStaleness;
}

/** The records in `directory` (`*.json`, by name) made by other code than `current`. */
export async function findStaleRecords(
  directory: string = defaultRunsDirectory(),
  current?: CodeVersion,
): Promise<StaleRecord[]> {
  const now = current ?? await codeVersion();
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(directory)) {
      if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  names.sort();
  const out: StaleRecord[] = [];
  for (const name of names) {
    const path = join(directory, name);
    const record = await readRunRecord(path);
    if (!record) continue;
    const staleness = await recordStaleness(record, now);
    if (staleness.stale) out.push({ path, record, staleness });
  }
  return out;
}

/** The arguments of `deno task train` that retrain a record. */
export interface RetrainArguments {
  /** The first command: the stored one without `--continue`, `--resume` or `--json`. */
  readonly first: readonly string[];
  /** The commands after it: `first` with `--continue`; `null` without `--checkpoint-dir`. */
  readonly next: readonly string[] | null;
}

/** Options that take a value in `deno task train`'s command line and are dropped when retraining. */
const DROPPED_WITH_VALUE = new Set(["--resume", "--record"]);

/**
 * The `deno task train` arguments that retrain the run a record's `command` made, writing the
 * record to `recordPath` (relative to the project root). Fails, saying why, on a command that is
 * not `deno task train …` or that quotes its arguments.
 */
export function retrainArguments(command: string, recordPath: string): RetrainArguments {
  const prefix = "deno task train ";
  if (!command.startsWith(prefix)) {
    throw new Error(
      `stored command '${command}' does not start with '${prefix.trim()}'; retrain it by hand`,
    );
  }
  if (/["'\\]/.test(command)) {
    throw new Error(`stored command '${command}' quotes its arguments; retrain it by hand`);
  }
  const tokens = command.slice(prefix.length).trim().split(/\s+/).filter((t) => t !== "");
  const kept: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const [flag] = tokens[i].split("=", 1);
    if (DROPPED_WITH_VALUE.has(flag)) {
      if (!tokens[i].includes("=")) i++;
      continue;
    }
    if (flag === "--continue" || flag === "--json") continue;
    kept.push(tokens[i]);
  }
  const first = [...kept, "--record", recordPath];
  const resumable = kept.some((t) => t === "--checkpoint-dir" || t.startsWith("--checkpoint-dir="));
  return { first, next: resumable ? [...first, "--continue"] : null };
}

/** Runs `deno task train` with these arguments in the project root; resolves to its exit code. */
export type TrainCommand = (args: readonly string[]) => Promise<number>;

/** {@link TrainCommand} as a child process whose output goes to this process's. */
export async function runTrainTask(args: readonly string[]): Promise<number> {
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["task", "train", ...args],
    cwd: requireProjectRoot(),
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return status.code;
}

/**
 * Retrains one stale record with its stored `deno task train` command (through `trainCommand`,
 * by default {@link runTrainTask}), calling it again with `--continue` until the run finishes and
 * the record is rewritten, with the code version of the checkout. Fails naming the record when a
 * command fails or the run cannot go on.
 */
export async function retrainRecord(
  stale: StaleRecord,
  trainCommand: TrainCommand = runTrainTask,
): Promise<void> {
  const args = retrainArguments(stale.record.command, relative(requireProjectRoot(), stale.path));
  // Every call trains at least one epoch, so a run needs at most `epochs` calls.
  const maxCalls = stale.record.trainConfig.epochs + 1;
  for (let call = 0; call < maxCalls; call++) {
    const list = call === 0 ? args.first : args.next;
    if (list === null) {
      throw new Error(
        `${stale.path}: the stored command stopped before the end and has no --checkpoint-dir ` +
          "to continue from; add one to its command or retrain it by hand",
      );
    }
    console.log(`retrain: deno task train ${list.join(" ")}`);
    const code = await trainCommand(list);
    if (code !== 0) throw new Error(`${stale.path}: deno task train exited with ${code}`);
    // Rewritten (by a call that finished the run) with the code version of the moment.
    const record = await readRunRecord(stale.path);
    if (record?.code && record.finishedAt !== stale.record.finishedAt) return;
  }
  throw new Error(`${stale.path}: not rewritten after ${maxCalls} training commands`);
}
