/**
 * Embedding lookup (`nn.Embedding` with `padding_idx`) and its deterministic backward.
 *
 * The backward scatters every token's gradient row into the table's gradient. Many tokens share
 * an id (popular items), so the adds collide; float atomics would make the result depend on the
 * order of arrival. Instead every contribution is converted to a 64-bit fixed-point integer and
 * added with two u32 atomics (low word, then high word plus the low word's carry). Integer
 * addition is associative, so the sum, and the gradient, are bitwise identical run to run.
 *
 * Precision. Let N be the number of tokens, 2^n ≥ N, and max|g| < 2^e (e from `frexp` of the
 * largest contributing |g|, found by a max pass). Contributions are scaled by 2^s with
 * s = 62 − n − e, so each is below 2^(62−n) in magnitude and the sum of at most N of them is
 * below 2^62: no overflow. Scaling by a power of two is exact; rounding to an integer costs at
 * most half a unit, 2^−(s+1) < N · max|g| · 2^−62. An entry summed from c ≤ N contributions is
 * therefore off by at most N² · max|g| · 2^−62 (for N = 409,600 tokens: 2^−24.8 · max|g|), the
 * integer sum itself is exact, and the conversion back to f32 adds at most about 2^−23 of the
 * result: about one f32 rounding of the largest contribution, less than sequential float32
 * summation loses on a popular item's thousands of adds.
 *
 * Distinct ids (`distinctIds`). When most ids are distinct, accumulating is wasted: the backward
 * counts each row's takers and the first of them (two atomics per token), then writes every row's
 * gradient directly: zero, the one taker's row copied exactly, or, for a repeated id, its takers'
 * rows summed in token order. For a last-token gather from a [T, D] activation this moves about
 * 4·T·D bytes instead of the accumulator's 8·T·D written, read and the 4·T·D result.
 *
 * Out-of-range ids (clamp-and-flag). Checking ids on the host would need a readback, which ops
 * never do. An id outside [0, V) reads as a zero row, gets no gradient, and is recorded in a
 * small error buffer (count, smallest and largest offending id); {@link checkEmbeddingIds} reads
 * that buffer (one GPU wait, e.g. once per epoch) and throws if any bad id was seen.
 *
 * Performance floor (H200, ~4.3 TB/s): the forward moves 4·N·(1 + 2D) bytes (ids, rows read,
 * output written): N = 409,600, D = 64: 210 MB → ~49 µs; rows move as vec4s when D is a
 * multiple of 4. The backward reads dy (4·N·D), writes
 * and reads a zeroed 8·V·D accumulator and writes the f32 gradient: ~110 µs for V = 20,000, plus
 * atomic serialization on popular rows.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { keep, readTensors, Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";

const WG = 256;
const NO_PADDING = -1;

/** Options of {@link embedding}. */
export interface EmbeddingOptions {
  /**
   * A row that receives no gradient from the lookup, as PyTorch's `padding_idx` (the lookup
   * still returns its values). RecBole uses 0, the `[PAD]` item.
   */
  paddingIdx?: number;
  /**
   * The ids are (mostly) distinct rows, as when the lookup gathers each sequence's last token
   * from a `[tokens, width]` activation: the backward then copies each row's gradient from the
   * token that took it instead of accumulating in fixed point (see {@link embedding}). Repeated
   * ids stay correct and deterministic (summed in token order) but each of their entries walks
   * the ids, so leave this off for item tables.
   */
  distinctIds?: boolean;
}

/** The lookup kernel; rows move as vec4s when D is a multiple of 4 (`width` 4), else as f32. */
const FORWARD = { 1: forwardShader(1), 4: forwardShader(4) };

