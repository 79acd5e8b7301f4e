/**
 * The runs the paper notebooks show (`RunGrid` of `run/run_grid.ts`): for each, the models, the
 * datasets, the seeds and the cells quick mode smoke-tests. `deno task reproduce` plans its runs
 * from {@link RUN_GRIDS}, and the notebooks read the same grids; what they print beside the runs
 * (the paper's values, labels) is in `run/paper_values.ts`.
 *
 * @module
 */
import { modelPreset } from "../models/registry.ts";
import { gridNotebookPath, type GridVariant, type RunGrid, type SmokeCell } from "./run_grid.ts";

/** The seeds every trained cell averages over (RecBole's default seed first). */
export const PAPER_SEEDS: readonly number[] = Object.freeze([2020, 2021, 2022]);

/** The notebook folder of the Mamba4Rec paper's grids. */
const MAMBA4REC_FOLDER = "mamba4rec";

/** The notebook folder of the SSD4Rec paper's grids. */
const SSD4REC_FOLDER = "ssd4rec";

/**
 * The dataset of the cells quick mode smoke-tests in the overall tables, Mamba4Rec's ablation and
 * its training objectives: Beauty, the cheapest that keeps users after its smoke slice
 * (`run/grid_runs.ts`) and 5-core filtering: 11 users and 123 interactions from a 1 MB file, where
 * ML-1M's slice keeps about as few (10 users, 99 interactions) but from a 9.5 MB file, and Video
 * Games' keeps 93 users and 1,195 interactions. Every grid that smoke-tests trains it.
 */
const SMOKE_DATASET = "amazon-beauty";

/**
 * The smoke cells of the rows labelled `labels` on {@link SMOKE_DATASET}; left out, the one cell
 * of each model there in a grid without rows.
 */
function smokeCellsOf(labels?: readonly string[]): readonly SmokeCell[] {
  const cells = labels?.map((label) => ({ label, dataset: SMOKE_DATASET })) ??
    [{ dataset: SMOKE_DATASET }];
  return Object.freeze(cells.map((c) => Object.freeze(c)));
}

/**
 * The Mamba4Rec paper's overall performance table (its main effectiveness table; numbered after
 * the dataset statistics of Table 1): RecBole's baselines and Mamba4Rec on ML-1M, Beauty and Video
 * Games. Quick mode smoke-tests each model on Beauty alone.
 */
export const MAMBA4REC_OVERALL: RunGrid = Object.freeze({
  notebook: "table2_overall",
  folder: MAMBA4REC_FOLDER,
  title: "Mamba4Rec overall performance",
  models: Object.freeze(["caser", "gru4rec", "narm", "sasrec", "bert4rec", "mamba4rec"]),
  datasets: Object.freeze(["ml-1m", "amazon-beauty", "amazon-video-games"]),
  seeds: PAPER_SEEDS,
  smokeCells: smokeCellsOf(),
});

/**
 * The SSD4Rec paper's main results table (Table 4), SSD4Rec's row on the datasets this project
 * has: ML-1M, Beauty and Games (KuaiRand-Pure's log is not in the datasets folder). Quick mode
 * smoke-tests Beauty alone.
 */
export const SSD4REC_OVERALL: RunGrid = Object.freeze({
  notebook: "table4_overall",
  folder: SSD4REC_FOLDER,
  title: "SSD4Rec main results",
  models: Object.freeze(["ssd4rec"]),
  datasets: Object.freeze(["ml-1m", "amazon-beauty", "amazon-video-games"]),
  seeds: PAPER_SEEDS,
  smokeCells: smokeCellsOf(),
});

/**
 * The Mamba4Rec paper's ablation, as its rows are described (the paper's numbers and its exact
 * rows could not be read from a source): the full model, without the feed-forward network,
 * without LayerNorm, without dropout, with a learned position embedding, and 2 and 3 layers.
 * Trained on Beauty; Video Games and ML-1M are shown where recorded. Quick mode smoke-tests the
 * position embedding alone.
 */
