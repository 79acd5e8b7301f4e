/**
 * Encodes one family of matrix products (a forward product or one of its gradients) as kernel
 * launches, with no tape record.
 *
 * Few output tiles over a long reduction (a weight gradient `Aᵀ·dC` with K = batch × length)
 * would leave most of the GPU idle, so K is split across workgroups (split-K): each writes its
 * partial tile to a scratch buffer and a second, deterministic pass sums the partials in a fixed
 * order (no float atomics). A gradient summed over a batch of products (a weight shared by every
 * batch) is folded into the same machinery: the batch becomes part of the reduction, either by
 * flattening it into K when the memory layout allows or by iterating over it inside the kernel.
 *
 * @module
 */
import { grid, launch, packParams } from "../../core/launch.ts";
import { runtime } from "../../core/runtime.ts";
import { Tensor } from "../../core/tensor.ts";
import { foldWorkgroups, MAX_WORKGROUPS_PER_DIMENSION } from "../../wgsl/grid.ts";
import { checkTiles, type MatmulTiles, planMatmul, tileBytes } from "./plan.ts";
import { type KernelKey, matmulShader, SPLIT_REDUCE_WG, splitReduceShader } from "./shader.ts";

/** A matrix operand: `batch` stored `rows × cols` matrices (one, shared, when batch is 1). */
export interface Operand {
  /** The stored tensor. */
  t: Tensor;
  /** Matrices stored (1: one matrix shared by every batch). */
  batch: number;
  /** Rows of each stored matrix. */
  rows: number;
  /** Columns of each stored matrix. */
  cols: number;
  /** The product uses the transpose of the stored matrices. */
  trans: boolean;
}

/** What a product adds to its sums before storing them, and what it applies last. */
export interface ProductEpilogue {
  /** A `[N]` vector added to every row. */
  readonly bias?: Tensor;
  /** A tensor of the output's shape added after the bias. */
  readonly addend?: Tensor;
  /** GELU applied last. */
  readonly gelu?: boolean;
}

/**
 * Encodes `out = act(Σ op(X)·op(Y) + bias + addend)` for one product family: per batch index, or
 * summed over the batch when `sumBatch` (the gradient of an operand shared by every batch), with
 * the epilogue's parts where given. Not recorded.
 */
export function product(
  op: string,
  x: Operand,
  y: Operand,
  sumBatch: boolean,
  outShape: readonly number[],
  epilogue: ProductEpilogue = {},
  tiles?: MatmulTiles,
): Tensor {
  const { bias, addend } = epilogue;
  const flags = { bias: bias !== undefined, addend: addend !== undefined, gelu: !!epilogue.gelu };
  const m = x.trans ? x.cols : x.rows, k = x.trans ? x.rows : x.cols;
  const n = y.trans ? y.rows : y.cols;
  const batch = Math.max(x.batch, y.batch);
  let M = m, K = k, outBatch = batch, innerBatch = 1;
  let strideA = x.batch > 1 ? x.rows * x.cols : 0, strideB = y.batch > 1 ? y.rows * y.cols : 0;
  if (batch > 1 && !sumBatch && x.batch > 1 && y.batch === 1 && !x.trans) {
    // [batch, m, k] rows times a shared matrix: one product with batch·m rows.
    M = batch * m;
    outBatch = 1;
    strideA = 0;
  } else if (batch > 1 && sumBatch && x.batch > 1 && y.batch > 1 && x.trans && !y.trans) {
    // Σ_b X_bᵀ Y_b with X, Y stored [batch, k, ·]: one product whose reduction runs over batch·k.
    K = batch * k;
    outBatch = 1;
    strideA = strideB = 0;
  } else if (sumBatch) {
    outBatch = 1;
    innerBatch = batch;
  }
  const out = Tensor.empty(outShape, "f32", op);
  if (out.size === 0) return out;
  const plan = planMatmul(M, n, K, outBatch, innerBatch, tiles);
  const t = plan.tiles;
  checkTiles(op, t);
  const tilesM = Math.ceil(M / t.bm), tilesN = Math.ceil(n / t.bn);
  const kTiles = Math.ceil(K / t.bk);
  const steps = innerBatch * kTiles;
  const rt = runtime();
  let splits = plan.splits;
  splits = Math.max(1, Math.min(splits, steps));
  const stepsPerSplit = Math.ceil(steps / splits);
  splits = Math.max(1, Math.ceil(steps / stepsPerSplit));
  const gz = outBatch * splits;
  if (gz > MAX_WORKGROUPS_PER_DIMENSION) {
    throw new RangeError(
      `${op}: ${outBatch} products × ${splits} reduction splits exceed ` +
        `${MAX_WORKGROUPS_PER_DIMENSION} workgroup layers; multiply fewer matrices per call`,
    );
  }
  const key: KernelKey = {
    tiles: { bm: t.bm, bn: t.bn, bk: t.bk, tm: t.tm, tn: t.tn },
    transA: x.trans,
    transB: y.trans,
    vecA: (x.trans ? M : K) % 4 === 0,
    vecB: (y.trans ? K : n) % 4 === 0,
    vecC: n % 4 === 0,
    fullM: M % t.bm === 0,
    fullN: n % t.bn === 0,
    fullK: K % t.bk === 0,
    // Without split-K the product kernel applies the epilogue; with it, the sum of the partials.
    bias: flags.bias && splits === 1,
    addend: flags.addend && splits === 1,
    gelu: flags.gelu && splits === 1,
    // Slices stored transposed get padded rows, unless that no longer fits in workgroup memory.
    padA: x.trans ? 0 : 4,
    padB: y.trans ? 4 : 0,
  };
  if (tileBytes(key.tiles, key.padA, key.padB) > rt.info.maxWorkgroupBytes) {
    key.padA = key.padB = 0;
  }
  const [gx, gy] = foldWorkgroups(tilesM * tilesN);
  const params = packParams([
    M,
    n,
    K,
    kTiles,
    steps,
    stepsPerSplit,
    splits,
    innerBatch,
    strideA,
    strideB,
    tilesM,
    tilesN,
    gx,
  ]);
  const target = splits === 1 ? out : Tensor.empty([gz, M, n], "f32", `${op} split-K partials`);
  const extra = [...(bias ? [bias] : []), ...(addend ? [addend] : [])];
  const inputs = splits === 1 ? [x.t, y.t, ...extra, target] : [x.t, y.t, target];
  launch(op, matmulShader(key), params, inputs, [gx, gy, gz]);
  if (splits > 1) {
    const total = outBatch * M * n;
    const g = grid(total, SPLIT_REDUCE_WG);
    launch(
      `${op} split-K sum`,
      splitReduceShader(flags),
      packParams([total, M * n, n, splits, g.stride]),
      [target, ...extra, out],
      g.groups,
    );
    target.dispose();
  }
  return out;
}
