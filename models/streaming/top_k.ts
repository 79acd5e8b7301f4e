/**
 * Picking each user's best items from a score table read back from the GPU: best first, ties to
 * the smaller id, PAD (item 0) never among them.
 *
 * @module
 */

/** Top-k recommendations of several users, row-major `[users, k]`. */
export interface Recommendations {
  /** Items per user. */
  readonly k: number;
  /** Item ids `[users × k]`, best first (ties: the smaller id first); never PAD (0). */
  readonly items: Int32Array;
  /** Their scores `h · e_item`, same layout. */
  readonly scores: Float32Array;
}

/**
 * The `k` best items of each row of a score table read back from the GPU, as
 * {@link Mamba4RecStream.recommend} picks them: best first, ties to the smaller id, PAD (item 0)
 * never among them.
 * @param scores `[users, numItems]`, row-major
 * @param users rows
 * @param k items per row, `1 … numItems − 1`
 */
export function topKRows(scores: Float32Array, users: number, k: number): Recommendations {
  const numItems = scores.length / users;
  if (!Number.isInteger(numItems) || !Number.isInteger(k) || k < 1 || k >= numItems) {
    throw new RangeError(
      `topKRows: ${scores.length} scores do not make ${users} rows of more than k = ${k} items`,
    );
  }
  const items = new Int32Array(users * k);
  const best = new Float32Array(users * k);
  for (let u = 0; u < users; u++) {
    topK(scores.subarray(u * numItems, (u + 1) * numItems), k, items, best, u * k);
  }
  return { k, items, scores: best };
}

/** Writes the k best of `row` (item 0, PAD, excluded) into `items`/`scores` at `at`. */
function topK(
  row: Float32Array,
  k: number,
  items: Int32Array,
  scores: Float32Array,
  at: number,
): void {
  let filled = 0;
  for (let id = 1; id < row.length; id++) {
    const s = row[id];
    // Strictly better than the current k-th (ids ascend, so an equal score keeps the older id).
    if (filled === k && !(s > scores[at + k - 1])) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && s > scores[at + j - 1]) {
      scores[at + j] = scores[at + j - 1];
      items[at + j] = items[at + j - 1];
      j--;
    }
    scores[at + j] = s;
    items[at + j] = id;
  }
}
