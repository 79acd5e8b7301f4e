/**
 * The floating-point work of one SSD4Rec training epoch's projections and feed-forward networks,
 * the matrix products that bound how fast an epoch can go: divided by the measured matrix-product
 * rate ({@link MATMUL_RATE_COMMAND}) it gives the epoch's floor.
 *
 * Counted as `models/ssd4rec.ts` and `models/mamba2_block.ts` run them, per Bi-SSD layer and per
 * direction (two with β ≠ 0: the block over x and over x reversed within every segment):
 *
 * - the Mamba-2 input projection `d → 2·d_inner + 2·G·N + H` over every token (G = 1), once for
 *   both directions (the reversed direction's is the same rows reversed), except the gate's
 *   `d_inner` columns in the last layer, which reads each segment's last token only and projects
 *   each direction's gate for those rows alone;
 * - its output projection `d_inner → d`, over every token, or over the last tokens in the last
 *   layer;
 * - the feed-forward network `d → 4d → d`, once per layer (after the directions are summed), over
 *   every token, or over the last tokens in the last layer.
 *
 * A product of an `[m, k]` by a `[k, n]` matrix is `2·m·k·n` operations; the backward computes
 * the input's and the weight's gradients, two more products of the same size, so forward and
 * backward are {@link TRAINING_PRODUCTS_PER_FORWARD} times the forward. The scan, the
 * convolution, the norms and the scores against the item table are not counted.
 *
 * @module
 */
import type { SequentialDataset } from "../data/dataset.ts";
import type { TrainConfig } from "../models/config.ts";
import type { TrainableModel } from "../models/model.ts";
import { SSD4Rec, type SSD4RecConfig } from "../models/ssd4rec.ts";
import { trainingSteps } from "../models/training/layouts.ts";
import type { EfficiencyMeasurement } from "./efficiency_file.ts";

/** One epoch's projection work, as the efficiency file stores it. */
export type ProjectionFlops = NonNullable<EfficiencyMeasurement["projections"]>;

/**
 * The command that measures the matrix-product rate R on a card: its `ssd4rec …` rows are the
 * model's own products (in_proj, out_proj, the feed-forward; forward, dA and dB), and R is their
 * operations over their time, Σ FLOPs / Σ seconds.
 */
export const MATMUL_RATE_COMMAND = "deno task bench --only matmul,ssd4rec";

/** Matrix products of forward and backward per forward product: y = xW, dx = dy·Wᵀ, dW = xᵀ·dy. */
export const TRAINING_PRODUCTS_PER_FORWARD = 3;

/** The sizes of an epoch the count needs. */
export interface EpochSize {
  /** Packed tokens of the epoch's training batches (padding included, with `padTo`). */
  readonly tokens: number;
  /** Training samples (segments) of the epoch. */
  readonly samples: number;
}

/** Operations of a product of `rows` rows of width `k` by a `[k, n]` weight. */
function productFlops(rows: number, k: number, n: number): number {
  return 2 * rows * k * n;
}

/**
 * The matrix-product operations of one SSD4Rec training epoch of `epoch`'s size under `config`,
 * forward by kind and forward and backward in all; see the module documentation.
 */
export function ssd4recProjectionFlops(
  config: Pick<
    SSD4RecConfig,
    "hiddenSize" | "numLayers" | "dState" | "headDim" | "expand" | "beta"
  >,
  epoch: EpochSize,
): ProjectionFlops {
  const { tokens, samples } = epoch;
  for (const [key, value] of Object.entries({ tokens, samples })) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`ssd4recProjectionFlops: '${key}' must be a count, got ${value}`);
    }
  }
  const d = config.hiddenSize;
  const inner = config.expand * d;
  const heads = inner / config.headDim;
  const groups = 1; // SSD4Rec builds its blocks with one group of B and C
  const inProjectionWidth = 2 * inner + 2 * groups * config.dState + heads;
  const directions = config.beta !== 0 ? 2 : 1;
  let inProjection = 0, outProjection = 0, feedForward = 0;
  for (let layer = 0; layer < config.numLayers; layer++) {
    const rows = layer === config.numLayers - 1 ? samples : tokens;
    inProjection += layer === config.numLayers - 1
      ? productFlops(tokens, d, inProjectionWidth - inner) +
        directions * productFlops(samples, d, inner)
      : productFlops(tokens, d, inProjectionWidth);
    outProjection += directions * productFlops(rows, inner, d);
    feedForward += productFlops(rows, d, 4 * d) + productFlops(rows, 4 * d, d);
  }
  const forward = inProjection + outProjection + feedForward;
  return {
    tokens,
    samples,
    forwardFlops: { inProjection, outProjection, feedForward },
    flops: TRAINING_PRODUCTS_PER_FORWARD * forward,
  };
}

/**
 * The matrix-product operations, forward and backward, of one SSD4Rec training epoch of `tokens`
 * packed tokens as the model is defined, before any of the savings {@link ssd4recProjectionFlops}
 * counts: in every Bi-SSD layer, for each direction, the input projection and the output
 * projection over every token, and the feed-forward network over every token. This is the work
 * the efficiency bar's floor is made of: an epoch within 1.5× of it at the measured rate, about
 * 41 s for a KuaiRand-sized epoch at 30 TFLOP/s.
 */