export const MAMBA4REC_ABLATION: RunGrid = Object.freeze({
  notebook: "ablation",
  folder: MAMBA4REC_FOLDER,
  title: "Mamba4Rec ablation",
  models: Object.freeze(["mamba4rec"]),
  datasets: Object.freeze(["amazon-beauty"]),
  seeds: PAPER_SEEDS,
  variants: Object.freeze([
    { label: "Mamba4Rec (full)", model: {} },
    { label: "− FFN", model: { ffn: false } },
    { label: "− LayerNorm", model: { layerNorm: false } },
    { label: "− dropout", model: { dropoutProb: 0 } },
    { label: "+ position embedding", model: { positionEmbedding: true }, windowKey: "maxLength" },
    { label: "2 layers", model: { numLayers: 2 } },
    { label: "3 layers", model: { numLayers: 3 } },
  ].map((v) => Object.freeze({ ...v, model: Object.freeze(v.model) }))),
  recordedOnly: Object.freeze(["amazon-video-games", "ml-1m"]),
  // The one row whose settings this layer completes (the position table takes the window length,
  // `windowKey`); the other rows are model settings its tests cover, and a deeper row's smoke run
  // takes several times as long.
  smokeCells: smokeCellsOf(["+ position embedding"]),
});

/** A grid's rows, frozen with their settings. */
function frozenRows(rows: readonly GridVariant[]): readonly GridVariant[] {
  return Object.freeze(rows.map((row) =>
    Object.freeze({
      ...row,
      model: Object.freeze({ ...row.model }),
      ...(row.train ? { train: Object.freeze({ ...row.train }) } : {}),
    })
  ));
}

/** SSD4Rec's preset value of a model or training setting on `dataset` (its official config). */
function ssd4recPresetSetting(dataset: string, scope: "model" | "train", key: string): unknown {
  const value = modelPreset("ssd4rec", dataset)?.[scope][key];
  if (value === undefined) {
    throw new Error(
      `SSD4Rec's preset for '${dataset}' has no ${scope} setting '${key}': a grid row can only ` +
        "leave out a setting the preset gives; add it to SSD4REC_PRESETS in models/registry.ts",
    );
  }
  return value;
}

/** The datasets SSD4Rec's ablation and sweeps train on; ML-1M is shown where recorded. */
const SSD4REC_STUDY_DATASETS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  ablation: Object.freeze(["amazon-beauty", "amazon-video-games"]),
  sweeps: Object.freeze(["amazon-beauty"]),
});

/** The label of SSD4Rec's ablation row that runs the forward direction alone. */
const SSD4REC_FORWARD_ONLY = "forward direction only (β = 0)";

/**
 * SSD4Rec's ablation rows on datasets whose window length L is `window`: the full model, the
 * forward direction alone (β = 0), no masking (ρ = 0), and padded fixed-length windows instead of
 * packed whole histories (`padTo`: each history its last L items, left-padded with id 0 to
 * exactly L tokens, in training and evaluation).
 */
function ssd4recAblationRows(window: number): readonly GridVariant[] {
  return frozenRows([
    { label: "SSD4Rec (full)", model: {} },
    { label: SSD4REC_FORWARD_ONLY, model: { beta: 0 } },
    { label: "− masking (ρ = 0)", model: {}, train: { maskRatio: 0 } },
    { label: "padded windows of L", model: {}, train: { padTo: window } },
  ]);
}

/**
 * A sweep's rows on `dataset`: one per value of SSD4Rec's model or training setting `key`,
 * labelled `symbol = value`, each with the training settings `fixed` besides. The row of the
 * preset's value sets no `key` (with nothing `fixed`, it is the paper's run and shares its
 * records), since a run's key holds only the settings that differ from the preset's.
 */
function ssd4recSweepRows(
  dataset: string,
  sweep: SweepSettings,
  values: readonly number[],
): readonly GridVariant[] {
  const preset = ssd4recPresetSetting(dataset, sweep.scope, sweep.key);
  return frozenRows(values.map((value) => {
    const swept = value === preset ? {} : { [sweep.key]: value };
    const label = sweepRowLabel(sweep, value);
    const model = sweep.scope === "model" ? swept : {};
    const train = { ...sweep.fixed, ...(sweep.scope === "train" ? swept : {}) };
    return Object.keys(train).length > 0 ? { label, model, train } : { label, model };
  }));
}

