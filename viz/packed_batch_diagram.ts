/**
 * SSD4Rec's packed batch drawn as its paper's Figure 2 draws it: several histories of different
 * lengths concatenated in one row (a colour per segment), the segment id of every token, and the
 * row the backward direction reads, every segment reversed in place with its boundaries where
 * they were, each token linked to where it came from. The caller gives the batch's arrays and
 * the reversed row as plain data ({@link PackedBatchPicture}); nothing here knows the model.
 *
 * @module
 */
import { PLOTLY_COLORWAY } from "./figure_spec.ts";
import { svgDocument, svgElement, svgText } from "./svg_elements.ts";
import { type SvgFigure, svgFigure } from "./svg_figure.ts";

/** What {@link packedBatchDiagram} draws: one packed row and its in-place reversal. */
export interface PackedBatchPicture {
  /** The figure title. */
  readonly title: string;
  /** `[T]` item ids of the row, the histories concatenated oldest first. */
  readonly items: ArrayLike<number>;
  /** `[T]` the segment id of every token, `0 … B−1`, non-decreasing. */
  readonly seqIdx: ArrayLike<number>;
  /** `[T]` the position each token of the reversed row takes its item from. */
  readonly reversal: ArrayLike<number>;
  /** `[T]` the reversed row's item ids (`items[reversal[t]]`). */
  readonly reversedItems: ArrayLike<number>;
  /** `[B]` each segment's user id, for the legend (default: none shown). */
  readonly users?: ArrayLike<number>;
  /** `[B]` the position of each segment's last token, marked in the forward row. */
  readonly lastIndex?: ArrayLike<number>;
}

/** Geometry of the diagram, in pixels. */
const LAYOUT = {
  labelWidth: 190,
  right: 20,
  minCell: 18,
  maxCell: 34,
  maxRowWidth: 1000,
  top: 52,
  idRow: 22,
  itemRow: 46,
  gap: 8,
  links: 64,
  legendLine: 18,
} as const;

/** Throws unless the arrays describe one packed row and its reversal consistently. */
function checkPicture(picture: PackedBatchPicture): number {
  const where = `packedBatchDiagram "${picture.title}"`;
  const t = picture.items.length;
  if (t === 0) throw new RangeError(`${where}: the row has no tokens`);
  const { seqIdx, reversal, reversedItems } = picture;
  for (const [name, a] of Object.entries({ seqIdx, reversal, reversedItems })) {
    if (a.length !== t) {
      throw new RangeError(`${where}: ${name} has ${a.length} entries for ${t} tokens`);
    }
  }
  for (let p = 0; p < t; p++) {
    const s = picture.seqIdx[p];
    if (!Number.isInteger(s) || s < 0 || (p > 0 && s < picture.seqIdx[p - 1])) {
      throw new RangeError(
        `${where}: seqIdx[${p}] = ${s}; segment ids must be non-negative and non-decreasing`,
      );
    }
  }
  for (let p = 0; p < t; p++) {
    const s = picture.seqIdx[p];
    const from = picture.reversal[p];
    if (!Number.isInteger(from) || from < 0 || from >= t || picture.seqIdx[from] !== s) {
      throw new RangeError(
        `${where}: reversal[${p}] = ${from} is not a position of token ${p}'s segment ${s}`,
      );
    }
    if (picture.reversedItems[p] !== picture.items[from]) {
      throw new RangeError(
        `${where}: reversedItems[${p}] = ${picture.reversedItems[p]} but the item at ` +
          `reversal[${p}] = ${from} is ${picture.items[from]}`,
      );
    }
  }
  return t;
}

/** The colour of segment `s`. */
function segmentColor(s: number): string {
  return PLOTLY_COLORWAY[s % PLOTLY_COLORWAY.length];
}

/** Geometry shared by the rows: where the cells start, their width, and x of a cell's centre. */
interface Columns {
  readonly left: number;
  readonly cell: number;
  readonly center: (p: number) => number;
}

/**
 * One row of cells coloured by segment, labelled on the left; `values` is written in every cell
 * (vertically where the cells are narrow and `vertical` is set).
 */
function cellRow(
  columns: Columns,
  y: number,
  height: number,
  label: string,
  cells: { values: ArrayLike<number>; seqIdx: ArrayLike<number>; vertical: boolean },
  out: string[],
): void {
  out.push(svgText(LAYOUT.labelWidth - 12, y + height / 2 + 4, label, {
    "text-anchor": "end",
    fill: "#222222",
  }));
  const { left, cell } = columns;
  for (let p = 0; p < cells.values.length; p++) {
    const x = left + p * cell;
    const color = segmentColor(cells.seqIdx[p]);
    out.push(svgElement("rect", {
      x,
      y,
      width: cell,
      height,
      fill: color,
      "fill-opacity": 0.28,
      stroke: "#ffffff",
      "stroke-width": 1,
    }));
    const text = String(cells.values[p]);
    const cx = columns.center(p);
    const cy = y + height / 2;
    out.push(
      cells.vertical
        ? svgText(cx + 4, cy, text, {
          "text-anchor": "middle",
          "font-size": 10,
          fill: "#222222",
          transform: `rotate(-90 ${cx + 4} ${cy})`,
        })
        : svgText(cx, cy + 4, text, { "text-anchor": "middle", "font-size": 10, fill: "#222222" }),
    );
  }
}

