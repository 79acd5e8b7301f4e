/** Float64 reference of the embedding lookup and its gradient. */

/** `out[t, :] = table[ids[t], :]`; out-of-range ids give zero rows. */
export function embeddingRef(ids: Int32Array, table: Float64Array, dim: number): Float64Array {
  const rows = table.length / dim;
  const out = new Float64Array(ids.length * dim);
  ids.forEach((id, t) => {
    if (id < 0 || id >= rows) return;
    for (let c = 0; c < dim; c++) out[t * dim + c] = table[id * dim + c];
  });
  return out;
}

/** The table's gradient of Σ g ⊙ embedding(ids): rows summed per id, none for `paddingIdx`. */
export function embeddingGradRef(
  ids: Int32Array,
  rows: number,
  dim: number,
  g: Float64Array,
  paddingIdx = -1,
): Float64Array {
  const grad = new Float64Array(rows * dim);
  ids.forEach((id, t) => {
    if (id < 0 || id >= rows || id === paddingIdx) return;
    for (let c = 0; c < dim; c++) grad[id * dim + c] += g[t * dim + c];
  });
  return grad;
}
