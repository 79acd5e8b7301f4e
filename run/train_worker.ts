/**
 * One training worker of the run scheduler (`run/run_scheduler.ts`): a `deno task train` child
 * process whose output goes, line by line, to its log file and to the scheduler, and what the
 * scheduler reads from those lines (each finished epoch, the test metrics, a pause).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { requireProjectRoot } from "./code_version.ts";

/** What a worker runs. */
export interface WorkerJob {
  /** The `deno task train` arguments. */
  readonly args: readonly string[];
  /** Environment variables added to the scheduler's (the GPU pinning). */
  readonly env: Readonly<Record<string, string>>;
  /** The log file its output is appended to. */
  readonly logPath: string;
  /** Receives each line of its output (stdout and stderr), without the newline. */
  readonly onLine: (line: string) => void;
  /** Ends the worker (SIGTERM) when aborted. */
  readonly signal?: AbortSignal;
}

/** How a worker ended. */
export interface WorkerExit {
  /** The exit code (128 + the signal's number when a signal ended it). */
  readonly code: number;
  /** The signal that ended it (`SIGKILL`), or `null`. */
  readonly signal: string | null;
}

/** Runs one {@link WorkerJob} to its end; the run scheduler's injectable part. */
export type WorkerSpawner = (job: WorkerJob) => Promise<WorkerExit>;

/** Splits a stream of text into lines, calling `onLine` for each (a last partial line too). */
async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onChunk: (bytes: Uint8Array) => Promise<void>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const bytes of stream) {
    await onChunk(bytes);
    pending += decoder.decode(bytes, { stream: true });
    const lines = pending.split(/\r?\n|\r/);
    pending = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  pending += decoder.decode();
  if (pending !== "") onLine(pending);
}

/**
 * The arguments after `deno` of the project's `train` task (`deno.json`: `run -A --preload …
 * scripts/train.ts`), so that a worker is the training process itself rather than a task runner
 * in front of it (a signal then reaches the training, and its exit says which signal ended it).
 * Fails, saying why, when the task is not one plain `deno …` command.
 */
export function trainTaskArguments(root: string): string[] {
  const path = join(root, "deno.json");
  const task = JSON.parse(Deno.readTextFileSync(path))?.tasks?.train;
  if (typeof task !== "string" || !/^deno\s/.test(task) || /["'`$;&|<>\\]/.test(task)) {
    throw new Error(
      `${path}: the train task should be one plain 'deno …' command without quotes or shell ` +
        `operators, got ${JSON.stringify(task)}`,
    );
  }
  return task.trim().split(/\s+/).slice(1);
}

/** Where and how {@link processSpawner} runs a worker. */
export interface WorkerCommand {
  /** The program (default: this Deno). */
  readonly executable?: string;
  /** Arguments before the job's (default: the `train` task's, {@link trainTaskArguments}). */
  readonly prefix?: readonly string[];
  /** The working folder (default: the project root). */
  readonly cwd?: string;
}

/**
 * A {@link WorkerSpawner} that runs `executable` with `prefix` and the job's arguments in `cwd`
 * (by default the `train` task's command in the project root), appending its output to the job's
 * log after a line that names the command and the time.
 */
export function processSpawner(command: WorkerCommand = {}): WorkerSpawner {
  const cwd = command.cwd ?? requireProjectRoot();
  const executable = command.executable ?? Deno.execPath();
  const prefix = command.prefix ?? trainTaskArguments(cwd);
  return async (job) => {
    await Deno.mkdir(dirname(job.logPath), { recursive: true });
    const log = await Deno.open(job.logPath, { create: true, append: true });
    try {
      const encoder = new TextEncoder();
      const pinned = Object.entries(job.env).map(([k, v]) => `${k}=${v} `).join("");
      await log.write(encoder.encode(
        `=== ${new Date().toISOString()} ${pinned}deno ${[...prefix, ...job.args].join(" ")}\n`,
      ));
      const child = new Deno.Command(executable, {
        args: [...prefix, ...job.args],
        cwd,
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...job.env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: job.signal,
      }).spawn();
      // Both streams append to one log; a write finishes before the next starts.
      let writes = Promise.resolve();
      const write = (bytes: Uint8Array) => {
        writes = writes.then(async () => {
          for (let done = 0; done < bytes.length;) done += await log.write(bytes.subarray(done));
        });
        return writes;
      };
      const [status] = await Promise.all([
        child.status,
        forEachLine(child.stdout, write, job.onLine),
        forEachLine(child.stderr, write, job.onLine),
      ]);
      await writes;
      return { code: status.code, signal: status.signal };
    } finally {
      log.close();
    }
  };
}

/** What one line of `deno task train`'s output tells the scheduler. */
export type TrainLineEvent =
  | {
    readonly kind: "epoch";
    readonly epoch: number;
    readonly loss: number;
    readonly valid: string;
  }
  | { readonly kind: "test"; readonly metrics: Readonly<Record<string, number>> }
  | { readonly kind: "paused"; readonly epoch: number };

/** `name value` pairs of a metrics text (`hit@10 0.0812  ndcg@10 0.0421`). */
function metricPairs(text: string): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const match of text.matchAll(/([a-z]+@\d+)\s+(-?[\d.]+(?:e-?\d+)?)/gi)) {
    metrics[match[1].toLowerCase()] = Number(match[2]);
  }
  return metrics;
}

/**
 * The event of a line of `deno task train`'s text output (`run/progress.ts` writes the epoch and
 * test lines, `scripts/train.ts` the pause), or `undefined` for any other line. The epoch's
 * `valid` is its validation metrics as printed.
 */
export function parseTrainLine(line: string): TrainLineEvent | undefined {
  const epoch = /^epoch\s+(\d+)\s+loss\s+(\S+)\s+valid\s+(.*?)\s+[* ]?\s*best\s/.exec(line);
  if (epoch) {
    return { kind: "epoch", epoch: Number(epoch[1]), loss: Number(epoch[2]), valid: epoch[3] };
  }
  const test = /^test \(best epoch's weights\):\s*(.*)$/.exec(line);
  if (test) return { kind: "test", metrics: metricPairs(test[1]) };
  const paused = /^paused after epoch (\d+)/.exec(line);
  if (paused) return { kind: "paused", epoch: Number(paused[1]) };
  return undefined;
}

/** The validation metric shown in a progress line: HR@10 when printed. */
export function shownMetric(valid: string): string {
  const hit = metricPairs(valid)["hit@10"];
  return hit === undefined ? valid : `hit@10 ${hit.toFixed(4)}`;
}
