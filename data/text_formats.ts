/**
 * Loaders for the plain-text interaction formats: whitespace-separated `user item` pairs or
 * `user item1 item2 ...` sequences, and MovieLens `ratings.dat`.
 *
 * @module
 */
import { DataFormatError } from "./errors.ts";
import { numberField, parseRows, recordError } from "./delimited.ts";
import { InteractionBuilder, type LoadedInteractions } from "./interactions.ts";

/** Drops the empty fields that runs of separators leave in whitespace-separated text. */
function nonEmpty(row: string[]): string[] {
  return row.includes("") ? row.filter((f) => f !== "") : row;
}

/** Space unless the first non-empty line uses tabs. */
function whitespaceSeparator(text: string): string {
  const firstLine = text.slice(0, Math.max(0, text.indexOf("\n")) || text.length);
  return firstLine.includes("\t") && !firstLine.includes(" ") ? "\t" : " ";
}

/** `user item` per line, or `user item1 item2 ...` per line (chosen by `format`, or by the rows). */
export function parseWhitespace(
  text: string,
  source: string,
  format: "user-item-pairs" | "user-sequences" | undefined,
): LoadedInteractions {
  const rows = parseRows(text, source, whitespaceSeparator(text));
  const chosen = format ??
    (rows.every((r) => nonEmpty(r).length === 2) ? "user-item-pairs" : "user-sequences");
  const builder = new InteractionBuilder(false, false);
  for (let r = 0; r < rows.length; r++) {
    const row = nonEmpty(rows[r]);
    if (chosen === "user-item-pairs") {
      if (row.length !== 2) {
        recordError(text, source, r, `expected 2 fields \`user item\`, got ${row.length}`);
      }
      builder.add(builder.userId(row[0]), builder.itemId(row[1]));
    } else {
      if (row.length < 2) {
        recordError(text, source, r, "expected a user followed by at least one item");
      }
      const user = builder.userId(row[0]);
      for (let i = 1; i < row.length; i++) builder.add(user, builder.itemId(row[i]));
    }
  }
  return builder.finish(source, chosen);
}

/**
 * MovieLens `ratings.dat`: `UserID::MovieID::Rating::Timestamp`.
 *
 * `@std/csv` documents its separator as a single character, so the two-character `::` separator is
 * split here by hand; the format has no quoting, so a plain split is exact.
 */
export function parseMovieLens(text: string, source: string): LoadedInteractions {
  const builder = new InteractionBuilder(true, true);
  let start = 0;
  let line = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    line++;
    const content = text.slice(start, end).replace(/\r$/, "");
    start = end + 1;
    if (content.trim() === "") continue;
    const fail = (problem: string): never => {
      throw new DataFormatError(source, problem, line, content);
    };
    const fields = content.split("::");
    if (fields.length !== 4) {
      fail(`expected 4 fields UserID::MovieID::Rating::Timestamp, got ${fields.length}`);
    }
    if (fields[0] === "" || fields[1] === "") fail("empty UserID or MovieID");
    const rating = numberField(fields[2], "Rating", fail);
    const timestamp = numberField(fields[3], "Timestamp", fail);
    builder.add(builder.userId(fields[0]), builder.itemId(fields[1]), timestamp, rating);
  }
  return builder.finish(source, "movielens-dat");
}
