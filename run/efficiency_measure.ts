/**
 * One model's efficiency on one dataset, as the Mamba4Rec paper's efficiency table reports it:
 * seconds per training epoch, peak GPU memory during training, and seconds of inference per
 * evaluation batch.
 *
 * - **Training**: the model's preset (the paper's settings), optionally another window L. A few
 *   warm-up steps first compile the kernels (not timed), then one or more whole epochs are timed
 *   step by step as the trainer runs them (`stepGradients`, Adam, the loss written on the GPU,
 *   its readbacks every `lossCheckEvery` steps paced as the trainer's loss checks pace them),
 *   GPU wait included. With `maxSteps` only the epoch's
 *   first steps are timed and the epoch's time is projected from them (marked as a projection).
 * - **Memory**: the runtime's own accounting (`memoryStats()`: storage buffers handed to tensors,
 *   rounded to pool size classes, not the driver's memory), its peak over the timed steps and what
 *   it was made of by purpose; the same for the inference batch.
 * - **Inference**: the full ranking of one test batch of the evaluation batch size (upload,
 *   forward, scores against every item, the targets' ranks and metric sums, as the evaluator does
 *   it), one warm-up, then the median of several repeats, each waiting for the GPU.
 *
 * - **Projections** (SSD4Rec): the matrix-product work of one epoch's projections and
 *   feed-forward networks, and with a measured matrix-product rate the epoch's floor at it
 *   (`run/projection_flops.ts`).
 *
 * `run/efficiency_file.ts` keeps a measurement as one JSON file (`results/efficiency/` by
 * default), written atomically.
 *
 * @module
 */
import { noGrad, zeroGrad } from "../ops/core/autograd.ts";
import { accumulateInto, writeAt, zeros } from "../ops/pointwise/elementwise.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import {
  type MemoryStats,
  memoryStats,
  releasePooledMemory,
  resetPeakMemory,
  runtime,
  sync,
} from "../ops/core/runtime.ts";
import { sliceRows } from "../ops/core/unrecorded.ts";
import { logitSlabRows } from "../ops/training/item_cross_entropy_slabs.ts";
import { Adam } from "../ops/training/optimizer.ts";
import { RANKING_METRICS, rankingMetrics, targetRanks } from "../ops/training/ranking.ts";
import { Tensor, tidy } from "../ops/core/tensor.ts";
import { packedTrainSettings, type TrainConfig } from "../models/config.ts";
import type { TrainableModel } from "../models/model.ts";
import { rankingBatches, type TrainingStep, trainingSteps } from "../models/training/layouts.ts";
import { MicroBatchPlan, stepGradients } from "../models/training/step_gradients.ts";
import { LossChecks } from "../models/training/loss_checks.ts";
import type { SequentialDataset } from "../data/dataset.ts";
import { codeVersion } from "./code_version.ts";
import {
  EFFICIENCY_FORMAT,
  type EfficiencyMeasurement,
  historyLayout,
  type InferenceEfficiency,
  type TrainingEfficiency,
} from "./efficiency_file.ts";
import { sliceContents } from "./grid_runs.ts";
import { median } from "./number_format.ts";
import { checkMatmulRate, epochProjections } from "./projection_flops.ts";
import { setupRun } from "./setup.ts";

