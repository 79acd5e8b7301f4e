/**
 * What a run grid is: the runs one notebook shows, every model on every dataset with every seed,
 * in rows where it is an ablation or a sweep ({@link RunGrid}); which of its cells quick mode
 * smoke-tests ({@link smokesCell}); and the notebook it belongs to ({@link gridNotebookPath}). The
 * papers' grids are in `run/paper_grids.ts`.
 *
 * @module
 */

/**
 * One row of an ablation or a sweep: model and training settings over the preset's, by which its
 * runs are told apart (their key's variant, `run/model_variant.ts`).
 */
export interface GridVariant {
  /** The row's printed name (`−FFN`). */
  readonly label: string;
  /** Model settings over the preset's; empty for the full model (the paper's settings). */
  readonly model: Readonly<Record<string, unknown>>;
  /**
   * Training settings over the preset's, of those that make a variant (`run/model_variant.ts`'s
   * `VARIANT_TRAIN_KEYS`: `trainingMode`, `targetsPerStep`, `maskRatio`, `varLen`, `padTo`,
   * `maxLength`); unset for the paper's training settings.
   */
  readonly train?: Readonly<Record<string, unknown>>;
  /**
   * The model setting that takes the training window length, if the variant sizes a table by
   * it (the position embedding's `maxLength`).
   */
  readonly windowKey?: string;
}

/** A cell of a grid that quick mode smoke-tests when it has no record. */
export interface SmokeCell {
  /** The row's label ({@link GridVariant.label}); left out in a grid without rows. */
  readonly label?: string;
  /** A dataset the grid trains. */
  readonly dataset: string;
}

/** The runs one notebook shows: every model on every dataset with every seed. */
export interface RunGrid {
  /** The notebook's file name stem (`table2_overall`). */
  readonly notebook: string;
  /**
   * The notebook's folder below `notebooks/` (`mamba4rec`); unset for a notebook at the top
   * level. Two notebooks may share a stem in different folders (`ablation`).
   */
  readonly folder?: string;
  /** What the grid reproduces, for headings and the plan. */
  readonly title: string;
  /** Registered model names, in the order of the table's rows. */
  readonly models: readonly string[];
  /** Canonical dataset names, in the order of the table's columns. */
  readonly datasets: readonly string[];
  /** The seeds of each cell. */
  readonly seeds: readonly number[];
  /**
   * Each model's rows, when the grid is an ablation: every model runs as each variant (unset:
   * once, with the paper's settings).
   */
  readonly variants?: readonly GridVariant[];
  /**
   * Datasets shown where runs are recorded, after {@link RunGrid.datasets}: never trained by the
   * grid and never smoke-tested.
   */
  readonly recordedOnly?: readonly string[];
  /**
   * The cells without any record that quick mode smoke-tests, of every model (smoke runs are slow
   * on a CPU adapter, so a sweep affords one); unset: every cell of the trained datasets. Both the
   * plan's count (`run/reproduction_plan.ts`) and the notebooks' runs (`gridRuns` of
   * `run/grid_runs.ts`) read it through {@link smokesCell}.
   */
  readonly smokeCells?: readonly SmokeCell[];
}

/**
 * Whether quick mode smoke-tests the cell of `grid` that is row `variant` (`undefined` in a grid
 * without rows) on the trained `dataset`, when the cell has no record (see
 * {@link RunGrid.smokeCells}).
 */
export function smokesCell(
  grid: RunGrid,
  variant: GridVariant | undefined,
  dataset: string,
): boolean {
  if (!grid.datasets.includes(dataset)) return false;
  return grid.smokeCells === undefined ||
    grid.smokeCells.some((c) => c.label === variant?.label && c.dataset === dataset);
}

/**
 * The notebook a grid belongs to: its path below `notebooks/` without `.ipynb`
 * (`mamba4rec/ablation`; `datasets` at the top level).
 */
export function gridNotebookPath(grid: RunGrid): string {
  return grid.folder ? `${grid.folder}/${grid.notebook}` : grid.notebook;
}
