/**
 * Errors raised by the data loaders, with the file, line and text they are about.
 *
 * @module
 */

/** Longest piece of an offending line quoted in an error message. */
const QUOTE_LIMIT = 120;

/** Shortens a line for an error message, keeping its start. */
function quote(text: string): string {
  const shown = text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text;
  return JSON.stringify(shown);
}

/**
 * A data file that cannot be read as the format it was read as: a malformed line, an empty file, a
 * missing column. The message names the file, the 1-based line number and quotes the offending
 * text, as in `ratings.dat:17: expected 4 fields separated by "::", got 3: "5::12::4"`.
 */
export class DataFormatError extends Error {
  /** The file (or the name given to in-memory text). */
  readonly file: string;
  /** The 1-based line number, when the problem is on one line. */
  readonly line: number | undefined;
  /** The offending line, when the problem is on one line. */
  readonly text: string | undefined;
  /** What is wrong, without the location. */
  readonly problem: string;

  /** Builds the error; `line` and `text` are left out for whole-file problems. */
  constructor(file: string, problem: string, line?: number, text?: string) {
    const where = line === undefined ? file : `${file}:${line}`;
    super(text === undefined ? `${where}: ${problem}` : `${where}: ${problem}: ${quote(text)}`);
    this.name = "DataFormatError";
    this.file = file;
    this.line = line;
    this.text = text;
    this.problem = problem;
  }
}
