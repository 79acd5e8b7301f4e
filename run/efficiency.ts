/**
 * The packed-against-padded comparison of a model's training epochs, from `deno task train --json`
 * outputs kept in `results/efficiency/`: seconds per training epoch, tokens per epoch (padding
 * included), tokens per second and peak storage, one row per layout.
 *
 * @module
 */
import { join } from "node:path";
import { type RichTable, richTable } from "../viz/mod.ts";
import { requireProjectRoot } from "./code_version.ts";

/** One measured layout: its label and the `--json` output file under `results/efficiency/`. */
export interface EfficiencyRun {
  /** Row label, e.g. "packed whole histories". */
  readonly label: string;
  /** File name under `results/efficiency/`. */
  readonly file: string;
}

/** One row of {@link efficiencyTable}. */
export interface EfficiencyRow {
  /** The layout's label. */
  readonly layout: string;
  /** The adapter the epochs ran on. */
  readonly adapter: string;
  /** Mean training seconds of the epochs after the first (which compiles the kernels). */
  readonly secondsPerEpoch: number;
  /** Tokens one epoch runs through the model, padding included. */
  readonly tokensPerEpoch: number;
  /** Mean tokens per second of the epochs after the first. */
  readonly tokensPerSecond: number;
  /** The most storage the runtime held during any epoch, bytes. */
  readonly peakBytes: number;
}

interface EpochFigures {
  trainSeconds: number;
  tokens: number;
  tokensPerSecond: number;
  peakLiveBytes: number;
}

/**
 * Reads each run's epochs and summarises them (see {@link EfficiencyRow}). Throws naming the file
 * when one is missing or has fewer than two epochs.
 */
export async function efficiencyRows(
  runs: readonly EfficiencyRun[],
  root: string = requireProjectRoot(),
): Promise<EfficiencyRow[]> {
  const rows: EfficiencyRow[] = [];
  for (const run of runs) {
    const path = join(root, "results", "efficiency", run.file);
    const output = JSON.parse(await Deno.readTextFile(path));
    const epochs: EpochFigures[] = output.history ?? [];
    if (epochs.length < 2) {
      throw new Error(
        `${path}: ${epochs.length} epochs; an efficiency run needs at least two (the first ` +
          "compiles the kernels and is left out); train it again with --epochs 3 --json",
      );
    }
    const later = epochs.slice(1);
    const mean = (f: (e: EpochFigures) => number) =>
      later.reduce((sum, e) => sum + f(e), 0) / later.length;
    rows.push({
      layout: run.label,
      adapter: String(output.adapter),
      secondsPerEpoch: mean((e) => e.trainSeconds),
      tokensPerEpoch: epochs[0].tokens,
      tokensPerSecond: mean((e) => e.tokensPerSecond),
      peakBytes: Math.max(...epochs.map((e) => e.peakLiveBytes)),
    });
  }
  return rows;
}

/** {@link efficiencyRows} as a table for a notebook, with the ratio of each row to the first. */
export async function efficiencyTable(
  caption: string,
  runs: readonly EfficiencyRun[],
  root?: string,
): Promise<RichTable> {
  const rows = await efficiencyRows(runs, root);
  const base = rows[0];
  return richTable(
    rows.map((r) => ({
      layout: r.layout,
      adapter: r.adapter,
      "s / training epoch": Math.round(r.secondsPerEpoch * 100) / 100,
      "× time": Math.round((r.secondsPerEpoch / base.secondsPerEpoch) * 100) / 100,
      "tokens / epoch": r.tokensPerEpoch,
      "tokens / s": Math.round(r.tokensPerSecond),
      "peak storage (MB)": Math.round(r.peakBytes / 1e6),
      "× storage": Math.round((r.peakBytes / base.peakBytes) * 100) / 100,
    })),
    { caption },
  );
}