function forwardShader(width: 1 | 4): string {
  const type = width === 4 ? "vec4f" : "f32";
  return /* wgsl */ `
struct P { n: u32, stride: u32, dim: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> table: array<${type}>;
@group(0) @binding(3) var<storage, read_write> out: array<${type}>;
// [count, smallest, largest] of the out-of-range ids seen since the last check.
@group(0) @binding(4) var<storage, read_write> bad: array<atomic<i32>, 3>;
// The backward's max-|g| cell, zeroed here so the backward needs no fill dispatch.
@group(0) @binding(5) var<storage, read_write> max_bits: array<u32>;
// n and dim count ${type} units.
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i == 0u) { max_bits[0] = 0u; }
  if (i >= p.n) { return; }
  let token = i / p.dim;
  let id = ids[token];
  if (id < 0 || u32(id) >= p.rows) {
    out[i] = ${type}(0.0);
    if (i % p.dim == 0u) {
      atomicAdd(&bad[0], 1);
      atomicMin(&bad[1], id);
      atomicMax(&bad[2], id);
    }
    return;
  }
  out[i] = table[u32(id) * p.dim + i % p.dim];
}`;
}

/** Shared by the backward kernels: whether a token's gradient row is scattered. */
const CONTRIBUTES = /* wgsl */ `
fn contributes(id: i32) -> bool {
  return id >= 0 && u32(id) < p.rows && id != p.padding;
}`;

const ZERO_AND_MAX = /* wgsl */ `
struct P { n: u32, stride: u32, dim: u32, rows: u32, padding: i32, acc_words: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<u32>;
@group(0) @binding(4) var<storage, read_write> max_bits: array<atomic<u32>>;
var<workgroup> red: array<u32, ${WG}>;
${CONTRIBUTES}
// Zeroes the fixed-point accumulator and finds max |dy| over contributing tokens. Non-negative
// f32 values order like their bit patterns, so an integer max of the bits is the float max.
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = grid_index(gid, p.stride);
  if (i < p.acc_words) { acc[i] = 0u; }
  var m = 0u;
  if (i < p.n && contributes(ids[i / p.dim])) { m = bitcast<u32>(abs(dy[i])); }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "max", value: "m" })}
  if (lid == 0u && red[0] != 0u) { atomicMax(&max_bits[0], red[0]); }
}`;

/** WGSL: the fixed-point exponent s for the largest contribution, as in the module comment. */
const SCALE = /* wgsl */ `
fn scale_exponent(max_abs: f32) -> i32 {
  return 62 - p.log2n - frexp(max_abs).exp;
}`;

const SCATTER = /* wgsl */ `
struct P { n: u32, stride: u32, dim: u32, rows: u32, padding: i32, log2n: i32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> max_bits: array<u32>;
@group(0) @binding(4) var<storage, read_write> acc: array<atomic<u32>>;
${CONTRIBUTES}
${SCALE}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let id = ids[i / p.dim];
  let g = dy[i];
  if (!contributes(id) || g == 0.0) { return; }
  // |q| < 2^62 is an integer-valued f32; split it into two u32 words exactly: the high part is
  // a power-of-two division and floor, the low part the remainder (exact: both are multiples of
  // the ulp of |q| and the remainder is below 2^32).
  let q = round(ldexp(abs(g), scale_exponent(bitcast<f32>(max_bits[0]))));
  let hi_f = floor(q / 4294967296.0);
  var lo = u32(q - hi_f * 4294967296.0);
  var hi = u32(hi_f);
  if (g < 0.0) {
    // Two's complement negation of the 64-bit value.
    lo = ~lo + 1u;
    hi = ~hi + select(0u, 1u, lo == 0u);
  }
  let slot = 2u * (u32(id) * p.dim + i % p.dim);
  let old = atomicAdd(&acc[slot], lo);
  let carry = select(0u, 1u, old + lo < old);
  atomicAdd(&acc[slot + 1u], hi + carry);
}`;

