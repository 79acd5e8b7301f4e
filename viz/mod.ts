/**
 * Notebook visualisation: Plotly figures that render in JupyterLab, classic Notebook and exported
 * HTML alike (Plotly JSON, HTML with an inlined Plotly.js, and a static SVG from a small built-in
 * renderer), rich tables for Arrow tables and row arrays, and a display helper for Deno's kernel.
 *
 * ```ts
 * import { jupyterDisplay, plotlyFigure } from "./viz/mod.ts";
 * const fig = plotlyFigure({
 *   data: [{ type: "scatter", mode: "lines", name: "loss", x: [1, 2, 3], y: [3, 2, 1.5] }],
 *   layout: { title: "Training loss", xaxis: { title: "epoch" } },
 * });
 * await jupyterDisplay(fig); // last statement of the cell
 * ```
 *
 * @module
 */
export { inJupyterKernel, JUPYTER_DISPLAY, type MimeBundle } from "../host/mod.ts";
export {
  DISPLAY_SETTLE_MS,
  isRichDisplay,
  jupyterDisplay,
  mimeBundleOf,
  type RichDisplay,
  withRichDisplay,
} from "./display.ts";
export {
  type CellValue,
  escapeHtml,
  formatCell,
  formatPercent,
  type RichTable,
  richTable,
  type RichTableOptions,
} from "./table.ts";
export {
  PLOTLY_COLORWAY,
  type PlotlyAxis,
  type PlotlyLayout,
  type PlotlyTitle,
  type PlotlyTrace,
  titleText,
} from "./figure_spec.ts";
export { formatTick, linearTicks, logTicks } from "./ticks.ts";
export { renderSvg, type SvgOptions } from "./svg.ts";
export {
  normalizeLayout,
  PLOTLY_MIME,
  PlotlyFigure,
  plotlyFigure,
  type PlotlyFigureOptions,
  type PlotlyFigureSpec,
  type PlotlyScriptMode,
} from "./plotly.ts";
export { findPlotlyBundle, plotlyScriptSource, plotlyVersion } from "./plotly_script.ts";
