/**
 * What a training checkpoint holds besides the weights' layout: the trainer's state, Adam's
 * moments, the dropout stream and the run settings; and how the trainer writes and restores it.
 *
 * @module
 */
import type { Adam } from "../../ops/training/optimizer.ts";
import { DropoutRng } from "../../ops/pointwise/dropout.ts";
import { readTensors, Tensor } from "../../ops/core/tensor.ts";
import {
  loadTensors,
  readCheckpoint,
  type RunSettings,
  SETTINGS_METADATA_KEY,
  settingsDifferences,
  SettingsMismatchError,
  storedRunSettings,
  writeCheckpoint,
} from "./checkpoint.ts";
import type { TrainConfig } from "../config.ts";
import type { Metrics } from "./evaluator.ts";
import type { ModelBase } from "../model.ts";

/** One epoch's record. */
export interface EpochRecord {
  /** Epoch number, from 0. */
  readonly epoch: number;
  /** Mean training loss. */
  readonly loss: number;
  /** Validation metrics (rounded). */
  readonly valid: Metrics;
  /** Training wall time (seconds), GPU work included. */
  readonly trainSeconds: number;
  /** Validation wall time (seconds). */
  readonly evalSeconds: number;
  /**
   * The most bytes of storage live tensors held at once during the epoch's training steps
   * (the runtime's `memoryStats().peakLiveBytes`, reset as the epoch begins; validation not
   * included): storage buffers rounded to pool size classes, not the driver's own memory.
   * Absent in epochs recorded before it was measured.
   */
  readonly peakLiveBytes?: number;
  /**
   * What {@link peakLiveBytes} was made of, bytes per purpose at that moment (`memoryStats()`'s
   * `byPurpose[p].atPeakBytes`; `pool`: free pooled buffers then, not part of the peak).
   * Absent in epochs recorded before it was measured.
   */
  readonly peakByPurpose?: Readonly<Record<string, number>>;
  /** The most live bytes during the epoch's validation. Absent before it was measured. */
  readonly evalPeakLiveBytes?: number;
  /** What {@link evalPeakLiveBytes} was made of, as {@link peakByPurpose}. */
  readonly evalPeakByPurpose?: Readonly<Record<string, number>>;
  /**
   * Tokens trained in the epoch. Packed models: the history tokens of the batches (Σ segment
   * lengths; with `padTo` the padding is included). Padded models: B × L of every window,
   * padding included. Absent in epochs recorded before it was counted.
   */
  readonly tokens?: number;
  /** {@link tokens} per second of {@link trainSeconds}. Absent with {@link tokens}. */
  readonly tokensPerSecond?: number;
}

/** The trainer's progress, as checkpoints keep it. */
export interface TrainerState {
  /** Epochs finished. */
  epoch: number;
  /** Steps finished, over all epochs. */
  step: number;
  /** Best validation score so far. */
  best: number;
  /** Its epoch, from 0 (−1: none yet). */
  bestEpoch: number;
  /** Its validation metrics. */
  bestValid: Metrics;
  /** Evaluations since the last improvement. */
  stale: number;
  /** Every finished epoch. */
  history: EpochRecord[];
}

/** The entries with `prefix` before each name. */
export function prefixed(prefix: string, entries: [string, Tensor][]): [string, Tensor][] {
  return entries.map(([n, t]) => [prefix + n, t]);
}

/** The model's weights read back to the host (the in-memory best epoch). */
export async function snapshot(model: ModelBase): Promise<Float32Array[]> {
  return (await readTensors(model.params.list())) as Float32Array[];
}

/**
 * Writes a checkpoint: the weights (`model.*`), Adam's moments (`optimizer.*`), and as metadata
 * the model, the configurations, the optimizer's step count, the dropout stream, the trainer's
 * state and the run settings. With `weightsOnly` (the best epoch's checkpoint, which only testing
 * and serving read) Adam's moments and step count are left out: a third of the bytes, and
 * {@link resume} refuses the file.
 */
export async function saveCheckpoint(
  path: string,
  model: ModelBase,
  adam: Adam,
  state: TrainerState,
  config: TrainConfig,
  settings: RunSettings,
  { weightsOnly = false }: { weightsOnly?: boolean } = {},
): Promise<void> {
  const entries = model.params.entries();
  const optimizer = weightsOnly ? null : adam.state();
  const moments = (kind: string, list: (Tensor | null)[]) =>
    list.flatMap((
      t,
      k,
    ) => (t ? [[`optimizer.${kind}.${entries[k][0]}`, t] as [string, Tensor]] : []));
  try {
    await writeCheckpoint(
      path,
      [
        ...prefixed("model.", entries),
        ...(optimizer
          ? [...moments("exp_avg", optimizer.expAvg), ...moments("exp_avg_sq", optimizer.expAvgSq)]
          : []),
      ],
      {
        format: "ssmrec-checkpoint-1",
        model: model.name,
        modelConfig: JSON.stringify(model.config),
        trainConfig: JSON.stringify(config),
        ...(optimizer ? { optimizer: JSON.stringify({ steps: optimizer.steps }) } : {}),
        dropoutRng: JSON.stringify(model.dropoutRng.state()),
        trainer: JSON.stringify(state),
        [SETTINGS_METADATA_KEY]: JSON.stringify(settings),
      },
    );
  } finally {
    for (const t of optimizer ? [...optimizer.expAvg, ...optimizer.expAvgSq] : []) t?.dispose();
  }
}

/**
 * Restores weights, Adam's state, the dropout stream and the trainer's state from `path`, after
 * checking that the checkpoint's run settings equal `settings` apart from `allowedChanges`.
 */
export async function resume(
  path: string,
  model: ModelBase,
  adam: Adam,
  state: TrainerState,
  settings: RunSettings,
  allowedChanges: readonly string[] = [],
): Promise<void> {
  const ckpt = await readCheckpoint(path);
  const differences = settingsDifferences(storedRunSettings(path, ckpt.metadata), settings)
    .filter((d) => !allowedChanges.includes(d.key));
  if (differences.length > 0) throw new SettingsMismatchError(path, differences);
  if (ckpt.metadata.optimizer === undefined) {
    throw new Error(
      `cannot resume from ${path}: it holds the weights only (a best-epoch checkpoint, without ` +
        `Adam's state); resume from last.safetensors in the same directory`,
    );
  }
  const entries = model.params.entries();
  loadTensors(ckpt, prefixed("model.", entries));
  const moment = (kind: string) =>
    entries.map(([name, p]) => {
      const stored = ckpt.tensors.get(`optimizer.${kind}.${name}`);
      return stored ? Tensor.from(stored.data, p.shape) : null;
    });
  const expAvg = moment("exp_avg"), expAvgSq = moment("exp_avg_sq");
  try {
    adam.loadState({ steps: JSON.parse(ckpt.metadata.optimizer).steps, expAvg, expAvgSq });
  } finally {
    for (const t of [...expAvg, ...expAvgSq]) t?.dispose();
  }
  model.dropoutRng = DropoutRng.fromState(JSON.parse(ckpt.metadata.dropoutRng));
  Object.assign(state, JSON.parse(ckpt.metadata.trainer));
}
