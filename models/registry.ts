/**
 * Models by name: each model's input layout, configuration builder, constructor, training
 * defaults and the settings its paper used per dataset (presets). A model is added by adding one
 * entry to {@link MODELS}.
 *
 * @module
 */
import { BERT4Rec, type BERT4RecConfig, bert4recConfig } from "./bert4rec.ts";
import { Caser, type CaserConfig, caserConfig } from "./caser.ts";
import { GRU4Rec, type GRU4RecConfig, gru4recConfig } from "./gru4rec.ts";
import {
  Mamba4Rec,
  MAMBA4REC_DEFAULTS,
  type Mamba4RecConfig,
  mamba4recConfig,
} from "./mamba4rec.ts";
import { NARM, type NARMConfig, narmConfig } from "./narm.ts";
import { SASRec, type SASRecConfig, sasrecConfig } from "./sasrec.ts";
import { SSD4Rec, type SSD4RecConfig, ssd4recConfig } from "./ssd4rec.ts";
import type { PackedModel, PaddedModel, TrainableModel } from "./model.ts";
import { ConfigError, PACKED_TRAIN_DEFAULTS } from "./config.ts";
import { SYNTHETIC_KUAIRAND_NAME } from "../data/synthetic_kuairand.ts";

/**
 * The settings a paper used on one dataset: training overrides (e.g. the window length
 * `maxLength`) and model hyperparameter overrides (e.g. `dropoutProb`). Explicit settings of a
 * run take precedence over a preset.
 */
export interface DatasetPreset {
  /** Training configuration keys (`maxLength`, …). */
  readonly train: Readonly<Record<string, unknown>>;
  /** Model hyperparameters (`dropoutProb`, …). */
  readonly model: Readonly<Record<string, unknown>>;
}

/** One model of the registry, building models of type `M`. */
export interface ModelEntryOf<M extends TrainableModel> {
  /** The model's name, as checkpoints and run records name it. */
  readonly name: string;
  /** How the model takes its batches, which picks the trainer's and the evaluator's batcher. */
  readonly layout: M extends PackedModel ? "packed" : "padded";
  /**
   * The validated hyperparameters: the model's defaults overridden by `overrides` (which set
   * `numItems`, and `numUsers` for a model with a `userTable`); an unknown key or a bad value
   * fails naming the key.
   */
  readonly config: (overrides: Record<string, unknown>) => object;
  /** A model with fresh weights for a configuration built by `config`. */
  readonly create: (config: object) => M;
  /** Training configuration keys the model's own code ships, under every dataset's preset. */
  readonly trainDefaults: Readonly<Record<string, unknown>>;
  /** The paper's settings per dataset, keyed by the dataset's canonical name (`ml-1m`, …). */
  readonly presets: Readonly<Record<string, DatasetPreset>>;
  /** True where the model trains on each window's last real item only (see `PaddedModel`). */
  readonly lastItemOnly?: boolean;
  /**
   * True where the model trains with its own objective on prefix batches (its models have a
   * `trainingLoss`; see `PaddedModel`): no `trainingMode: "all-positions"`.
   */
  readonly ownTrainingLoss?: boolean;
  /**
   * True where the model takes windows of exactly its `maxLength` (Caser's vertical filters span
   * the window): a run's model `maxLength` must equal the training window.
   */
  readonly exactWindow?: boolean;
  /**
   * True where the model has a user embedding (Caser): its configuration also takes the
   * dataset's user count `numUsers` (see {@link datasetSizes}).
   */
  readonly userTable?: boolean;
}

/** The dataset's counts that size a model's tables, PAD included. */
export interface DatasetSizes {
  /** Item ids, PAD included. */
  readonly numItems: number;
  /** User ids, PAD included. */
  readonly numUsers: number;
}

/**
 * The size settings `entry`'s configuration takes from the dataset: `numItems`, and `numUsers`
 * for a model with a user table (`userTable`).
 */
export function datasetSizes(
  entry: { readonly userTable?: boolean },
  sizes: DatasetSizes,
): Record<string, number> {
  const { numItems, numUsers } = sizes;
  return entry.userTable ? { numItems, numUsers } : { numItems };
}

/** One model of the registry: a padded-batch or a packed-batch model's entry. */
export type ModelEntry = ModelEntryOf<PaddedModel> | ModelEntryOf<PackedModel>;

