/**
 * A small static SVG renderer for the subset of Plotly figures the project draws: line and
 * scatter traces (lines, markers or both), bar traces (categorical or numeric x; grouped, stacked
 * or overlaid) and histogram traces, on linear, log or category axes, with ticks, grid, axis
 * titles, a legend and a title.
 *
 * @module
 */
import { escapeHtml } from "./table.ts";

/** A Plotly trace, as far as the SVG renderer reads it; other Plotly attributes pass through. */
export interface PlotlyTrace {
  /** `"scatter"` (default), `"bar"` or `"histogram"`. */
  type?: "scatter" | "scattergl" | "bar" | "histogram";
  /** For scatter: `"lines"`, `"markers"` or `"lines+markers"` (default `"lines+markers"`). */
  mode?: string;
  /** The legend label. */
  name?: string;
  /** x values (numbers, or strings for categories); for histograms, the samples. */
  x?: readonly (number | string | null)[];
  /** y values. */
  y?: readonly (number | null)[];
  /** Line style. */
  line?: { color?: string; width?: number; dash?: string };
  /** Marker style. */
  marker?: { color?: string; size?: number; opacity?: number };
  /** Trace opacity. */
  opacity?: number;
  /** Histogram: the number of bins to aim for. */
  nbinsx?: number;
  /** Histogram: explicit bins. */
  xbins?: { start?: number; end?: number; size?: number };
  /** Histogram normalisation: `""` (counts), `"percent"` or `"probability"`. */
  histnorm?: string;
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
  /** How bar and histogram traces share x: `"group"` (default), `"stack"` or `"overlay"`. */
  barmode?: "group" | "stack" | "overlay" | "relative";
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

/** A number rounded for SVG coordinates. */
function px(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/** A tick label: short, without floating-point noise, with k/M suffixes for large values. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  const clean = (x: number) => String(Number.parseFloat(x.toPrecision(6)));
  if (a >= 1e9) return `${clean(v / 1e9)}G`;
  if (a >= 1e6) return `${clean(v / 1e6)}M`;
  if (a >= 1e4) return `${clean(v / 1e3)}k`;
  return clean(v);
}

/** Ticks at 1, 2 or 5 × 10^k steps covering [lo, hi], about `count` of them. */
export function linearTicks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const base = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * base).find((s) => s >= raw) ?? 10 * base;
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) {
    ticks.push(k === 0 ? 0 : Number.parseFloat((k * step).toPrecision(12)));
  }
  return ticks;
}

/** Ticks for a log axis over [lo, hi] (data units): powers of ten, with 2 and 5 when few decades. */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const multipliers = b - a <= 2 ? [1, 2, 5] : b - a <= 4 ? [1, 3] : [1];
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) {
    for (const m of multipliers) {
      const t = m * 10 ** e;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(t);
    }
  }
  return ticks;
}