/** Heavy borders at every segment boundary, from y0 to y1, so segments read as blocks. */
function segmentBorders(
  columns: Columns,
  seqIdx: ArrayLike<number>,
  y0: number,
  y1: number,
  out: string[],
): void {
  for (let p = 0; p <= seqIdx.length; p++) {
    if (p > 0 && p < seqIdx.length && seqIdx[p] === seqIdx[p - 1]) continue;
    const x = columns.left + p * columns.cell;
    out.push(svgElement("line", { x1: x, y1: y0, x2: x, y2: y1, stroke: "#333333" }));
  }
}

/**
 * Draws one packed row as SSD4Rec's Figure 2 does ({@link PackedBatchPicture}): the segment ids,
 * the forward row coloured by segment with each segment's last token marked, links from every
 * token to its place in the reversed row, the reversed row itself, and a legend of segments.
 * @throws RangeError when the row is empty, the arrays differ in length, the segment ids
 *   decrease, or the reversal leaves a segment or does not give `reversedItems` (named by position)
 */
export function packedBatchDiagram(picture: PackedBatchPicture): SvgFigure {
  const tokens = checkPicture(picture);
  const segments = picture.seqIdx[tokens - 1] + 1;
  const cell = Math.max(
    LAYOUT.minCell,
    Math.min(LAYOUT.maxCell, Math.floor(LAYOUT.maxRowWidth / tokens)),
  );
  const columns: Columns = {
    left: LAYOUT.labelWidth,
    cell,
    center: (p) => LAYOUT.labelWidth + (p + 0.5) * cell,
  };
  const width = LAYOUT.labelWidth + tokens * cell + LAYOUT.right;
  const vertical = cell < 30;
  const legendColumns = Math.max(1, Math.floor((width - 40) / 230));
  const legendRows = Math.ceil(segments / legendColumns);
  const idTop = LAYOUT.top;
  const forwardTop = idTop + LAYOUT.idRow + LAYOUT.gap;
  const linksTop = forwardTop + LAYOUT.itemRow;
  const backwardTop = linksTop + LAYOUT.links;
  const legendTop = backwardTop + LAYOUT.itemRow + 28;
  const height = legendTop + legendRows * LAYOUT.legendLine + 16;
  const out: string[] = [
    svgElement("rect", { width, height, fill: "#ffffff" }),
    svgText(width / 2, 28, picture.title, { "text-anchor": "middle", "font-size": 16 }),
  ];
  const positions = Array.from({ length: tokens }, (_, p) => p);
  cellRow(columns, idTop, LAYOUT.idRow, "segment ids (seqIdx)", {
    values: picture.seqIdx,
    seqIdx: picture.seqIdx,
    vertical: false,
  }, out);
  cellRow(columns, forwardTop, LAYOUT.itemRow, "forward: histories packed", {
    values: picture.items,
    seqIdx: picture.seqIdx,
    vertical,
  }, out);
  for (const p of positions) {
    const from = picture.reversal[p];
    out.push(svgElement("path", {
      d: `M${columns.center(from)} ${linksTop + 2}C${columns.center(from)} ${
        linksTop + LAYOUT.links / 2
      } ${columns.center(p)} ${linksTop + LAYOUT.links / 2} ${columns.center(p)} ${
        backwardTop - 2
      }`,
      fill: "none",
      stroke: segmentColor(picture.seqIdx[p]),
      "stroke-width": 1.2,
      "stroke-opacity": 0.75,
    }));
  }
  cellRow(columns, backwardTop, LAYOUT.itemRow, "backward: reversed in place", {
    values: picture.reversedItems,
    seqIdx: picture.seqIdx,
    vertical,
  }, out);
  segmentBorders(columns, picture.seqIdx, idTop, forwardTop + LAYOUT.itemRow, out);
  segmentBorders(columns, picture.seqIdx, backwardTop, backwardTop + LAYOUT.itemRow, out);
  for (const p of Array.from(picture.lastIndex ?? [])) {
    const x = columns.center(p);
    out.push(svgElement("path", {
      d: `M${x - 5} ${forwardTop - 1}L${x + 5} ${forwardTop - 1}L${x} ${forwardTop + 6}z`,
      fill: "#222222",
    }));
  }
  const lengths = new Array<number>(segments).fill(0);
  for (let p = 0; p < tokens; p++) lengths[picture.seqIdx[p]]++;
  for (let s = 0; s < segments; s++) {
    const x = 20 + (s % legendColumns) * 230;
    const y = legendTop + Math.floor(s / legendColumns) * LAYOUT.legendLine;
    const user = picture.users ? `user ${picture.users[s]}, ` : "";
    out.push(svgElement("rect", {
      x,
      y: y - 10,
      width: 12,
      height: 12,
      fill: segmentColor(s),
      "fill-opacity": 0.6,
    }));
    out.push(svgText(x + 18, y, `segment ${s}: ${user}${lengths[s]} tokens`, { fill: "#222222" }));
  }
  if (picture.lastIndex) {
    out.push(
      svgText(20, legendTop - 12, "▼ last token of each segment (the state the model reads)", {
        fill: "#555555",
        "font-size": 11,
      }),
    );
  }
  return svgFigure(
    svgDocument(width, height, out),
    `${picture.title}: ${segments} segments packed in ${tokens} tokens (lengths ${
      lengths.join(", ")
    }), each reversed in place for the backward direction`,
  );
}
