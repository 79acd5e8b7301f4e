/**
 * The runs the paper notebooks show: for each, the models, the datasets and the seeds
 * ({@link RunGrid}); the paper's values where a readable source confirms them
 * ({@link PaperValues}); and the datasets whose file orders sequences otherwise than the papers'
 * pipeline ({@link ORDER_LIMITED_DATASETS}). `deno task reproduce` plans its runs from
 * {@link RUN_GRIDS}, and the notebooks read the same grids.
 *
 * @module
 */

/** The seeds every trained cell averages over (RecBole's default seed first). */
export const PAPER_SEEDS: readonly number[] = Object.freeze([2020, 2021, 2022]);

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
   * `VARIANT_TRAIN_KEYS`: `trainingMode`, `maskRatio`, `varLen`, `padTo`, `maxLength`); unset
   * for the paper's training settings.
   */
  readonly train?: Readonly<Record<string, unknown>>;
  /**
   * The model setting that takes the training window length, if the variant sizes a table by
   * it (the position embedding's `maxLength`).
   */
  readonly windowKey?: string;
}

/** The runs one notebook shows: every model on every dataset with every seed. */
export interface RunGrid {
  /** The notebook's file name stem (`table2_overall`). */
  readonly notebook: string;
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
}

/**
 * The Mamba4Rec paper's overall performance table (its main effectiveness table; numbered after
 * the dataset statistics of Table 1): RecBole's baselines and Mamba4Rec on ML-1M, Beauty and Video
 * Games.
 */
export const MAMBA4REC_OVERALL: RunGrid = Object.freeze({
  notebook: "table2_overall",
  title: "Mamba4Rec overall performance",
  models: Object.freeze(["caser", "gru4rec", "narm", "sasrec", "bert4rec", "mamba4rec"]),
  datasets: Object.freeze(["ml-1m", "amazon-beauty", "amazon-video-games"]),
  seeds: PAPER_SEEDS,
});

/**
 * The SSD4Rec paper's main results table (Table 4), SSD4Rec's row on the datasets this project
 * has: ML-1M, Beauty and Games (KuaiRand-Pure's log is not in the datasets folder).
 */
export const SSD4REC_OVERALL: RunGrid = Object.freeze({
  notebook: "table4_overall",
  title: "SSD4Rec main results",
  models: Object.freeze(["ssd4rec"]),
  datasets: Object.freeze(["ml-1m", "amazon-beauty", "amazon-video-games"]),
  seeds: PAPER_SEEDS,
});

/**
 * The Mamba4Rec paper's ablation, as its rows are described (the paper's numbers and its exact
 * rows could not be read from a source): the full model, without the feed-forward network,
 * without LayerNorm, without dropout, with a learned position embedding, and 2 and 3 layers.
 * Trained on Beauty; Video Games and ML-1M are shown where recorded.
 */
export const MAMBA4REC_ABLATION: RunGrid = Object.freeze({
  notebook: "ablation",
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
});

/** Every grid a notebook shows; `deno task reproduce` plans the runs of the selected notebooks. */
export const RUN_GRIDS: readonly RunGrid[] = Object.freeze([
  MAMBA4REC_OVERALL,
  SSD4REC_OVERALL,
  MAMBA4REC_ABLATION,
]);

/** A paper's test metrics for one model on one dataset, with where they were confirmed. */
export interface PaperValues {
  /** Registered model name. */
  readonly model: string;
  /** Canonical dataset name. */
  readonly dataset: string;
  /** Metric name (`hit@10`) to value. */
  readonly metrics: Readonly<Record<string, number>>;
  /** The readable source that quotes them. */
  readonly source: string;
}

/**
 * The Mamba4Rec paper's overall-table values that a readable source confirms: only Mamba4Rec on
 * ML-1M (quoted from the paper in the official repository's issues); every other cell is
 * unverified and shows ours alone.
 */
export const MAMBA4REC_PAPER_VALUES: readonly PaperValues[] = Object.freeze([{
  model: "mamba4rec",
  dataset: "ml-1m",
  metrics: Object.freeze({ "hit@10": 0.3121, "ndcg@10": 0.1822, "mrr@10": 0.1425 }),
  source: "https://github.com/chengkai-liu/Mamba4Rec/issues/1",
}]);

/** Why a dataset's numbers cannot be compared with the paper's cell by cell, and the evidence. */
export interface OrderLimit {
  /** One sentence for people. */
  readonly note: string;
  /** The evidence, relative to the project root (a README section). */
  readonly evidence: string;
}

/**
 * Datasets whose file (the datasets folder's, without timestamps) orders each user's sequence by
 * time, where RecBole's float32 timestamps and stable sort keep another order; read from a
 * RecBole `.inter` or MovieLens `ratings.dat` file, the order is RecBole's and the limit is gone.
 */
export const ORDER_LIMITED_DATASETS: Readonly<Record<string, OrderLimit>> = Object.freeze({
  "ml-1m": Object.freeze({
    note: "order-limited: ml-1m.txt orders sequences otherwise than RecBole's pipeline, which " +
      "moves test metrics; not comparable cell by cell",
    evidence: "README.md#why-ml-1m-sits-below-the-paper-the-order-of-the-sequences",
  }),
});

/** Names of the models as the papers print them. */
export const MODEL_LABELS: Readonly<Record<string, string>> = Object.freeze({
  caser: "Caser",
  gru4rec: "GRU4Rec",
  narm: "NARM",
  sasrec: "SASRec",
  bert4rec: "BERT4Rec",
  mamba4rec: "Mamba4Rec",
  ssd4rec: "SSD4Rec",
});

/** Names of the datasets as the papers print them. */
export const DATASET_LABELS: Readonly<Record<string, string>> = Object.freeze({
  "ml-1m": "ML-1M",
  "amazon-beauty": "Beauty",
  "amazon-video-games": "Video Games",
  "kuairand-pure": "KuaiRand",
});

/** The grids of the notebooks named `notebooks` (file name stems). */
export function gridsOfNotebooks(notebooks: readonly string[]): RunGrid[] {
  return RUN_GRIDS.filter((g) => notebooks.includes(g.notebook));
}
