/**
 * Layer normalization over the last dimension, as PyTorch's `nn.LayerNorm` (biased variance,
 * elementwise affine), with its backward.
 *
 * A row of `D` values is handled by a team of `T` invocations (`T` a power of two, at most 256),
 * so a 256-invocation workgroup normalizes `256/T` rows at once: 16 rows of 16 vec4s for the main
 * case D = 64. Rows are read as vec4 when D is a multiple of 4. Each invocation holds its
 * `K = ⌈D/T⌉` values in registers, so every tensor is read once. Each invocation takes the mean
 * and squared deviations of its own values, and the team merges those with Chan's pairwise
 * formula (no E[x²] − E[x]² cancellation, one tree).
 *
 * Performance floor (H200, ~4.3 TB/s): the forward moves 8·rows·D bytes (read x, write y), e.g.
 * 409,600 × 64 rows: 210 MB → ~49 µs; the backward reads x and dy and writes dx (12·rows·D bytes,
 * ~73 µs). Through Deno's WebGPU a vec4 copy of the same 210 MB takes ~100 µs, the practical
 * floor there; the kernels take ~135 µs and ~115 µs (plus ~60 µs fixed cost per dispatch).
 * Weight and bias gradients are accumulated per workgroup in registers and finished by a small
 * deterministic column reduction, so the backward is two dispatches and has no atomics.
 *
 * Two inference forms run the same forward kernel with its rows mapped: {@link layerNormOfRows}
 * normalizes rows gathered from a table by id (an item embedding and its LayerNorm as one kernel)
 * and {@link layerNormInto} writes each normalized row into a row of a target (a stream's last
 * LayerNorm and the write of its users' representations). Each gives, bit for bit, the values of
 * the separate ops. The kernels' WGSL is in `layernorm_shaders.ts`.
 *
 * @module
 */
import { record, recordsGradient } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import {
  FINISH,
  type Layout,
  layoutFor,
  MAX_K,
  PLAIN,
  type RowMap,
  shaderFor,
  WG,
} from "./layernorm_shaders.ts";

/** Target number of workgroups for the backward (each loops over a block of rows). */
const BACKWARD_GROUPS = 1024;

/**
 * The largest last dimension {@link layerNorm} accepts: 4,096, or 16,384 when it is a multiple
 * of 4 (rows are then read as vec4).
 */
export const LAYER_NORM_MAX_DIM: number = 4 * WG * MAX_K;

/**
 * Layer normalization over the last dimension with an elementwise affine transform, as
 * `nn.LayerNorm(D, eps)`: `y = (x − mean) / sqrt(var + eps) · weight + bias` with the biased
 * variance. Recorded on the tape (gradients for `x`, `weight` and `bias`); the per-row mean and
 * reciprocal standard deviation are kept for the backward and freed once it has run.
 * @param x input `[..., D]`
 * @param weight scale `[D]`
 * @param bias shift `[D]`
 * @param eps added to the variance; the sequential recommenders use 1e-12 (PyTorch's default
 *   is 1e-5)
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const op = "layerNorm";
  assertDType(op, x, "f32");
  if (x.shape.length === 0) {
    throw new RangeError(`${op}: needs at least one dimension, got ${x.describe()}`);
  }
  const cols = x.shape[x.shape.length - 1];
  checkAffine(op, cols, x.shape, weight, bias, eps);
  const rows = x.size / cols;
  const layout = layoutFor(cols);
  const units = cols / layout.unit;
  const y = Tensor.empty(x.shape, "f32", op);
  const mean = Tensor.empty([rows], "f32", `${op} mean`);
  const rstd = Tensor.empty([rows], "f32", `${op} rstd`);
  launchForward(op, layout, PLAIN, rows, cols, eps, 0, [x, weight, bias, y, mean, rstd]);
  return record(y, op, [x, weight, bias], (dy) => {
    const bop = `${op} backward`;
    const iters = Math.max(1, Math.ceil(rows / (layout.teams * BACKWARD_GROUPS)));
    const groups = Math.max(1, Math.ceil(rows / (layout.teams * iters)));
    const bg = grid(groups, 1);
    const dx = Tensor.empty(x.shape, "f32", bop);
    const partials = Tensor.empty([2, cols, groups], "f32", bop);
    launch(
      bop,
      shaderFor("backward", layout),
      packParams([rows, units, bg.groups[0], iters, groups]),
      [x, weight, dy, mean, rstd, dx, partials],
      bg.groups,
    );
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (weight.requiresGrad || bias.requiresGrad) {
      dweight = Tensor.empty([cols], "f32", bop);
      dbias = Tensor.empty([cols], "f32", bop);
      launch(
        `${op} parameter gradients`,
        FINISH,
        packParams([cols, groups]),
        [partials, dweight, dbias],
        [cols, 2],
      );
    }
    partials.dispose();
    return [x.requiresGrad ? dx : (dx.dispose(), null), dweight, dbias];
  }, [mean, rstd]);
}

/**
 * Checks what every LayerNorm form shares: `weight` and `bias` are f32 `[cols]`, `cols` within
 * the kernel's bound, and `eps` finite and ≥ 0; `shape` names the rows' tensor in messages.
 */
