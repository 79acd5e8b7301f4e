/**
 * The loader for RecBole's atomic `.inter` files: tab-separated, with a typed header naming the
 * user, item, time and rating fields.
 *
 * @module
 */
import { DataFormatError } from "./errors.ts";
import { locateRecord, numberField, parseRows, recordError } from "./delimited.ts";
import {
  InteractionBuilder,
  type InteractionParseOptions,
  type LoadedInteractions,
} from "./interactions.ts";

/** RecBole atomic `.inter`: tab-separated with a typed header such as `user_id:token`. */
export function parseAtomic(
  text: string,
  source: string,
  options: InteractionParseOptions,
): LoadedInteractions {
  const rows = parseRows(text, source, "\t", true);
  if (rows.length === 0) throw new DataFormatError(source, "the file is empty");
  const header = rows[0];
  const names: string[] = [];
  const types: string[] = [];
  for (const column of header) {
    const colon = column.lastIndexOf(":");
    if (colon <= 0) {
      throw new DataFormatError(
        source,
        `header field ${JSON.stringify(column)} has no type (expected name:token, name:float, ...)`,
        locateRecord(text, 0).line,
        locateRecord(text, 0).text,
      );
    }
    names.push(column.slice(0, colon));
    types.push(column.slice(colon + 1));
  }
  const find = (name: string, required: boolean): number => {
    const at = names.indexOf(name);
    if (at < 0 && required) {
      const first = locateRecord(text, 0);
      throw new DataFormatError(source, `the header has no ${name} field`, first.line, first.text);
    }
    return at;
  };
  const userAt = find(options.userField ?? "user_id", true);
  const itemAt = find(options.itemField ?? "item_id", true);
  const timeAt = find(options.timeField ?? "timestamp", false);
  const ratingAt = find(options.ratingField ?? "rating", false);
  for (const [at, kind] of [[timeAt, "time"], [ratingAt, "rating"]] as const) {
    if (at >= 0 && types[at] !== "float") {
      const first = locateRecord(text, 0);
      throw new DataFormatError(
        source,
        `the ${kind} field ${names[at]} must be typed float, not ${types[at]}`,
        first.line,
        first.text,
      );
    }
  }
  const builder = new InteractionBuilder(timeAt >= 0, ratingAt >= 0);
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r];
    const fail = (problem: string): never => recordError(text, source, r, problem);
    if (row.length === 1 && row[0].trim() === "") continue;
    if (row.length !== header.length) {
      fail(`expected ${header.length} tab-separated fields as in the header, got ${row.length}`);
    }
    const user = row[userAt];
    const item = row[itemAt];
    if (user === "" || item === "") fail("empty user or item token");
    const timestamp = timeAt >= 0 ? numberField(row[timeAt], names[timeAt], fail) : NaN;
    const rating = ratingAt >= 0 ? numberField(row[ratingAt], names[ratingAt], fail) : NaN;
    builder.add(builder.userId(user), builder.itemId(item), timestamp, rating);
  }
  return builder.finish(source, "atomic-inter");
}
