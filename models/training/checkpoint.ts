/**
 * Checkpoints in the safetensors layout (an 8-byte little-endian header length, a JSON header of
 * `{name: {dtype, shape, data_offsets}}` plus string `__metadata__`, then the raw little-endian
 * data), so other tools can read the weights. Written to a temporary file and renamed, so an
 * interrupted write never replaces a good checkpoint.
 *
 * The trainer's checkpoints also store the run's settings ({@link runSettings}: model, dataset,
 * model and training configuration), so that a resumed run can be checked against them
 * ({@link settingsDifferences}) before any weight is loaded.
 *
 * @module
 */
import { writeFileAtomic } from "../../host/mod.ts";
import { runtime } from "../../ops/core/runtime.ts";
import { readTensors, type Tensor } from "../../ops/core/tensor.ts";
import { packedTrainSettings, type TrainConfig } from "../config.ts";
import { type InputLayout, layoutOf } from "../model.ts";

/** A tensor as stored in a checkpoint. */
export interface StoredTensor {
  /** Dimensions. */
  readonly shape: number[];
  /** Values. */
  readonly data: Float32Array;
}

/** A checkpoint read back from disk. */
export interface Checkpoint {
  /** The file it came from. */
  readonly path: string;
  /** Tensors by name. */
  readonly tensors: Map<string, StoredTensor>;
  /** String metadata (JSON documents for structured values). */
  readonly metadata: Record<string, string>;
}

/**
 * Reads every tensor back from the GPU (one wait) and writes them with the metadata to `path`,
 * atomically.
 */
export async function writeCheckpoint(
  path: string,
  tensors: readonly [string, Tensor][],
  metadata: Record<string, string>,
): Promise<void> {
  const host = await readTensors(tensors.map(([, t]) => t));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  tensors.forEach(([name, t], i) => {
    if (t.dtype !== "f32") throw new TypeError(`writeCheckpoint: ${name} is ${t.dtype}, not f32`);
    const bytes = host[i].length * 4;
    header[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  });
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data starts 8-byte aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const h of host) {
    out.set(new Uint8Array(h.buffer, h.byteOffset, h.length * 4), at);
    at += h.length * 4;
  }
  await writeFileAtomic(path, out);
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** Parses the safetensors header at the start of `bytes` (`size`: the whole file's length). */
function parseHeader(path: string, bytes: Uint8Array, size: number): { header: Header; n: number } {
  const fail = (why: string) => new Error(`checkpoint ${path}: ${why}`);
  if (bytes.length < 8) throw fail("file is too short to be a safetensors file");
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + n > size) throw fail(`header length ${n} runs past the end of the file`);
  try {
    return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), n };
  } catch (e) {
    throw fail(`unreadable header: ${(e as Error).message}`);
  }
}

/**
 * Reads only a checkpoint's string metadata (its header), not the tensors: cheap enough to check
 * a run's settings before any GPU or data work.
 */
export async function readCheckpointMetadata(path: string): Promise<Record<string, string>> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const readExactly = async (count: number): Promise<Uint8Array> => {
      const out = new Uint8Array(count);
      let at = 0;
      while (at < count) {
        const got = await file.read(out.subarray(at));
        if (got === null) break;
        at += got;
      }
      return out.subarray(0, at);
    };
    const prefix = await readExactly(8);
    if (prefix.length < 8) parseHeader(path, prefix, size);
    const n = Number(new DataView(prefix.buffer).getBigUint64(0, true));
    if (8 + n > size) parseHeader(path, prefix, size);
    const bytes = new Uint8Array(8 + n);
    bytes.set(prefix);
    bytes.set(await readExactly(n), 8);
    const { header } = parseHeader(path, bytes, size);
    return (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  } finally {
    file.close();
  }
}

/** Reads a checkpoint written by {@link writeCheckpoint} (or any F32 safetensors file). */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const bytes = await Deno.readFile(path);
  const fail = (why: string) => new Error(`checkpoint ${path}: ${why}`);
  const { header, n } = parseHeader(path, bytes, bytes.length);
  const metadata = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  const tensors = new Map<string, StoredTensor>();
  const base = 8 + n;
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (info.dtype !== "F32") {
      throw fail(`tensor ${name} has dtype ${info.dtype}; only F32 is read`);
    }
    const [b, e] = info.data_offsets;
    if (base + e > bytes.length || e - b !== 4 * info.shape.reduce((x, y) => x * y, 1)) {
      throw fail(`tensor ${name} has inconsistent offsets [${b}, ${e}] for shape [${info.shape}]`);
    }
    const data = new Float32Array(bytes.slice(base + b, base + e).buffer);
    tensors.set(name, { shape: info.shape, data });
  }
  return { path, tensors, metadata };
}

/**
 * Copies stored values into live tensors, after checking that every tensor is present with the
 * same shape; the message names the tensor that does not match.
 */
export function loadTensors(
  checkpoint: Checkpoint,
  targets: readonly [string, Tensor][],
): void {
  for (const [name, t] of targets) {
    const stored = checkpoint.tensors.get(name);
    if (!stored) {
      throw new Error(
        `checkpoint ${checkpoint.path}: has no tensor ${name}; it was written by ` +
          `another model or configuration`,
      );
    }
    if (stored.shape.length !== t.shape.length || stored.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(
        `checkpoint ${checkpoint.path}: tensor ${name} has shape [${
          stored.shape.join(", ")
        }] but ` +
          `the model expects [${t.shape.join(", ")}]`,
      );
    }
  }
  for (const [name, t] of targets) runtime().write(t.storage, checkpoint.tensors.get(name)!.data);
}