/**
 * Mamba4Rec's settings: L = 200 for MovieLens-1M, 50 for the Amazon datasets; dropout 0.2 from the
 * official config, except Amazon Beauty where a reproduction reports the paper uses 0.4.
 */
export const MAMBA4REC_PRESETS: Readonly<Record<string, DatasetPreset>> = {
  "ml-1m": { train: { maxLength: 200 }, model: { dropoutProb: 0.2 } },
  "amazon-beauty": { train: { maxLength: 50 }, model: { dropoutProb: 0.4 } },
  "amazon-video-games": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
  "amazon-sports": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
  "amazon-toys": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
  "yelp": { train: { maxLength: 50 }, model: { dropoutProb: 0.2 } },
};

/**
 * GRU4Rec as the Mamba4Rec paper ran its baselines: RecBole's GRU4Rec under Mamba4Rec's
 * `config.yaml`, whose `hidden_size` (64), `num_layers` (1) and `dropout_prob` (0.2) override
 * GRU4Rec's own defaults (the embedding stays 64), with that paper's window length L per dataset.
 */
export const GRU4REC_PRESETS: Readonly<Record<string, DatasetPreset>> = Object.fromEntries(
  Object.entries(MAMBA4REC_PRESETS).map(([dataset, preset]) => [dataset, {
    train: preset.train,
    model: {
      hiddenSize: MAMBA4REC_DEFAULTS.hiddenSize,
      numLayers: MAMBA4REC_DEFAULTS.numLayers,
      dropoutProb: MAMBA4REC_DEFAULTS.dropoutProb,
    },
  }]),
);

/**
 * NARM as the Mamba4Rec paper ran its baselines: RecBole's NARM under Mamba4Rec's `config.yaml`,
 * whose `hidden_size` (64) overrides NARM's own; its `dropout_prob` and `num_layers` are not
 * NARM's keys (`dropout_probs`, `n_layers`), so NARM keeps dropout [0.25, 0.5] and one layer.
 * That paper's window length L per dataset.
 */
export const NARM_PRESETS: Readonly<Record<string, DatasetPreset>> = Object.fromEntries(
  Object.entries(MAMBA4REC_PRESETS).map(([dataset, preset]) => [dataset, {
    train: preset.train,
    model: { hiddenSize: MAMBA4REC_DEFAULTS.hiddenSize },
  }]),
);

/**
 * SASRec as the Mamba4Rec paper ran its baselines: RecBole's SASRec under Mamba4Rec's
 * `config.yaml`, whose `hidden_size` (64) is SASRec's own default; its `dropout_prob` and
 * `num_layers` are not SASRec's keys (`hidden_dropout_prob`, `attn_dropout_prob`, `n_layers`), so
 * SASRec keeps dropout 0.5 and two layers. That paper's window length L per dataset, which also
 * sizes the position embedding (`MAX_ITEM_LIST_LENGTH`).
 */
export const SASREC_PRESETS: Readonly<Record<string, DatasetPreset>> = Object.fromEntries(
  Object.entries(MAMBA4REC_PRESETS).map(([dataset, preset]) => [dataset, {
    train: preset.train,
    model: { hiddenSize: MAMBA4REC_DEFAULTS.hiddenSize, maxLength: preset.train.maxLength },
  }]),
);

/**
 * BERT4Rec as the Mamba4Rec paper ran its baselines: RecBole's BERT4Rec under Mamba4Rec's
 * `config.yaml`, whose `hidden_size` (64) is BERT4Rec's own default; its `dropout_prob` and
 * `num_layers` are not BERT4Rec's keys (`hidden_dropout_prob`, `attn_dropout_prob`, `n_layers`),
 * so BERT4Rec keeps dropout 0.2 and two layers. That paper's window length L per dataset, which
 * also sizes the position embedding (`MAX_ITEM_LIST_LENGTH`) and the masked items per window
 * (`int(0.2 · L)`).
 */
export const BERT4REC_PRESETS: Readonly<Record<string, DatasetPreset>> = Object.fromEntries(
  Object.entries(MAMBA4REC_PRESETS).map(([dataset, preset]) => [dataset, {
    train: preset.train,
    model: { hiddenSize: MAMBA4REC_DEFAULTS.hiddenSize, maxLength: preset.train.maxLength },
  }]),
);

