/** Float64 references of target ranks and RecBole's single-target top-K metrics. */

/** `1 + #{j : s_j > s_target}` with column 0 scored −∞ when excluded; 0 for a bad target. */
export function targetRanksRef(
  scores: Float32Array,
  targets: Int32Array,
  cols: number,
  excludeColumn0 = true,
): Int32Array {
  return targets.map((t, r) => {
    if (t < 0 || t >= cols) return 0;
    const s = (j: number) => (excludeColumn0 && j === 0 ? -Infinity : scores[r * cols + j]);
    const st = s(t);
    if (Number.isNaN(st)) return 0;
    let above = 0;
    for (let j = 0; j < cols; j++) if (s(j) > st) above++;
    return above + 1;
  });
}

/** Per cut-off, sums of [Hit, NDCG, MRR, Recall, Precision] over the ranks: `[ks.length · 5]`. */
export function rankingMetricsRef(ranks: Int32Array, ks: number[]): Float64Array {
  const out = new Float64Array(ks.length * 5);
  ks.forEach((k, c) => {
    for (const r of ranks) {
      if (r <= 0) {
        out.fill(NaN, c * 5, c * 5 + 5);
        break;
      }
      if (r > k) continue;
      out[c * 5] += 1;
      out[c * 5 + 1] += 1 / Math.log2(r + 1);
      out[c * 5 + 2] += 1 / r;
      out[c * 5 + 3] += 1;
      out[c * 5 + 4] += 1 / k;
    }
  });
  return out;
}