/** What {@link measureEfficiency} measures. */
export interface EfficiencyRequest {
  /** Registered model name. */
  readonly model: string;
  /** Dataset name or file. */
  readonly dataset: string;
  /** Where dataset names are looked up (default: the datasets directory). */
  readonly datasetsDirectory?: string;
  /** Only the dataset's first this many users (a smoke measurement). */
  readonly maxUsers?: number;
  /** Window length L (padded models) or kept history (packed with `varLen: false`); default the preset's. */
  readonly maxLength?: number;
  /** Packed models: whole histories (true) or the last `maxLength` items (false). */
  readonly varLen?: boolean;
  /** Packed models: every history a left-padded window of exactly this many tokens. */
  readonly padTo?: number;
  /** Other training settings over the preset's (`batchSize`, `evalBatchSize`, …). */
  readonly train?: Readonly<Record<string, unknown>>;
  /** Whole epochs timed (default 1); ignored with {@link maxSteps}. */
  readonly epochs?: number;
  /** Time only the first this many steps and project the epoch's time from them. */
  readonly maxSteps?: number;
  /**
   * Untimed steps first, at least one (default {@link EFFICIENCY_WARMUP_STEPS}): they compile the
   * kernels and create Adam's moments, which every later step holds.
   */
  readonly warmupSteps?: number;
  /** Timed repeats of the inference batch (default {@link EFFICIENCY_INFERENCE_REPEATS}). */
  readonly inferenceRepeats?: number;
  /**
   * The measured matrix-product rate, TFLOP/s (`deno task bench --only matmul,ssd4rec`): an SSD4Rec
   * measurement then also gives its epoch's floor at that rate (`run/projection_flops.ts`).
   */
  readonly matmulTflops?: number;
  /** The command that measures it again, for the file (default: {@link efficiencyCommand}'s). */
  readonly command?: string;
}

/**
 * Untimed training steps before the timed ones: they compile every kernel a step runs and create
 * Adam's moments, so that the timed steps and their memory peak are those of steady training.
 */
export const EFFICIENCY_WARMUP_STEPS = 2;

/** Timed repeats of the inference batch; the median is kept. */
export const EFFICIENCY_INFERENCE_REPEATS = 5;

/**
 * The `deno task efficiency` command that makes the measurement of `r` again (with `--out` when
 * given).
 */
export function efficiencyCommand(r: EfficiencyRequest, out?: string): string {
  const flags: [string, unknown][] = [
    ["--models", r.model],
    ["--dataset", r.dataset],
    ["--max-len", r.maxLength],
    ["--var-len", r.varLen],
    ["--pad-to", r.padTo],
    ["--batch-size", r.train?.batchSize],
    ["--eval-batch-size", r.train?.evalBatchSize],
    ["--epochs", r.epochs],
    ["--max-steps", r.maxSteps],
    ["--warmup-steps", r.warmupSteps],
    ["--repeats", r.inferenceRepeats],
    ["--max-users", r.maxUsers],
    ["--matmul-tflops", r.matmulTflops],
    ["--out", out],
  ];
  return [
    "deno task efficiency",
    ...flags.filter(([, v]) => v !== undefined).map(([f, v]) => `${f} ${v}`),
  ].join(" ");
}

/** What a peak was made of: each purpose's bytes at that moment (`pool`: free pooled bytes). */
function peakParts(stats: MemoryStats): Record<string, number> {
  return Object.fromEntries(
    Object.entries(stats.byPurpose).map(([purpose, bytes]) => [purpose, bytes.atPeakBytes]),
  );
}

/** A positive integer option, or a `RangeError` naming it. */
function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`efficiency: '${name}' must be a positive integer, got ${value}`);
  }
  return v;
}

/** The training steps' sizes and timing options of {@link timeTraining}. */
interface TrainingTiming {
  readonly epochs: number;
  readonly maxSteps: number | undefined;
  readonly warmupSteps: number;
}

/**
 * Runs the warm-up steps, then times whole epochs (or the first `maxSteps` steps) as the trainer
 * runs them; see the module documentation.
 */