/** FNV-1a hash of a string, in base 36 (for ids that are stable for equal figures). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/** A bar to draw, in data coordinates. */
interface Bar {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** A trace reduced to what is drawn. */
interface Prepared {
  kind: "line" | "bar";
  name: string;
  color: string;
  opacity: number;
  showLegend: boolean;
  points: { x: number; y: number }[];
  bars: Bar[];
  lines: boolean;
  markers: boolean;
  width: number;
  dash: string | undefined;
  markerSize: number;
}

/** Bins numeric samples as Plotly's histogram does with explicit bins, or with nice automatic ones. */
export function histogramBins(
  samples: readonly number[],
  options: { nbinsx?: number; xbins?: { start?: number; end?: number; size?: number } } = {},
): { edges: number[]; counts: number[] } {
  const values = samples.filter((v) => Number.isFinite(v));
  if (values.length === 0) return { edges: [], counts: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let size = options.xbins?.size;
  if (!(size !== undefined && size > 0)) {
    const target = options.nbinsx ?? Math.min(60, Math.ceil(Math.log2(values.length) + 1));
    const raw = (hi - lo || 1) / target;
    const base = 10 ** Math.floor(Math.log10(raw));
    size = [1, 2, 2.5, 5, 10].map((m) => m * base).find((s) => s >= raw) ?? raw;
  }
  const start = options.xbins?.start ?? Math.floor(lo / size) * size;
  // Bins are half-open [a, a + size); automatic bins extend past the largest sample.
  const end = options.xbins?.end;
  const bins = end === undefined
    ? Math.floor((hi - start) / size + 1e-9) + 1
    : Math.max(1, Math.ceil((end - start) / size - 1e-9));
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    const i = Math.floor((v - start) / size + 1e-12);
    if (i >= 0 && i < bins) counts[i]++;
    else if (end !== undefined && v === end) counts[bins - 1]++;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => start + i * size);
  return { edges, counts };
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
  const font = `font-family="Open Sans, Helvetica, Arial, sans-serif"`;

  // Category axis: any string x on any trace.
  const xType = layout.xaxis?.type && layout.xaxis.type !== "-"
    ? layout.xaxis.type
    : data.some((t) => t.type !== "histogram" && (t.x ?? []).some((v) => typeof v === "string"))
    ? "category"
    : "linear";
  const yLog = layout.yaxis?.type === "log";
  const categories: string[] = [];
  if (xType === "category") {
    for (const t of data) {
      for (const v of t.x ?? []) {
        const key = String(v);
        if (v !== null && !categories.includes(key)) categories.push(key);
      }
    }
  }
  const xValue = (v: number | string | null | undefined, i: number): number => {
    if (xType === "category") {
      return v === null || v === undefined ? NaN : categories.indexOf(String(v));
    }
    if (v === null || v === undefined) return i;
    return typeof v === "number" ? v : Number(v);
  };

  // Prepare traces.
  const barTraces = data.filter((t) => t.type === "bar" || t.type === "histogram");
  const barmode = layout.barmode ?? "group";
  const prepared: Prepared[] = data.map((t, index) => {
    const color = t.marker?.color ?? t.line?.color ??
      PLOTLY_COLORWAY[index % PLOTLY_COLORWAY.length];
    const base = {
      name: t.name ?? `trace ${index}`,
      color,
      opacity: t.opacity ?? t.marker?.opacity ??
        (barmode === "overlay" && barTraces.length > 1 ? 0.6 : 1),
      showLegend: t.showlegend ?? true,
      points: [] as { x: number; y: number }[],
      bars: [] as Bar[],
      lines: false,
      markers: false,
      width: t.line?.width ?? 2,
      dash: t.line?.dash,
      markerSize: t.marker?.size ?? 6,
    };
    if (t.type === "histogram") {
      const samples = (t.x ?? []).map((v) => (typeof v === "number" ? v : Number(v)));
      const { edges, counts } = histogramBins(samples, { nbinsx: t.nbinsx, xbins: t.xbins });
      const total = counts.reduce((a, b) => a + b, 0) || 1;
      const scale = t.histnorm === "percent"
        ? 100 / total
        : t.histnorm === "probability"
        ? 1 / total
        : 1;
      return {
        ...base,
        kind: "bar",
        bars: counts.map((c, i) => ({ x0: edges[i], x1: edges[i + 1], y0: 0, y1: c * scale })),
      };
    }
    const xs = t.x ?? (t.y ?? []).map((_, i) => i);
    const ys = t.y ?? [];
    const points = ys.map((y, i) => ({
      x: xValue(xs[i], i),
      y: y === null || y === undefined ? NaN : y,
    }));
    if (t.type === "bar") {
      return { ...base, kind: "bar", points };
    }
    const mode = t.mode ?? "lines+markers";
    return {
      ...base,
      kind: "line",
      points,
      lines: mode.includes("lines"),
      markers: mode.includes("markers"),
    };
  });

  // Bar geometry for bar traces given by points.
  const barIndex = prepared.filter((p) => p.kind === "bar");
  const stackTop = new Map<number, number>();
  prepared.forEach((p) => {
    if (p.kind !== "bar" || p.bars.length > 0) return;
    const xs = p.points.map((q) => q.x).filter(Number.isFinite).sort((a, b) => a - b);
    let spacing = Infinity;
    for (let i = 1; i < xs.length; i++) {
      if (xs[i] > xs[i - 1]) spacing = Math.min(spacing, xs[i] - xs[i - 1]);
    }
    if (!Number.isFinite(spacing)) spacing = 1;
    const band = spacing * 0.8;
    const k = barIndex.indexOf(p);
    const groups = barmode === "group" ? barIndex.length : 1;
    const w = band / groups;
    p.bars = p.points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y)).map((q) => {
      const x0 = q.x - band / 2 + (barmode === "group" ? k * w : 0);
      let y0 = 0;
      if (barmode === "stack" || barmode === "relative") {
        y0 = stackTop.get(q.x) ?? 0;
        stackTop.set(q.x, y0 + q.y);
      }
      return { x0, x1: x0 + w, y0, y1: y0 + q.y };
    });
  });
  if ((barmode === "stack" || barmode === "relative")) {
    // Histograms stack too.
    const tops = new Map<number, number>();
    for (const p of prepared) {
      if (p.kind !== "bar" || p.points.length > 0) continue;
      p.bars = p.bars.map((b) => {
        const y0 = tops.get(b.x0) ?? 0;
        tops.set(b.x0, y0 + b.y1);
        return { ...b, y0, y1: y0 + b.y1 };
      });
    }
  }

  // Data ranges.
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const p of prepared) {
    for (const q of p.points) {
      if (!Number.isFinite(q.x) || !Number.isFinite(q.y)) continue;
      if (p.kind === "line") {
        x0 = Math.min(x0, q.x);
        x1 = Math.max(x1, q.x);
      }
      y0 = Math.min(y0, q.y);
      y1 = Math.max(y1, q.y);
    }
    for (const b of p.bars) {
      x0 = Math.min(x0, b.x0);
      x1 = Math.max(x1, b.x1);
      y0 = Math.min(y0, b.y0, b.y1);
      y1 = Math.max(y1, b.y0, b.y1);
    }
  }
  if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
  if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
  if (barIndex.length > 0 && !yLog) [y0, y1] = [Math.min(0, y0), Math.max(0, y1)];
  if (xType === "category") [x0, x1] = [-0.5, categories.length - 0.5];
  const xLog = xType === "log";
  const toAxis = (v: number, log: boolean) => (log ? Math.log10(v) : v);
  let [ax0, ax1] = [toAxis(Math.max(x0, xLog ? 1e-300 : x0), xLog), toAxis(x1, xLog)];
  let [ay0, ay1] = [toAxis(Math.max(y0, yLog ? 1e-300 : y0), yLog), toAxis(y1, yLog)];
  if (ax1 === ax0) [ax0, ax1] = [ax0 - 0.5, ax1 + 0.5];
  if (ay1 === ay0) [ay0, ay1] = [ay0 - 0.5, ay1 + 0.5];
  if (xType !== "category" && barIndex.length === 0) {
    const pad = (ax1 - ax0) * 0.03;
    [ax0, ax1] = [ax0 - pad, ax1 + pad];
  }
  {
    const pad = (ay1 - ay0) * 0.06;
    ay1 += pad;
    if (!(barIndex.length > 0 && y0 === 0 && !yLog)) ay0 -= pad;
  }
  if (layout.xaxis?.range) [ax0, ax1] = layout.xaxis.range;
  if (layout.yaxis?.range) [ay0, ay1] = layout.yaxis.range;

  // Frame.
  const legendItems = prepared.filter((p) => p.showLegend);
  const showLegend = layout.showlegend ?? legendItems.length > 1;
  const legendWidth = showLegend
    ? Math.min(240, 36 + 7 * Math.max(...legendItems.map((p) => p.name.length), 4))
    : 0;
  const title = titleText(layout.title);
  const xTitle = titleText(layout.xaxis?.title);
  const yTitle = titleText(layout.yaxis?.title);
  const left = 72;
  const right = 20 + legendWidth;
  const top = title ? 48 : 20;
  const bottom = xTitle ? 58 : 40;
  const plotW = Math.max(10, width - left - right);
  const plotH = Math.max(10, height - top - bottom);
  const sx = (v: number) => left + ((toAxis(v, xLog) - ax0) / (ax1 - ax0)) * plotW;
  const sy = (v: number) => top + plotH - ((toAxis(v, yLog) - ay0) / (ay1 - ay0)) * plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" ${font} font-size="12">`,
  );
  const clipId = `ssmrec-clip-${fnv1a(JSON.stringify([data, layout, width, height]))}`;
  out.push(
    `<defs><clipPath id="${clipId}"><rect x="${left}" y="${top}" width="${plotW}" height="${plotH}"/></clipPath></defs>`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="#ffffff" stroke="#444" stroke-width="1"/>`,
  );

  // Ticks and grid.
  const grid = (axis: PlotlyAxis | undefined) => axis?.showgrid ?? true;
  const xr = [xLog ? 10 ** ax0 : ax0, xLog ? 10 ** ax1 : ax1];
  const xTicks: { v: number; label: string }[] = xType === "category"
    ? categories.map((c, i) => ({ v: i, label: c }))
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
    if (grid(layout.xaxis) && xType !== "category") {
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

  // Traces.
  out.push(`<g clip-path="url(#${clipId})">`);
  for (const p of prepared) {
    if (p.kind === "bar") {
      for (const b of p.bars) {
        const lo = Math.min(b.y0, b.y1);
        const hi = Math.max(b.y0, b.y1);
        if (yLog && hi <= 0) continue;
        const xa = sx(b.x0);
        const xb = sx(b.x1);
        const ya = sy(hi);
        const yb = yLog && lo <= 0 ? top + plotH : sy(lo);
        out.push(
          `<rect x="${px(Math.min(xa, xb))}" y="${px(ya)}" width="${px(Math.abs(xb - xa))}" ` +
            `height="${px(Math.max(0, yb - ya))}" fill="${escapeHtml(p.color)}" ` +
            `fill-opacity="${p.opacity}" stroke="#ffffff" stroke-width="0.5"/>`,
        );
      }
      continue;
    }
    const valid = (q: { x: number; y: number }) =>
      Number.isFinite(q.x) && Number.isFinite(q.y) && (!xLog || q.x > 0) && (!yLog || q.y > 0);
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

  // Titles.
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

  // Legend.
  if (showLegend) {
    const lx = left + plotW + 14;
    legendItems.forEach((p, i) => {
      const ly = top + 10 + i * 20;
      if (p.kind === "bar") {
        out.push(
          `<rect x="${lx}" y="${ly - 6}" width="16" height="12" fill="${
            escapeHtml(p.color)
          }" fill-opacity="${p.opacity}"/>`,
        );
      } else {
        out.push(
          `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${
            escapeHtml(p.color)
          }" stroke-width="${p.lines ? p.width : 0}"/>`,
        );
        if (p.markers) {
          out.push(`<circle cx="${lx + 9}" cy="${ly}" r="3" fill="${escapeHtml(p.color)}"/>`);
        }
      }
      out.push(`<text x="${lx + 24}" y="${ly + 4}" fill="#222">${escapeHtml(p.name)}</text>`);
    });
  }
  out.push(`</svg>`);
  return out.join("\n");
}
