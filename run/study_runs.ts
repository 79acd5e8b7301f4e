/**
 * The runs of a notebook that shows several grids together (an ablation or a sweep whose rows
 * differ by dataset: `run/paper_grids.ts` gives it a grid per dataset), as one list of cells in
 * grid order, with the smoke runs of quick mode limited to the cells each grid names
 * (`RunGrid.smokeCells`: a sweep's one chosen point), or that a notebook chooses, since smoke
 * runs are slow on a CPU adapter. Full mode trains every missing run of the trained datasets, as
 * `gridRuns` does.
 *
 * @module
 */
import { type GridCell, type GridRunOptions, gridRuns } from "./grid_runs.ts";
import { type GridVariant, type RunGrid, smokesCell } from "./paper_grids.ts";
import { readRunIndex } from "./run_index.ts";
import { defaultRunsDirectory } from "./run_record.ts";

/**
 * Whether a cell without any record (`variant` of `grid` on the trained `dataset`) gets a smoke
 * run in quick mode.
 */
export type SmokeChoice = (
  grid: RunGrid,
  variant: GridVariant | undefined,
  dataset: string,
) => boolean;

/** Options of {@link studyRuns}. */
export interface StudyRunOptions extends GridRunOptions {
  /**
   * Quick mode: the cells smoke-tested (default: those each grid names in its `smokeCells`, or
   * every cell of a trained dataset where it names none; the plan of `deno task reproduce` counts
   * the default's).
   */
  readonly smoke?: SmokeChoice;
}

/**
 * The cells of the rows labelled `labels` on the trained datasets `datasets` (every trained
 * dataset when left out): the smoke runs a notebook can afford.
 */
export function smokeOnly(labels: readonly string[], datasets?: readonly string[]): SmokeChoice {
  return (_grid, variant, dataset) =>
    variant !== undefined && labels.includes(variant.label) &&
    (datasets === undefined || datasets.includes(dataset));
}

/**
 * `grid` showing every dataset only where recorded: its runs are neither trained nor smoke-tested
 * (runs another notebook trains, shown beside a study).
 */
export function recordedOnlyGrid(grid: RunGrid): RunGrid {
  return { ...grid, datasets: [], recordedOnly: [...grid.datasets, ...(grid.recordedOnly ?? [])] };
}

/** The cells of one grid, smoke-testing only the cells `smoke` chooses. */
async function chosenSmokeRuns(
  grid: RunGrid,
  smoke: SmokeChoice,
  options: GridRunOptions,
): Promise<GridCell[]> {
  const shown = await gridRuns(recordedOnlyGrid(grid), options);
  for (const variant of grid.variants ?? [undefined]) {
    for (const dataset of grid.datasets.filter((d) => smoke(grid, variant, d))) {
      const one: RunGrid = {
        ...grid,
        datasets: [dataset],
        recordedOnly: [],
        ...(variant ? { variants: [variant] } : {}),
      };
      const [smoked] = await gridRuns(one, options);
      const at = shown.findIndex((c) => c.variant === variant && c.dataset === dataset);
      if (smoked.smoke !== undefined && at >= 0) shown[at] = smoked;
    }
  }
  return shown;
}

/**
 * The cells of `grids`, in order: every recorded run in either mode; full mode trains and records
 * the missing runs of each grid's trained datasets; quick mode gives a smoke run to each cell
 * without any record that `options.smoke` chooses (by default those of the grid's `smokeCells`,
 * every cell where it has none), on the trained datasets only.
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
    const smoke = options.smoke ?? (grid.smokeCells ? smokesCell : undefined);
    cells.push(
      ...(options.mode === "quick" && smoke
        ? await chosenSmokeRuns(grid, smoke, shared)
        : await gridRuns(grid, shared)),
    );
  }
  return cells;
}