async function timeTraining(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  adam: Adam,
  timing: TrainingTiming,
): Promise<TrainingEfficiency> {
  const params = model.params.list();
  let microBatchSize: number | undefined = config.microBatchSize;
  const plan = new MicroBatchPlan(config.microBatchSize, {
    microBatchesChosen: (samples) => microBatchSize = samples,
  });
  const runStep = (step: TrainingStep) =>
    tidy(() => {
      const loss = stepGradients(model, step, plan);
      adam.step();
      zeroGrad(params);
      return loss;
    });
  // Warm-up, on the batches of an epoch after the timed ones: the kernels of a step compile on
  // first use, Adam's moments are made at its first step, and a step too large for the device
  // finds its micro-batch size.
  let warm = 0;
  for (const step of trainingSteps(model, dataset, config, timing.epochs)) {
    if (warm++ >= timing.warmupSteps) break;
    try {
      runStep(step).dispose();
    } finally {
      step.release();
    }
  }
  await releasePooledMemory();
  resetPeakMemory();
  const stepsPerEpoch = trainingSteps(model, dataset, config, 0).batchCount;
  const wanted = timing.maxSteps === undefined
    ? stepsPerEpoch * timing.epochs
    : Math.min(timing.maxSteps, stepsPerEpoch);
  const losses = zeros([wanted]);
  // Paced as the trainer's loss checks pace it.
  const checks = new LossChecks(losses, config.lossCheckEvery);
  let steps = 0, samples = 0, tokens = 0;
  const start = performance.now();
  const epochSeconds: number[] = [];
  let epochStart = start;
  for (let epoch = 0; epoch < timing.epochs && steps < wanted; epoch++) {
    for (const step of trainingSteps(model, dataset, config, epoch)) {
      if (steps >= wanted) break;
      try {
        tidy(() => {
          writeAt(losses, runStep(step), steps);
        });
      } finally {
        step.release();
      }
      steps++;
      samples += step.size;
      tokens += model.layout === "packed" ? step.tokens ?? 0 : step.size * config.maxLength;
      await checks.afterStep(steps);
    }
    if (timing.epochs > 1 && steps % stepsPerEpoch === 0) {
      await sync();
      const now = performance.now();
      epochSeconds.push((now - epochStart) / 1000);
      epochStart = now;
    }
  }
  const host = await checks.finish(steps);
  const seconds = (performance.now() - start) / 1000;
  losses.dispose();
  const stats = memoryStats();
  const projected = timing.maxSteps !== undefined && steps < stepsPerEpoch;
  return {
    stepsPerEpoch,
    stepsTimed: steps,
    epochsTimed: projected ? 0 : steps / stepsPerEpoch,
    warmupSteps: Math.min(warm, timing.warmupSteps),
    projected,
    seconds,
    secondsPerEpoch: projected
      ? (seconds / steps) * stepsPerEpoch
      : seconds / (steps / stepsPerEpoch),
    ...(epochSeconds.length > 1 ? { epochSeconds } : {}),
    samples,
    tokens,
    tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
    meanLoss: Array.from(host).reduce((sum, v) => sum + v, 0) / Math.max(host.length, 1),
    ...(microBatchSize !== undefined ? { microBatchSize } : {}),
    peakLiveBytes: stats.peakLiveBytes,
    peakByPurpose: peakParts(stats),
  };
}

/**
 * Times the full ranking of the first test batch (the evaluator's work for one batch: upload,
 * forward, scores in parts that fit a storage binding, ranks, metric sums): one warm-up, then the
 * median of `repeats`, each waiting for the GPU.
 */
