/**
 * A small static SVG renderer for the subset of Plotly figures the project draws: line and
 * scatter traces (lines, markers or both) on linear, log or category axes, with ticks, grid, axis
 * titles, a legend and a title.
 *
 * @module
 */
import {
  PLOTLY_COLORWAY,
  type PlotlyAxis,
  type PlotlyLayout,
  type PlotlyTrace,
  titleText,
} from "./figure_spec.ts";
import { contentHash, px, svgOpenTag } from "./svg_elements.ts";
import { escapeHtml } from "./table.ts";
import { formatTick, linearTicks, logTicks } from "./ticks.ts";

/** A trace reduced to what is drawn: its points in data coordinates and its style. */
interface PreparedTrace {
  name: string;
  color: string;
  opacity: number;
  showLegend: boolean;
  points: { x: number; y: number }[];
  lines: boolean;
  markers: boolean;
  width: number;
  dash: string | undefined;
  markerSize: number;
}

/** How the x axis maps values: its type and, for a category axis, the categories in order. */
interface XAxisMapping {
  type: "linear" | "log" | "category";
  categories: string[];
}

/** The x axis type (category when any trace has a string x, unless the layout says) and categories. */
function xAxisMapping(data: readonly PlotlyTrace[], layout: PlotlyLayout): XAxisMapping {
  const type = layout.xaxis?.type && layout.xaxis.type !== "-"
    ? layout.xaxis.type
    : data.some((t) => (t.x ?? []).some((v) => typeof v === "string"))
    ? "category"
    : "linear";
  const categories: string[] = [];
  if (type === "category") {
    for (const t of data) {
      for (const v of t.x ?? []) {
        const key = String(v);
        if (v !== null && !categories.includes(key)) categories.push(key);
      }
    }
  }
  return { type, categories };
}

/** Reduces each trace to its points (x mapped through the axis) and its resolved style. */
function prepareTraces(data: readonly PlotlyTrace[], axis: XAxisMapping): PreparedTrace[] {
  const xValue = (v: number | string | null | undefined, i: number): number => {
    if (axis.type === "category") {
      return v === null || v === undefined ? NaN : axis.categories.indexOf(String(v));
    }
    if (v === null || v === undefined) return i;
    return typeof v === "number" ? v : Number(v);
  };
  return data.map((t, index) => {
    const xs = t.x ?? (t.y ?? []).map((_, i) => i);
    const ys = t.y ?? [];
    const mode = t.mode ?? "lines+markers";
    return {
      name: t.name ?? `trace ${index}`,
      color: t.marker?.color ?? t.line?.color ?? PLOTLY_COLORWAY[index % PLOTLY_COLORWAY.length],
      opacity: t.opacity ?? t.marker?.opacity ?? 1,
      showLegend: t.showlegend ?? true,
      points: ys.map((y, i) => ({
        x: xValue(xs[i], i),
        y: y === null || y === undefined ? NaN : y,
      })),
      lines: mode.includes("lines"),
      markers: mode.includes("markers"),
      width: t.line?.width ?? 2,
      dash: t.line?.dash,
      markerSize: t.marker?.size ?? 6,
    };
  });
}

/** The visible ranges in axis units (log10 of the value on log axes). */
interface AxisRanges {
  ax0: number;
  ax1: number;
  ay0: number;
  ay1: number;
}

/**
 * The ranges that show every finite point, padded by 3% on a numeric x axis and 6% on y, unless
 * the layout fixes them.
 */
function axisRanges(
  traces: readonly PreparedTrace[],
  axis: XAxisMapping,
  layout: PlotlyLayout,
): AxisRanges {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const p of traces) {
    for (const q of p.points) {
      if (!Number.isFinite(q.x) || !Number.isFinite(q.y)) continue;
      x0 = Math.min(x0, q.x);
      x1 = Math.max(x1, q.x);
      y0 = Math.min(y0, q.y);
      y1 = Math.max(y1, q.y);
    }
  }
  if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
  if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
  if (axis.type === "category") [x0, x1] = [-0.5, axis.categories.length - 0.5];
  const xLog = axis.type === "log";
  const yLog = layout.yaxis?.type === "log";
  let [ax0, ax1] = [toAxis(Math.max(x0, xLog ? 1e-300 : x0), xLog), toAxis(x1, xLog)];
  let [ay0, ay1] = [toAxis(Math.max(y0, yLog ? 1e-300 : y0), yLog), toAxis(y1, yLog)];
  if (ax1 === ax0) [ax0, ax1] = [ax0 - 0.5, ax1 + 0.5];
  if (ay1 === ay0) [ay0, ay1] = [ay0 - 0.5, ay1 + 0.5];
  if (axis.type !== "category") {
    const pad = (ax1 - ax0) * 0.03;
    [ax0, ax1] = [ax0 - pad, ax1 + pad];
  }
  const pad = (ay1 - ay0) * 0.06;
  [ay0, ay1] = [ay0 - pad, ay1 + pad];
  if (layout.xaxis?.range) [ax0, ax1] = layout.xaxis.range;
  if (layout.yaxis?.range) [ay0, ay1] = layout.yaxis.range;
  return { ax0, ax1, ay0, ay1 };
}

