/**
 * `deno task efficiency --models <names> --dataset <name-or-file> [options]`: measures each model's
 * training time per epoch, peak GPU memory (the runtime's own accounting, by purpose) and
 * inference time per evaluation batch with the paper's settings (`run/efficiency_measure.ts`),
 * and writes one JSON file per model, dataset and history layout under `--out`
 * (default `results/efficiency/`), each atomically.
 *
 *     deno task efficiency --models sasrec,bert4rec,mamba4rec --dataset ml-1m
 *
 * Options: --max-len L[,L…] (windows of each L in turn; default the preset's), --epochs N (whole
 * epochs timed, default 1), --max-steps N (time only the first N steps; the epoch's time is then
 * projected and marked so), --warmup-steps N (untimed steps first, at least 1, default 2), --repeats R
 * (timed inference repeats, default 5), --batch-size B, --eval-batch-size B, --max-users N (the
 * first N users only: a smoke measurement, its file name says so), --out DIR.
 *
 * SSD4Rec's measurements also count the matrix-product work of one epoch's projections and
 * feed-forward networks (`run/projection_flops.ts`); with --matmul-tflops R (the rate that
 * `deno task bench --only matmul,ssd4rec` measured over SSD4Rec's own products, TFLOP/s) they
 * print the epoch's floor, that work at R, and the measured epoch's ratio to it, and the same for
 * the products as the model defines them (each direction's projections and the feed-forward
 * network at every token; the efficiency bar is an epoch within 1.5× of that floor):
 *
 *     deno task efficiency --models ssd4rec --dataset kuairand-synthetic --matmul-tflops 40
 *
 * Packed models (ssd4rec) also take --var-len true|false (false: histories cut to their last L
 * items) and --pad-to L (every history a left-padded window of L tokens); padded models in the
 * same command are measured without them, so one command can sweep L for both kinds.
 *
 * Errors print one `error: …` line: exit status 2 for a bad command line, 1 for anything else.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, findModel } from "../models/mod.ts";
import { requireProjectRoot } from "../run/code_version.ts";
import {
  EFFICIENCY_DIRECTORY,
  type EfficiencyMeasurement,
  epochSecondsText,
  laterEpochSeconds,
  trainingTimingText,
  writeEfficiencyMeasurement,
} from "../run/efficiency_file.ts";
import {
  efficiencyCommand,
  type EfficiencyRequest,
  measureEfficiency,
} from "../run/efficiency_measure.ts";
import { definedEpochFloor } from "../run/projection_flops.ts";

const USAGE = "usage: deno task efficiency --models M[,M…] --dataset <name-or-file>\n" +
  "       [--max-len L[,L…]] [--epochs N] [--max-steps N] [--warmup-steps N] [--repeats R]\n" +
  "       [--batch-size B] [--eval-batch-size B] [--max-users N]\n" +
  "       [--var-len true|false] [--pad-to L] [--matmul-tflops R] [--out DIR]";

/** A mistake in the command line (exit status 2). */
class UsageError extends Error {
  /** @param message what is wrong and what to do */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The parsed command line: the measurements to make and where they go. */
interface EfficiencyCommand {
  readonly help: boolean;
  readonly requests: EfficiencyRequest[];
  readonly out: string;
}

/** A positive integer flag's value, or `undefined` when absent. */
function positiveInteger(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < 1) {
    throw new UsageError(`--${flag}: expected a positive integer, got '${text}'`);
  }
  return n;
}

