/**
 * A model's architecture drawn as a column of steps, top to bottom in the order the forward pass
 * runs them: each step's name, what it does and its parameter count (with its parameterised
 * parts listed), the tensor shape on the arrow into the next step, and brackets around the steps
 * of one layer. The caller describes the model in plain data ({@link ArchitectureDescription});
 * nothing here knows any model.
 *
 * @module
 */
import { svgDocument, svgElement, svgText } from "./svg_elements.ts";
import { type SvgFigure, svgFigure } from "./svg_figure.ts";

/** A tensor shape: sizes, as numbers or as symbols such as `"B"` and `"L"`. */
export type TensorShape = readonly (number | string)[];

/** A parameterised part of a step (one weight matrix, one bias, a Linear). */
export interface ArchitecturePart {
  /** Its name, e.g. the parameter name below the step's module (`in_proj_x`). */
  readonly name: string;
  /** What it is, e.g. `Linear 64 → 128`. */
  readonly detail?: string;
  /** Its number of scalar parameters. */
  readonly parameters: number;
}

/** One step of the forward pass. */
export interface ArchitectureStep {
  /** The step's name, e.g. `Item embedding`. */
  readonly label: string;
  /** What it does, one short line (e.g. the module's parameter prefix, or `p = 0.2`). */
  readonly detail?: string;
  /** Its number of scalar parameters (0 for a step without any). */
  readonly parameters: number;
  /** The shape of its output, the tensor on the arrow into the next step. */
  readonly output: TensorShape;
  /** Its parts; when given, their parameters must add up to the step's. */
  readonly parts?: readonly ArchitecturePart[];
  /** Consecutive steps with the same group (e.g. `Mamba layer 1 of 2`) are bracketed together. */
  readonly group?: string;
}

/** A model's forward pass as {@link architectureDiagram} draws it. */
export interface ArchitectureDescription {
  /** The figure title. */
  readonly title: string;
  /** The input: its name and shape. */
  readonly input: { readonly label: string; readonly shape: TensorShape };
  /** The steps in the order the forward pass runs them. */
  readonly steps: readonly ArchitectureStep[];
  /** A line under the figure (what the symbols in the shapes stand for). */
  readonly note?: string;
}

/** Geometry of the diagram, in pixels. */
const LAYOUT = {
  width: 760,
  boxLeft: 150,
  boxWidth: 460,
  top: 46,
  inputHeight: 30,
  arrow: 38,
  boxHeader: 38,
  partLine: 16,
  groupHeader: 24,
  groupPad: 10,
  bottom: 52,
} as const;

/** Colours of the diagram. */
const COLORS = {
  parameterised: { fill: "#e8f0fb", stroke: "#1f77b4" },
  free: { fill: "#ffffff", stroke: "#9a9a9a" },
  group: "#7f7f7f",
  text: "#222222",
  muted: "#555555",
  shape: "#8c564b",
} as const;

/** A count with thousands separators. */
function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** A shape as `[B, L, 64]`. */
export function formatShape(shape: TensorShape): string {
  return `[${shape.join(", ")}]`;
}

/** Throws when a count is not a non-negative integer or a step's parts do not add up. */
function checkDescription(description: ArchitectureDescription): void {
  if (description.steps.length === 0) {
    throw new RangeError(`architectureDiagram "${description.title}": give at least one step`);
  }
  description.steps.forEach((step, i) => {
    const where = `architectureDiagram "${description.title}", step ${i + 1} (${step.label})`;
    const counts: [string, number][] = [
      ["parameters", step.parameters],
      ...(step.parts ?? []).map((p): [string, number] => [`part ${p.name}`, p.parameters]),
    ];
    for (const [what, n] of counts) {
      if (!Number.isInteger(n) || n < 0) {
        throw new RangeError(`${where}: ${what} must be a non-negative integer, got ${n}`);
      }
    }
    if (step.parts && step.parts.length > 0) {
      const sum = step.parts.reduce((s, p) => s + p.parameters, 0);
      if (sum !== step.parameters) {
        throw new RangeError(
          `${where}: its parts hold ${count(sum)} parameters but the step says ` +
            `${count(step.parameters)}; list every part or correct the step's count`,
        );
      }
    }
  });
}

/** The height of a step's box. */
function boxHeight(step: ArchitectureStep): number {
  return LAYOUT.boxHeader + (step.parts?.length ?? 0) * LAYOUT.partLine + (step.parts ? 6 : 0);
}

/** A downward arrow from y0 to y1 at the centre, with the shape written beside its start. */
function arrow(y0: number, y1: number, shape: TensorShape, out: string[]): void {
  const x = LAYOUT.boxLeft + LAYOUT.boxWidth / 2;
  out.push(svgElement("line", {
    x1: x,
    y1: y0,
    x2: x,
    y2: y1 - 2,
    stroke: COLORS.muted,
    "stroke-width": 1.5,
    "marker-end": "url(#ssmrec-arrowhead)",
  }));
  out.push(svgText(x + 10, y0 + 22, formatShape(shape), {
    fill: COLORS.shape,
    "font-family": "Menlo, Consolas, monospace",
    "font-size": 11,
  }));
}

