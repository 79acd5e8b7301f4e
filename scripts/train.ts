/**
 * `deno task train --model <name> --dataset <name-or-file> [options]` (models: `MODEL_NAMES`): trains with
 * RecBole's protocol and prints the best validation and the test metrics and the time per epoch.
 *
 * Options: --format F, --epochs N, --batch-size B, --eval-batch-size B (users ranked at once in
 * validation and test: fewer use less memory, with the same metrics), --micro-batch M (each step
 * as micro-batches of M samples, gradients summed: the same update to rounding, less memory;
 * chosen by itself when a step exceeds the adapter's binding limit), --lr X, --max-len L,
 * --seed S, --dropout P,
 * --layers N, Mamba4Rec's ablation settings --ffn true|false, --layer-norm true|false,
 * --position-embedding true|false with --model-max-len L (the position table's rows), --clip-grad-norm X, --training-mode prefix|all-positions,
 * --targets-per-step T (all-positions steps of about T targets instead of --batch-size windows), --max-users N (the first
 * N users only, as the notebooks' quick mode), --checkpoint-dir DIR, --resume FILE, --continue
 * (resume from DIR/last.safetensors when it exists), --epochs-this-run N and --max-seconds S (stop
 * early in this process; run the same command again to go on), --record FILE (when training is
 * over, save the run as a JSON record for the notebooks), --json. Epochs are numbered from 1.
 * A worker of the run scheduler is told its GPU by `$SSMREC_GPU_INDEX` and
 * `$SSMREC_GPU_PCI_ADDRESS` (`run/gpu_pinning.ts`), which the record keeps.
 *
 * A KuaiRand-Pure folder takes --kuairand-logs standard-early|standard|all (which logs make up
 * the dataset; default standard-early).
 *
 * Models on packed batches (ssd4rec) also take --mask-ratio ρ (each training history token
 * replaced by id 0 with probability ρ), --beta β (the backward direction's weight in
 * `h = fwd + β·bwd + x`; 0 runs the forward direction alone) and --var-len true|false (false: histories cut to their
 * last --max-len items, in training and evaluation; true, the default: whole histories) and
 * --pad-to L (every history a window of exactly L tokens, its last L items left-padded with id 0,
 * in training and evaluation: the same model on padded windows, to compare efficiency; Mamba4Rec
 * refuses it, its windows are padded already). With --json, every epoch of the history has its
 * peak live GPU storage (`peakLiveBytes`), tokens trained (`tokens`: packed models count history
 * tokens, padding included with --pad-to; padded models B × L of every window, padding included)
 * and `tokensPerSecond`.
 *
 * A resumed run must have the checkpoint's settings; only --epochs, --eval-batch-size,
 * --micro-batch, --checkpoint-dir (given explicitly) and --json may differ. A full run longer than one command may last (a lent GPU caps
 * commands at 10 minutes):
 *
 *     deno task train --dataset ml-1m --checkpoint-dir DIR --continue --max-seconds 540 \
 *       --seed 2020 --record results/runs/mamba4rec-ml-1m-seed2020.json
 *
 * repeated until it prints the test metrics. Errors print one `error: …` line: exit status 2 for
 * a bad command line (flags, values, settings that differ from the resumed checkpoint's), 1 for
 * anything else (data, files, the GPU).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { INTERACTION_FORMATS, type InteractionFormat, type KuaiRandLogSet } from "../data/mod.ts";
import {
  ConfigError,
  MODEL_NAMES,
  SettingsMismatchError,
  type TrainResult,
} from "../models/mod.ts";
import { pinnedGpu } from "../run/gpu_pinning.ts";
import { meanEpochSeconds, runTraining, type TrainingRun } from "../run/mod.ts";

const USAGE = `usage: deno task train --model ${MODEL_NAMES.join("|")} --dataset <name-or-file>\n` +
  "       [--format F]\n" +
  "       [--epochs N] [--batch-size B] [--eval-batch-size B] [--micro-batch M] [--lr X]\n" +
  "       [--max-len L]\n" +
  "       [--seed S] [--dropout P]\n" +
  "       [--layers N] [--ffn B] [--layer-norm B] [--position-embedding B] [--model-max-len L]\n" +
  "       [--clip-grad-norm X] [--training-mode prefix|all-positions] [--targets-per-step T]\n" +
  "       [--mask-ratio R] [--beta B] [--var-len true|false] [--pad-to L] [--max-users N]\n" +
  "       [--kuairand-logs standard-early|standard|all]\n" +
  "       [--checkpoint-dir DIR] [--resume FILE] [--continue] [--epochs-this-run N]\n" +
  "       [--max-seconds S] [--record FILE] [--json]";

/** A flag that sets a training (`train`) or model (`model`) setting, and its value's type. */
interface SettingFlag {
  readonly train?: string;
  readonly model?: string;
  readonly value: "number" | "text" | "boolean";
}

