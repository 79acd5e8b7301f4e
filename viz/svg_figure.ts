/**
 * Static figures in notebooks: an SVG image shown as `image/svg+xml` and, for front ends and
 * HTML exports that pick HTML first, as the same image inside a `<div>`; its text form is a
 * one-line description.
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

/** The width an SVG document declares on its root element, or `undefined`. */
function declaredWidth(svg: string): number | undefined {
  const match = /^\s*<svg\b[^>]*?\swidth="([0-9.]+)"/.exec(svg);
  return match ? Number(match[1]) : undefined;
}

/** A drawn figure with a rich notebook display. Build one with {@link svgFigure}. */
export class SvgFigure implements RichDisplay {
  /** The SVG document. */
  readonly svg: string;
  /** The one-line description (the `text/plain` form). */
  readonly description: string;

  /**
   * Wraps an SVG document.
   * @param svg a standalone SVG document (its root element declares its width)
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

  /** The HTML form: the SVG inside a `<div>` no wider than the image. */
  toHTML(): string {
    return staticFigureHtml(this.svg, declaredWidth(this.svg) ?? 720);
  }

  /** The one-line description. */
  toString(): string {
    return this.description;
  }

  /** The MIME bundle: SVG, the same image as HTML, and the description as plain text. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return {
      "image/svg+xml": this.svg,
      "text/html": this.toHTML(),
      "text/plain": this.description,
    };
  }
}

/** Makes a figure that shows `svg` in notebooks, described by `description` in text form. */
export function svgFigure(svg: string, description: string): SvgFigure {
  return new SvgFigure(svg, description);
}