async function timeInference(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  repeats: number,
): Promise<InferenceEfficiency> {
  const batches = rankingBatches(model, dataset, "test", {
    maxLength: config.maxLength,
    batchSize: config.evalBatchSize,
    ...(model.layout === "packed"
      ? { varLen: packedTrainSettings(config).varLen, padTo: config.padTo }
      : {}),
  });
  const first = batches[Symbol.iterator]().next();
  if (first.done) {
    throw new Error(`efficiency: ${dataset.name} has no test users to time inference with`);
  }
  const batch = first.value;
  const table = model.itemTable;
  const part = logitSlabRows(batch.size, table.shape[0], runtime().info.maxBindingBytes);
  const sums = zeros([1, RANKING_METRICS.length]);
  const rankOnce = async () => {
    const start = performance.now();
    try {
      noGrad(() =>
        tidy(() => {
          const h = batch.represent();
          for (let at = 0; at < batch.size; at += part) {
            const end = Math.min(batch.size, at + part);
            tidy(() => {
              const rows = end - at === batch.size ? h : sliceRows(h, at, end - at);
              const scores = matmul(rows, table, { transB: true });
              const targets = Tensor.from(batch.targets.subarray(at, end), [end - at], "i32");
              accumulateInto(sums, rankingMetrics(targetRanks(scores, targets), [10]));
            });
          }
        })
      );
      await sync();
    } finally {
      batch.release();
    }
    return (performance.now() - start) / 1000;
  };
  await rankOnce();
  await releasePooledMemory();
  resetPeakMemory();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) times.push(await rankOnce());
  const stats = memoryStats();
  sums.dispose();
  return {
    split: "test",
    users: batch.size,
    secondsPerBatch: median(times),
    repeats: times,
    peakLiveBytes: stats.peakLiveBytes,
    peakByPurpose: peakParts(stats),
  };
}

/**
 * Measures one model on one dataset as the module documentation describes. The model, its
 * gradients and Adam's moments are freed afterwards, so that measurements can follow each other
 * in one process.
 */
export async function measureEfficiency(
  request: EfficiencyRequest,
): Promise<EfficiencyMeasurement> {
  const timing: TrainingTiming = {
    epochs: positive("epochs", request.epochs, 1),
    maxSteps: request.maxSteps === undefined
      ? undefined
      : positive("maxSteps", request.maxSteps, 1),
    warmupSteps: positive("warmupSteps", request.warmupSteps, EFFICIENCY_WARMUP_STEPS),
  };
  const repeats = positive(
    "inferenceRepeats",
    request.inferenceRepeats,
    EFFICIENCY_INFERENCE_REPEATS,
  );
  // A bad rate fails now, not after the timed epochs.
  const rate = request.matmulTflops;
  if (rate !== undefined) checkMatmulRate(rate);
  const train: Record<string, unknown> = { ...request.train, verbose: false };
  if (request.maxLength !== undefined) train.maxLength = request.maxLength;
  if (request.varLen !== undefined) train.varLen = request.varLen;
  if (request.padTo !== undefined) train.padTo = request.padTo;
  const setup = await setupRun({
    model: request.model,
    dataset: request.dataset,
    datasetsDirectory: request.datasetsDirectory,
    maxUsers: request.maxUsers,
    train,
  });
  const { model, dataset, config } = setup;
  const adam = new Adam(model.params.list(), {
    lr: config.learningRate,
    weightDecay: config.weightDecay,
    maxGradNorm: config.clipGradNorm ?? undefined,
  });
  try {
    await releasePooledMemory();
    const training = await timeTraining(model, dataset, config, adam, timing);
    await releasePooledMemory();
    const inference = await timeInference(model, dataset, config, repeats);
    const { secondsPerEpoch } = training;
    const projections = epochProjections(model, dataset, config, secondsPerEpoch, rate);
    const maxUsers = request.maxUsers;
    return {
      format: EFFICIENCY_FORMAT,
      code: await codeVersion(),
      deno: Deno.version.deno,
      measuredAt: new Date().toISOString(),
      command: request.command ?? efficiencyCommand(request),
      adapter: setup.adapter,
      model: model.name,
      dataset: setup.plan.source.name,
      ...(maxUsers !== undefined ? { slice: { maxUsers, contents: sliceContents(dataset) } } : {}),
      parameters: model.params.count(),
      trainConfig: config,
      modelConfig: { ...model.config },
      histories: historyLayout(model, config),
      training,
      inference,
      ...(projections !== undefined ? { projections } : {}),
    };
  } finally {
    adam.dispose();
    zeroGrad(model.params.list());
    for (const p of model.params.list()) p.dispose();
    await releasePooledMemory();
  }
}
