/**
 * One paper experiment as a notebook runs it: the recorded run of the model's preset on the dataset
 * with the seed when there is one (in either mode; see `run/run_index.ts`), else a run trained now
 * (in quick mode on the first users only; {@link setupRun} builds the model with the preset), and
 * the learning curve and the metrics beside the paper's.
 *
 * @module
 */
import type { SequentialDataset } from "../data/dataset.ts";
import { type PlotlyFigure, plotlyFigure } from "../viz/plotly.ts";
import { type RichTable, richTable } from "../viz/table.ts";
import type { TrainConfig } from "../models/config.ts";
import { train, type TrainResult } from "../models/training/trainer.ts";
import { TrainingProgress } from "./progress.ts";
import { readRunIndex } from "./run_index.ts";
import { readRunRecord, type RunRecord } from "./run_record.ts";
import { planRun, setupRun } from "./setup.ts";

/** `quick`: a slice that runs on a CPU adapter in minutes; `full`: the paper's protocol. */
export type ExperimentMode = "quick" | "full";

/** Options of {@link runExperiment}. */
export interface ExperimentOptions {
  /** Model name (`mamba4rec`). */
  readonly model: string;
  /** Dataset name or file. */
  readonly dataset: string;
  /** Quick (a run trained now is a slice's) or full. */
  readonly mode: ExperimentMode;
  /** The seed of the data order and the weights (default: the preset's, RecBole's 2020). */
  readonly seed?: number;
  /** Users kept in quick mode (default {@link QUICK_USERS}). */
  readonly quickUsers?: number;
  /** Training overrides (epochs, batchSize, maxLength, …). */
  readonly train?: Record<string, unknown>;
  /** Model overrides (hiddenSize, numLayers, dropoutProb, …). */
  readonly modelConfig?: Record<string, unknown>;
  /**
   * Show the run recorded at this path instead of training, when the file exists (default: the
   * record of the preset's settings with the model, dataset and seed in `results/runs/`, found by
   * {@link readRunIndex}; `null` always trains).
   */
  readonly record?: string | null;
}

/** What {@link runExperiment} returns. */
export interface ExperimentResult {
  /** The dataset trained on. */
  readonly dataset: SequentialDataset;
  /** The adapter's description. */
  readonly adapter: string;
  /** The training configuration used. */
  readonly config: TrainConfig;
  /** The model's hyperparameters. */
  readonly modelConfig: object;
  /** Number of trainable parameters. */
  readonly parameters: number;
  /** Training outcome. */
  readonly result: TrainResult;
  /** Wall time of the whole experiment (or of the recorded training), seconds. */
  readonly seconds: number;
  /** The recorded run shown instead of training now, if any. */
  readonly recorded: RunRecord | null;
}

/** Users a quick experiment keeps when the options do not say. */
export const QUICK_USERS = 40;

/** The training settings of a quick experiment (options' `train` overrides them). */
export const QUICK_TRAIN: Readonly<Record<string, unknown>> = {
  epochs: 2,
  batchSize: 256,
  maxLength: 20,
};

/** Loads data, trains and tests one model; see {@link ExperimentOptions}. */
export async function runExperiment(options: ExperimentOptions): Promise<ExperimentResult> {
  const start = performance.now();
  const quick = options.mode === "quick";
  const request = {
    model: options.model,
    dataset: options.dataset,
    train: {
      ...(quick ? QUICK_TRAIN : {}),
      verbose: true,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...options.train,
    },
    modelConfig: options.modelConfig,
  };
  // The record is looked up first: a recorded run is shown with the whole dataset it ran on.
  const plan = planRun(request);
  const key = { model: plan.model.name, dataset: plan.source.name, seed: plan.config.seed };
  const recorded = options.record === null
    ? null
    : options.record === undefined
    ? (await readRunIndex()).find(key)?.record ?? null
    : await readRunRecord(options.record);
  if (recorded) {
    const { dataset } = await setupRun({ ...request, train: { seed: plan.config.seed } });
    const h = recorded.result.history;
    return {
      dataset,
      adapter: recorded.adapter,
      config: recorded.trainConfig,
      modelConfig: recorded.modelConfig,
      parameters: recorded.parameters,
      result: recorded.result,
      seconds: h.reduce((s, e) => s + e.trainSeconds + e.evalSeconds, 0),
      recorded,
    };
  }
  const setup = await setupRun({
    ...request,
    maxUsers: quick ? options.quickUsers ?? QUICK_USERS : undefined,
  });
  const { dataset, model, config } = setup;
  const result = await train(model, dataset, config, {
    observer: new TrainingProgress(config.verbose, config.validMetric),
  });
  return {
    dataset,
    adapter: setup.adapter,
    config,
    modelConfig: model.config,
    parameters: model.params.count(),
    result,
    seconds: (performance.now() - start) / 1000,
    recorded: null,
  };
}

/** The learning curve: training loss per epoch, and the validation metrics per epoch. */
export function learningCurve(result: TrainResult, title: string): [PlotlyFigure, PlotlyFigure] {
  const epochs = result.history.map((h) => h.epoch + 1);
  const line = (name: string, y: number[]) => ({
    type: "scatter" as const,
    mode: "lines+markers" as const,
    name,
    x: epochs,
    y,
  });
  const loss = plotlyFigure({
    data: [line("training loss", result.history.map((h) => h.loss))],
    layout: {
      title: `${title}: training loss`,
      xaxis: { title: "epoch" },
      yaxis: { title: "cross-entropy" },
    },
  });
  const metrics = plotlyFigure({
    data: ["hit@10", "ndcg@10", "mrr@10"].map((k) =>
      line(`valid ${k}`, result.history.map((h) => h.valid[k]))
    ),
    layout: {
      title: `${title}: validation (best epoch ${result.bestEpoch + 1})`,
      xaxis: { title: "epoch" },
      yaxis: { title: "metric" },
    },
  });
  return [loss, metrics];
}

/**
 * The test metrics (HR, NDCG and MRR at 10, and any metric the paper gives) beside the paper's,
 * with the relative difference; a metric the paper has no verified value for says so.
 */
export function paperComparison(
  title: string,
  test: Record<string, number>,
  paper: Record<string, number>,
): RichTable {
  const metrics = [...new Set(["hit@10", "ndcg@10", "mrr@10", ...Object.keys(paper)])];
  const rows = metrics.map((metric) => {
    const ours = test[metric], value = paper[metric];
    const diff = ours === undefined || value === undefined
      ? "—"
      : `${(100 * (ours - value) / value).toFixed(1)}%`;
    return {
      metric,
      paper: value ?? "not verified",
      ours: ours ?? "—",
      "relative difference": diff,
    };
  });
  return richTable(rows, { caption: title });
}
