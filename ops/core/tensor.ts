/**
 * The tensor type: a shaped, typed view of one pooled GPU buffer, with explicit disposal,
 * batched readback, reverse-mode autograd bookkeeping and a Jupyter rich display.
 *
 * @module
 */
import type { MemoryPurpose, PooledBuffer } from "./buffers.ts";
import { runtime } from "./runtime.ts";

/** Element types: `f32` for values, `i32`/`u32` for ids and counts. */
export type DType = "f32" | "i32" | "u32";

/** Host array matching a {@link DType}. */
export type HostArray = Float32Array | Int32Array | Uint32Array;

/** Host array type per dtype. */
export type HostArrayOf<D extends DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Uint32Array;

/** A node of the autograd tape: how to turn the output's gradient into its inputs' gradients. */
export interface TapeNode {
  /** Op name, for error messages and debugging. */
  readonly op: string;
  /** The op's tensor inputs, in the order `backward` returns their gradients. */
  readonly inputs: readonly Tensor[];
  /** Returns one gradient (or null) per input, given the output's gradient. */
  readonly backward: (grad: Tensor) => readonly (Tensor | null)[];
  /** Tensors the op made only for its backward; freed as soon as the backward has run. */
  readonly saved: Tensor[];
}

const scopes: Set<Tensor>[] = [];

/** A shaped, typed array living in GPU memory. */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Whether gradients flow to this tensor (parameters, and outputs of ops on them). */
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after {@link backward}. */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor, or null for a leaf. */
  node: TapeNode | null = null;
  /** Optional name, shown in displays and errors. */
  name?: string;
  #storage: PooledBuffer | null;

  /**
   * Wraps a pooled buffer (several tensors may view one buffer; it is released with the last).
   * Prefer {@link Tensor.from}, {@link Tensor.empty} or an op.
   * @param storage the pooled buffer, owned by this tensor from now on
   * @param shape dimensions
   * @param dtype element type
   */
  constructor(storage: PooledBuffer, shape: readonly number[], dtype: DType = "f32") {
    this.#storage = storage;
    storage.refs++;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = numel(shape);
    scopes.at(-1)?.add(this);
  }

  /** A tensor with unspecified contents (every element will be written by the caller). */
  static empty(shape: readonly number[], dtype: DType = "f32", op = "empty"): Tensor {
    checkShape(shape, op);
    return new Tensor(runtime().alloc(numel(shape) * 4, op), shape, dtype);
  }

  /** Uploads host data. Plain number arrays become f32 unless `dtype` says otherwise. */
  static from(
    data: HostArray | readonly number[],
    shape: readonly number[] = [data.length],
    dtype?: DType,
  ): Tensor {
    const dt: DType = dtype ??
      (data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32");
    checkShape(shape, "Tensor.from");
    if (numel(shape) !== data.length) {
      throw new RangeError(
        `Tensor.from: ${data.length} values do not fill shape [${shape.join(", ")}] ` +
          `(${numel(shape)} elements)`,
      );
    }
    const host = toHost(data, dt);
    const t = Tensor.empty(shape, dt, "Tensor.from");
    runtime().write(t.storage, host);
    return t;
  }

  /** The GPU buffer. Throws if the tensor was disposed. */
  get storage(): PooledBuffer {
    if (!this.#storage) {
      throw new ReferenceError(
        `use of a disposed tensor ${this.describe()}: it was freed by dispose() or by the end of ` +
          `a tidy() scope; keep() it or clone it before the scope ends`,
      );
    }
    return this.#storage;
  }

  /** True once {@link dispose} has run. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** Returns the buffer to the pool. Later use of this tensor throws. Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    if (--this.#storage.refs === 0) runtime().release(this.#storage);
    this.#storage = null;
    for (const s of scopes) s.delete(this);
  }

  /** A short description: name, shape and dtype. */
  describe(): string {
    return `${this.name ? this.name + " " : ""}[${this.shape.join(", ")}] ${this.dtype}`;
  }

  /** Copies the values to the host (one GPU wait; see {@link readTensors} for several). */
  async toArray(): Promise<HostArray> {
    return (await readTensors([this]))[0];
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new RangeError(`item(): tensor ${this.describe()} has ${this.size} elements, not 1`);
    }
    return (await this.toArray())[0];
  }

  /** Rich display in Deno's Jupyter kernel: shape, dtype, device and a preview of the values. */
  async [Symbol.for("Jupyter.display")](): Promise<Record<string, string>> {
    const dev = runtime().info.description;
    if (this.disposed) {
      const text = `Tensor ${this.describe()} (disposed)`;
      return { "text/plain": text, "text/html": `<code>${escapeHtml(text)}</code>` };
    }
    const values = await this.toArray();
    const preview = formatPreview(values, this.shape);
    const head = `Tensor ${this.describe()} on ${dev}${this.requiresGrad ? ", requires grad" : ""}`;
    return {
      "text/plain": `${head}\n${preview}`,
      "text/html": `<div><b>Tensor</b> <code>${escapeHtml(this.describe())}</code> on ` +
        `${escapeHtml(dev)}${this.requiresGrad ? ", requires grad" : ""}` +
        `<pre>${escapeHtml(preview)}</pre></div>`,
    };
  }
}

