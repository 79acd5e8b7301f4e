/**
 * Caser's vertical convolution, PyTorch's `Conv2d(1, nv, (L, 1))` over the `[L, E]` embedding
 * matrix of a window: each of the `nv` filters is a weighted sum of the L rows,
 * `out[b, f, e] = bias[f] + Σ_t W[f, t] · x[b, t, e]`, with no activation. That is a product of
 * the shared `[nv, L]` weight with every `[L, E]` window, so the op is composed of existing ones
 * (`matmul`, whose gradients it inherits; the bias spread over the E columns by a product with a
 * row of ones, exact) and needs no kernel of its own.
 *
 * @module
 */
import { assertDType } from "../../core/launch.ts";
import type { Tensor } from "../../core/tensor.ts";
import { fill } from "../../core/unrecorded.ts";
import { matmul } from "../../dense/matmul/mod.ts";
import { add, reshape } from "../../pointwise/elementwise.ts";

const OP = "caserVerticalConv";

/**
 * Caser's vertical convolution, recorded on the tape through the ops it is made of:
 * `out[b, f·E + e] = bias[f] + Σ_t weight[f, t] · x[b, t, e]` (RecBole's `conv_v` output viewed
 * as `[B, nv · E]`). `caserVerticalReference` computes the same in float64.
 * @param x the embedded windows `[B, L, E]`
 * @param weight `[nv, L]` (PyTorch's `[nv, 1, L, 1]` without its unit axes)
 * @param bias `[nv]`
 * @returns `[B, nv · E]`
 */
export function caserVerticalConv(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  for (const t of [x, weight, bias]) assertDType(OP, t, "f32");
  const got = `x ${x.describe()}, weight ${weight.describe()}, bias ${bias.describe()}`;
  if (x.shape.length !== 3 || x.size === 0) {
    throw new RangeError(`${OP}: x must be a non-empty [batch, L, E] tensor; got ${got}`);
  }
  const [batch, length, dim] = x.shape;
  const filters = weight.shape[0];
  if (weight.shape.length !== 2 || weight.shape[1] !== length || filters === 0) {
    throw new RangeError(`${OP}: weight must be [nv, L ${length}]; got ${got}`);
  }
  if (bias.shape.length !== 1 || bias.shape[0] !== filters) {
    throw new RangeError(`${OP}: bias must be [nv ${filters}]; got ${got}`);
  }
  const mixed = matmul(weight, x); // [B, nv, E]
  const spread = matmul(reshape(bias, [filters, 1]), fill([1, dim], 1)); // [nv, E]
  return reshape(add(mixed, spread), [batch, filters * dim]);
}