const CONVERT = /* wgsl */ `
struct P { n: u32, stride: u32, log2n: i32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> acc: array<u32>;
@group(0) @binding(2) var<storage, read> max_bits: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
${SCALE}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let max_abs = bitcast<f32>(max_bits[0]);
  var lo = acc[2u * i];
  var hi = acc[2u * i + 1u];
  let negative = (hi & 0x80000000u) != 0u;
  if (negative) {
    lo = ~lo + 1u;
    hi = ~hi + select(0u, 1u, lo == 0u);
  }
  // Both parts are non-negative, so adding them cannot cancel.
  let magnitude = f32(hi) * 4294967296.0 + f32(lo);
  var v = 0.0;
  if (max_bits[0] >= 0x7f800000u) {
    v = bitcast<f32>(0x7fc00000u); // an infinite or NaN gradient came in: report NaN
  } else if (max_abs > 0.0) {
    v = ldexp(magnitude, -scale_exponent(max_abs));
  }
  grad[i] = select(v, -v, negative);
}`;

// Distinct ids, first pass over the table's rows: no takers yet, first taker "none".
const TAKERS_RESET = /* wgsl */ `
struct P { rows: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> takers: array<u32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = grid_index(gid, p.stride);
  if (r >= p.rows) { return; }
  takers[2u * r] = 0u;
  takers[2u * r + 1u] = 0xffffffffu;
}`;

// Distinct ids, second pass over the tokens: per row, [number of takers, first taker].
const TAKERS_COUNT = /* wgsl */ `
struct P { tokens: u32, stride: u32, rows: u32, padding: i32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> takers: array<atomic<u32>>;
${CONTRIBUTES}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = grid_index(gid, p.stride);
  if (t >= p.tokens) { return; }
  let id = ids[t];
  if (!contributes(id)) { return; }
  atomicAdd(&takers[2u * u32(id)], 1u);
  atomicMin(&takers[2u * u32(id) + 1u], t);
}`;

// Distinct ids, last pass over the gradient's entries: each written once, from its takers.
const TAKERS_GATHER = /* wgsl */ `
struct P { n: u32, stride: u32, dim: u32, tokens: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> takers: array<u32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let row = i / p.dim;
  let c = i % p.dim;
  let count = takers[2u * row];
  let first = takers[2u * row + 1u];
  var v = 0.0;
  if (count == 1u) {
    v = dy[first * p.dim + c];
  } else if (count > 1u) {
    // A repeated id: its takers' rows in token order, from the first (padding never matches).
    for (var t = first; t < p.tokens; t++) {
      if (ids[t] == i32(row)) { v += dy[t * p.dim + c]; }
    }
  }
  grad[i] = v;
}`;

let badIds: Tensor | null = null;

function badIdBuffer(): Tensor {
  if (!badIds || badIds.disposed) {
    badIds = keep(Tensor.from(new Int32Array([0, 0x7fffffff, -0x80000000]), [3], "i32"));
  }
  return badIds;
}

/**
 * Looks up rows of `table`: `out[..., :] = table[ids[...], :]`, as `nn.Embedding`. Recorded on
 * the tape for `table`; the backward is deterministic (see the module comment) and gives the
 * `paddingIdx` row no gradient. Ids outside `[0, V)` read as zero rows and are reported by
 * {@link checkEmbeddingIds}.
 * @param ids i32 ids, any shape `[...]`
 * @param table the embedding matrix `[V, D]`
 * @param options `paddingIdx`
 * @returns `[..., D]`
 */