/**
 * Reads several tensors back to the host with one GPU wait (each wait costs about 11 ms in Deno,
 * so read metrics and losses together, not one by one).
 */
export async function readTensors(tensors: readonly Tensor[]): Promise<HostArray[]> {
  const raw = await runtime().readBuffers(
    tensors.map((t) => ({ buffer: t.storage, bytes: t.size * 4 })),
  );
  return raw.map((buf, i) => {
    const t = tensors[i];
    const view = t.dtype === "f32"
      ? new Float32Array(buf)
      : t.dtype === "i32"
      ? new Int32Array(buf)
      : new Uint32Array(buf);
    return view.subarray(0, t.size);
  });
}

/**
 * Counts the storage of live `tensors` under `purpose` from now on (in
 * `memoryStats().byPurpose`), e.g. parameters made before they were registered as such.
 * Disposed tensors are skipped.
 */
export function tagPurpose(tensors: Iterable<Tensor>, purpose: MemoryPurpose): void {
  const rt = runtime();
  for (const t of tensors) if (!t.disposed) rt.retag(t.storage, purpose);
}

/**
 * Runs `fn` and disposes every tensor created inside it, except the tensors it returns (directly,
 * in an array, or as values of a plain object) and those passed to {@link keep}.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) {
    if (survivors.has(t)) scopes.at(-1)?.add(t);
    else t.dispose();
  }
  return result;
}

/** Exempts tensors from disposal by the enclosing {@link tidy} scopes. Returns its argument. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) { for (const x of v) collectTensors(x, out); }
  else if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collectTensors(x, out);
  }
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[], op: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `${op}: invalid shape [${shape.join(", ")}]: dimensions must be integers ≥ 0`,
      );
    }
  }
}

function toHost(data: HostArray | readonly number[], dtype: DType): HostArray {
  if (dtype === "f32") return data instanceof Float32Array ? data : Float32Array.from(data);
  if (dtype === "i32") return data instanceof Int32Array ? data : Int32Array.from(data);
  return data instanceof Uint32Array ? data : Uint32Array.from(data);
}

function formatPreview(values: HostArray, shape: readonly number[]): string {
  const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toPrecision(5));
  const last = shape.at(-1) ?? 1;
  const rows = Math.max(1, values.length / Math.max(last, 1));
  const lines: string[] = [];
  const showRow = (r: number) => {
    const row = values.subarray(r * last, (r + 1) * last);
    const cells = row.length > 8
      ? [...row.subarray(0, 4)].map(fmt).concat("…", [...row.subarray(-3)].map(fmt))
      : [...row].map(fmt);
    lines.push(`[${cells.join(", ")}]`);
  };
  if (rows <= 8) { for (let r = 0; r < rows; r++) showRow(r); }
  else {
    for (let r = 0; r < 3; r++) showRow(r);
    lines.push(`… ${rows - 6} more rows …`);
    for (let r = rows - 3; r < rows; r++) showRow(r);
  }
  return lines.join("\n");
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
