/**
 * The float64 host reference of `mambaStep` (`mamba_step.ts`) for one stream, in the model's own
 * layouts: the convolution's and the selective scan's step references (`selective_step.ts`) with
 * `x_proj` and `dt_proj` as plain matrix-vector products.
 *
 * @module
 */
import { linearReference } from "../dense/linear_reference.ts";
import { causalConv1dStepReference, selectiveScanStepReference } from "./selective_step.ts";

/** One stream's weights for {@link mambaStepReference}, in the model's own layouts. */
export interface MambaStepReferenceWeights {
  /** `[d, w]`. */
  readonly convWeight: Float64Array;
  /** `[d]`. */
  readonly convBias: Float64Array;
  /** `x_proj`'s Δ part `[r, d]`. */
  readonly xDt: Float64Array;
  /** `x_proj`'s B part `[n, d]`. */
  readonly xB: Float64Array;
  /** `x_proj`'s C part `[n, d]`. */
  readonly xC: Float64Array;
  /** `dt_proj`'s weight `[d, r]`. */
  readonly dtWeight: Float64Array;
  /** `dt_proj`'s bias `[d]`. */
  readonly dtBias: Float64Array;
  /** A `[d, n]`. */
  readonly A: Float64Array;
  /** D `[d]`. */
  readonly D: Float64Array;
}

/**
 * Float64 reference of `mambaStep` for one stream, through the convolution's and the
 * selective scan's step references: returns y `[d]` and advances `window` (`[w − 1, d]`) and
 * `state` (channel-major, `[d, n]`) in place.
 * @param xz the stream's `[x | z]`, `[2d]`
 * @param weights the model's weights
 * @param window the stream's window, updated
 * @param state the stream's state, updated
 */
export function mambaStepReference(
  xz: Float64Array,
  weights: MambaStepReferenceWeights,
  window: Float64Array,
  state: Float64Array,
): Float64Array {
  const d = xz.length / 2;
  const u = causalConv1dStepReference(
    xz.subarray(0, d),
    weights.convWeight,
    weights.convBias,
    window,
  );
  return selectiveScanStepReference({
    x: u,
    delta: linearReference(linearReference(u, weights.xDt), weights.dtWeight),
    A: weights.A,
    B: linearReference(u, weights.xB),
    C: linearReference(u, weights.xC),
    D: weights.D,
    z: xz.subarray(d),
    deltaBias: weights.dtBias,
  }, state);
}