/** A value in axis units: log10 on a log axis, else itself. */
function toAxis(v: number, log: boolean): number {
  return log ? Math.log10(v) : v;
}

/** The plot area in pixels and the maps from data values to pixel coordinates. */
interface PlotFrame {
  width: number;
  height: number;
  left: number;
  top: number;
  plotW: number;
  plotH: number;
  xLog: boolean;
  yLog: boolean;
  ranges: AxisRanges;
  sx: (v: number) => number;
  sy: (v: number) => number;
}

/** Lays out the plot area inside the figure, leaving room for titles and the legend. */
function plotFrame(
  size: { width: number; height: number },
  layout: PlotlyLayout,
  axis: XAxisMapping,
  ranges: AxisRanges,
  legendWidth: number,
): PlotFrame {
  const { width, height } = size;
  const left = 72;
  const right = 20 + legendWidth;
  const top = titleText(layout.title) ? 48 : 20;
  const bottom = titleText(layout.xaxis?.title) ? 58 : 40;
  const plotW = Math.max(10, width - left - right);
  const plotH = Math.max(10, height - top - bottom);
  const xLog = axis.type === "log";
  const yLog = layout.yaxis?.type === "log";
  const { ax0, ax1, ay0, ay1 } = ranges;
  return {
    width,
    height,
    left,
    top,
    plotW,
    plotH,
    xLog,
    yLog,
    ranges,
    sx: (v) => left + ((toAxis(v, xLog) - ax0) / (ax1 - ax0)) * plotW,
    sy: (v) => top + plotH - ((toAxis(v, yLog) - ay0) / (ay1 - ay0)) * plotH,
  };
}

/** Tick marks, labels and grid lines of both axes. */
function renderTicks(
  frame: PlotFrame,
  axis: XAxisMapping,
  layout: PlotlyLayout,
  out: string[],
): void {
  const { left, top, plotW, plotH, xLog, yLog, sx, sy } = frame;
  const { ax0, ax1, ay0, ay1 } = frame.ranges;
  const grid = (a: PlotlyAxis | undefined) => a?.showgrid ?? true;
  const xr = [xLog ? 10 ** ax0 : ax0, xLog ? 10 ** ax1 : ax1];
  const xTicks: { v: number; label: string }[] = axis.type === "category"
    ? axis.categories.map((c, i) => ({ v: i, label: c }))
    : (xLog
      ? logTicks(xr[0], xr[1])
      : linearTicks(xr[0], xr[1], Math.max(3, Math.floor(plotW / 90))))
      .map((v) => ({ v, label: formatTick(v) }));
  const yr = [yLog ? 10 ** ay0 : ay0, yLog ? 10 ** ay1 : ay1];
  const yTicks =
    (yLog ? logTicks(yr[0], yr[1]) : linearTicks(yr[0], yr[1], Math.max(3, Math.floor(plotH / 60))))
      .map((v) => ({ v, label: formatTick(v) }));
  for (const t of xTicks) {
    const x = sx(t.v);
    if (x < left - 0.5 || x > left + plotW + 0.5) continue;
    if (grid(layout.xaxis) && axis.type !== "category") {
      out.push(
        `<line x1="${px(x)}" y1="${top}" x2="${px(x)}" y2="${top + plotH}" stroke="#e5e5e5"/>`,
      );
    }
    out.push(
      `<line x1="${px(x)}" y1="${top + plotH}" x2="${px(x)}" y2="${
        top + plotH + 5
      }" stroke="#444"/>`,
    );
    out.push(
      `<text x="${px(x)}" y="${top + plotH + 18}" text-anchor="middle" fill="#444">${
        escapeHtml(t.label)
      }</text>`,
    );
  }
  for (const t of yTicks) {
    const y = sy(t.v);
    if (y < top - 0.5 || y > top + plotH + 0.5) continue;
    if (grid(layout.yaxis)) {
      out.push(
        `<line x1="${left}" y1="${px(y)}" x2="${left + plotW}" y2="${px(y)}" stroke="#e5e5e5"/>`,
      );
    }
    out.push(`<line x1="${left - 5}" y1="${px(y)}" x2="${left}" y2="${px(y)}" stroke="#444"/>`);
    out.push(
      `<text x="${left - 8}" y="${px(y + 4)}" text-anchor="end" fill="#444">${
        escapeHtml(t.label)
      }</text>`,
    );
  }
}

