/** Float64 references of softmax cross-entropy and of the item loss h · Eᵀ. */

function logSumExp(x: Float64Array, base: number, cols: number): number {
  let m = -Infinity;
  for (let c = 0; c < cols; c++) m = Math.max(m, x[base + c]);
  let s = 0;
  for (let c = 0; c < cols; c++) s += Math.exp(x[base + c] - m);
  return m + Math.log(s);
}

/** Mean over rows of `logsumexp(row) − row[target]`, as a one-element array. */
export function crossEntropyRef(
  logits: Float64Array,
  targets: Int32Array,
  cols: number,
): Float64Array {
  let total = 0;
  targets.forEach((t, r) => (total += logSumExp(logits, r * cols, cols) - logits[r * cols + t]));
  return Float64Array.of(total / targets.length);
}

/** Gradient of `gOut · crossEntropy` with respect to the logits: (softmax − onehot) · gOut / B. */
export function crossEntropyGradRef(
  logits: Float64Array,
  targets: Int32Array,
  cols: number,
  gOut: number,
): Float64Array {
  const g = new Float64Array(logits.length);
  const rows = targets.length;
  targets.forEach((t, r) => {
    const l = logSumExp(logits, r * cols, cols);
    for (let c = 0; c < cols; c++) {
      g[r * cols + c] = (Math.exp(logits[r * cols + c] - l) - (c === t ? 1 : 0)) * gOut / rows;
    }
  });
  return g;
}

/** `a · bᵀ` for row-major `a: [m, k]`, `b: [n, k]`. */
export function matmulTransBRef(a: Float64Array, b: Float64Array, k: number): Float64Array {
  const m = a.length / k, n = b.length / k;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a[i * k + q] * b[j * k + q];
      out[i * n + j] = s;
    }
  }
  return out;
}

/** Gradients of `gOut · crossEntropy(h · Eᵀ)` with respect to h `[B, D]` and E `[V, D]`. */
export function itemCrossEntropyGradRef(
  h: Float64Array,
  table: Float64Array,
  targets: Int32Array,
  dim: number,
  gOut: number,
): [Float64Array, Float64Array] {
  const rows = table.length / dim;
  const dl = crossEntropyGradRef(matmulTransBRef(h, table, dim), targets, rows, gOut);
  const dh = new Float64Array(h.length);
  const dt = new Float64Array(table.length);
  for (let b = 0; b < targets.length; b++) {
    for (let v = 0; v < rows; v++) {
      const g = dl[b * rows + v];
      for (let d = 0; d < dim; d++) {
        dh[b * dim + d] += g * table[v * dim + d];
        dt[v * dim + d] += g * h[b * dim + d];
      }
    }
  }
  return [dh, dt];
}
