/**
 * Executes every notebook in `notebooks/` and its folders (`notebooks/mamba4rec/`,
 * `notebooks/ssd4rec/`, found anew each time, in path order) headless through Jupyter with Deno's
 * kernel, saves the executed copies and a summary under `results/`, and fails when a cell errors, a
 * cell that should show a table or chart does not, or a checked value differs from its expected
 * one. It first prints the plan of the selected notebooks' runs: how many are recorded (and of
 * those, made by other code), how many are missing, and the missing ones' GPU time.
 *
 *     deno task reproduce [--only <name>]... [--quick | --full] [--retrain-stale]
 *
 * `--only` takes a notebook's file name stem (`table2_overall`), and may be repeated or given a
 * comma-separated list. Every notebook shows every recorded run; in full mode the runs without a
 * record are trained and recorded, in quick mode they are not, and a smoke run on a tiny slice
 * stands in for each table cell without any record.
 *
 * Without `--quick` or `--full` the mode is `full` on a real GPU adapter and `quick` on a CPU one
 * (lavapipe, llvmpipe, SwiftShader) or without any; notebooks read it from `$SSMREC_MODE`.
 * `--retrain-stale` (full mode) first retrains every record in `results/runs/` made by other code
 * than the checked-out one, through the `deno task train` command stored in the record.
 *
 * The work is done by the run layer (`run/reproduce.ts`); this file only reads the flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { reproduce } from "../run/mod.ts";

/** The usage line. */
const USAGE =
  "Usage: deno task reproduce [--only <notebook>]... [--quick | --full] [--retrain-stale]";

/** Runs the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        only: { type: "string", multiple: true },
        quick: { type: "boolean", default: false },
        full: { type: "boolean", default: false },
        "retrain-stale": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
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
    only: (values.only ?? []).flatMap((o) => o.split(",")).filter((o) => o !== ""),
    mode: values.quick ? "quick" : values.full ? "full" : undefined,
    retrainStale: values["retrain-stale"],
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
