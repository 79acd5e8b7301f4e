/**
 * Executes every notebook in `notebooks/` and its folders (`notebooks/mamba4rec/`,
 * `notebooks/ssd4rec/`, found anew each time, in path order) headless through Jupyter with Deno's
 * kernel, saves the executed copies and a summary under `results/`, and fails when a cell errors, a
 * cell that should show a table or chart does not, or a checked value differs from its expected
 * one. It first prints the plan of the selected notebooks' runs: how many are recorded (and of
 * those, made by other code), how many are missing, and the missing ones' GPU time.
 *
 *     deno task reproduce [--only <[folder/]name>]... [--quick | --full] [--retrain-stale]
 *       [--gpus N] [--workers-per-gpu K] [--max-seconds S] [--shortest-first] [--datasets a,b]
 *       [--train-only] [--print-commands]
 *
 * `--only` takes a notebook's path below `notebooks/` (`ssd4rec/ablation`), or a file name stem
 * (`ablation`) that selects every notebook of that stem, and may be repeated or given a
 * comma-separated list. Every notebook shows every recorded run; in full mode the runs without a
 * record are trained and recorded, in quick mode they are not, and a smoke run on a tiny slice
 * stands in for each table cell without any record (a sweep smoke-tests one chosen cell).
 *
 * Without `--quick` or `--full` the mode is `full` on a real GPU adapter and `quick` on a CPU one
 * (lavapipe, llvmpipe, SwiftShader) or without any; notebooks read it from `$SSMREC_MODE`.
 * `--retrain-stale` (full mode) also trains again the selected notebooks' runs on the selected
 * datasets whose records were made by other code than the checked-out one; the plan says how many
 * stale records outside the selection are left as they are.
 *
 * In full mode the missing runs are trained before any notebook runs, each by its own
 * `deno task train` process, on `--workers-per-gpu K` (default 1) workers on each of `--gpus N`
 * GPUs (default: those `nvidia-smi` lists; 1 when it lists none), the longest first (with
 * `--shortest-first` the shortest first, runs of unknown length last: under a budget on a machine
 * that will not keep the checkpoints, that finishes the most runs); a run of Caser
 * or SSD4Rec on ML-1M, which fills a GPU, runs with no other run on its GPU. Each worker's output
 * goes to `results/logs/<record>.log`, and its run record names the GPU it was pinned to.
 * `--max-seconds S` is a time budget: no run starts in its last minute and each pauses at an
 * epoch's end by then; the exit status is then 3 and the same command goes on where the runs
 * stopped. `--datasets` trains only runs on these datasets; `--train-only` stops after training,
 * without the notebooks; `--print-commands` prints the train commands of the runs that would be
 * trained (with `--retrain-stale`, the stale ones too; with `--max-seconds S`, each gets it), one a
 * line, in the order they would start, and does nothing else (for a cluster's scheduler).
 *
 * The work is done by the run layer (`run/reproduce.ts`); this file only reads the flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { reproduce } from "../run/mod.ts";

/** The usage line. */
const USAGE =
  "Usage: deno task reproduce [--only <[folder/]notebook>]... [--quick | --full] [--retrain-stale]\n" +
  "         [--gpus N] [--workers-per-gpu K] [--max-seconds S] [--shortest-first] [--datasets a,b]\n" +
  "         [--train-only] [--print-commands]";

/** The positive integer value of `flag`, `undefined` when not given; fails on another value. */
function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!(Number.isInteger(number) && number >= 1)) {
    throw new Error(`--${flag} takes a positive integer, got '${value}'`);
  }
  return number;
}

/** A repeatable comma-separated list flag's values. */
const listValues = (values: string[] | undefined) =>
  (values ?? []).flatMap((v) => v.split(",")).filter((v) => v !== "");

/** Runs the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let values;
  let training;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        only: { type: "string", multiple: true },
        quick: { type: "boolean", default: false },
        full: { type: "boolean", default: false },
        "retrain-stale": { type: "boolean", default: false },
        gpus: { type: "string" },
        "workers-per-gpu": { type: "string" },
        "max-seconds": { type: "string" },
        "shortest-first": { type: "boolean", default: false },
        datasets: { type: "string", multiple: true },
        "train-only": { type: "boolean", default: false },
        "print-commands": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
    training = {
      gpus: positiveInteger("gpus", values.gpus),
      workersPerGpu: positiveInteger("workers-per-gpu", values["workers-per-gpu"]),
      maxSeconds: positiveInteger("max-seconds", values["max-seconds"]),
      order: values["shortest-first"] ? "shortest-first" as const : "longest-first" as const,
      datasets: listValues(values.datasets),
    };
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.quick && values.full) {
    console.error("error: --quick and --full exclude each other");
    return 2;
  }
  return await reproduce({
    only: listValues(values.only),
    mode: values.quick ? "quick" : values.full ? "full" : undefined,
    retrainStale: values["retrain-stale"],
    training,
    trainOnly: values["train-only"],
    printCommands: values["print-commands"],
  });
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`reproduce: error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
