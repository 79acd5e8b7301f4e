/**
 * Softmax cross-entropy over all classes, as `nn.CrossEntropyLoss()` (mean over the batch), and
 * the recommenders' item loss: the cross-entropy of `h · Eᵀ` over every item of the (tied)
 * embedding table, PAD included.
 *
 * The forward runs one workgroup per row; each invocation keeps a running (max, Σ exp(x − max))
 * pair over its strided columns (an online log-sum-exp, so the row is read once and nothing
 * overflows), the pairs are merged by a tree in workgroup memory, and the row's loss is
 * `log Σ exp − x[target]`. The batch mean is a deterministic tree reduction; the loss stays on the
 * GPU. The backward writes `(softmax − onehot) · dLoss / B` in one elementwise pass (kernels in
 * `cross_entropy_kernels.ts`). The item loss computes logits too large for one storage binding
 * (or for `maxLogitBytes`) in slabs of rows instead (`item_cross_entropy_slabs.ts`).
 *
 * Performance floor (H200, ~4.3 TB/s): the forward reads the B × V logits once and the backward
 * reads them and writes their gradient: B = 2048, V = 20,000 is 164 MB → ~38 µs forward and
 * ~76 µs backward. (The product h · Eᵀ itself, 2·B·V·D FLOPs, is the matmul's.)
 *
 * With `ignoreIndex`, rows whose target is that id are left out of the loss and of the mean, as
 * PyTorch's `ignore_index`. Any other target outside [0, V) makes its row's loss and gradient NaN,
 * so the mean loss is NaN and the error is visible in the first loss a trainer reads back.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import type { Tensor } from "../core/tensor.ts";
import { matmul } from "../dense/matmul/mod.ts";
import {
  emptyRowLosses,
  launchLogitGradient,
  launchMean,
  launchRowLosses,
} from "./cross_entropy_kernels.ts";
import { itemCrossEntropySlabs, logitSlabRows } from "./item_cross_entropy_slabs.ts";

/** Options of {@link crossEntropy} and {@link itemCrossEntropy}. */
export interface CrossEntropyOptions {
  /**
   * Rows whose target equals this id add nothing, and the mean is over the other rows (PyTorch's
   * `ignore_index`); e.g. 0 for the padded positions of all-positions training.
   */
  readonly ignoreIndex?: number;
  /**
   * {@link itemCrossEntropy} only: the most bytes of logits held at once. Larger `[B, V]` logits
   * are computed in slabs of rows within it (see `item_cross_entropy_slabs.ts`), forward and
   * backward, which hold one slab of logits and one of their gradient at a time. Default: the
   * device's storage binding limit, so that logits that fit one binding are made whole as
   * before.
   */
  readonly maxLogitBytes?: number;
}

function checkTargets(op: string, rows: number, what: string, targets: Tensor): void {
  assertDType(op, targets, "i32");
  if (targets.shape.length !== 1 || targets.shape[0] !== rows) {
    throw new RangeError(
      `${op}: targets have shape [${targets.shape.join(", ")}] but ${what}; expected [${rows}]`,
    );
  }
}

function crossEntropyOf(
  op: string,
  logits: Tensor,
  targets: Tensor,
  owned: boolean,
  ignoreIndex: number | undefined,
): Tensor {
  const perRow = emptyRowLosses(op, logits.shape[0]);
  launchRowLosses(op, logits, targets, 0, perRow, ignoreIndex);
  const { loss, stats } = launchMean(op, perRow);
  const lse = perRow.lse;
  const saved = owned ? [lse, stats, logits] : [lse, stats];
  return record(
    loss,
    op,
    [logits],
    (dloss) => [launchLogitGradient(op, logits, targets, 0, lse, dloss, stats, ignoreIndex)],
    saved,
  );
}

/**
 * Mean softmax cross-entropy of `logits` against class ids, as `nn.CrossEntropyLoss()`:
 * `mean_b (log Σ_v exp(logits[b, v]) − logits[b, targets[b]])`, over all V classes. Recorded on
 * the tape for `logits`. The loss is a `[]` tensor on the GPU (read it back with the other
 * metrics of a step). Targets outside [0, V) give NaN unless they equal `options.ignoreIndex`.
 * @param logits `[B, V]`
 * @param targets i32 `[B]` class ids
 * @returns the mean loss, shape `[]`
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  const op = "crossEntropy";
  assertDType(op, logits, "f32");
  if (logits.shape.length !== 2 || logits.shape[0] === 0 || logits.shape[1] === 0) {
    throw new RangeError(`${op}: logits must be a non-empty [B, V], got ${logits.describe()}`);
  }
  checkTargets(op, logits.shape[0], `logits are [${logits.shape.join(", ")}]`, targets);
  return crossEntropyOf(op, logits, targets, false, options.ignoreIndex);
}

/**
 * The item loss of the sequential recommenders: `crossEntropy(h · tableᵀ, targets)`, the softmax
 * cross-entropy of the representations against every row of the (tied) item embedding table,
 * PAD row included, as RecBole's CE loss. Gradients flow to `h` and `table` (adding to the
 * table's lookup gradient when it is tied). The `[B, V]` logits are freed after the backward;
 * when they would take more than `options.maxLogitBytes` (by default the device's storage
 * binding limit) they are never made whole: the loss is computed in slabs of rows, forward and
 * backward (`item_cross_entropy_slabs.ts`), equal to the whole-logits loss to rounding.
 * @param h representations `[B, D]`
 * @param table item embeddings `[V, D]`
 * @param targets i32 `[B]` target item ids
 * @returns the mean loss, shape `[]`
 */
export function itemCrossEntropy(
  h: Tensor,
  table: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  const op = "itemCrossEntropy";
  assertDType(op, h, "f32");
  assertDType(op, table, "f32");
  if (
    h.shape.length !== 2 || table.shape.length !== 2 || h.shape[1] !== table.shape[1] ||
    h.shape[0] === 0 || table.shape[0] === 0
  ) {
    throw new RangeError(
      `${op}: h must be [B, D] and table [V, D] with the same D, got h ` +
        `[${h.shape.join(", ")}] and table [${table.shape.join(", ")}]`,
    );
  }
  checkTargets(op, h.shape[0], `h is [${h.shape.join(", ")}]`, targets);
  const [rows, items] = [h.shape[0], table.shape[0]];
  const maxLogitBytes = options.maxLogitBytes ?? runtime().info.maxBindingBytes;
  if (!(maxLogitBytes > 0)) {
    throw new RangeError(`${op}: maxLogitBytes must be a positive number, got ${maxLogitBytes}`);
  }
  const slabRows = logitSlabRows(rows, items, maxLogitBytes);
  if (slabRows < rows) {
    return itemCrossEntropySlabs(op, h, table, targets, slabRows, options.ignoreIndex);
  }
  // The logits are owned by the loss: freed after its backward, or at once when not recorded.
  return crossEntropyOf(op, matmul(h, table, { transB: true }), targets, true, options.ignoreIndex);
}
