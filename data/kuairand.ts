/**
 * The loaders for KuaiRand log CSVs: one log, or several read as one table.
 *
 * @module
 */
import { DataFormatError } from "./errors.ts";
import { locateRecord, numberField, parseRows, recordError } from "./delimited.ts";
import { InteractionBuilder, type LoadedInteractions } from "./interactions.ts";

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
export function parseKuaiRand(text: string, source: string): LoadedInteractions {
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