export function ssd4recDefinedProjectionFlops(
  config: Pick<
    SSD4RecConfig,
    "hiddenSize" | "numLayers" | "dState" | "headDim" | "expand" | "beta"
  >,
  tokens: number,
): number {
  if (!Number.isInteger(tokens) || tokens < 0) {
    throw new RangeError(`ssd4recDefinedProjectionFlops: 'tokens' must be a count, got ${tokens}`);
  }
  const d = config.hiddenSize;
  const inner = config.expand * d;
  const heads = inner / config.headDim;
  const inProjectionWidth = 2 * inner + 2 * config.dState + heads;
  const directions = config.beta !== 0 ? 2 : 1;
  const perLayer = directions *
      (productFlops(tokens, d, inProjectionWidth) + productFlops(tokens, inner, d)) +
    productFlops(tokens, d, 4 * d) + productFlops(tokens, 4 * d, d);
  return TRAINING_PRODUCTS_PER_FORWARD * config.numLayers * perLayer;
}

/** An epoch's floor at a matrix-product rate and how far a measured epoch is from it. */
export type ProjectionFloor = NonNullable<ProjectionFlops["floor"]>;

/** Throws a `RangeError` unless `matmulTflops` is a positive, finite number of TFLOP/s. */
export function checkMatmulRate(matmulTflops: number): void {
  if (!(Number.isFinite(matmulTflops) && matmulTflops > 0)) {
    throw new RangeError(
      `the matrix-product rate must be a positive number of TFLOP/s, got ${matmulTflops}; ` +
        `measure it with ${MATMUL_RATE_COMMAND}`,
    );
  }
}

/**
 * The floor of an epoch of `flops` operations at `matmulTflops` TFLOP/s, and a measured epoch of
 * `secondsPerEpoch` against it. Throws as {@link checkMatmulRate} for a bad rate.
 */
export function projectionFloor(
  flops: number,
  matmulTflops: number,
  secondsPerEpoch: number,
): ProjectionFloor {
  checkMatmulRate(matmulTflops);
  const seconds = flops / (matmulTflops * 1e12);
  return { matmulTflops, seconds, epochRatio: secondsPerEpoch / seconds };
}

/** The model settings {@link ssd4recDefinedProjectionFlops} reads. */
const DEFINED_WORK_KEYS = ["hiddenSize", "numLayers", "dState", "headDim", "expand", "beta"];

/**
 * The products of a measured SSD4Rec epoch as the model defines them
 * ({@link ssd4recDefinedProjectionFlops}) and, at `matmulTflops` when given, their floor and the
 * measured epoch against it; `undefined` for a measurement without projections or without the
 * model settings they need.
 */
export function definedEpochFloor(
  m: Pick<EfficiencyMeasurement, "projections" | "modelConfig" | "training">,
  matmulTflops?: number,
): { flops: number; floor?: ProjectionFloor } | undefined {
  const config = m.modelConfig;
  if (
    m.projections === undefined || !DEFINED_WORK_KEYS.every((k) => typeof config[k] === "number")
  ) {
    return undefined;
  }
  const flops = ssd4recDefinedProjectionFlops(
    config as unknown as SSD4RecConfig,
    m.projections.tokens,
  );
  return matmulTflops === undefined ? { flops } : {
    flops,
    floor: projectionFloor(flops, matmulTflops, m.training.secondsPerEpoch),
  };
}

/**
 * The tokens and samples of one training epoch of a packed model, from the batches the trainer
 * builds for it (`trainingSteps`; nothing is uploaded). Every epoch has the same: only the order
 * and the masking change.
 */
export function packedEpochSize(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
): EpochSize {
  if (model.layout !== "packed") {
    throw new RangeError(`packedEpochSize: ${model.name} takes padded batches, not packed ones`);
  }
  const steps = trainingSteps(model, dataset, config, 0);
  let tokens = 0;
  for (const step of steps) {
    tokens += step.tokens ?? 0;
    step.release();
  }
  return { tokens, samples: steps.sampleCount };
}

/**
 * The projection work of one training epoch of `model` on `dataset` under `config`, with the
 * floor at `matmulTflops` against `secondsPerEpoch` when a rate is given; `undefined` for a model
 * whose projections are not counted (every model but SSD4Rec).
 */
export function epochProjections(
  model: TrainableModel,
  dataset: SequentialDataset,
  config: TrainConfig,
  secondsPerEpoch: number,
  matmulTflops?: number,
): ProjectionFlops | undefined {
  if (!(model instanceof SSD4Rec)) return undefined;
  const counted = ssd4recProjectionFlops(model.config, packedEpochSize(model, dataset, config));
  return matmulTflops === undefined
    ? counted
    : { ...counted, floor: projectionFloor(counted.flops, matmulTflops, secondsPerEpoch) };
}