export function embedding(ids: Tensor, table: Tensor, options: EmbeddingOptions = {}): Tensor {
  const op = "embedding";
  assertDType(op, ids, "i32");
  assertDType(op, table, "f32");
  if (table.shape.length !== 2) {
    throw new RangeError(
      `${op}: the table must be [V, D], got [${table.shape.join(", ")}] (ids ` +
        `[${ids.shape.join(", ")}])`,
    );
  }
  const [rows, dim] = table.shape;
  if (rows === 0 || dim === 0) {
    throw new RangeError(`${op}: the table [${rows}, ${dim}] is empty`);
  }
  const padding = options.paddingIdx ?? NO_PADDING;
  if (
    options.paddingIdx !== undefined &&
    !(Number.isInteger(padding) && padding >= 0 && padding < rows)
  ) {
    throw new RangeError(
      `${op}: paddingIdx ${options.paddingIdx} is not a row of the table [${rows}, ${dim}]`,
    );
  }
  const n = ids.size * dim;
  const out = Tensor.empty([...ids.shape, dim], "f32", op);
  const maxBits = Tensor.empty([1], "u32", `${op} max |grad|`);
  const width = dim % 4 === 0 ? 4 : 1;
  const f = grid(n / width, WG);
  launch(
    op,
    FORWARD[width],
    packParams([n / width, f.stride, dim / width, rows]),
    [ids, table, out, badIdBuffer(), maxBits],
    f.groups,
  );
  const g = grid(n, WG);
  if (options.distinctIds) {
    return record(out, op, [table], (dy) => [distinctIdsGradient(ids, dy, rows, dim, padding)], [
      maxBits,
    ]);
  }
  return record(out, op, [table], (dy) => {
    const bop = `${op} backward`;
    const log2n = Math.ceil(Math.log2(Math.max(1, ids.size)));
    const accWords = 2 * rows * dim;
    const acc = Tensor.empty([rows, dim, 2], "u32", bop);
    const z = grid(Math.max(n, accWords), WG);
    launch(
      bop,
      ZERO_AND_MAX,
      packParams([n, z.stride, dim, rows, padding, accWords]),
      [ids, dy, acc, maxBits],
      z.groups,
    );
    launch(
      bop,
      SCATTER,
      packParams([n, g.stride, dim, rows, padding, log2n]),
      [ids, dy, maxBits, acc],
      g.groups,
    );
    const grad = Tensor.empty([rows, dim], "f32", bop);
    const c = grid(rows * dim, WG);
    launch(
      bop,
      CONVERT,
      packParams([rows * dim, c.stride, log2n]),
      [acc, maxBits, grad],
      c.groups,
    );
    acc.dispose();
    return [grad];
  }, [maxBits]);
}

/** The table's gradient for (mostly) distinct ids: the `distinctIds` backward of the module comment. */
function distinctIdsGradient(
  ids: Tensor,
  dy: Tensor,
  rows: number,
  dim: number,
  padding: number,
): Tensor {
  const bop = "embedding backward (distinct ids)";
  const takers = Tensor.empty([rows, 2], "u32", bop);
  const r = grid(rows, WG);
  launch(bop, TAKERS_RESET, packParams([rows, r.stride]), [takers], r.groups);
  const t = grid(ids.size, WG);
  launch(
    bop,
    TAKERS_COUNT,
    packParams([ids.size, t.stride, rows, padding]),
    [ids, takers],
    t.groups,
  );
  const grad = Tensor.empty([rows, dim], "f32", bop);
  const c = grid(rows * dim, WG);
  launch(
    bop,
    TAKERS_GATHER,
    packParams([rows * dim, c.stride, dim, ids.size]),
    [ids, dy, takers, grad],
    c.groups,
  );
  takers.dispose();
  return grad;
}

/**
 * Reads (one GPU wait) and clears the record of out-of-range ids seen by {@link embedding}
 * since the last call; throws a RangeError with their count and range if there were any.
 */
export async function checkEmbeddingIds(): Promise<void> {
  if (!badIds || badIds.disposed) return;
  const [bad] = await readTensors([badIds]);
  const [count, smallest, largest] = bad;
  if (count === 0) return;
  badIds.dispose();
  badIds = null;
  throw new RangeError(
    `embedding: ${count} id${count === 1 ? " was" : "s were"} outside the table ` +
      `(smallest ${smallest}, largest ${largest}); they read as zero rows and got no gradient`,
  );
}
