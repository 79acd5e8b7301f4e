/**
 * Plotly figures that show in every notebook front end without carrying Plotly.js: each is
 * displayed as Plotly's own MIME type (JupyterLab, VS Code and nteract draw it interactively),
 * with a static SVG image under `image/svg+xml` and, inside a `<div>`, under `text/html` for the
 * front ends that render neither Plotly JSON nor SVG first. An HTML page draws the figure
 * interactively with {@link plotlyFigureHtml}, given where the page loads Plotly.js from (the
 * HTML export of an executed notebook loads one shared file; see `run/outputs.ts`).
 *
 * @module
 */
import { JUPYTER_DISPLAY, type MimeBundle } from "../host/mod.ts";
import type { RichDisplay } from "./display.ts";
import { type PlotlyLayout, type PlotlyTitle, type PlotlyTrace, titleText } from "./figure_spec.ts";
import { contentHash } from "./svg_elements.ts";
import { FIGURE_CLASS, staticFigureHtml } from "./svg_figure.ts";
import { renderSvg } from "./svg.ts";
import { escapeHtml } from "./table.ts";

/** The MIME type of Plotly figures in Jupyter. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** A figure: traces, layout and optional Plotly config. */
export interface PlotlyFigureSpec {
  /** The traces. */
  readonly data: readonly PlotlyTrace[];
  /** The layout. */
  readonly layout?: PlotlyLayout;
  /** The Plotly config (e.g. `{ responsive: true }`). */
  readonly config?: Readonly<Record<string, unknown>>;
}

/** Options of {@link plotlyFigureHtml}. */
export interface PlotlyHtmlOptions {
  /**
   * The static image shown until Plotly.js draws, and for good where it cannot (default: the
   * figure rendered by `renderSvg`).
   */
  readonly svg?: string;
  /**
   * Where the page loads Plotly.js from (a URL, typically relative to the page): the HTML then
   * starts with a `<script src>` element for it. Give it to the first figure of a page only;
   * later figures wait for `window.Plotly`. Default: none (the page provides Plotly.js).
   */
  readonly scriptSrc?: string;
  /** The id of the figure's `<div>`, unique within the page (default: from the figure's content). */
  readonly id?: string;
}

/** How long the drawing script waits for `window.Plotly`: tries, 50 ms apart. */
const PLOTLY_WAIT_TRIES = 200;

/** Makes JSON safe inside an HTML `<script>` element. */
function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e")
    .replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** A title in the `{ text }` form (Plotly.js 3 ignores plain-string titles). */
function titleObject(title: PlotlyTitle | undefined): { text?: string } | undefined {
  return typeof title === "string" ? { text: title } : title;
}

/** The layout with its figure and axis titles in the `{ text }` form. */
export function normalizeLayout(layout: PlotlyLayout): PlotlyLayout {
  const out: PlotlyLayout = { ...layout };
  if (layout.title !== undefined) out.title = titleObject(layout.title);
  for (const axis of ["xaxis", "yaxis"] as const) {
    const a = layout[axis];
    if (a?.title !== undefined) out[axis] = { ...a, title: titleObject(a.title) };
  }
  return out;
}

/**
 * HTML that draws a figure with Plotly.js in a page: a `<div>` showing the static image until
 * Plotly.js has drawn the figure beside it, and the script that draws it once `window.Plotly` is
 * there (it gives up after 10 s, leaving the image). Titles are put in Plotly.js 3's `{ text }`
 * form; the figure's JSON is made safe inside the script.
 */
