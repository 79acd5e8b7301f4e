/**
 * Loaders for the interaction formats the papers' data comes in, each into an Arrow table.
 *
 * Every loader keeps the rows in file order and maps the raw user and item tokens (strings, as
 * RecBole reads them) to Int32 ids in order of first appearance, starting at 1; id 0 is `[PAD]`.
 *
 * @module
 */
import { type Table, tableFromArrays } from "apache-arrow";
import { extname } from "node:path";
import { DataFormatError } from "./errors.ts";
import { locateRecord, numberField, parseRows, recordError } from "./delimited.ts";

/** The interaction file formats understood by {@link parseInteractions}. */
export type InteractionFormat =
  | "movielens-dat"
  | "atomic-inter"
  | "user-item-pairs"
  | "user-sequences"
  | "kuairand-csv";

/** Each format with a one-line description, for help texts. */
export const INTERACTION_FORMATS: Readonly<Record<InteractionFormat, string>> = {
  "movielens-dat": "MovieLens ratings.dat: UserID::MovieID::Rating::Timestamp",
  "atomic-inter": "RecBole atomic .inter: tab-separated, typed header (user_id:token ...)",
  "user-item-pairs": "one `user item` pair per line, lines in time order",
  "user-sequences": "one `user item1 item2 ...` line per user, items in time order",
  "kuairand-csv": "KuaiRand log CSV with header (user_id, video_id, time_ms, ...)",
};

/** Interactions as loaded from one file, before any filtering. */
export interface LoadedInteractions {
  /** The file the rows came from (or the name given to in-memory text). */
  readonly source: string;
  /** The format the file was read as. */
  readonly format: InteractionFormat;
  /**
   * One row per interaction, in file order: `user` and `item` (Int32 ids, first appearance from 1),
   * `timestamp` (Float64, as in the file) when the source has one, `rating` (Float32) when it has one.
   */
  readonly table: Table;
  /** Raw user tokens by id; `userTokens[0]` is `"[PAD]"`. */
  readonly userTokens: readonly string[];
  /** Raw item tokens by id; `itemTokens[0]` is `"[PAD]"`. */
  readonly itemTokens: readonly string[];
}

/** Options for {@link parseInteractions} and {@link readInteractions}. */
export interface InteractionParseOptions {
  /** The format; detected from the file name and first line when left out. */
  readonly format?: InteractionFormat;
  /** For `.inter` files: the user field name (RecBole's `USER_ID_FIELD`), default `user_id`. */
  readonly userField?: string;
  /** For `.inter` files: the item field name (`ITEM_ID_FIELD`), default `item_id`. */
  readonly itemField?: string;
  /** For `.inter` files: the time field name (`TIME_FIELD`), default `timestamp`. */
  readonly timeField?: string;
  /** For `.inter` files: the rating field name (`RATING_FIELD`), default `rating`. */
  readonly ratingField?: string;
}

/** Accumulates interactions, mapping tokens to ids in order of first appearance. */
class InteractionBuilder {
  #users = new Int32Array(1 << 16);
  #items = new Int32Array(1 << 16);
  #timestamps: Float64Array | undefined;
  #ratings: Float32Array | undefined;
  #length = 0;
  readonly #userIds = new Map<string, number>();
  readonly #itemIds = new Map<string, number>();
  readonly #userTokens: string[] = ["[PAD]"];
  readonly #itemTokens: string[] = ["[PAD]"];

  constructor(withTimestamps: boolean, withRatings: boolean) {
    if (withTimestamps) this.#timestamps = new Float64Array(this.#users.length);
    if (withRatings) this.#ratings = new Float32Array(this.#users.length);
  }