/**
 * Caser as the Mamba4Rec paper ran its baselines: RecBole's Caser under Mamba4Rec's
 * `config.yaml`, whose `dropout_prob` (0.2) is Caser's own key and overrides its 0.4; its
 * `hidden_size` and `num_layers` are not Caser's keys (`embedding_size` stays 64). That paper's
 * window length L per dataset, which Caser's convolutions span (`MAX_ITEM_LIST_LENGTH`).
 */
export const CASER_PRESETS: Readonly<Record<string, DatasetPreset>> = Object.fromEntries(
  Object.entries(MAMBA4REC_PRESETS).map(([dataset, preset]) => [dataset, {
    train: preset.train,
    model: { dropoutProb: MAMBA4REC_DEFAULTS.dropoutProb, maxLength: preset.train.maxLength },
  }]),
);

/**
 * SSD4Rec's training settings from its official `config.yaml`, for every dataset: 1024 training
 * samples per batch, 2048 users per evaluation batch, Adam at 0.001, early stopping after 10
 * evaluations without improvement on NDCG@10, metrics @10 and @20, whole histories (`var_len:
 * True`) and no masking unless a preset sets ρ.
 */
export const SSD4REC_TRAIN_DEFAULTS: Readonly<Record<string, unknown>> = {
  batchSize: 1024,
  evalBatchSize: 2048,
  learningRate: 0.001,
  stoppingStep: 10,
  validMetric: "ndcg@10",
  topk: [10, 20],
  ...PACKED_TRAIN_DEFAULTS,
};

/** SSD4Rec's KuaiRand block of its official `config.yaml`. */
const SSD4REC_KUAIRAND: DatasetPreset = {
  train: { maxLength: 50, maskRatio: 0.2 },
  model: { dropoutProb: 0.2, normEmbedding: true, numLayers: 2, beta: 0.1 },
};

/**
 * SSD4Rec's per-dataset blocks of its official `config.yaml`: dropout, embedding normalisation,
 * layers, β and ρ; L (`MAX_ITEM_LIST_LENGTH`) only acts with `varLen: false`. The synthetic data
 * of KuaiRand's shape trains with the KuaiRand block.
 */
export const SSD4REC_PRESETS: Readonly<Record<string, DatasetPreset>> = {
  "ml-1m": {
    train: { maxLength: 200, maskRatio: 0.1 },
    model: { dropoutProb: 0.2, normEmbedding: true, numLayers: 2, beta: 0.1 },
  },
  "amazon-beauty": {
    train: { maxLength: 50, maskRatio: 0.2 },
    model: { dropoutProb: 0.4, normEmbedding: false, numLayers: 1, beta: 0.1 },
  },
  "amazon-video-games": {
    train: { maxLength: 50, maskRatio: 0.1 },
    model: { dropoutProb: 0.4, normEmbedding: false, numLayers: 1, beta: 0.1 },
  },
  "kuairand-pure": SSD4REC_KUAIRAND,
  [SYNTHETIC_KUAIRAND_NAME]: SSD4REC_KUAIRAND,
};

const MAMBA4REC_ENTRY: ModelEntryOf<PaddedModel> = {
  name: "mamba4rec",
  layout: "padded",
  config: mamba4recConfig,
  create: (config) => new Mamba4Rec(config as Mamba4RecConfig),
  trainDefaults: {},
  presets: MAMBA4REC_PRESETS,
};

const SSD4REC_ENTRY: ModelEntryOf<PackedModel> = {
  name: "ssd4rec",
  layout: "packed",
  config: ssd4recConfig,
  create: (config) => new SSD4Rec(config as SSD4RecConfig),
  trainDefaults: SSD4REC_TRAIN_DEFAULTS,
  presets: SSD4REC_PRESETS,
};

const GRU4REC_ENTRY: ModelEntryOf<PaddedModel> = {
  name: "gru4rec",
  layout: "padded",
  config: gru4recConfig,
  create: (config) => new GRU4Rec(config as GRU4RecConfig),
  trainDefaults: {},
  presets: GRU4REC_PRESETS,
};

const NARM_ENTRY: ModelEntryOf<PaddedModel> = {
  name: "narm",
  layout: "padded",
  config: narmConfig,
  create: (config) => new NARM(config as NARMConfig),
  trainDefaults: {},
  presets: NARM_PRESETS,
  lastItemOnly: true,
};

