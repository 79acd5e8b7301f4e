/**
 * Checkpoints in the safetensors layout (an 8-byte little-endian header length, a JSON header of
 * `{name: {dtype, shape, data_offsets}}` plus string `__metadata__`, then the raw little-endian
 * data), so other tools can read the weights. Written to a temporary file and renamed, so an
 * interrupted write never replaces a good checkpoint.
 *
 * @module
 */
import { writeFileAtomic } from "../../data/cache.ts";
import { runtime } from "../../ops/core/runtime.ts";
import { readTensors, type Tensor } from "../../ops/core/tensor.ts";

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

/** Reads a checkpoint written by {@link writeCheckpoint} (or any F32 safetensors file). */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const bytes = await Deno.readFile(path);
  const fail = (why: string) => new Error(`checkpoint ${path}: ${why}`);
  if (bytes.length < 8) throw fail("file is too short to be a safetensors file");
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + n > bytes.length) throw fail(`header length ${n} runs past the end of the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw fail(`unreadable header: ${(e as Error).message}`);
  }
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