  #grow(): void {
    const size = this.#users.length * 2;
    const grow = <T extends Int32Array | Float64Array | Float32Array>(
      a: T,
      make: (n: number) => T,
    ) => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.#users = grow(this.#users, (n) => new Int32Array(n));
    this.#items = grow(this.#items, (n) => new Int32Array(n));
    if (this.#timestamps) this.#timestamps = grow(this.#timestamps, (n) => new Float64Array(n));
    if (this.#ratings) this.#ratings = grow(this.#ratings, (n) => new Float32Array(n));
  }

  userId(token: string): number {
    let id = this.#userIds.get(token);
    if (id === undefined) {
      id = this.#userTokens.length;
      this.#userIds.set(token, id);
      this.#userTokens.push(token);
    }
    return id;
  }

  itemId(token: string): number {
    let id = this.#itemIds.get(token);
    if (id === undefined) {
      id = this.#itemTokens.length;
      this.#itemIds.set(token, id);
      this.#itemTokens.push(token);
    }
    return id;
  }

  add(user: number, item: number, timestamp = NaN, rating = NaN): void {
    if (this.#length === this.#users.length) this.#grow();
    const i = this.#length++;
    this.#users[i] = user;
    this.#items[i] = item;
    if (this.#timestamps) this.#timestamps[i] = timestamp;
    if (this.#ratings) this.#ratings[i] = rating;
  }

  get length(): number {
    return this.#length;
  }

  finish(source: string, format: InteractionFormat): LoadedInteractions {
    if (this.#length === 0) throw new DataFormatError(source, "the file holds no interactions");
    const n = this.#length;
    const columns: Record<string, Int32Array | Float64Array | Float32Array> = {
      user: this.#users.slice(0, n),
      item: this.#items.slice(0, n),
    };
    if (this.#timestamps) columns.timestamp = this.#timestamps.slice(0, n);
    if (this.#ratings) columns.rating = this.#ratings.slice(0, n);
    return {
      source,
      format,
      table: tableFromArrays(columns),
      userTokens: this.#userTokens,
      itemTokens: this.#itemTokens,
    };
  }
}

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
function parseWhitespace(
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
function parseMovieLens(text: string, source: string): LoadedInteractions {
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

/** RecBole atomic `.inter`: tab-separated with a typed header such as `user_id:token`. */
function parseAtomic(
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

/** The KuaiRand log columns every loader reads: user, item and time in milliseconds. */
const KUAIRAND_COLUMNS = ["user_id", "video_id", "time_ms"] as const;

/** Adds the rows of one KuaiRand log CSV (header with `user_id`, `video_id`, `time_ms`). */
function addKuaiRandRows(builder: InteractionBuilder, text: string, source: string): void {
  const rows = parseRows(text, source, ",");
  if (rows.length === 0) throw new DataFormatError(source, "the file is empty");
  const header = rows[0].map((c) => c.trim());
  const [userAt, itemAt, timeAt] = KUAIRAND_COLUMNS.map((name) => {
    const at = header.indexOf(name);
    if (at < 0) {
      const first = locateRecord(text, 0);
      throw new DataFormatError(source, `the header has no ${name} column`, first.line, first.text);
    }
    return at;
  });
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r];
    const fail = (problem: string): never => recordError(text, source, r, problem);
    if (row.length !== header.length) {
      fail(`expected ${header.length} comma-separated fields as in the header, got ${row.length}`);
    }
    if (row[userAt] === "" || row[itemAt] === "") fail("empty user_id or video_id");
    const timestamp = numberField(row[timeAt], "time_ms", fail);
    builder.add(builder.userId(row[userAt]), builder.itemId(row[itemAt]), timestamp);
  }
}

/** KuaiRand log CSV: a header with at least `user_id`, `video_id` and `time_ms`. */
function parseKuaiRand(text: string, source: string): LoadedInteractions {
  const builder = new InteractionBuilder(true, false);
  addKuaiRandRows(builder, text, source);
  return builder.finish(source, "kuairand-csv");
}

/** The text of one KuaiRand log file, for {@link parseKuaiRandLogs}. */
export interface KuaiRandLogText {
  /** The file the text came from, named in error messages. */
  readonly source: string;
  /** The whole CSV text, header first. */
  readonly text: string;
}

/**
 * Parses several KuaiRand log CSVs as one `kuairand-csv` table: the rows of each log in file
 * order, the logs one after another in the order given, users and videos numbered by first
 * appearance across all of them. Only `user_id`, `video_id` and `time_ms` are read; no feedback
 * column filters rows. `source` names the whole (a folder) in the result. Throws
 * {@link DataFormatError} naming the log for an empty or malformed one.
 */
export function parseKuaiRandLogs(
  logs: readonly KuaiRandLogText[],
  source: string,
): LoadedInteractions {
  if (logs.length === 0) throw new DataFormatError(source, "no KuaiRand log files were given");
  const builder = new InteractionBuilder(true, false);
  for (const log of logs) {
    const text = log.text.startsWith("\ufeff") ? log.text.slice(1) : log.text;
    if (text.trim() === "") throw new DataFormatError(log.source, "the file is empty");
    addKuaiRandRows(builder, text, log.source);
  }
  return builder.finish(source, "kuairand-csv");
}

/**
 * Tells the format of a file from its name and first non-empty line, or `undefined` for whitespace
 * text, whose two formats are told apart by their rows (see {@link parseInteractions}).
 */
export function detectInteractionFormat(
  source: string,
  text: string,
): InteractionFormat | undefined {
  const ext = extname(source).toLowerCase();
  const first = locateRecord(text.slice(0, 65536), 0).text;
  if (ext === ".inter" || /^\S+:(token|float|token_seq|float_seq)(\t|$)/.test(first)) {
    return "atomic-inter";
  }
  if (ext === ".dat" || first.includes("::")) return "movielens-dat";
  if (ext === ".csv") {
    const header = first.split(",").map((c) => c.trim());
    if (header.includes("user_id") && header.includes("video_id")) return "kuairand-csv";
    throw new DataFormatError(
      source,
      "unknown CSV layout (expected a KuaiRand log header with user_id, video_id, time_ms)",
      locateRecord(text, 0).line,
      first,
    );
  }
  return undefined;
}

/**
 * Parses interaction text of any supported format into a {@link LoadedInteractions}.
 *
 * `source` names the text in error messages and drives format detection when `options.format` is
 * not given. Whitespace text whose every line has exactly two fields is read as
 * `user-item-pairs`, otherwise as `user-sequences` (the two readings agree when every line has two
 * fields). Throws {@link DataFormatError} for empty input and malformed lines.
 */
export function parseInteractions(
  text: string,
  source: string,
  options: InteractionParseOptions = {},
): LoadedInteractions {
  if (text.startsWith("\ufeff")) text = text.slice(1);
  if (text.trim() === "") throw new DataFormatError(source, "the file is empty");
  const format = options.format ?? detectInteractionFormat(source, text);
  switch (format) {
    case "movielens-dat":
      return parseMovieLens(text, source);
    case "atomic-inter":
      return parseAtomic(text, source, options);
    case "kuairand-csv":
      return parseKuaiRand(text, source);
    case "user-item-pairs":
    case "user-sequences":
    case undefined:
      return parseWhitespace(text, source, format);
    default:
      throw new TypeError(`unknown interaction format ${JSON.stringify(format)}`);
  }
}

/**
 * Reads an interaction file (see {@link parseInteractions}). Throws `Deno.errors.NotFound` for a
 * missing file and {@link DataFormatError} for an empty or malformed one.
 */
export async function readInteractions(
  path: string,
  options: InteractionParseOptions = {},
): Promise<LoadedInteractions> {
  return parseInteractions(await readText(path), path, options);
}

/** Reads a text file, with a clear message when it does not exist. */
async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`interaction file not found: ${path}`);
    }
    throw error;
  }
}