/** The label of a sweep's row of `value` (`β = 0.5`). */
function sweepRowLabel(sweep: SweepSettings, value: number): string {
  return `${sweep.symbol} = ${value}`;
}

/** What an SSD4Rec sweep varies (see {@link ssd4recSweepRows}). */
interface SweepSettings {
  /** The notebook's file name stem. */
  readonly notebook: string;
  /** What the sweep reproduces. */
  readonly title: string;
  /** The setting's printed symbol (`β`). */
  readonly symbol: string;
  /** Whether the setting is a model or a training setting. */
  readonly scope: "model" | "train";
  /** The setting's configuration key (`beta`). */
  readonly key: string;
  /** Training settings every row holds besides. */
  readonly fixed?: Readonly<Record<string, unknown>>;
}

/**
 * An SSD4Rec sweep's grids: one trained on the sweep datasets, and ML-1M shown where recorded
 * (too costly to train by default); each dataset's rows leave out its preset's value. Quick mode
 * smoke-tests the row of `smoked` on the first sweep dataset, and no other cell.
 */
function ssd4recSweepGrids(
  sweep: SweepSettings,
  values: readonly number[],
  smoked: number,
): readonly RunGrid[] {
  if (!values.includes(smoked)) {
    throw new Error(`${sweep.notebook}: the smoke-tested value ${smoked} is not one of ${values}`);
  }
  const smokeCells = Object.freeze([
    Object.freeze({
      label: sweepRowLabel(sweep, smoked),
      dataset: SSD4REC_STUDY_DATASETS.sweeps[0],
    }),
  ]);
  const grid = (datasets: readonly string[], recordedOnly?: readonly string[]): RunGrid =>
    Object.freeze({
      notebook: sweep.notebook,
      folder: SSD4REC_FOLDER,
      title: sweep.title,
      models: Object.freeze(["ssd4rec"]),
      datasets: Object.freeze([...datasets]),
      seeds: PAPER_SEEDS,
      variants: ssd4recSweepRows((recordedOnly ?? datasets)[0], sweep, values),
      ...(recordedOnly ? { recordedOnly: Object.freeze([...recordedOnly]) } : { smokeCells }),
    });
  return Object.freeze([grid(SSD4REC_STUDY_DATASETS.sweeps), grid([], ["ml-1m"])]);
}

/**
 * The SSD4Rec paper's ablation, as the components its abstract names suggest (its rows and
 * numbers could not be read from a source): the full model, the forward direction only, without
 * masking, and padded fixed-length windows instead of packed whole histories. Trained on Beauty
 * and Video Games (L = 50); ML-1M (L = 200, its own grid, for its padded windows) is shown where
 * recorded. Quick mode smoke-tests the forward direction alone on Beauty.
 */
export const SSD4REC_ABLATION_GRIDS: readonly RunGrid[] = Object.freeze([
  Object.freeze({
    notebook: "ablation",
    folder: SSD4REC_FOLDER,
    title: "SSD4Rec ablation",
    models: Object.freeze(["ssd4rec"]),
    datasets: SSD4REC_STUDY_DATASETS.ablation,
    seeds: PAPER_SEEDS,
    variants: ssd4recAblationRows(
      ssd4recPresetSetting(SSD4REC_STUDY_DATASETS.ablation[0], "train", "maxLength") as number,
    ),
    smokeCells: Object.freeze([
      Object.freeze({ label: SSD4REC_FORWARD_ONLY, dataset: SSD4REC_STUDY_DATASETS.ablation[0] }),
    ]),
  }),
  Object.freeze({
    notebook: "ablation",
    folder: SSD4REC_FOLDER,
    title: "SSD4Rec ablation",
    models: Object.freeze(["ssd4rec"]),
    datasets: Object.freeze([]),
    seeds: PAPER_SEEDS,
    variants: ssd4recAblationRows(ssd4recPresetSetting("ml-1m", "train", "maxLength") as number),
    recordedOnly: Object.freeze(["ml-1m"]),
  }),
]);

