/**
 * The item loss `crossEntropy(h · tableᵀ, targets)` computed slab by slab, for batches whose
 * `[N, V]` logits are too large to hold at once (all-positions training: N = B × L rows).
 *
 * The rows are cut into slabs of R rows, each slab's `[R, V]` logits at most `maxLogitBytes`.
 * The forward makes each slab's logits, writes its rows' losses and log-sum-exps, and frees
 * them; the mean over all rows is the whole-logits op's. The backward makes each slab's logits
 * again, turns them into their gradient, and adds the slab's share to `dh` (its rows) and to
 * `dtable` (a sum over the slabs). So at most one slab of logits and one of their gradient live
 * at once, at the price of a second `h · tableᵀ` product in the backward. The losses, the mean
 * and each logit's gradient are the whole-logits op's to rounding (the products of a slab may
 * tile differently, and `dtable` sums its slabs in order).
 *
 * @module
 */
import { noGrad, record } from "../core/autograd.ts";
import { Tensor } from "../core/tensor.ts";
import { accumulateInto, sliceRows, writeAt } from "../core/unrecorded.ts";
import { matmul } from "../dense/matmul/mod.ts";
import {
  emptyRowLosses,
  launchLogitGradient,
  launchMean,
  launchRowLosses,
} from "./cross_entropy_kernels.ts";

/**
 * Rows per slab of `[rows, items]` f32 logits within `maxLogitBytes` (at least one row, at most
 * `rows`).
 * @param rows the loss's rows N
 * @param items the item table's rows V
 * @param maxLogitBytes the most bytes one slab of logits may take
 */
export function logitSlabRows(rows: number, items: number, maxLogitBytes: number): number {
  return Math.max(1, Math.min(rows, Math.floor(maxLogitBytes / (items * 4))));
}

/** The slabs `[row0, row0 + count)` covering `rows` rows, `slabRows` each (the last ragged). */
function slabsOf(rows: number, slabRows: number): { row0: number; count: number }[] {
  const slabs = [];
  for (let row0 = 0; row0 < rows; row0 += slabRows) {
    slabs.push({ row0, count: Math.min(slabRows, rows - row0) });
  }
  return slabs;
}

/**
 * The mean item loss of `h` `[N, D]` against `table` `[V, D]` in slabs of `slabRows` rows,
 * recorded on the tape for `h` and `table` (shapes and dtypes checked by the caller).
 * @param op op name for errors and kernel labels
 * @param h representations `[N, D]`
 * @param table item embeddings `[V, D]`
 * @param targets i32 `[N]` target ids
 * @param slabRows rows per slab (see {@link logitSlabRows})
 * @param ignoreIndex rows with this target are left out of the loss and of the mean
 * @returns the mean loss, shape `[]`
 */
export function itemCrossEntropySlabs(
  op: string,
  h: Tensor,
  table: Tensor,
  targets: Tensor,
  slabRows: number,
  ignoreIndex: number | undefined,
): Tensor {
  const rows = h.shape[0];
  const slabs = slabsOf(rows, slabRows);
  // The slab's rows of h (h itself when one slab covers them) and its logits, not recorded.
  const slabLogits = (row0: number, count: number) => {
    const hs = slabs.length === 1 ? h : sliceRows(h, row0, count);
    const logits = noGrad(() => matmul(hs, table, { transB: true }));
    return { hs, logits };
  };
  const perRow = emptyRowLosses(op, rows);
  for (const { row0, count } of slabs) {
    const { hs, logits } = slabLogits(row0, count);
    launchRowLosses(op, logits, targets, row0, perRow, ignoreIndex);
    logits.dispose();
    if (hs !== h) hs.dispose();
  }
  const { loss, stats } = launchMean(op, perRow);
  const lse = perRow.lse;
  return record(loss, op, [h, table], (dloss) => {
    const dh = h.requiresGrad ? Tensor.empty(h.shape, "f32", `${op} backward`) : null;
    let dtable: Tensor | null = null;
    for (const { row0, count } of slabs) {
      const { hs, logits } = slabLogits(row0, count);
      const dlogits = launchLogitGradient(
        op,
        logits,
        targets,
        row0,
        lse,
        dloss,
        stats,
        ignoreIndex,
      );
      logits.dispose();
      noGrad(() => {
        if (dh) {
          const dhs = matmul(dlogits, table);
          writeAt(dh, dhs, row0 * h.shape[1]);
          dhs.dispose();
        }
        if (table.requiresGrad) {
          const part = matmul(dlogits, hs, { transA: true });
          if (dtable) {
            accumulateInto(dtable, part);
            part.dispose();
          } else dtable = part;
        }
      });
      dlogits.dispose();
      if (hs !== h) hs.dispose();
    }
    return [dh, dtable];
  }, [lse, stats]);
}
