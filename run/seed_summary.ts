/**
 * A metric over several seeds: the mean and the sample standard deviation, and how the tables
 * print them (`0.2474 ± 0.0031`), with the relative difference to a paper's value.
 *
 * @module
 */

/** A metric's values over seeds, summarised. */
export interface SeedSummary {
  /** Mean over the seeds. */
  readonly mean: number;
  /** Sample standard deviation (n − 1 in the denominator); `undefined` for one seed. */
  readonly std: number | undefined;
  /** Number of seeds. */
  readonly n: number;
}

/** The mean and sample standard deviation of `values`; `undefined` for none. */
export function summarizeSeeds(values: readonly number[]): SeedSummary | undefined {
  const n = values.length;
  if (n === 0) return undefined;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return { mean, std: undefined, n };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

/** Decimals the tables print (RecBole rounds metrics to 4). */
export const METRIC_DECIMALS = 4;

/** `0.2474 ± 0.0031`, or `0.2474` for one seed, or `—` for none. */
export function formatSeedSummary(summary: SeedSummary | undefined): string {
  if (summary === undefined) return "—";
  const mean = summary.mean.toFixed(METRIC_DECIMALS);
  return summary.std === undefined ? mean : `${mean} ± ${summary.std.toFixed(METRIC_DECIMALS)}`;
}

/** `-20.7%`: how far `ours` is from `paper`, relative to the paper's; `—` when either is missing. */
export function relativeDifference(ours: number | undefined, paper: number | undefined): string {
  if (ours === undefined || paper === undefined || paper === 0) return "—";
  const percent = 100 * (ours - paper) / paper;
  return `${percent > 0 ? "+" : ""}${percent.toFixed(1)}%`;
}
