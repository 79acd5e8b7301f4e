/**
 * Caser's horizontal convolutions, every height in one op: for each height h = 1 … L, `nh`
 * filters of `h × E` slide over the `[L, E]` embedding matrix of a window (PyTorch's
 * `Conv2d(1, nh, (h, E))`, L − h + 1 positions), then ReLU and a max-pool over all positions
 * give one value per filter. The result is `[B, nh · L]`, height after height (RecBole's
 * `torch.cat(out_hs, 1)`).
 *
 * The forward (`horizontal_forward.ts`) sums tiles of filters × positions in registers and saves
 * each output's winning position; the backward (`horizontal_backward.ts`) reads those positions
 * and needs no atomics. Both are deterministic.
 *
 * @module
 */
import { record } from "../../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../../core/launch.ts";
import { Tensor } from "../../core/tensor.ts";
import { foldWorkgroups } from "../../wgsl/grid.ts";
import { type HorizontalFilterShape, packedFilterSize } from "./layout.ts";
import {
  DEFAULT_SCHEDULE,
  filterTile,
  forwardKernel,
  type ForwardSchedule,
  forwardWorkgroups,
  TRANSPOSE_WG,
  TRANSPOSE_X,
} from "./horizontal_forward.ts";
import { BACKWARD_PARAMETERS, BACKWARD_X } from "./horizontal_backward.ts";

const OP = "caserHorizontalConv";

/** Invocations per workgroup of the backward kernels. */
const BACKWARD_WG = 64;

/** The filter shape `x`, `weight` and `bias` describe; fails naming the shapes otherwise. */
function validate(x: Tensor, weight: Tensor, bias: Tensor): HorizontalFilterShape {
  for (const t of [x, weight, bias]) assertDType(OP, t, "f32");
  const got = `x ${x.describe()}, weight ${weight.describe()}, bias ${bias.describe()}`;
  if (x.shape.length !== 3 || x.size === 0) {
    throw new RangeError(`${OP}: x must be a non-empty [batch, L, E] tensor; got ${got}`);
  }
  const [, length, dim] = x.shape;
  if (bias.shape.length !== 2 || bias.shape[0] !== length || bias.shape[1] === 0) {
    throw new RangeError(
      `${OP}: bias must be [L ${length}, filters per height]; got ${got}`,
    );
  }
  const shape = { length, dim, filters: bias.shape[1] };
  const want = packedFilterSize(shape);
  if (weight.shape.length !== 1 || weight.size !== want) {
    throw new RangeError(
      `${OP}: weight must hold every height's filters packed, [nh · E · L(L + 1)/2] = [${want}] ` +
        `for L ${length}, E ${dim}, nh ${shape.filters}; got ${got}`,
    );
  }
  return shape;
}

/**
 * Caser's horizontal convolutions of every height with ReLU and max-over-time pooling, recorded
 * on the tape (gradients for `x`, `weight` and `bias`):
 *
 *     out[b, (h − 1)·nh + f] = max over t of ReLU(bias[h − 1, f]
 *         + Σ_{i < h, e < E} W_h[f, i, e] · x[b, t + i, e]),   t = 0 … L − h
 *
 * with `W_h` height h's block of the packed weights (see `layout.ts`). Of equal maxima the first
 * position takes the gradient. `caserHorizontalReference` computes the same in float64.
 * @param x the embedded windows `[B, L, E]`
 * @param weight every height's filters, packed: `[nh · E · L(L + 1)/2]`
 * @param bias `[L, nh]`, height h's biases at row h − 1
 * @returns `[B, nh · L]`
 */
export function caserHorizontalConv(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  return caserHorizontalConvScheduled(x, weight, bias, DEFAULT_SCHEDULE);
}

/**
 * {@link caserHorizontalConv} with the forward walking tiles of positions by `schedule`, for
 * benchmarks and tests: every schedule gives the same results.
 */
export function caserHorizontalConvScheduled(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  schedule: ForwardSchedule,
): Tensor {
  const shape = validate(x, weight, bias);
  const { length, dim, filters } = shape;
  const batch = x.shape[0];
  const out = Tensor.empty([batch, length * filters], "f32", OP);
  const winner = Tensor.empty([batch, length * filters], "i32", `${OP} winners`);
  const unit = dim % 4 === 0 ? 4 : 1;
  const words = (n: number, stride: number) => packParams([n, stride, batch, length, dim, filters]);
  const xt = Tensor.empty([length * dim, batch], "f32", `${OP} transposed x`);
  const tg = grid(x.size / unit, TRANSPOSE_WG);
  launch(`${OP} transpose`, TRANSPOSE_X[unit], words(x.size / unit, tg.stride), [x, xt], tg.groups);
  const workgroups = forwardWorkgroups(batch, length, filters);
  const folded = foldWorkgroups(workgroups);
  launch(
    OP,
    forwardKernel(unit, filterTile(filters), schedule),
    words(workgroups, folded[0]),
    [xt, weight, bias, out, winner],
    folded,
  );
  xt.dispose();
  return record(out, OP, [x, weight, bias], (dout) => {
    let dx: Tensor | null = null, dweight: Tensor | null = null, dbias: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, "f32", `${OP} backward`);
      const g = grid(x.size / unit, BACKWARD_WG);
      launch(
        `${OP} backward x`,
        BACKWARD_X[unit],
        words(x.size / unit, g.stride),
        [weight, winner, dout, dx],
        g.groups,
      );
    }
    if (weight.requiresGrad || bias.requiresGrad) {
      dweight = Tensor.empty(weight.shape, "f32", `${OP} backward`);
      dbias = Tensor.empty(bias.shape, "f32", `${OP} backward`);
      const n = weight.size / unit + bias.size;
      const g = grid(n, BACKWARD_WG);
      launch(
        `${OP} backward parameters`,
        BACKWARD_PARAMETERS[unit],
        words(n, g.stride),
        [x, winner, dout, dweight, dbias],
        g.groups,
      );
    }
    return [dx, dweight, dbias];
  }, [winner]);
}
