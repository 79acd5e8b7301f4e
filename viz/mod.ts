/**
 * Notebook visualisation: Plotly figures displayed as Plotly's own MIME type with a static SVG
 * beside it (from a small built-in renderer), HTML that draws them in exported pages, drawn
 * figures (the Mamba4Rec architecture, SSD4Rec's packed batch), rich tables for Arrow tables and
 * row arrays, and a display helper for Deno's kernel.
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
  plotlyFigureHtml,
  type PlotlyFigureSpec,
  type PlotlyHtmlOptions,
} from "./plotly.ts";
export {
  contentHash,
  px,
  SVG_FONT_FAMILY,
  type SvgAttributes,
  svgDocument,
  svgElement,
  svgOpenTag,
  svgText,
} from "./svg_elements.ts";
export { FIGURE_CLASS, staticFigureHtml, SvgFigure, svgFigure } from "./svg_figure.ts";
export {
  type ArchitectureDescription,
  architectureDiagram,
  type ArchitecturePart,
  type ArchitectureStep,
  formatShape,
  type TensorShape,
} from "./architecture_diagram.ts";
export { packedBatchDiagram, type PackedBatchPicture } from "./packed_batch_diagram.ts";
export { findPlotlyBundle, plotlyScriptSource, plotlyVersion } from "./plotly_script.ts";
export {
  sweepChart,
  type SweepChartOptions,
  type SweepPoint,
  type SweepReference,
  type SweepSeries,
} from "./sweep_chart.ts";