/** A setting's value as checkpoints store it. */
export type SettingValue = string | number | boolean | null | readonly number[];

/**
 * Everything a training run was started with, flat: `model` (its name), `dataset` (the dataset's
 * name, which says which slice of it too), `model.<key>` for each model hyperparameter and
 * `train.<key>` for each {@link TrainConfig} key (packed-batch models always have
 * `train.maskRatio` and `train.varLen`, with their defaults when left out, and `train.padTo`
 * only when set; padded ones have none of them). The per-call
 * limits (epochs this run, seconds this run) are not settings: they may change on every resume.
 */
export type RunSettings = Readonly<Record<string, SettingValue>>;

/** Metadata key under which the trainer's checkpoints store the {@link RunSettings}. */
export const SETTINGS_METADATA_KEY = "settings";

/**
 * Settings that may differ between a checkpoint and the run that resumes from it without mixing
 * two trainings: the epoch limit (a longer or shorter run of the same training), the evaluation
 * batch size (users are ranked one by one), the micro-batch size (the same update to rounding),
 * progress output, where checkpoints go and how often
 * the loss is checked for NaN. Everything else (data, model, optimizer, batch order, window
 * length, masking ratio, whole or truncated histories, padded windows, early stopping) changes what is trained
 * and must stay as stored.
 */
export const RESUME_SAFE_SETTINGS: readonly string[] = Object.freeze([
  "train.epochs",
  "train.evalBatchSize",
  "train.microBatchSize",
  "train.verbose",
  "train.checkpointDir",
  "train.lossCheckEvery",
]);

/**
 * The {@link RunSettings} of `model` (a model that names no layout takes padded batches) trained
 * on the dataset named `dataset` with `config`.
 */
export function runSettings(
  model: { readonly name: string; readonly config: object; readonly layout?: InputLayout },
  dataset: string,
  config: TrainConfig,
): RunSettings {
  const out: Record<string, SettingValue> = { model: model.name, dataset };
  for (const [k, v] of Object.entries(model.config)) out[`model.${k}`] = v as SettingValue;
  const train = layoutOf(model) === "packed"
    ? { ...config, ...packedTrainSettings(config) }
    : config;
  for (const [k, v] of Object.entries(train)) out[`train.${k}`] = v as SettingValue;
  return out;
}

/** One setting that differs between a checkpoint and the current run. */
export interface SettingDifference {
  /** The setting's key (see {@link RunSettings}). */
  readonly key: string;
  /** Its value in the checkpoint (`undefined`: not stored). */
  readonly stored: SettingValue | undefined;
  /** Its value now (`undefined`: not a setting of this run). */
  readonly current: SettingValue | undefined;
}

/**
 * The settings whose values differ between `stored` and `current`, in `current`'s key order
 * then `stored`'s; keys in `ignore` are skipped.
 */
export function settingsDifferences(
  stored: RunSettings,
  current: RunSettings,
  ignore: readonly string[] = [],
): SettingDifference[] {
  const keys = [...new Set([...Object.keys(current), ...Object.keys(stored)])];
  return keys
    .filter((key) => !ignore.includes(key))
    .filter((key) => JSON.stringify(stored[key]) !== JSON.stringify(current[key]))
    .map((key) => ({ key, stored: stored[key], current: current[key] }));
}

/**
 * The run settings stored in a checkpoint's metadata. A checkpoint without them (written before
 * checkpoints stored settings, or by another tool) is refused: its run cannot be checked.
 */
export function storedRunSettings(path: string, metadata: Record<string, string>): RunSettings {
  const text = metadata[SETTINGS_METADATA_KEY];
  if (text === undefined) {
    throw new Error(
      `checkpoint ${path} stores no run settings (it was written by an older version or by ` +
        "another tool), so resuming from it could mix two trainings unnoticed; train from the " +
        "start with a new checkpoint directory, or delete the checkpoint",
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`checkpoint ${path}: unreadable run settings: ${(e as Error).message}`);
  }
}

/** Resuming a run with settings that differ from its checkpoint's. */
export class SettingsMismatchError extends Error {
  /**
   * An error naming every differing setting with both values.
   * @param path the checkpoint
   * @param differences the settings that differ
   * @param label how to name a key (e.g. with the command-line flag that sets it)
   * @param advice what to do, appended to the message
   */
  constructor(
    readonly path: string,
    readonly differences: readonly SettingDifference[],
    label: (key: string) => string = (key) => key,
    advice = "resume with the checkpoint's settings, or train from the start with a new " +
      "checkpoint directory",
  ) {
    const show = (v: SettingValue | undefined) => v === undefined ? "(unset)" : JSON.stringify(v);
    super(
      `checkpoint ${path} was written with other settings: ` +
        differences.map((d) => `${label(d.key)} is ${show(d.stored)} there, ${show(d.current)} now`)
          .join("; ") +
        `. To go on, ${advice}`,
    );
    this.name = "SettingsMismatchError";
  }
}
