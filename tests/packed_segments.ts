/**
 * Test data for ops over packed segments: random per-token segment ids (`seqIdx`) whose segment
 * lengths cover the cases a chunked kernel must survive (segments of one token, a segment
 * starting exactly on a chunk boundary, a segment spanning several chunks), and helpers that read
 * the segments back.
 */

/** Options of {@link randomSeqIdx}. */
export interface RandomSeqIdxOptions {
  /**
   * Segments per row, clamped to [1, length] (default: one per
   * {@link DEFAULT_TOKENS_PER_SEGMENT} tokens).
   */
  segmentsPerRow?: number;
  /**
   * The kernel's chunk length: a segment then starts on a nonzero multiple of it and one spans
   * several chunks, where the row allows.
   */
  chunk?: number;
}

/** Average segment length of {@link randomSeqIdx} when no segment count is given. */
export const DEFAULT_TOKENS_PER_SEGMENT = 6;

/** A random integer in [lo, hi]. */
function between(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Picks a random element of a nonempty list. */
function pick(rng: () => number, xs: number[]): number {
  return xs[Math.floor(rng() * xs.length)];
}

/** Shuffles in place (Fisher–Yates). */
function shuffle<T>(rng: () => number, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/**
 * The positions in [1, length) where one row's segments start after the first: `cuts` of them,
 * with the special cases placed first (in random order) while the count allows.
 */
function rowCuts(rng: () => number, length: number, cuts: number, chunk?: number): number[] {
  const chosen = new Set<number>();
  // In most rows, a protected run (lo, hi) with no cut inside: one segment spanning several
  // chunks (the other rows leave the cuts free to fall anywhere).
  let lo = 0, hi = 0;
  const spansChunks = chunk !== undefined && chunk >= 1 && rng() < 0.75;
  if (spansChunks) {
    const span = Math.min(2 * chunk + between(rng, 1, chunk), length - cuts);
    if (span > chunk) {
      lo = between(rng, 0, length - span);
      hi = lo + span;
    }
  }
  const allowed = (c: number) => c >= 1 && c < length && !(c > lo && c < hi) && !chosen.has(c);
  const specials: (() => void)[] = [
    () => { // a segment starting on a nonzero multiple of the chunk
      if (chunk === undefined || chunk < 1) return;
      const at: number[] = [];
      for (let c = chunk; c < length; c += chunk) if (allowed(c)) at.push(c);
      if (at.length > 0) chosen.add(pick(rng, at));
    },
    () => { // a segment of one token: cuts at c and c + 1, or one cut at the row's start or end
      const single = (c: number) => c === 1 || c + 1 === length;
      const at: number[] = [];
      for (let c = 1; c < length; c++) {
        if (allowed(c) && (single(c) || (allowed(c + 1) && chosen.size + 2 <= cuts))) at.push(c);
      }
      if (at.length === 0) return;
      const c = pick(rng, at);
      chosen.add(c);
      if (!single(c)) chosen.add(c + 1);
    },
  ];
  for (const add of shuffle(rng, specials)) if (chosen.size < cuts) add();
  const rest: number[] = [];
  for (let c = 1; c < length; c++) if (allowed(c)) rest.push(c);
  shuffle(rng, rest);
  for (const c of rest) {
    if (chosen.size >= cuts) break;
    chosen.add(c);
  }
  return [...chosen].sort((a, b) => a - b);
}

/**
 * Random segment ids, (batch, length) row-major: non-decreasing within each row and starting at
 * 0 in each row, stepping by 1 or sometimes 2 (an op must only compare ids, never count them).
 * Each row has `segmentsPerRow` segments (clamped to [1, length]); segment lengths are drawn so
 * that segments of one token appear, and with `chunk`, a segment starting exactly on a nonzero
 * multiple of the chunk and (in most rows) a segment spanning several chunks, wherever the row's
 * length and segment count allow.
 *
 * @param rng seeded uniform generator (see `makeRng`)
 * @param batch rows
 * @param length tokens per row
 * @param opts segment count and chunk length
 * @returns the ids as an Int32Array of batch·length values
 */
export function randomSeqIdx(
  rng: () => number,
  batch: number,
  length: number,
  opts: RandomSeqIdxOptions = {},
): Int32Array {
  const out = new Int32Array(batch * length);
  if (length === 0) return out;
  const wanted = opts.segmentsPerRow ?? Math.round(length / DEFAULT_TOKENS_PER_SEGMENT);
  const segments = Math.max(1, Math.min(length, Math.round(wanted)));
  for (let b = 0; b < batch; b++) {
    const cuts = rowCuts(rng, length, segments - 1, opts.chunk);
    let id = 0, next = 0;
    for (let t = 0; t < length; t++) {
      if (t === cuts[next]) {
        id += rng() < 0.8 ? 1 : 2;
        next++;
      }
      out[b * length + t] = id;
    }
  }
  return out;
}

/**
 * The lengths of the segments (maximal runs of equal id within a row) of a (batch, length)
 * segment-id array, in order, row by row.
 *
 * @param seqIdx segment ids, (batch, length)
 * @param batch rows
 * @param length tokens per row
 * @returns one length per segment; they sum to batch·length
 */
export function segmentLengths(seqIdx: ArrayLike<number>, batch: number, length: number): number[] {
  const lengths: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      const i = b * length + t;
      if (t === 0 || seqIdx[i] !== seqIdx[i - 1]) lengths.push(1);
      else lengths[lengths.length - 1]++;
    }
  }
  return lengths;
}

/**
 * Each segment's first position within its row, in segment order (row by row), for a
 * (batch, length) segment-id array.
 *
 * @param seqIdx segment ids, (batch, length)
 * @param batch rows
 * @param length tokens per row
 * @returns the row position t of every segment's first token
 */
export function segmentRowStarts(
  seqIdx: ArrayLike<number>,
  batch: number,
  length: number,
): number[] {
  const starts: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      const i = b * length + t;
      if (t === 0 || seqIdx[i] !== seqIdx[i - 1]) starts.push(t);
    }
  }
  return starts;
}