/**
 * The sweep of β, the backward direction's weight (its figure's number and values unverified;
 * the preset's β is 0.1 on every dataset): trained on Beauty, ML-1M shown where recorded.
 */
export const SSD4REC_BETA_GRIDS: readonly RunGrid[] = ssd4recSweepGrids(
  { notebook: "figure3_beta", title: "SSD4Rec: β", symbol: "β", scope: "model", key: "beta" },
  [0, 0.05, 0.1, 0.2, 0.5, 1.0],
  1.0,
);

/**
 * The sweep of ρ, the masking probability (its figure's values unverified; the presets' ρ is 0.2
 * on Beauty, 0.1 on ML-1M): trained on Beauty, ML-1M shown where recorded.
 */
export const SSD4REC_RHO_GRIDS: readonly RunGrid[] = ssd4recSweepGrids(
  { notebook: "figure4_rho", title: "SSD4Rec: ρ", symbol: "ρ", scope: "train", key: "maskRatio" },
  [0, 0.1, 0.2, 0.3, 0.4],
  0.4,
);

/**
 * The sweep of the window length L with histories cut to their last L items (`varLen: false`;
 * the paper's runs keep whole histories, so no row is the paper's run; its figure's values are
 * unverified): trained on Beauty (preset L 50), ML-1M (preset L 200) shown where recorded.
 */
export const SSD4REC_MAX_LENGTH_GRIDS: readonly RunGrid[] = ssd4recSweepGrids(
  {
    notebook: "figure5_max_length",
    title: "SSD4Rec: maximum length L",
    symbol: "L",
    scope: "train",
    key: "maxLength",
    fixed: Object.freeze({ varLen: false }),
  },
  [25, 50, 100, 200],
  25,
);

/**
 * Mamba4Rec's training objective: the paper's (the cross-entropy at each prefix sample's last
 * position) against every position of each window (`trainingMode: "all-positions"`), in steps
 * of 2,048 windows or of about 2,048 targets (`targetsPerStep`, as many steps an epoch as the
 * prefix protocol's). Trained on Beauty, Video Games and ML-1M, three seeds each. Quick mode
 * smoke-tests all positions on Beauty.
 */
export const MAMBA4REC_TRAINING_MODES: RunGrid = Object.freeze({
  notebook: "training_modes",
  folder: MAMBA4REC_FOLDER,
  title: "Mamba4Rec training objective",
  models: Object.freeze(["mamba4rec"]),
  datasets: Object.freeze(["amazon-beauty", "amazon-video-games", "ml-1m"]),
  seeds: PAPER_SEEDS,
  variants: Object.freeze([
    Object.freeze({ label: "last position (paper)", model: Object.freeze({}) }),
    Object.freeze({
      label: "all positions",
      model: Object.freeze({}),
      train: Object.freeze({ trainingMode: "all-positions" }),
    }),
    Object.freeze({
      label: "all positions, 2,048 targets a step",
      model: Object.freeze({}),
      train: Object.freeze({ trainingMode: "all-positions", targetsPerStep: 2048 }),
    }),
  ]),
  smokeCells: smokeCellsOf(["all positions"]),
});

/** Every grid a notebook shows; `deno task reproduce` plans the runs of the selected notebooks. */
export const RUN_GRIDS: readonly RunGrid[] = Object.freeze([
  MAMBA4REC_OVERALL,
  SSD4REC_OVERALL,
  MAMBA4REC_ABLATION,
  MAMBA4REC_TRAINING_MODES,
  ...SSD4REC_ABLATION_GRIDS,
  ...SSD4REC_BETA_GRIDS,
  ...SSD4REC_RHO_GRIDS,
  ...SSD4REC_MAX_LENGTH_GRIDS,
]);

/**
 * The grids of the notebooks at `notebooks`, each a path below `notebooks/` without `.ipynb`
 * (`ssd4rec/ablation`): a name without a folder is a top-level notebook's, so two notebooks of
 * the same stem in different folders never share grids.
 */
export function gridsOfNotebooks(notebooks: readonly string[]): RunGrid[] {
  return RUN_GRIDS.filter((g) => notebooks.includes(gridNotebookPath(g)));
}