/** The flags that set settings, and the settings they set. */
const SETTING_FLAGS: Readonly<Record<string, SettingFlag>> = {
  epochs: { train: "epochs", value: "number" },
  "batch-size": { train: "batchSize", value: "number" },
  "eval-batch-size": { train: "evalBatchSize", value: "number" },
  "micro-batch": { train: "microBatchSize", value: "number" },
  lr: { train: "learningRate", value: "number" },
  "max-len": { train: "maxLength", value: "number" },
  seed: { train: "seed", model: "seed", value: "number" },
  "clip-grad-norm": { train: "clipGradNorm", value: "number" },
  "training-mode": { train: "trainingMode", value: "text" },
  "targets-per-step": { train: "targetsPerStep", value: "number" },
  "mask-ratio": { train: "maskRatio", value: "number" },
  "var-len": { train: "varLen", value: "boolean" },
  "pad-to": { train: "padTo", value: "number" },
  "checkpoint-dir": { train: "checkpointDir", value: "text" },
  dropout: { model: "dropoutProb", value: "number" },
  layers: { model: "numLayers", value: "number" },
  ffn: { model: "ffn", value: "boolean" },
  "layer-norm": { model: "layerNorm", value: "boolean" },
  "position-embedding": { model: "positionEmbedding", value: "boolean" },
  "model-max-len": { model: "maxLength", value: "number" },
  beta: { model: "beta", value: "number" },
};

/** Flags that are not settings, with the keys errors name them by. */
const OTHER_FLAGS: Readonly<Record<string, string>> = {
  model: "model",
  dataset: "dataset",
  "max-users": "maxUsers",
  "kuairand-logs": "kuaiRandLogs",
  record: "record",
};

