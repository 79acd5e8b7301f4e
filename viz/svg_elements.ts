/**
 * The SVG building blocks every static figure of the project is drawn with: the document
 * element with the project's font, rounded coordinates, elements with escaped attributes, text,
 * and stable ids.
 *
 * ```ts
 * import { svgDocument, svgElement, svgText } from "./viz/svg_elements.ts";
 * const svg = svgDocument(200, 40, [
 *   svgElement("rect", { x: 1, y: 1, width: 198, height: 38, fill: "#eef" }),
 *   svgText(100, 25, "a < b", { "text-anchor": "middle" }),
 * ]);
 * ```
 *
 * @module
 */
import { escapeHtml } from "./table.ts";

/** The font family of every static figure (Plotly.js's default, so both look alike). */
export const SVG_FONT_FAMILY = "Open Sans, Helvetica, Arial, sans-serif";

/** A number rounded to two decimals for SVG coordinates. */
export function px(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/** FNV-1a hash of a string in base 36, for ids that are equal for equal content. */
export function contentHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/** The opening tag of a standalone SVG document of that size, in the project's font. */
export function svgOpenTag(width: number, height: number, fontSize = 12): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${SVG_FONT_FAMILY}" font-size="${fontSize}">`;
}

/** A standalone SVG document: the opening tag, the elements one per line, and the closing tag. */
export function svgDocument(
  width: number,
  height: number,
  elements: readonly string[],
  fontSize = 12,
): string {
  return [svgOpenTag(width, height, fontSize), ...elements, `</svg>`].join("\n");
}

/** Attribute values of an SVG element; `undefined` leaves the attribute out. */
export type SvgAttributes = Readonly<Record<string, string | number | undefined>>;

/** The attributes as ` name="value"` pairs, numbers rounded by {@link px}, text escaped. */
function attributeText(attributes: SvgAttributes): string {
  let out = "";
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    out += ` ${name}="${typeof value === "number" ? px(value) : escapeHtml(value)}"`;
  }
  return out;
}

/**
 * An SVG element: self-closing without `content`, else wrapping it (markup, not escaped; pass
 * text through {@link svgText} or `escapeHtml`).
 */
export function svgElement(name: string, attributes: SvgAttributes, content?: string): string {
  const attrs = attributeText(attributes);
  return content === undefined ? `<${name}${attrs}/>` : `<${name}${attrs}>${content}</${name}>`;
}

/** A text element at (x, y) with its text escaped. */
export function svgText(
  x: number,
  y: number,
  text: string,
  attributes: SvgAttributes = {},
): string {
  return svgElement("text", { x, y, ...attributes }, escapeHtml(text));
}
