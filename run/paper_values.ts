/**
 * What the paper notebooks print beside our runs: the paper's values where a readable source
 * confirms them ({@link PaperValues}), the datasets whose file orders sequences otherwise than the
 * papers' pipeline ({@link ORDER_LIMITED_DATASETS}), the names of models and datasets as the
 * papers print them ({@link MODEL_LABELS}, {@link DATASET_LABELS}), and third-party timings of a
 * paper's official code ({@link SSD4REC_OFFICIAL_KUAIRAND_EPOCH}).
 *
 * @module
 */

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

/** A model's name as the papers print it ({@link MODEL_LABELS}), else its registered name. */
export function modelLabel(model: string): string {
  return Object.hasOwn(MODEL_LABELS, model) ? MODEL_LABELS[model] : model;
}

/** A dataset's name as the papers print it ({@link DATASET_LABELS}), else its own name. */
export function datasetLabel(dataset: string): string {
  return Object.hasOwn(DATASET_LABELS, dataset) ? DATASET_LABELS[dataset] : dataset;
}

/**
 * One training epoch of a paper's official code as someone other than its authors timed it: the
 * code, card and software it ran on, and where the timing was read. Never a figure of the paper.
 */
export interface ThirdPartyEpochTiming {
  /** Registered model name. */
  readonly model: string;
  /** Canonical dataset name of the data it trained on. */
  readonly dataset: string;
  /** Seconds of one training epoch once warm, as the run's log reports them. */
  readonly secondsPerEpoch: number;
  /** Seconds of the first epoch, warm-up included. */
  readonly firstEpochSeconds: number;
  /** The framework's peak of allocated GPU memory, GB (10⁹ bytes). */
  readonly peakAllocatedGB: number;
  /** The framework's peak of reserved GPU memory (its caching allocator's pool), GB. */
  readonly peakReservedGB: number;
  /** The GPU it ran on. */
  readonly card: string;
  /** The software it ran with. */
  readonly software: string;
  /** Who timed it, for people: a third party, not the paper. */
  readonly status: string;
  /** The readable source that reports it. */
  readonly source: string;
}

/**
 * The official SSD4Rec code on KuaiRand with its shipped KuaiRand configuration (hidden size 256,
 * two Bi-SSD layers, whole histories, 1024 targets per batch), timed by a third party: epochs 2
 * to 28 took 65 to 67 s each; peak allocated 3,833,438,208 bytes, reserved 13,784,580,096.
 */
export const SSD4REC_OFFICIAL_KUAIRAND_EPOCH: ThirdPartyEpochTiming = Object.freeze({
  model: "ssd4rec",
  dataset: "kuairand-pure",
  secondsPerEpoch: 66,
  firstEpochSeconds: 215,
  peakAllocatedGB: 3.83,
  peakReservedGB: 13.8,
  card: "NVIDIA H200 NVL",
  software: "PyTorch 2.3.0 (CUDA 11.8), mamba-ssm 2.2.2, causal-conv1d 1.2.2.post1, Triton 2.3.0",
  status: "third-party timing, not a figure of the paper",
  source: "https://github.com/berdov/diplom/blob/0fb9d110b3437ce7b020c4ec42ea0de6e2823d25/" +
    "experiments/ssd4rec_baseline/runs/ssd4rec_001_notes.md",
});
