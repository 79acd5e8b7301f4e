/**
 * Caser's convolutions over the `[L, E]` embedding matrix of a window, as RecBole 1.2 builds
 * them: the horizontal convolutions of every height 1 … L with ReLU and max-over-time pooling
 * (one kernel family for all heights, the filters packed in one tensor), the vertical
 * convolution (composed of products), the segment norms of its regularisation, and a float64
 * reference of each.
 *
 * @module
 */
export { caserHorizontalConv } from "./horizontal.ts";
export { caserVerticalConv } from "./vertical.ts";
export { NORM_BLOCK, segmentNorms } from "./norms.ts";
export {
  heightOffset,
  heightSize,
  heightSizes,
  type HorizontalFilterShape,
  packedFilterSize,
} from "./layout.ts";
export {
  type CaserConvGrads,
  type CaserConvProblem,
  caserHorizontalReference,
  caserHorizontalReferenceBackward,
  caserVerticalReference,
  caserVerticalReferenceBackward,
  segmentNormsReference,
  segmentNormsReferenceBackward,
} from "./reference.ts";
