/**
 * Checks an executed notebook (nbformat 4, as `jupyter nbconvert --execute` writes it): every code
 * cell ran and none raised; every cell that declares outputs in its metadata shows them, e.g.
 * `{"ssmrec": {"expect": ["text/html", "image/svg+xml"], "outputs": 2}}` (every listed MIME type
 * among its outputs, at least `outputs` rich outputs); and every dataset statistic a cell carries
 * under {@link STATISTICS_MIME} equals its expected value (`EXPECTED_STATISTICS` in `run/expected_statistics.ts`).
 *
 * @module
 */
import {
  statisticMismatches,
  STATISTICS_MIME,
  type StatisticValues,
} from "./expected_statistics.ts";

/** One output of a notebook code cell, as nbformat 4 stores it. */
export interface NotebookOutput {
  /** `stream`, `display_data`, `execute_result` or `error`. */
  output_type: string;
  /** MIME bundle of display outputs. */
  data?: Record<string, unknown>;
  /** Error name. */
  ename?: string;
  /** Error value. */
  evalue?: string;
  /** Stream name. */
  name?: string;
  /** Stream text. */
  text?: string | string[];
}

/** What a code cell declares it must show (`metadata.ssmrec`). */
export interface CellExpectations {
  /** MIME types that must be among the cell's rich outputs. */
  expect?: string[];
  /** The least number of rich outputs. */
  outputs?: number;
}

/** One notebook cell, as nbformat 4 stores it. */
export interface NotebookCell {
  /** `code`, `markdown` or `raw`. */
  cell_type: string;
  /** The cell's id (nbformat 4.5 on): 1 to 64 letters, digits, `-` or `_`, unique in its notebook. */
  id?: string;
  /** The cell source. */
  source: string | string[];
  /** The cell metadata. */
  metadata?: { ssmrec?: CellExpectations; [key: string]: unknown };
  /** Code cells: the outputs. */
  outputs?: NotebookOutput[];
  /** Code cells: the execution count, `null` when not executed. */
  execution_count?: number | null;
}

/** A notebook, as nbformat 4 stores it. */
export interface Notebook {
  /** The cells. */
  cells: NotebookCell[];
  /** Notebook metadata. */
  metadata?: Record<string, unknown>;
}

/** A cell's source as one string. */
export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/** The first line of a cell's source, for messages. */
function firstLine(cell: NotebookCell): string {
  const line = cellSource(cell).split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 70 ? `${line.slice(0, 70)}…` : line;
}

/** Strips terminal colour codes from kernel tracebacks. */
function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** Whether an output is a rich one (a MIME bundle). */
function isRich(o: NotebookOutput): boolean {
  return o.output_type === "display_data" || o.output_type === "execute_result";
}

/** A number as the messages print it: integers with separators, others in full. */
function shown(value: number | undefined): string {
  if (value === undefined) return "nothing";
  return Number.isInteger(value) ? value.toLocaleString("en-US") : String(value);
}

/** Problems with the dataset statistics a cell's outputs carry. */
function statisticProblems(where: string, outputs: NotebookOutput[]): string[] {
  const problems: string[] = [];
  for (const o of outputs.filter(isRich)) {
    const values = o.data?.[STATISTICS_MIME];
    if (values === undefined) continue;
    if (typeof values !== "object" || values === null || Array.isArray(values)) {
      problems.push(`${where}: ${STATISTICS_MIME} output is not an object of datasets`);
      continue;
    }
    for (const m of statisticMismatches(values as Record<string, StatisticValues>)) {
      problems.push(
        `${where}: ${m.dataset} ${m.statistic} expected ${shown(m.expected)}, got ${shown(m.got)}`,
      );
    }
  }
  return problems;
}

/**
 * Checks an executed notebook as the module documentation describes. Returns the problems found
 * (empty when all is well), each naming the cell and, when `name` is given, the notebook.
 */
export function checkExecutedNotebook(notebook: Notebook, name?: string): string[] {
  const problems: string[] = [];
  notebook.cells.forEach((cell, index) => {
    if (cell.cell_type !== "code") return;
    const where = `${name ? `${name} ` : ""}cell ${index + 1} (${firstLine(cell)})`;
    const outputs = cell.outputs ?? [];
    for (const o of outputs) {
      if (o.output_type === "error") {
        problems.push(`${where} raised ${plain(o.ename ?? "an error")}: ${plain(o.evalue ?? "")}`);
      }
    }
    if (
      cellSource(cell).trim() !== "" &&
      (cell.execution_count === null || cell.execution_count === undefined)
    ) {
      problems.push(`${where} was not executed`);
    }
    problems.push(...statisticProblems(where, outputs));
    const expected = cell.metadata?.ssmrec;
    if (!expected) return;
    const rich = outputs.filter(isRich);
    const present = new Set(rich.flatMap((o) => Object.keys(o.data ?? {})));
    const missing = (expected.expect ?? []).filter((mime) => !present.has(mime));
    if (missing.length > 0) {
      const found = present.size > 0 ? [...present].join(", ") : "no rich output";
      problems.push(`${where} should show ${missing.join(", ")} but has ${found}`);
    }
    if (expected.outputs !== undefined && rich.length < expected.outputs) {
      problems.push(`${where} should show ${expected.outputs} outputs but has ${rich.length}`);
    }
  });
  return problems;
}
