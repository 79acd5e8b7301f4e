/**
 * Loaders for the interaction formats the papers' data comes in, each into an Arrow table: the
 * format told from a file's name and first line, and the entry points that read any format.
 * Each format's parser lives in its own module (`./text_formats.ts`, `./atomic_inter.ts`,
 * `./kuairand.ts`), all filling an `InteractionBuilder` (`./interactions.ts`).
 *
 * Every loader keeps the rows in file order and maps the raw user and item tokens (strings, as
 * RecBole reads them) to Int32 ids in order of first appearance, starting at 1; id 0 is `[PAD]`.
 *
 * @module
 */
import { extname } from "node:path";
import { DataFormatError } from "./errors.ts";
import { locateRecord } from "./delimited.ts";
import type {
  InteractionFormat,
  InteractionParseOptions,
  LoadedInteractions,
} from "./interactions.ts";
import { parseMovieLens, parseWhitespace } from "./text_formats.ts";
import { parseAtomic } from "./atomic_inter.ts";
import { parseKuaiRand } from "./kuairand.ts";

export {
  INTERACTION_FORMATS,
  type InteractionFormat,
  type InteractionParseOptions,
  type LoadedInteractions,
} from "./interactions.ts";
export { type KuaiRandLogText, parseKuaiRandLogs } from "./kuairand.ts";

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
