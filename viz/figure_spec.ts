/**
 * The Plotly figure vocabulary the project uses: traces, axes and layouts as far as its renderers
 * read them (other Plotly attributes pass through), Plotly.js's default colours, and title text.
 *
 * @module
 */

/** A Plotly trace, as far as the SVG renderer reads it; other Plotly attributes pass through. */
export interface PlotlyTrace {
  /** `"scatter"` (default) or `"scattergl"`; the renderer draws both the same way. */
  type?: "scatter" | "scattergl";
  /** For scatter: `"lines"`, `"markers"` or `"lines+markers"` (default `"lines+markers"`). */
  mode?: string;
  /** The legend label. */
  name?: string;
  /** x values (numbers, or strings for categories). */
  x?: readonly (number | string | null)[];
  /** y values. */
  y?: readonly (number | null)[];
  /** Line style. */
  line?: { color?: string; width?: number; dash?: string };
  /** Marker style. */
  marker?: { color?: string; size?: number; opacity?: number };
  /** Trace opacity. */
  opacity?: number;
  /** Whether the trace appears in the legend (default true). */
  showlegend?: boolean;
  /** Any other Plotly attribute. */
  [attribute: string]: unknown;
}

/** An axis title: text or `{ text }`. */
export type PlotlyTitle = string | { text?: string };

/** A Plotly axis, as far as the SVG renderer reads it. */
export interface PlotlyAxis {
  /** The axis title. */
  title?: PlotlyTitle;
  /** `"linear"`, `"log"` or `"category"` (default: category for string data, else linear). */
  type?: "linear" | "log" | "category" | "-";
  /** A fixed range (in log10 units for log axes, as Plotly does). */
  range?: [number, number];
  /** Whether to draw grid lines (default true). */
  showgrid?: boolean;
  /** Any other Plotly attribute. */
  [attribute: string]: unknown;
}

/** A Plotly layout, as far as the SVG renderer reads it. */
export interface PlotlyLayout {
  /** The figure title. */
  title?: PlotlyTitle;
  /** The x axis. */
  xaxis?: PlotlyAxis;
  /** The y axis. */
  yaxis?: PlotlyAxis;
  /** Width in pixels (default 720). */
  width?: number;
  /** Height in pixels (default 420). */
  height?: number;
  /** Whether to show the legend (default: when more than one trace is named). */
  showlegend?: boolean;
  /** Any other Plotly attribute. */
  [attribute: string]: unknown;
}

/** Plotly.js's default trace colours, so that the static image matches the interactive one. */
export const PLOTLY_COLORWAY: readonly string[] = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** The text of a title. */
export function titleText(title: PlotlyTitle | undefined): string {
  if (title === undefined) return "";
  return typeof title === "string" ? title : title.text ?? "";
}
