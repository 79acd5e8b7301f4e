/**
 * Where each height's filters sit in Caser's packed horizontal-convolution weights: the filters
 * of every height h = 1 … L in one flat tensor, height after height, so that one kernel serves
 * them all. Height h's `nh` filters, each `h × E` (PyTorch's `Conv2d(1, nh, (h, E))` weight
 * `[nh, 1, h, E]` without its channel axis), start at `nh · E · h(h − 1)/2`; the biases are one
 * `[L, nh]` tensor, height h's at row h − 1.
 *
 * @module
 */

/** The sizes that fix the packed layout: window length L, embedding width E, filters per height. */
export interface HorizontalFilterShape {
  /** Window length L: heights 1 … L. */
  readonly length: number;
  /** Embedding width E (each filter's width). */
  readonly dim: number;
  /** Filters per height, `nh`. */
  readonly filters: number;
}

/** The offset of height `h`'s filters (1 ≤ h ≤ L) in the packed weights. */
export function heightOffset(shape: HorizontalFilterShape, h: number): number {
  return shape.filters * shape.dim * (h * (h - 1) / 2);
}

/** The number of values of height `h`'s filters: `nh · h · E`. */
export function heightSize(shape: HorizontalFilterShape, h: number): number {
  return shape.filters * h * shape.dim;
}

/** The length of the packed weights: every height's filters, `nh · E · L(L + 1)/2`. */
export function packedFilterSize(shape: HorizontalFilterShape): number {
  return heightOffset(shape, shape.length + 1);
}

/** The sizes of the heights' blocks in packed order (heights 1 … L), e.g. one norm each. */
export function heightSizes(shape: HorizontalFilterShape): number[] {
  return Array.from({ length: shape.length }, (_, i) => heightSize(shape, i + 1));
}