/** A step's box: name and detail, its parameter count, and one line per part. */
function stepBox(step: ArchitectureStep, y: number, out: string[]): void {
  const { boxLeft: x, boxWidth: w } = LAYOUT;
  const colors = step.parameters > 0 ? COLORS.parameterised : COLORS.free;
  out.push(svgElement("rect", {
    x,
    y,
    width: w,
    height: boxHeight(step),
    rx: 5,
    fill: colors.fill,
    stroke: colors.stroke,
    "stroke-width": 1.2,
    "stroke-dasharray": step.parameters > 0 ? undefined : "4 3",
  }));
  out.push(svgText(x + 12, y + 17, step.label, {
    fill: COLORS.text,
    "font-size": 13,
    "font-weight": "bold",
  }));
  if (step.detail) {
    out.push(svgText(x + 12, y + 31, step.detail, { fill: COLORS.muted, "font-size": 11 }));
  }
  out.push(svgText(x + w - 12, y + 17, `${count(step.parameters)} params`, {
    fill: step.parameters > 0 ? COLORS.text : COLORS.muted,
    "text-anchor": "end",
  }));
  (step.parts ?? []).forEach((part, i) => {
    const py = y + LAYOUT.boxHeader + 10 + i * LAYOUT.partLine;
    out.push(svgText(x + 24, py, part.name, {
      fill: COLORS.text,
      "font-family": "Menlo, Consolas, monospace",
      "font-size": 11,
    }));
    if (part.detail) {
      out.push(svgText(x + 190, py, part.detail, { fill: COLORS.muted, "font-size": 11 }));
    }
    out.push(svgText(x + w - 12, py, count(part.parameters), {
      fill: COLORS.muted,
      "font-size": 11,
      "text-anchor": "end",
    }));
  });
}

/** Vertical positions: each step's box, each group's bracket, and where the last step ends. */
interface Placement {
  readonly boxTops: number[];
  readonly groups: { label: string; top: number; bottom: number }[];
  readonly end: number;
}

/** Places the boxes top to bottom, leaving room for each group's header and padding. */
function place(steps: readonly ArchitectureStep[]): Placement {
  const boxTops: number[] = [];
  const groups: { label: string; top: number; bottom: number }[] = [];
  let y = LAYOUT.top + LAYOUT.inputHeight;
  steps.forEach((step, i) => {
    const startsGroup = step.group !== undefined && steps[i - 1]?.group !== step.group;
    y += LAYOUT.arrow;
    if (startsGroup) {
      groups.push({ label: step.group!, top: y, bottom: 0 });
      y += LAYOUT.groupHeader;
    }
    boxTops.push(y);
    y += boxHeight(step);
    if (step.group !== undefined && steps[i + 1]?.group !== step.group) {
      y += LAYOUT.groupPad;
      groups[groups.length - 1].bottom = y;
    }
  });
  return { boxTops, groups, end: y };
}

/**
 * Draws a model's architecture ({@link ArchitectureDescription}): the input, then every step in
 * order with the shape of the tensor between it and the next, each step's parameter count and
 * parts, brackets around each layer's steps, and the total parameter count.
 * @throws RangeError when there is no step, a count is not a non-negative integer, or a step's
 *   parts do not add up to its parameter count (named by step)
 */
export function architectureDiagram(description: ArchitectureDescription): SvgFigure {
  checkDescription(description);
  const { steps } = description;
  const { boxLeft: x, boxWidth: w, width } = LAYOUT;
  const placement = place(steps);
  const height = placement.end + LAYOUT.bottom;
  const total = steps.reduce((s, step) => s + step.parameters, 0);
  const out: string[] = [
    `<defs><marker id="ssmrec-arrowhead" viewBox="0 0 10 10" refX="9" refY="5" ` +
    `markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" ` +
    `fill="${COLORS.muted}"/></marker></defs>`,
    svgElement("rect", { width, height, fill: "#ffffff" }),
    svgText(width / 2, 26, description.title, {
      "text-anchor": "middle",
      "font-size": 16,
      fill: COLORS.text,
    }),
  ];
  for (const g of placement.groups) {
    out.push(svgElement("rect", {
      x: x - 16,
      y: g.top,
      width: w + 32,
      height: g.bottom - g.top,
      rx: 8,
      fill: "none",
      stroke: COLORS.group,
      "stroke-dasharray": "6 4",
    }));
    out.push(svgText(x - 6, g.top + 16, g.label, { fill: COLORS.group, "font-style": "italic" }));
  }
  out.push(svgElement("rect", {
    x: x + w / 4,
    y: LAYOUT.top,
    width: w / 2,
    height: LAYOUT.inputHeight,
    rx: 15,
    fill: "#f4f4f4",
    stroke: COLORS.muted,
  }));
  out.push(svgText(x + w / 2, LAYOUT.top + 19, description.input.label, {
    "text-anchor": "middle",
    fill: COLORS.text,
  }));
  let previousBottom = LAYOUT.top + LAYOUT.inputHeight;
  let previousShape = description.input.shape;
  steps.forEach((step, i) => {
    const top = placement.boxTops[i];
    arrow(previousBottom, top, previousShape, out);
    stepBox(step, top, out);
    previousBottom = top + boxHeight(step);
    previousShape = step.output;
  });
  const last = steps[steps.length - 1];
  out.push(svgText(x + w / 2, placement.end + 20, `output ${formatShape(last.output)}`, {
    "text-anchor": "middle",
    fill: COLORS.shape,
    "font-family": "Menlo, Consolas, monospace",
    "font-size": 11,
  }));
  out.push(svgText(16, height - 12, `${count(total)} parameters in all`, {
    fill: COLORS.text,
    "font-weight": "bold",
  }));
  if (description.note) {
    out.push(svgText(width - 16, height - 12, description.note, {
      fill: COLORS.muted,
      "font-size": 11,
      "text-anchor": "end",
    }));
  }
  return svgFigure(
    svgDocument(width, height, out),
    `${description.title}: ${steps.length} steps, ${count(total)} parameters, input ` +
      `${formatShape(description.input.shape)} → output ${formatShape(last.output)}`,
  );
}
