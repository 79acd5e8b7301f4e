/**
 * The runs of a notebook that shows several grids together (an ablation or a sweep whose rows
 * differ by dataset: `run/paper_grids.ts` gives it a grid per dataset), as one list of cells in
 * grid order. Each grid runs as `gridRuns` runs it: quick mode smoke-tests only the cells the grid
 * names (`RunGrid.smokeCells`: a sweep's one chosen point, since smoke runs are slow on a CPU
 * adapter), and full mode trains every missing run of the trained datasets.
 *
 * @module
 */
import { type GridCell, type GridRunOptions, gridRuns } from "./grid_runs.ts";
import type { RunGrid } from "./run_grid.ts";
import { readRunIndex } from "./run_index.ts";
import { defaultRunsDirectory } from "./run_record.ts";

/**
 * `grid` showing every dataset only where recorded: its runs are neither trained nor smoke-tested
 * (runs another notebook trains, shown beside a study).
 */
export function recordedOnlyGrid(grid: RunGrid): RunGrid {
  return { ...grid, datasets: [], recordedOnly: [...grid.datasets, ...(grid.recordedOnly ?? [])] };
}

/**
 * The cells of `grids`, in order: every recorded run in either mode; full mode trains and records
 * the missing runs of each grid's trained datasets; quick mode gives a smoke run to each cell
 * without any record that its grid smoke-tests (`smokesCell` of `run/paper_grids.ts`).
 */
export async function studyRuns(
  grids: readonly RunGrid[],
  options: GridRunOptions,
): Promise<GridCell[]> {
  // Quick mode reads the records once for every grid; full mode lets each grid read them after
  // the previous grid's training.
  const directory = options.directory ?? defaultRunsDirectory();
  const shared: GridRunOptions = options.mode === "quick"
    ? { ...options, directory, index: options.index ?? await readRunIndex(directory) }
    : options;
  const cells: GridCell[] = [];
  for (const grid of grids) cells.push(...await gridRuns(grid, shared));
  return cells;
}