/** A mistake in the command line (exit status 2). */
class UsageError extends Error {
  /** @param message what is wrong and what to do */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The flag that sets a settings key (`train.maxLength`, `model.numLayers`, `maxLength`, …). */
function flagOf(key: string): string | undefined {
  const [scope, name] = key.includes(".") ? key.split(".", 2) : [undefined, key];
  for (const [flag, s] of Object.entries(SETTING_FLAGS)) {
    if ((scope !== "model" && s.train === name) || (scope !== "train" && s.model === name)) {
      return `--${flag}`;
    }
  }
  const other = Object.entries(OTHER_FLAGS).find(([, k]) => k === key);
  if (other) return `--${other[0]}`;
  return key === "train.verbose" ? "--json" : undefined;
}

/** A settings key named with its flag: `model.numLayers (--layers)`. */
function label(key: string): string {
  const flag = flagOf(key);
  return flag ? `${key} (${flag})` : key;
}

/**
 * `--max-len -5` as `--max-len=-5`, so that a negative number reaches the range checks instead
 * of being taken for a flag.
 */
function joinNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].startsWith("--") && !args[i].includes("=") ? args[i].slice(2) : "";
    const valued = flag in SETTING_FLAGS || flag === "max-users" || flag === "epochs-this-run" ||
      flag === "max-seconds";
    if (valued && /^-(\d|\.\d)/.test(args[i + 1] ?? "")) {
      out.push(`${args[i]}=${args[++i]}`);
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

/** Parses the command line into the run layer's options; throws {@link UsageError}. */
function parseCommandLine(args: readonly string[]) {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(args),
      options: {
        model: { type: "string", default: "mamba4rec" },
        dataset: { type: "string" },
        format: { type: "string" },
        ...Object.fromEntries(
          Object.keys(SETTING_FLAGS).map((f) => [f, { type: "string" as const }]),
        ),
        "max-users": { type: "string" },
        "kuairand-logs": { type: "string" },
        resume: { type: "string" },
        "epochs-this-run": { type: "string" },
        "max-seconds": { type: "string" },
        continue: { type: "boolean", default: false },
        record: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = values;
  const text = (flag: string) => v[flag] as string | undefined;
  const num = (flag: string) => {
    const s = text(flag);
    if (s === undefined) return undefined;
    const n = Number(s);
    if (s.trim() === "" || !Number.isFinite(n)) {
      throw new UsageError(`--${flag}: expected a number, got '${s}'`);
    }
    return n;
  };
  const bool = (flag: string) => {
    const s = text(flag);
    if (s === undefined) return undefined;
    if (s !== "true" && s !== "false") {
      throw new UsageError(`--${flag}: expected true or false, got '${s}'`);
    }
    return s === "true";
  };
  const read = { number: num, text, boolean: bool };
  const format = text("format");
  if (format !== undefined && !Object.hasOwn(INTERACTION_FORMATS, format)) {
    throw new UsageError(
      `--format: unknown format "${format}"; one of ${Object.keys(INTERACTION_FORMATS).join(", ")}`,
    );
  }
  const train: Record<string, unknown> = { verbose: !v.json };
  const modelConfig: Record<string, unknown> = {};
  const explicit = ["train.verbose"];
  for (const [flag, s] of Object.entries(SETTING_FLAGS)) {
    const value = read[s.value](flag);
    if (value === undefined) continue;
    if (s.train) {
      train[s.train] = value;
      explicit.push(`train.${s.train}`);
    }
    if (s.model) {
      modelConfig[s.model] = value;
      explicit.push(`model.${s.model}`);
    }
  }
  return {
    help: Boolean(v.help),
    json: Boolean(v.json),
    options: {
      request: {
        model: text("model"),
        dataset: text("dataset") ?? "",
        format: format as InteractionFormat | undefined,
        maxUsers: num("max-users"),
        kuaiRandLogs: text("kuairand-logs") as KuaiRandLogSet | undefined,
        train,
        modelConfig,
      },
      resume: text("resume"),
      continue: Boolean(v.continue),
      explicit,
      maxEpochsThisRun: num("epochs-this-run"),
      maxSecondsThisRun: num("max-seconds"),
      record: text("record"),
      command: ["deno task train", ...args.filter((a) => a !== "--json")].join(" "),
      label,
      resumeAdvice: "pass the checkpoint's settings, or train from the start with another " +
        "--checkpoint-dir",
    },
  };
}

/** Epochs numbered from 1, as everything shown to people numbers them. */
function resultForPeople(result: TrainResult) {
  return {
    bestEpoch: result.bestEpoch + 1,
    history: result.history.map((h) => ({ ...h, epoch: h.epoch + 1 })),
  };
}

/** Prints the outcome as JSON or as text. */
function report(run: TrainingRun, json: boolean): void {
  const { setup, result } = run;
  if (json) {
    const people = resultForPeople(result);
    console.log(JSON.stringify({
      model: setup.model.name,
      dataset: setup.dataset.name,
      adapter: setup.adapter,
      seed: setup.config.seed,
      config: setup.config,
      epochs: result.history.length,
      bestEpoch: people.bestEpoch,
      valid: result.bestValid,
      test: result.test,
      stoppedEarly: result.stoppedEarly,
      complete: result.complete,
      secondsPerEpoch: result.secondsPerEpoch,
      meanEpochSeconds: meanEpochSeconds(result),
      history: people.history,
    }));
    return;
  }
  console.log(
    `${result.history.length} epochs, ${result.secondsPerEpoch.toFixed(2)} s per training epoch` +
      (result.stoppedEarly ? " (early stopping)" : ""),
  );
  if (!result.complete) {
    console.log(
      `paused after epoch ${result.history.length}: run the same command with --continue to go on ` +
        "(the test metrics above are those of the best epoch so far)",
    );
  }
}

/** The exit status and the one-line message of an error. */
function describeError(error: unknown): { status: number; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof UsageError) return { status: 2, message: `${message} (see --help)` };
  if (error instanceof ConfigError) {
    const flag = error.key === undefined ? undefined : flagOf(error.key);
    return { status: 2, message: flag ? `${flag}: ${message}` : message };
  }
  if (error instanceof SettingsMismatchError) return { status: 2, message };
  return { status: 1, message };
}

/** Runs the command line; returns the exit status. Errors print one `error: …` line. */
export async function main(args: readonly string[]): Promise<number> {
  try {
    const { help, json, options } = parseCommandLine(args);
    if (help) {
      console.log(USAGE);
      return 0;
    }
    if (!options.request.dataset) throw new UsageError("--dataset is required");
    // The run record keeps the GPU the scheduler pinned this process to: a malformed one fails
    // here, before training, rather than when the record is written.
    pinnedGpu();
    const run = await runTraining({ ...options, log: json ? undefined : console.log });
    report(run, json);
    return 0;
  } catch (error) {
    const { status, message } = describeError(error);
    console.error(`error: ${message.replaceAll("\n", " ")}`);
    return status;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