/** A positive number flag's value, or `undefined` when absent. */
function positiveNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${flag}: expected a positive number, got '${text}'`);
  }
  return n;
}

/** Parses the command line; throws {@link UsageError}. */
function parseCommandLine(args: readonly string[]): EfficiencyCommand {
  let values: Record<string, string | boolean | undefined>;
  const texts = [
    "models",
    "dataset",
    "max-len",
    "epochs",
    "max-steps",
    "warmup-steps",
    "repeats",
    "batch-size",
    "eval-batch-size",
    "max-users",
    "var-len",
    "pad-to",
    "matmul-tflops",
    "out",
  ];
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        ...Object.fromEntries(texts.map((f) => [f, { type: "string" as const }])),
        help: { type: "boolean", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const text = (flag: string) => values[flag] as string | undefined;
  if (values.help) return { help: true, requests: [], out: "" };
  const models = (text("models") ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "");
  if (models.length === 0) throw new UsageError("--models is required (e.g. sasrec,mamba4rec)");
  const dataset = text("dataset");
  if (!dataset) throw new UsageError("--dataset is required");
  const lengths = text("max-len") === undefined
    ? [undefined]
    : text("max-len")!.split(",").map((l) => positiveInteger("max-len", l));
  const varLenText = text("var-len");
  if (varLenText !== undefined && varLenText !== "true" && varLenText !== "false") {
    throw new UsageError(`--var-len: expected true or false, got '${varLenText}'`);
  }
  const train: Record<string, unknown> = {};
  const batchSize = positiveInteger("batch-size", text("batch-size"));
  const evalBatchSize = positiveInteger("eval-batch-size", text("eval-batch-size"));
  if (batchSize !== undefined) train.batchSize = batchSize;
  if (evalBatchSize !== undefined) train.evalBatchSize = evalBatchSize;
  const common = {
    dataset,
    maxUsers: positiveInteger("max-users", text("max-users")),
    epochs: positiveInteger("epochs", text("epochs")),
    maxSteps: positiveInteger("max-steps", text("max-steps")),
    warmupSteps: positiveInteger("warmup-steps", text("warmup-steps")),
    inferenceRepeats: positiveInteger("repeats", text("repeats")),
    matmulTflops: positiveNumber("matmul-tflops", text("matmul-tflops")),
    train,
  };
  const varLen = varLenText === undefined ? undefined : varLenText === "true";
  const padTo = positiveInteger("pad-to", text("pad-to"));
  const requests: EfficiencyRequest[] = [];
  for (const model of models) {
    let packed: boolean;
    try {
      packed = findModel(model).layout === "packed";
    } catch (error) {
      throw new UsageError(`--models: ${(error as Error).message}`);
    }
    for (const maxLength of lengths) {
      const request = {
        ...common,
        model,
        maxLength,
        ...(packed ? { varLen, padTo } : {}),
      };
      requests.push({ ...request, command: efficiencyCommand(request, text("out")) });
    }
  }
  const out = text("out") ?? join(requireProjectRoot(), EFFICIENCY_DIRECTORY);
  return { help: false, requests, out };
}

/**
 * For SSD4Rec, one line on the epoch's projection work and, with a rate, its floor and the
 * measured epoch's ratio to it; `undefined` for other models.
 */
function projectionLine(m: EfficiencyMeasurement): string | undefined {
  const p = m.projections;
  if (p === undefined) return undefined;
  const work =
    `  projections and feed-forward networks: ${(p.flops / 1e12).toPrecision(4)} TFLOP ` +
    `an epoch (forward and backward; ${p.tokens} tokens, ${p.samples} samples)`;
  if (p.floor === undefined) return `${work}; give --matmul-tflops R for the floor`;
  const { matmulTflops, seconds, epochRatio } = p.floor;
  const line = `${work}; floor at ${matmulTflops} TFLOP/s ${seconds.toPrecision(4)} s, ` +
    `measured epoch ${epochRatio.toFixed(2)}x the floor`;
  const defined = definedEpochFloor(m, matmulTflops)?.floor;
  if (defined === undefined) return line;
  const later = laterEpochSeconds(m.training);
  const laterText = later === undefined
    ? ""
    : `, the epochs after the first ${(later / defined.seconds).toFixed(2)}x (their median)`;
  return `${line}; the model's products (each direction, every token) ` +
    `${defined.seconds.toPrecision(4)} s, the epoch ${defined.epochRatio.toFixed(2)}x that` +
    laterText;
}

/** One line for people: what was measured and the three figures. */
function summaryLine(m: EfficiencyMeasurement, path: string): string {
  const t = m.training;
  const timing = t.projected ? ` (${trainingTimingText(m)})` : "";
  const seconds = epochSecondsText(t);
  const each = seconds ? ` (each: ${seconds})` : "";
  const epoch = `${t.secondsPerEpoch.toFixed(2)} s / epoch${timing}${each}`;
  const layout = [m.histories.kind, m.histories.length].filter((x) => x !== undefined).join(" ");
  return `${m.model} on ${m.dataset} (${layout}), ` +
    `${m.adapter}: ${epoch}, peak ${(t.peakLiveBytes / 1e9).toFixed(3)} GB, ` +
    `inference ${
      m.inference.secondsPerBatch.toFixed(4)
    } s / batch of ${m.inference.users} → ${path}`;
}

/** Runs the command line; returns the exit status. Errors print one `error: …` line. */
export async function main(args: readonly string[]): Promise<number> {
  try {
    const command = parseCommandLine(args);
    if (command.help) {
      console.log(USAGE);
      return 0;
    }
    for (const request of command.requests) {
      const measured = await measureEfficiency(request);
      const path = await writeEfficiencyMeasurement(command.out, measured);
      console.log(summaryLine(measured, path));
      const projections = projectionLine(measured);
      if (projections !== undefined) console.log(projections);
    }
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const usage = error instanceof UsageError || error instanceof ConfigError;
    console.error(`error: ${message.replaceAll("\n", " ")}${usage ? " (see --help)" : ""}`);
    return usage ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
