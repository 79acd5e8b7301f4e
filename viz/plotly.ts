/**
 * Plotly figures that show in every notebook front end: each is displayed as the Plotly JSON MIME
 * type (JupyterLab, VS Code, nteract), as HTML that draws it with an inlined Plotly.js (classic
 * Notebook, exported HTML; the bundle is inlined once per kernel session), and as a static SVG
 * image (and inside that HTML as a fallback until Plotly draws).
 *
 * @module
 */
import { JUPYTER_DISPLAY, type MimeBundle } from "../host/mod.ts";
import type { RichDisplay } from "./display.ts";
import { plotlyScriptSource } from "./plotly_script.ts";
import { type PlotlyLayout, type PlotlyTitle, type PlotlyTrace, titleText } from "./figure_spec.ts";
import { renderSvg } from "./svg.ts";

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

/** When the Plotly.js bundle is put into a figure's HTML. */
export type PlotlyScriptMode = "once" | "always" | "never";

/** Options of {@link plotlyFigure}. */
export interface PlotlyFigureOptions {
  /**
   * `"once"` (default): inline the bundle into the first figure displayed in this process only;
   * `"always"`: into every figure (self-contained outputs, large); `"never"`: rely on a page that
   * already has Plotly, with the SVG shown otherwise.
   */
  readonly includePlotlyJs?: PlotlyScriptMode;
}

let bundleInlined = false;
let figureCounter = 0;

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

/** A Plotly figure with a rich notebook display. Build one with {@link plotlyFigure}. */
export class PlotlyFigure implements RichDisplay {
  /** The traces. */
  readonly data: readonly PlotlyTrace[];
  /** The layout, with titles in the `{ text }` form Plotly.js 3 requires. */
  readonly layout: PlotlyLayout;
  /** The Plotly config. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly #options: PlotlyFigureOptions;

  /** Wraps a figure spec (see {@link plotlyFigure}). */
  constructor(spec: PlotlyFigureSpec, options: PlotlyFigureOptions = {}) {
    this.data = spec.data;
    this.layout = normalizeLayout(spec.layout ?? {});
    this.config = spec.config ?? { responsive: true, displaylogo: false };
    this.#options = options;
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

  /**
   * The HTML output: a div drawn by Plotly.js, with the SVG image shown until it draws (or for
   * good, where scripts do not run), preceded by the Plotly.js bundle per the script mode.
   */
  async toHTML(svg: string = this.toSVG()): Promise<string> {
    const mode = this.#options.includePlotlyJs ?? "once";
    let bundleTag = "";
    if (mode === "always" || (mode === "once" && !bundleInlined)) {
      const source = await plotlyScriptSource();
      if (source !== undefined) {
        const safe = source.replace(/<\/script/gi, "<\\/script");
        bundleTag = `<script type="text/javascript">if (!window.Plotly) {\n${safe}\n}</script>\n`;
        bundleInlined = true;
      }
    }
    const id = `ssmrec-plot-${Date.now().toString(36)}-${(++figureCounter).toString(36)}`;
    const width = this.layout.width ?? 720;
    const height = this.layout.height ?? 420;
    const spec = scriptSafeJson(this.toJSON());
    return `${bundleTag}<div class="ssmrec-figure" style="max-width:${width}px">` +
      `<div id="${id}-static">${svg}</div>` +
      `<div id="${id}" style="width:100%;height:${height}px;display:none"></div></div>\n` +
      `<script type="text/javascript">(function () {\n` +
      `  var spec = ${spec};\n` +
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
      `    if (window.Plotly) draw(); else if (++tries < 200) setTimeout(wait, 50);\n` +
      `  })();\n` +
      `})();</script>`;
  }

  /** The MIME bundle: Plotly JSON, HTML, SVG and plain text. */
  async [JUPYTER_DISPLAY](): Promise<MimeBundle> {
    const svg = this.toSVG();
    return {
      [PLOTLY_MIME]: this.toJSON(),
      "text/html": await this.toHTML(svg),
      "image/svg+xml": svg,
      "text/plain": this.toString(),
    };
  }
}

/**
 * Makes a Plotly figure from `{ data, layout }`. Evaluate it as a cell's last expression, or pass
 * it to `jupyterDisplay`, to show it; `toSVG()` gives the static image alone.
 */
export function plotlyFigure(
  spec: PlotlyFigureSpec,
  options: PlotlyFigureOptions = {},
): PlotlyFigure {
  return new PlotlyFigure(spec, options);
}
