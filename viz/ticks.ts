/**
 * Axis ticks: nice linear steps, log decades, and short tick labels.
 *
 * @module
 */

/** A tick label: short, without floating-point noise, with k/M suffixes for large values. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  const clean = (x: number) => String(Number.parseFloat(x.toPrecision(6)));
  if (a >= 1e9) return `${clean(v / 1e9)}G`;
  if (a >= 1e6) return `${clean(v / 1e6)}M`;
  if (a >= 1e4) return `${clean(v / 1e3)}k`;
  return clean(v);
}

/** Ticks at 1, 2 or 5 × 10^k steps covering [lo, hi], about `count` of them. */
export function linearTicks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const base = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * base).find((s) => s >= raw) ?? 10 * base;
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) {
    ticks.push(k === 0 ? 0 : Number.parseFloat((k * step).toPrecision(12)));
  }
  return ticks;
}

/** Ticks for a log axis over [lo, hi] (data units): powers of ten, with 2 and 5 when few decades. */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const multipliers = b - a <= 2 ? [1, 2, 5] : b - a <= 4 ? [1, 3] : [1];
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) {
    for (const m of multipliers) {
      const t = m * 10 ** e;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(t);
    }
  }
  return ticks;
}