const SASREC_ENTRY: ModelEntryOf<PaddedModel> = {
  name: "sasrec",
  layout: "padded",
  config: sasrecConfig,
  create: (config) => new SASRec(config as SASRecConfig),
  trainDefaults: {},
  presets: SASREC_PRESETS,
};

const BERT4REC_ENTRY: ModelEntryOf<PaddedModel> = {
  name: "bert4rec",
  layout: "padded",
  config: bert4recConfig,
  create: (config) => new BERT4Rec(config as BERT4RecConfig),
  trainDefaults: {},
  presets: BERT4REC_PRESETS,
  ownTrainingLoss: true,
};

const CASER_ENTRY: ModelEntryOf<PaddedModel> = {
  name: "caser",
  layout: "padded",
  config: caserConfig,
  create: (config) => new Caser(config as CaserConfig),
  trainDefaults: {},
  presets: CASER_PRESETS,
  lastItemOnly: true,
  ownTrainingLoss: true,
  userTable: true,
  exactWindow: true,
};

/** The type of model each known name builds. */
export interface ModelTypes {
  /** Mamba4Rec, on padded batches. */
  readonly mamba4rec: PaddedModel;
  /** SSD4Rec, on packed batches. */
  readonly ssd4rec: PackedModel;
  /** GRU4Rec, on padded batches. */
  readonly gru4rec: PaddedModel;
  /** NARM, on padded batches (last-item training only). */
  readonly narm: PaddedModel;
  /** SASRec, on padded batches. */
  readonly sasrec: PaddedModel;
  /** BERT4Rec, on padded batches (its own masked-item training loss). */
  readonly bert4rec: PaddedModel;
  /** Caser, on padded batches with each row's user (one representation per window). */
  readonly caser: PaddedModel;
}

/** A known model name. */
export type ModelName = keyof ModelTypes;

const ENTRIES: { readonly [N in ModelName]: ModelEntryOf<ModelTypes[N]> } = {
  mamba4rec: MAMBA4REC_ENTRY,
  ssd4rec: SSD4REC_ENTRY,
  gru4rec: GRU4REC_ENTRY,
  narm: NARM_ENTRY,
  sasrec: SASREC_ENTRY,
  bert4rec: BERT4REC_ENTRY,
  caser: CASER_ENTRY,
};

/** Every model, keyed by its (lower-case) name. */
export const MODELS: Readonly<Record<string, ModelEntry>> = ENTRIES;

/** Names accepted by {@link createModel}. */
export const MODEL_NAMES: readonly string[] = Object.keys(MODELS);

/**
 * The registry entry of `name` (case-insensitive); an unknown name fails with a
 * {@link ConfigError} listing the known ones.
 */
export function findModel(name: string): ModelEntry {
  const entry = Object.hasOwn(MODELS, name.toLowerCase()) ? MODELS[name.toLowerCase()] : undefined;
  if (!entry) {
    throw new ConfigError(`unknown model '${name}' (known: ${MODEL_NAMES.join(", ")})`, "model");
  }
  return entry;
}

/** The preset of model `name` on the dataset with canonical name `dataset`, if its paper has one. */
export function modelPreset(name: string, dataset: string): DatasetPreset | undefined {
  const presets = findModel(name).presets;
  return Object.hasOwn(presets, dataset) ? presets[dataset] : undefined;
}

/**
 * Builds a model by name with fresh weights. `overrides` are the model's hyperparameters
 * (validated; unknown keys are refused); the dataset's sizes come as its item count `numItems`,
 * or as its item and user counts for a model with a user table (Caser; see {@link datasetSizes}).
 * A known name gives its model's type (`createModel("ssd4rec", …)` is a {@link PackedModel}).
 */
export function createModel<N extends ModelName>(
  name: N,
  sizes: number | DatasetSizes,
  overrides?: Record<string, unknown>,
): ModelTypes[N];
/** Builds the model named `name` (case-insensitive), whichever its layout. */
export function createModel(
  name: string,
  sizes: number | DatasetSizes,
  overrides?: Record<string, unknown>,
): TrainableModel;
export function createModel(
  name: string,
  sizes: number | DatasetSizes,
  overrides: Record<string, unknown> = {},
): TrainableModel {
  const entry = findModel(name);
  const counts = typeof sizes === "number" ? { numItems: sizes } : datasetSizes(entry, sizes);
  return entry.create(entry.config({ ...overrides, ...counts }));
}
