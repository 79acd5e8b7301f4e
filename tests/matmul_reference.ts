/**
 * Float64 reference of the matrix product and of its gradients, written from the definition
 * `C[z, i, j] = Σ_k op(A)[z, i, k] · op(B)[z, k, j] + bias[j]`, one index at a time.
 */

/** The operand layouts of one product, as `matmul` takes them. */
export interface ProductSpec {
  /** Shape of `a`: `[...batch, M, K]`, or `[...batch, K, M]` with `transA`. */
  aShape: number[];
  /** Shape of `b`: `[...batch, K, N]`, or `[...batch, N, K]` with `transB`; may be 2-D (shared). */
  bShape: number[];
  /** `a` holds the transpose. */
  transA: boolean;
  /** `b` holds the transpose. */
  transB: boolean;
}

/** Stored shapes for op(A): M × K and op(B): K × N, with optional leading batch dimensions. */
export function productSpec(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatch: number[] = [],
  bBatch: number[] = aBatch,
): ProductSpec {
  return {
    aShape: [...aBatch, ...(transA ? [k, m] : [m, k])],
    bShape: [...bBatch, ...(transB ? [n, k] : [k, n])],
    transA,
    transB,
  };
}

/** The sizes a spec implies. */
export interface ProductDims {
  batch: number;
  m: number;
  n: number;
  k: number;
  /** Output shape. */
  outShape: number[];
  /** Offset of element (z, i, kk) of op(A) in `a`. */
  aIndex: (z: number, i: number, kk: number) => number;
  /** Offset of element (z, kk, j) of op(B) in `b`. */
  bIndex: (z: number, kk: number, j: number) => number;
}

/** Sizes and index maps of a product. */
export function productDims(s: ProductSpec): ProductDims {
  const aBatch = s.aShape.slice(0, -2), bBatch = s.bShape.slice(0, -2);
  const [ar, ac] = s.aShape.slice(-2), [br, bc] = s.bShape.slice(-2);
  const m = s.transA ? ac : ar, k = s.transA ? ar : ac, n = s.transB ? br : bc;
  const batchShape = aBatch.length > 0 ? aBatch : bBatch;
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const aStride = aBatch.length > 0 ? ar * ac : 0, bStride = bBatch.length > 0 ? br * bc : 0;
  return {
    batch,
    m,
    n,
    k,
    outShape: [...batchShape, m, n],
    aIndex: (z, i, kk) => z * aStride + (s.transA ? kk * m + i : i * k + kk),
    bIndex: (z, kk, j) => z * bStride + (s.transB ? j * k + kk : kk * n + j),
  };
}

/** Forward: the product plus an optional bias. */
export function matmulRef(
  s: ProductSpec,
  a: Float64Array,
  b: Float64Array,
  bias?: Float64Array,
): Float64Array {
  const d = productDims(s);
  const out = new Float64Array(d.batch * d.m * d.n);
  for (let z = 0; z < d.batch; z++) {
    for (let i = 0; i < d.m; i++) {
      for (let j = 0; j < d.n; j++) {
        let acc = bias ? bias[j] : 0;
        for (let kk = 0; kk < d.k; kk++) acc += a[d.aIndex(z, i, kk)] * b[d.bIndex(z, kk, j)];
        out[(z * d.m + i) * d.n + j] = acc;
      }
    }
  }
  return out;
}

/** Gradients of `Σ g ⊙ C` with respect to `a`, `b` and the bias, by the chain rule per term. */
export function matmulGradRef(
  s: ProductSpec,
  a: Float64Array,
  b: Float64Array,
  g: Float64Array,
): { da: Float64Array; db: Float64Array; dbias: Float64Array } {
  const d = productDims(s);
  const da = new Float64Array(a.length), db = new Float64Array(b.length);
  const dbias = new Float64Array(d.n);
  for (let z = 0; z < d.batch; z++) {
    for (let i = 0; i < d.m; i++) {
      for (let j = 0; j < d.n; j++) {
        const gij = g[(z * d.m + i) * d.n + j];
        dbias[j] += gij;
        for (let kk = 0; kk < d.k; kk++) {
          const ai = d.aIndex(z, i, kk), bi = d.bIndex(z, kk, j);
          da[ai] += gij * b[bi];
          db[bi] += gij * a[ai];
        }
      }
    }
  }
  return { da, db, dbias };
}
