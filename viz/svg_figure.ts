/**
 * Static figures in notebooks: an SVG image shown as `image/svg+xml` (which every front end and
 * nbconvert's HTML export render), with a one-line description as its text form; and the HTML
 * form of a static image, for bundles whose front ends may pick HTML first.
 *
 * @module
 */
import { JUPYTER_DISPLAY, type MimeBundle } from "../host/mod.ts";
import type { RichDisplay } from "./display.ts";

/** The class of the `<div>` every figure's HTML sits in. */
export const FIGURE_CLASS = "ssmrec-figure";

/** The HTML of a static figure: the SVG inside a `<div>` no wider than the image. */
export function staticFigureHtml(svg: string, width: number): string {
  return `<div class="${FIGURE_CLASS}" style="max-width:${width}px">${svg}</div>`;
}

/** A drawn figure with a rich notebook display. Build one with {@link svgFigure}. */
export class SvgFigure implements RichDisplay {
  /** The SVG document. */
  readonly svg: string;
  /** The one-line description (the `text/plain` form). */
  readonly description: string;

  /**
   * Wraps an SVG document.
   * @param svg a standalone SVG document
   * @param description what the figure shows, in one line
   */
  constructor(svg: string, description: string) {
    this.svg = svg;
    this.description = description;
  }

  /** The SVG document. */
  toSVG(): string {
    return this.svg;
  }

  /** The one-line description. */
  toString(): string {
    return this.description;
  }

  /** The MIME bundle: the SVG and the description as plain text. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return { "image/svg+xml": this.svg, "text/plain": this.description };
  }
}

/** Makes a figure that shows `svg` in notebooks, described by `description` in text form. */
export function svgFigure(svg: string, description: string): SvgFigure {
  return new SvgFigure(svg, description);
}
