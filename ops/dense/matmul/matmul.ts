/**
 * Matrix products `C = act(op(A) · op(B) + bias + addend)` on batches of matrices, recorded on the
 * tape: the public op, its shape checks and its gradients, each gradient one more product.
 *
 * @module
 */
import { record, recordsGradient } from "../../core/autograd.ts";
import { assertDType } from "../../core/launch.ts";
import { sumLeading } from "../../pointwise/reduce.ts";
import type { Tensor } from "../../core/tensor.ts";
import type { MatmulTiles } from "./plan.ts";
import { type Operand, product } from "./product.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Multiply by the transpose of `a`, stored as `[..., K, M]`. */
  transA?: boolean;
  /** Multiply by the transpose of `b`, stored as `[..., N, K]` (PyTorch's Linear weight). */
  transB?: boolean;
  /** A `[N]` vector added to every row of the product. */
  bias?: Tensor;
  /**
   * A tensor of the result's shape added after the bias (a residual sum), in the product's
   * epilogue: the same values as `add(matmul(a, b, { bias }), addend)`, one kernel fewer.
   */
  addend?: Tensor;
  /**
   * `"gelu"`: the exact GELU of the elementwise op applied to the sum, in the epilogue. It has no
   * backward: refused where a gradient would be recorded (use `gelu(matmul(…))` there).
   */
  activation?: "gelu";
  /** Overrides the tile configuration of the forward product (benchmarks and tests). */
  tiles?: MatmulTiles;
}

/** A shape as text for error messages, e.g. `[2, 3]`. */
function shapeText(t: Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

/**
 * Matrix product `op(a) · op(b) (+ bias)`, recorded on the tape.
 *
 * `a` is `[...batch, M, K]` (`[...batch, K, M]` with `transA`); `b` is `[...batch, K, N]`
 * (`[...batch, N, K]` with `transB`) with the same batch dimensions, or either operand is a 2-D
 * matrix shared by every batch. The result is `[...batch, M, N]`; `bias` (`[N]`) is added to
 * every row, then `addend` (the result's shape), and `activation` is applied last. A Linear layer
 * `y = x Wᵀ + b` with PyTorch's `W: [out, in]` is `matmul(x, W, { transB: true, bias: b })`, for
 * `x` of shape `[in]`-suffixed `[B, L, in]` too.
 *
 * Gradients: `dA`, `dB` (summed over the batch for a shared operand, inside the product),
 * `dBias` (a column sum) and the addend's (the incoming gradient).
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const op = "matmul";
  const transA = options.transA ?? false, transB = options.transB ?? false;
  const bias = options.bias;
  assertDType(op, a, "f32");
  assertDType(op, b, "f32");
  if (bias) assertDType(op, bias, "f32");
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(
      `${op}: both operands need at least 2 dimensions, got a ${shapeText(a)} and b ${
        shapeText(b)
      }`,
    );
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar, K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  const flags = `${transA ? " transA" : ""}${transB ? " transB" : ""}`;
  if (K !== Kb) {
    throw new RangeError(
      `${op}: inner dimensions do not match: a ${shapeText(a)} gives K = ${K}, b ${shapeText(b)} ` +
        `gives K = ${Kb}${flags ? ` (with${flags})` : ""}`,
    );
  }
  if (
    aBatch.length > 0 && bBatch.length > 0 &&
    (aBatch.length !== bBatch.length || aBatch.some((d, i) => d !== bBatch[i]))
  ) {
    throw new RangeError(
      `${op}: batch dimensions do not match: a ${shapeText(a)} and b ${shapeText(b)} (b must ` +
        `have a's batch dimensions or be a 2-D matrix shared by every batch)`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== N)) {
    throw new RangeError(
      `${op}: bias ${shapeText(bias)} must have shape [${N}] for a ${shapeText(a)} · b ` +
        `${shapeText(b)}${flags}`,
    );
  }
  const batchShape = aBatch.length > 0 ? aBatch : bBatch;
  const outShape = [...batchShape, M, N];
  const addend = options.addend;
  if (addend) {
    assertDType(op, addend, "f32");
    if (addend.shape.length !== outShape.length || addend.shape.some((d, i) => d !== outShape[i])) {
      throw new RangeError(
        `${op}: addend ${shapeText(addend)} must have the result's shape [${
          outShape.join(", ")
        }] ` +
          `for a ${shapeText(a)} · b ${shapeText(b)}${flags}`,
      );
    }
  }
  const operands = [a, b, ...(bias ? [bias] : []), ...(addend ? [addend] : [])];
  if (options.activation !== undefined) {
    if (options.activation !== "gelu") {
      throw new RangeError(
        `${op}: activation must be "gelu", got ${JSON.stringify(options.activation)}`,
      );
    }
    if (recordsGradient(operands)) {
      throw new RangeError(
        `${op}: activation "gelu" has no backward, but a gradient is being recorded for an ` +
          "operand; use gelu(matmul(…)) when training, or run under noGrad",
      );
    }
  }
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const A: Operand = {
    t: a,
    batch: aBatch.length > 0 ? batch : 1,
    rows: ar,
    cols: ac,
    trans: transA,
  };
  const B: Operand = {
    t: b,
    batch: bBatch.length > 0 ? batch : 1,
    rows: br,
    cols: bc,
    trans: transB,
  };
  const epilogue = { bias, addend, gelu: options.activation === "gelu" };
  const out = product(op, A, B, false, outShape, epilogue, options.tiles);
  return record(out, op, operands, (g) => {
    const G: Operand = { t: g, batch, rows: M, cols: N, trans: false };
    const Gt: Operand = { ...G, trans: true };
    const sumA = A.batch === 1 && batch > 1, sumB = B.batch === 1 && batch > 1;
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) {
      // C = op(A)·op(B): d op(A) = dC·op(B)ᵀ; for a stored Aᵀ that is op(B)·dCᵀ.
      da = transA
        ? product("matmul backward dA", B, Gt, sumA, a.shape)
        : product("matmul backward dA", G, { ...B, trans: !transB }, sumA, a.shape);
    }
    if (b.requiresGrad) {
      // d op(B) = op(A)ᵀ·dC; for a stored Bᵀ that is dCᵀ·op(A).
      db = transB
        ? product("matmul backward dB", Gt, A, sumB, b.shape)
        : product("matmul backward dB", { ...A, trans: !transA }, G, sumB, b.shape);
    }
    const grads = [da, db];
    if (bias) grads.push(bias.requiresGrad ? sumLeading(g, [N]) : null);
    // The addend's gradient is the incoming one; the tape sums it into the addend's own.
    if (addend) grads.push(addend.requiresGrad ? g : null);
    return grads;
  });
}