/** The lines and markers of every trace, clipped to the plot area. */
function renderTraces(
  frame: PlotFrame,
  traces: readonly PreparedTrace[],
  clipId: string,
  out: string[],
): void {
  const { xLog, yLog, sx, sy } = frame;
  out.push(`<g clip-path="url(#${clipId})">`);
  const valid = (q: { x: number; y: number }) =>
    Number.isFinite(q.x) && Number.isFinite(q.y) && (!xLog || q.x > 0) && (!yLog || q.y > 0);
  for (const p of traces) {
    if (p.lines) {
      let d = "";
      let pen = false;
      for (const q of p.points) {
        if (!valid(q)) {
          pen = false;
          continue;
        }
        d += `${pen ? "L" : "M"}${px(sx(q.x))} ${px(sy(q.y))}`;
        pen = true;
      }
      const dash = p.dash === "dash"
        ? ` stroke-dasharray="6 4"`
        : p.dash === "dot"
        ? ` stroke-dasharray="2 3"`
        : "";
      if (d) {
        out.push(
          `<path d="${d}" fill="none" stroke="${escapeHtml(p.color)}" stroke-width="${p.width}" ` +
            `stroke-opacity="${p.opacity}" stroke-linejoin="round"${dash}/>`,
        );
      }
    }
    if (p.markers) {
      for (const q of p.points) {
        if (!valid(q)) continue;
        out.push(
          `<circle cx="${px(sx(q.x))}" cy="${px(sy(q.y))}" r="${p.markerSize / 2}" ` +
            `fill="${escapeHtml(p.color)}" fill-opacity="${p.opacity}"/>`,
        );
      }
    }
  }
  out.push(`</g>`);
}

/** The figure title and the axis titles. */
function renderTitles(frame: PlotFrame, layout: PlotlyLayout, out: string[]): void {
  const { width, height, left, top, plotW, plotH } = frame;
  const title = titleText(layout.title);
  const xTitle = titleText(layout.xaxis?.title);
  const yTitle = titleText(layout.yaxis?.title);
  if (title) {
    out.push(
      `<text x="${px(width / 2)}" y="28" text-anchor="middle" font-size="16" fill="#222">${
        escapeHtml(title)
      }</text>`,
    );
  }
  if (xTitle) {
    out.push(
      `<text x="${px(left + plotW / 2)}" y="${
        height - 14
      }" text-anchor="middle" font-size="13" fill="#222">${escapeHtml(xTitle)}</text>`,
    );
  }
  if (yTitle) {
    const cy = top + plotH / 2;
    out.push(
      `<text x="18" y="${px(cy)}" text-anchor="middle" font-size="13" fill="#222" ` +
        `transform="rotate(-90 18 ${px(cy)})">${escapeHtml(yTitle)}</text>`,
    );
  }
}

/** The legend to the right of the plot area: a line (and a marker) and the name of each trace. */
function renderLegend(frame: PlotFrame, items: readonly PreparedTrace[], out: string[]): void {
  const lx = frame.left + frame.plotW + 14;
  items.forEach((p, i) => {
    const ly = frame.top + 10 + i * 20;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${
        escapeHtml(p.color)
      }" stroke-width="${p.lines ? p.width : 0}"/>`,
    );
    if (p.markers) {
      out.push(`<circle cx="${lx + 9}" cy="${ly}" r="3" fill="${escapeHtml(p.color)}"/>`);
    }
    out.push(`<text x="${lx + 24}" y="${ly + 4}" fill="#222">${escapeHtml(p.name)}</text>`);
  });
}

/** Options of {@link renderSvg}. */
export interface SvgOptions {
  /** Width in pixels (default: the layout's, else 720). */
  readonly width?: number;
  /** Height in pixels (default: the layout's, else 420). */
  readonly height?: number;
}

/** Renders a figure to a standalone SVG document string. */
export function renderSvg(
  data: readonly PlotlyTrace[],
  layout: PlotlyLayout = {},
  options: SvgOptions = {},
): string {
  const width = options.width ?? layout.width ?? 720;
  const height = options.height ?? layout.height ?? 420;
  const axis = xAxisMapping(data, layout);
  const traces = prepareTraces(data, axis);
  const legendItems = traces.filter((p) => p.showLegend);
  const showLegend = layout.showlegend ?? legendItems.length > 1;
  const legendWidth = showLegend
    ? Math.min(240, 36 + 7 * Math.max(...legendItems.map((p) => p.name.length), 4))
    : 0;
  const frame = plotFrame(
    { width, height },
    layout,
    axis,
    axisRanges(traces, axis, layout),
    legendWidth,
  );
  const { left, top, plotW, plotH } = frame;

  const out: string[] = [];
  out.push(svgOpenTag(width, height));
  const clipId = `ssmrec-clip-${contentHash(JSON.stringify([data, layout, width, height]))}`;
  out.push(
    `<defs><clipPath id="${clipId}"><rect x="${left}" y="${top}" width="${plotW}" height="${plotH}"/></clipPath></defs>`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="#ffffff" stroke="#444" stroke-width="1"/>`,
  );
  renderTicks(frame, axis, layout, out);
  renderTraces(frame, traces, clipId, out);
  renderTitles(frame, layout, out);
  if (showLegend) renderLegend(frame, legendItems, out);
  out.push(`</svg>`);
  return out.join("\n");
}
