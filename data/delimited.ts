/**
 * Reading delimited text with errors that name the file, the line and its text.
 *
 * @module
 */
import { parse as parseDelimited } from "@std/csv";
import { DataFormatError } from "./errors.ts";

/** The 1-based line number and text of the `index`-th non-empty line (how `@std/csv` counts records). */
export function locateRecord(text: string, index: number): { line: number; text: string } {
  let start = 0;
  let line = 0;
  let seen = -1;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    line++;
    const content = text.slice(start, end).replace(/\r$/, "");
    if (content.length > 0 && ++seen === index) return { line, text: content };
    start = end + 1;
  }
  return { line, text: "" };
}

/** The text of 1-based line `line`. */
function lineText(text: string, line: number): string {
  let start = 0;
  for (let i = 1; i < line; i++) {
    const next = text.indexOf("\n", start);
    if (next < 0) return "";
    start = next + 1;
  }
  const end = text.indexOf("\n", start);
  return text.slice(start, end < 0 ? text.length : end).replace(/\r$/, "");
}

/** Parses delimited text with `@std/csv`, turning its syntax errors into {@link DataFormatError}s. */
export function parseRows(
  text: string,
  source: string,
  separator: string,
  lazyQuotes = false,
): string[][] {
  try {
    return parseDelimited(text, { separator, lazyQuotes }) as string[][];
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const match = /parse error on line (\d+)/.exec(message) ?? /line (\d+)/.exec(message);
    const line = match ? Number(match[1]) : undefined;
    const detail = message.replace(/^Syntax error on line \d+; /, "");
    throw new DataFormatError(
      source,
      `not valid delimited text (${detail})`,
      line,
      line === undefined ? undefined : lineText(text, line),
    );
  }
}

/** Throws the {@link DataFormatError} for the `index`-th record of `text`. */
export function recordError(text: string, source: string, index: number, problem: string): never {
  const at = locateRecord(text, index);
  throw new DataFormatError(source, problem, at.line, at.text);
}

/** Parses a decimal number, or throws for the given record. */
export function numberField(
  value: string,
  what: string,
  fail: (problem: string) => never,
): number {
  const x = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(x)) fail(`${what} is not a number (${JSON.stringify(value)})`);
  return x;
}
