/**
 * The runs of a notebook that shows several grids together (an ablation or a sweep whose rows
 * differ by dataset: `run/paper_grids.ts` gives it a grid per dataset), as one list of cells in
 * grid order, with the smoke runs of quick mode limited to the cells a notebook chooses (a
 * sweep's first and last points, say), since each smoke run costs a minute on a CPU adapter.
 * Full mode trains every missing run of the trained datasets, as `gridRuns` does.
 *
 * @module
 */
import { type GridCell, type GridRunOptions, gridRuns } from "./grid_runs.ts";
import type { GridVariant, RunGrid } from "./paper_grids.ts";
import { readRunIndex } from "./run_index.ts";
import { defaultRunsDirectory } from "./run_record.ts";

/** Which cells without any record get a smoke run in quick mode. */
export type SmokeChoice = (grid: RunGrid, variant: GridVariant | undefined) => boolean;

/** Options of {@link studyRuns}. */
export interface StudyRunOptions extends GridRunOptions {
  /** Quick mode: the rows smoke-tested on each trained dataset (default: every row). */
  readonly smoke?: SmokeChoice;
}

/** The rows of a grid that a sweep smoke-tests: its first and last. */
export const SWEEP_ENDS: SmokeChoice = (grid, variant) => {
  const rows = grid.variants ?? [];
  return rows.length === 0 || variant === rows[0] || variant === rows[rows.length - 1];
};

/** `grid` showing every dataset where recorded: nothing trained, nothing smoke-tested. */
function recordedOnlyGrid(grid: RunGrid): RunGrid {
  return { ...grid, datasets: [], recordedOnly: [...grid.datasets, ...(grid.recordedOnly ?? [])] };
}

/** The cells of one grid, smoke-testing only the rows `smoke` chooses. */
async function chosenSmokeRuns(
  grid: RunGrid,
  smoke: SmokeChoice,
  options: GridRunOptions,
): Promise<GridCell[]> {
  const shown = await gridRuns(recordedOnlyGrid(grid), options);
  const rows = (grid.variants ?? [undefined]).filter((v) => smoke(grid, v));
  if (rows.length === 0 || grid.datasets.length === 0) return shown;
  const chosen: RunGrid = rows.every((v) => v === undefined)
    ? { ...grid, recordedOnly: [] }
    : { ...grid, variants: rows as GridVariant[], recordedOnly: [] };
  const smoked = (await gridRuns(chosen, options)).filter((c) => c.smoke !== undefined);
  return shown.map((cell) =>
    smoked.find((s) => s.variant === cell.variant && s.dataset === cell.dataset) ?? cell
  );
}

/**
 * The cells of `grids`, in order: every recorded run in either mode; full mode trains and records
 * the missing runs of each grid's trained datasets; quick mode gives a smoke run to each cell
 * without any record whose row `options.smoke` chooses (every row by default), on the trained
 * datasets only.
 */
export async function studyRuns(
  grids: readonly RunGrid[],
  options: StudyRunOptions,
): Promise<GridCell[]> {
  // Quick mode reads the records once for every grid; full mode lets each grid read them after
  // the previous grid's training.
  const directory = options.directory ?? defaultRunsDirectory();
  const shared: GridRunOptions = options.mode === "quick"
    ? { ...options, directory, index: options.index ?? await readRunIndex(directory) }
    : options;
  const cells: GridCell[] = [];
  for (const grid of grids) {
    cells.push(
      ...(options.mode === "quick" && options.smoke
        ? await chosenSmokeRuns(grid, options.smoke, shared)
        : await gridRuns(grid, shared)),
    );
  }
  return cells;
}
