/**
 * How the run layer's tables round their numbers, and the median its timings report.
 *
 * @module
 */

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `value` rounded to `decimals` decimals. */
export function rounded(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

/**
 * `value` to three significant digits: a number down to 0.01, below that text (the tables show
 * at most four decimals of a number).
 */
export function significant(value: number): number | string {
  return Math.abs(value) >= 0.01 || value === 0
    ? Number(value.toPrecision(3))
    : value.toPrecision(3);
}
