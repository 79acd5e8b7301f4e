/**
 * Sweep charts: a measure against a swept setting, one line per series (a dataset, a model) at
 * the mean, with a band of mean ± standard deviation around it, and optional horizontal reference
 * lines (a run outside the sweep, drawn dashed in its series' colour). The band is a filled area
 * between two thin dotted lines: interactive front ends fill it, the static image draws its edges.
 *
 * @module
 */
import { PLOTLY_COLORWAY, type PlotlyTrace } from "./figure_spec.ts";
import { type PlotlyFigure, plotlyFigure } from "./plotly.ts";

/** One point of a sweep: the setting's value, and the measure's mean and spread there. */
export interface SweepPoint {
  /** The swept setting's value. */
  readonly x: number;
  /** The mean of the measure. */
  readonly mean: number;
  /** Its standard deviation; left out (no band at this point) for a single value. */
  readonly std?: number;
  /** How many values the mean is of (shown on hover), if known. */
  readonly n?: number;
}

/** A value outside the sweep drawn across it, in its series' colour. */
export interface SweepReference {
  /** What it is (`whole histories`). */
  readonly label: string;
  /** The mean of the measure. */
  readonly mean: number;
}

/** One line of a sweep chart. */
export interface SweepSeries {
  /** The legend name (`Beauty`). */
  readonly name: string;
  /** Its points, in any order (drawn sorted by x). */
  readonly points: readonly SweepPoint[];
  /** A reference drawn as a dashed horizontal line across the sweep. */
  readonly reference?: SweepReference;
}

/** Titles and axis of {@link sweepChart}. */
export interface SweepChartOptions {
  /** The figure title. */
  readonly title: string;
  /** The x axis title (the setting: `β`). */
  readonly xTitle: string;
  /** The y axis title (the measure: `NDCG@10`). */
  readonly yTitle: string;
  /** The x axis type (default `linear`; `log` for settings that double, such as L). */
  readonly xType?: "linear" | "log";
  /**
   * The swept values, which the references span (default: those of the points; a sweep without
   * any point yet should give them).
   */
  readonly sweptValues?: readonly number[];
}

/** Opacity of a band's fill. */
const BAND_FILL_OPACITY = 0.2;

/** `#1f77b4` as `rgba(31,119,180,a)`. */
function rgba(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

/** The traces of one series: its band (when any point has a spread), its line, its reference. */
function seriesTraces(series: SweepSeries, color: string, xRange: [number, number]): PlotlyTrace[] {
  const points = [...series.points].sort((a, b) => a.x - b.x);
  const x = points.map((p) => p.x);
  const traces: PlotlyTrace[] = [];
  if (points.some((p) => p.std !== undefined)) {
    const edge = (sign: 1 | -1, fill: boolean): PlotlyTrace => ({
      type: "scatter",
      mode: "lines",
      name: `${series.name} ${sign > 0 ? "+" : "−"} std`,
      x,
      y: points.map((p) => p.mean + sign * (p.std ?? 0)),
      line: { color, width: 1, dash: "dot" },
      opacity: 0.5,
      showlegend: false,
      hoverinfo: "skip",
      ...(fill ? { fill: "tonexty", fillcolor: rgba(color, BAND_FILL_OPACITY) } : {}),
    });
    traces.push(edge(1, false), edge(-1, true));
  }
  if (points.length > 0) {
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name: series.name,
      x,
      y: points.map((p) => p.mean),
      line: { color, width: 2 },
      marker: { color, size: 7 },
      hovertext: points.map((p) =>
        p.n === undefined
          ? ""
          : `${p.n} value${p.n === 1 ? "" : "s"}${
            p.std === undefined ? "" : `, std ${p.std.toPrecision(3)}`
          }`
      ),
    });
  }
  if (series.reference) {
    traces.push({
      type: "scatter",
      mode: "lines",
      name: `${series.name}: ${series.reference.label}`,
      x: xRange,
      y: [series.reference.mean, series.reference.mean],
      line: { color, width: 1.5, dash: "dash" },
    });
  }
  return traces;
}

/**
 * A sweep chart: per series, its mean against the swept setting (lines and markers), a band of
 * mean ± standard deviation where a point has one, and its reference as a dashed line across the
 * swept range. Series without points and without a reference draw nothing.
 */
export function sweepChart(
  series: readonly SweepSeries[],
  options: SweepChartOptions,
): PlotlyFigure {
  const xs = [...series.flatMap((s) => s.points.map((p) => p.x)), ...options.sweptValues ?? []];
  const xRange: [number, number] = xs.length > 0 ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  const data = series.flatMap((s, i) =>
    s.points.length === 0 && !s.reference
      ? []
      : seriesTraces(s, PLOTLY_COLORWAY[i % PLOTLY_COLORWAY.length], xRange)
  );
  return plotlyFigure({
    data,
    layout: {
      title: options.title,
      xaxis: { title: options.xTitle, type: options.xType ?? "linear" },
      yaxis: { title: options.yTitle },
    },
  });
}