export function plotlyFigureHtml(
  figure: PlotlyFigureSpec,
  options: PlotlyHtmlOptions = {},
): string {
  const layout = normalizeLayout(figure.layout ?? {});
  const spec = { data: figure.data, layout, config: figure.config ?? {} };
  const json = scriptSafeJson(spec);
  const id = options.id ?? `ssmrec-plot-${contentHash(json)}`;
  const svg = options.svg ?? renderSvg(figure.data, layout);
  const width = layout.width ?? 720;
  const height = layout.height ?? 420;
  const scriptTag = options.scriptSrc === undefined
    ? ""
    : `<script type="text/javascript" src="${escapeHtml(options.scriptSrc)}"></script>\n`;
  return `${scriptTag}<div class="${FIGURE_CLASS}" style="max-width:${width}px">` +
    `<div id="${id}-static">${svg}</div>` +
    `<div id="${id}" style="width:100%;height:${height}px;display:none"></div></div>\n` +
    `<script type="text/javascript">(function () {\n` +
    `  var spec = ${json};\n` +
    `  function draw() {\n` +
    `    var div = document.getElementById("${id}");\n` +
    `    if (!div) return;\n` +
    `    div.style.display = "block";\n` +
    `    window.Plotly.newPlot(div, spec.data, spec.layout, spec.config).then(function () {\n` +
    `      var still = document.getElementById("${id}-static");\n` +
    `      if (still) still.style.display = "none";\n` +
    `    });\n` +
    `  }\n` +
    `  var tries = 0;\n` +
    `  (function wait() {\n` +
    `    if (window.Plotly) draw(); else if (++tries < ${PLOTLY_WAIT_TRIES}) setTimeout(wait, 50);\n` +
    `  })();\n` +
    `})();</script>`;
}

/** A Plotly figure with a rich notebook display. Build one with {@link plotlyFigure}. */
export class PlotlyFigure implements RichDisplay {
  /** The traces. */
  readonly data: readonly PlotlyTrace[];
  /** The layout, with titles in the `{ text }` form Plotly.js 3 requires. */
  readonly layout: PlotlyLayout;
  /** The Plotly config. */
  readonly config: Readonly<Record<string, unknown>>;

  /** Wraps a figure spec (see {@link plotlyFigure}). */
  constructor(spec: PlotlyFigureSpec) {
    this.data = spec.data;
    this.layout = normalizeLayout(spec.layout ?? {});
    this.config = spec.config ?? { responsive: true, displaylogo: false };
  }

  /** The figure as the Plotly JSON MIME payload. */
  toJSON(): {
    data: readonly PlotlyTrace[];
    layout: PlotlyLayout;
    config: Record<string, unknown>;
  } {
    return { data: this.data, layout: this.layout, config: { ...this.config } };
  }

  /** The static SVG image. */
  toSVG(): string {
    return renderSvg(this.data, this.layout);
  }

  /** A one-line description. */
  toString(): string {
    const kinds = [...new Set(this.data.map((t) => t.type ?? "scatter"))].join(", ");
    const title = titleText(this.layout.title);
    return `Plotly figure${title ? ` "${title}"` : ""}: ${this.data.length} trace(s) (${kinds})`;
  }

  /** HTML that draws the figure in a page with Plotly.js ({@link plotlyFigureHtml}). */
  toHTML(options: PlotlyHtmlOptions = {}): string {
    return plotlyFigureHtml(this.toJSON(), options);
  }

  /**
   * The MIME bundle: Plotly JSON, the SVG image, the same image as static HTML, and plain text.
   * Nothing in it loads Plotly.js, so it stays small.
   */
  [JUPYTER_DISPLAY](): MimeBundle {
    const svg = this.toSVG();
    return {
      [PLOTLY_MIME]: this.toJSON(),
      "text/html": staticFigureHtml(svg, this.layout.width ?? 720),
      "image/svg+xml": svg,
      "text/plain": this.toString(),
    };
  }
}

/**
 * Makes a Plotly figure from `{ data, layout }`. Evaluate it as a cell's last expression, or pass
 * it to `jupyterDisplay`, to show it; `toSVG()` gives the static image alone.
 */
export function plotlyFigure(spec: PlotlyFigureSpec): PlotlyFigure {
  return new PlotlyFigure(spec);
}
