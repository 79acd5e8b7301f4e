/**
 * Tables that render as HTML in notebooks and as aligned text elsewhere, from Arrow tables or rows.
 *
 * @module
 */
import type { Table } from "apache-arrow";
import { JUPYTER_DISPLAY, type MimeBundle } from "../host/mod.ts";
import type { RichDisplay } from "./display.ts";

/** A table cell value. */
export type CellValue = string | number | bigint | boolean | null | undefined;

/** Options of {@link richTable}. */
export interface RichTableOptions {
  /** A caption shown above the table. */
  readonly caption?: string;
  /** The columns to show, in order (default: all, in the order of the first row or the schema). */
  readonly columns?: readonly string[];
  /** Header labels by column name (default: the column name). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Custom cell formatting by column name. */
  readonly format?: Readonly<Record<string, (value: CellValue) => string>>;
  /** A note shown under the table. */
  readonly note?: string;
}

/** A table with a rich notebook display (`text/html` and `text/plain`). */
export interface RichTable extends RichDisplay {
  /** The column names, in display order. */
  readonly columns: readonly string[];
  /** The rows as plain objects. */
  readonly rows: readonly Readonly<Record<string, CellValue>>[];
  /** The HTML rendering. */
  toHTML(): string;
  /** The aligned plain-text rendering. */
  toText(): string;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/**
 * Formats a cell: integers with thousands separators, other numbers with at most four decimals,
 * `null`/`undefined`/NaN as an empty cell.
 */
export function formatCell(value: CellValue): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "";
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return value.toLocaleString("en-US", { maximumFractionDigits: 4 });
  }
  if (typeof value === "bigint") return value.toLocaleString("en-US");
  return String(value);
}

/** Formats a fraction as a percentage with two decimals (`0.9516` → `95.16%`); empty otherwise. */
export function formatPercent(fraction: CellValue): string {
  return typeof fraction === "number" && Number.isFinite(fraction)
    ? `${(fraction * 100).toFixed(2)}%`
    : "";
}

/** Whether a value is shown right-aligned. */
function isNumeric(value: CellValue): boolean {
  return typeof value === "number" || typeof value === "bigint";
}

/** Plain rows from an Arrow table. */
function rowsOfArrow(table: Table): { columns: string[]; rows: Record<string, CellValue>[] } {
  const columns = table.schema.fields.map((f) => f.name);
  const vectors = columns.map((c) => table.getChild(c));
  const rows: Record<string, CellValue>[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const row: Record<string, CellValue> = {};
    columns.forEach((c, k) => {
      const v = vectors[k]?.get(i);
      row[c] = v === null || v === undefined || typeof v === "object" ? (v ?? null) : v;
    });
    rows.push(row);
  }
  return { columns, rows };
}

/** Whether the input is an Arrow table. */
function isArrowTable(input: unknown): input is Table {
  return typeof input === "object" && input !== null && "schema" in input && "numRows" in input &&
    typeof (input as Table).getChild === "function";
}

/**
 * Builds a {@link RichTable} from an Arrow table or an array of row objects. Evaluating it as the
 * last expression of a notebook cell (or passing it to `jupyterDisplay`) shows an HTML table.
 */
export function richTable(
  input: Table | readonly Readonly<Record<string, CellValue>>[],
  options: RichTableOptions = {},
): RichTable {
  const source = isArrowTable(input)
    ? rowsOfArrow(input)
    : { columns: Object.keys(input[0] ?? {}), rows: input.map((r) => ({ ...r })) };
  const columns = [...(options.columns ?? source.columns)];
  const rows = source.rows;
  const label = (c: string) => options.labels?.[c] ?? c;
  const cell = (c: string, v: CellValue) => (options.format?.[c] ?? formatCell)(v);
  const numericColumn = columns.map((c) => rows.some((r) => isNumeric(r[c])));

  const toHTML = (): string => {
    const th = "padding:2px 10px;border-bottom:1px solid #999;";
    const td = "padding:2px 10px;";
    const head = columns.map((c, k) =>
      `<th style="${th}text-align:${numericColumn[k] ? "right" : "left"}">${
        escapeHtml(label(c))
      }</th>`
    ).join("");
    const body = rows.map((r) =>
      "<tr>" + columns.map((c, k) =>
        `<td style="${td}text-align:${numericColumn[k] ? "right" : "left"}">${
          escapeHtml(cell(c, r[c]))
        }</td>`
      ).join("") + "</tr>"
    ).join("\n");
    const caption = options.caption
      ? `<caption style="caption-side:top;text-align:left;font-weight:bold;padding:4px 0">${
        escapeHtml(options.caption)
      }</caption>`
      : "";
    const note = options.note
      ? `<div style="font-size:smaller;color:#555;margin-top:4px">${escapeHtml(options.note)}</div>`
      : "";
    return `<div class="ssmrec-table"><table style="border-collapse:collapse;font-variant-numeric:tabular-nums">` +
      `${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>${note}</div>`;
  };

  const toText = (): string => {
    const cells = rows.map((r) => columns.map((c) => cell(c, r[c])));
    const widths = columns.map((c, k) =>
      Math.max(label(c).length, ...cells.map((r) => r[k].length))
    );
    const pad = (s: string, k: number) =>
      numericColumn[k] ? s.padStart(widths[k]) : s.padEnd(widths[k]);
    const lines = [
      columns.map((c, k) => pad(label(c), k)).join("  "),
      widths.map((w) => "-".repeat(w)).join("  "),
      ...cells.map((r) => r.map((s, k) => pad(s, k)).join("  ")),
    ];
    if (options.caption) lines.unshift(options.caption);
    if (options.note) lines.push(options.note);
    return lines.map((l) => l.trimEnd()).join("\n");
  };

  return {
    columns,
    rows,
    toHTML,
    toText,
    [JUPYTER_DISPLAY](): MimeBundle {
      return { "text/html": toHTML(), "text/plain": toText() };
    },
  };
}