function checkAffine(
  op: string,
  cols: number,
  shape: readonly number[],
  weight: Tensor,
  bias: Tensor,
  eps: number,
): void {
  assertDType(op, weight, "f32");
  assertDType(op, bias, "f32");
  for (const [what, t] of [["weight", weight], ["bias", bias]] as const) {
    if (t.shape.length !== 1 || t.shape[0] !== cols) {
      throw new RangeError(
        `${op}: ${what} has shape [${t.shape.join(", ")}] but x has shape ` +
          `[${shape.join(", ")}]; expected [${cols}]`,
      );
    }
  }
  const maxDim = cols % 4 === 0 ? LAYER_NORM_MAX_DIM : LAYER_NORM_MAX_DIM / 4;
  if (cols === 0 || cols > maxDim) {
    throw new RangeError(
      `${op}: last dimension ${cols} of [${shape.join(", ")}] is outside 1..${maxDim}`,
    );
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
  }
}

/** Dispatches the forward kernel of `layout` and `map` over `rows` rows of `cols` values. */
function launchForward(
  op: string,
  layout: Layout,
  map: RowMap,
  rows: number,
  cols: number,
  eps: number,
  limit: number,
  tensors: Tensor[],
): void {
  const units = cols / layout.unit;
  const g = grid(Math.ceil(rows / layout.teams), 1);
  const ints = map.gather || map.scatter
    ? [rows, units, g.groups[0], limit]
    : [rows, units, g.groups[0]];
  launch(op, shaderFor("forward", layout, map), packParams(ints, [eps]), tensors, g.groups);
}

/** Throws when a gradient would be recorded through an inference-only form. */
function refuseGradients(op: string, tensors: readonly Tensor[], instead: string): void {
  if (recordsGradient(tensors)) {
    throw new RangeError(
      `${op}: has no backward, but a gradient is being recorded for an operand; use ${instead} ` +
        "when training, or run under noGrad",
    );
  }
}

/** Checks `ids` (or rows) is an i32 tensor, naming it. */
function checkIds(op: string, what: string, ids: Tensor): void {
  if (ids.dtype !== "i32") {
    throw new TypeError(`${op}: ${what} must be an i32 tensor, got ${ids.describe()}`);
  }
}

/**
 * The LayerNorm of rows `ids` of `table` (`[V, D]`): `layerNorm(embedding(ids, table), …)` in one
 * kernel, for inference (no backward; refused where a gradient would be recorded). Returns
 * `[...ids.shape, D]`; an id outside `[0, V)` reads a zero row (its result is `bias`).
 * @param table rows `[V, D]`
 * @param ids i32 row numbers, any shape
 * @param weight scale `[D]`
 * @param bias shift `[D]`
 * @param eps added to the variance
 */
export function layerNormOfRows(
  table: Tensor,
  ids: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): Tensor {
  const op = "layerNormOfRows";
  assertDType(op, table, "f32");
  checkIds(op, "ids", ids);
  if (table.shape.length !== 2) {
    throw new RangeError(`${op}: table must be [V, D], got ${table.describe()}`);
  }
  const [tableRows, cols] = table.shape;
  checkAffine(op, cols, table.shape, weight, bias, eps);
  refuseGradients(op, [table, weight, bias], "layerNorm(embedding(…))");
  const y = Tensor.empty([...ids.shape, cols], "f32", op);
  if (ids.size === 0) return y;
  const layout = layoutFor(cols);
  launchForward(op, layout, { gather: true, scatter: false }, ids.size, cols, eps, tableRows, [
    table,
    ids,
    weight,
    bias,
    y,
  ]);
  return y;
}

/**
 * Writes the LayerNorm of each row r of `x` (`[R, D]`) into row `rows[r]` of `target`
 * (`[T, D]`), in one kernel: `layerNorm` followed by a scatter of its rows, for inference (no
 * backward; refused where a gradient would be recorded). A row number outside `[0, T)` writes
 * nothing; two equal row numbers leave either row.
 * @param x rows `[R, D]`
 * @param weight scale `[D]`
 * @param bias shift `[D]`
 * @param eps added to the variance
 * @param target the rows written `[T, D]`
 * @param rows i32 `[R]`: where each row of `x` goes
 */
export function layerNormInto(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
  target: Tensor,
  rows: Tensor,
): void {
  const op = "layerNormInto";
  assertDType(op, x, "f32");
  assertDType(op, target, "f32");
  checkIds(op, "rows", rows);
  if (x.shape.length !== 2 || target.shape.length !== 2 || target.shape[1] !== x.shape[1]) {
    throw new RangeError(
      `${op}: x [R, D] and target [T, D] must share D, got x ${x.describe()} and target ` +
        target.describe(),
    );
  }
  if (rows.shape.length !== 1 || rows.shape[0] !== x.shape[0]) {
    throw new RangeError(
      `${op}: rows must be [${x.shape[0]}], one per row of x, got ${rows.describe()}`,
    );
  }
  const [count, cols] = x.shape;
  checkAffine(op, cols, x.shape, weight, bias, eps);
  refuseGradients(op, [x, weight, bias], "layerNorm and a write of its rows");
  if (count === 0) return;
  launchForward(
    op,
    layoutFor(cols),
    { gather: false, scatter: true },
    count,
    cols,
    eps,
    target.shape[0],
    [x, weight, bias, rows, target],
  );
}
