/**
 * Reversing packed segments in place: several sequences share one row (segment ids
 * non-decreasing along it), and the backward direction of a bidirectional layer reads each
 * segment back to front while the segment boundaries stay where they are. Segment lengths
 * (3, 2) give source positions [2, 1, 0, 4, 3].
 *
 * {@link segmentReversal} builds that index on the host from the segment ids;
 * {@link reverseSegments} gathers rows of a tensor by it on the GPU, one invocation per element,
 * neighbouring invocations on neighbouring features so reads and writes are coalesced.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";

const OP = "reverseSegments";
const WG = 256;

// out[b, t, d] = x[b, reversal[b·T + t], d]; the index is clamped into the row.
const GATHER_ROWS = /* wgsl */ `
struct P { n: u32, stride: u32, len: u32, dim: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> reversal: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let bt = i / p.dim;
  let row = bt - bt % p.len;
  let src = u32(clamp(reversal[bt], 0, i32(p.len) - 1));
  out[i] = x[(row + src) * p.dim + i % p.dim];
}`;

/**
 * The in-place segment reversal of packed rows: for flat token `b·length + t`, the position
 * within row `b` of the token it takes its value from, `s + e − t` for the segment `[s, e]`
 * (maximal run of one id) that holds `t`. It is an involution: applying it twice gives back
 * every position.
 * @param batch rows
 * @param length tokens per row
 * @param seqIdx segment id per token, (batch · length) values in row-major order,
 *   non-decreasing within each row
 * @returns i32 (batch · length) positions within the row, for {@link reverseSegments}
 * @throws RangeError when the sizes are not positive integers, `seqIdx` has the wrong length, or
 *   an id decreases within a row (named by row and position)
 */
export function segmentReversal(
  batch: number,
  length: number,
  seqIdx: ArrayLike<number>,
): Int32Array {
  for (const [name, v] of [["batch", batch], ["length", length]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`segmentReversal: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (seqIdx.length !== batch * length) {
    throw new RangeError(
      `segmentReversal: seqIdx has ${seqIdx.length} ids, expected batch ${batch} × length ` +
        `${length} = ${batch * length} (one segment id per token, row-major)`,
    );
  }
  const out = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const row = b * length;
    let start = 0;
    for (let t = 1; t <= length; t++) {
      if (t < length) {
        const prev = seqIdx[row + t - 1], id = seqIdx[row + t];
        if (id < prev) {
          throw new RangeError(
            `segmentReversal: seqIdx decreases in row ${b} at position ${t} (id ${id} after ` +
              `${prev}); expected non-decreasing segment ids within each row, one run per ` +
              `packed sequence`,
          );
        }
        if (id === prev) continue;
      }
      // Segment [start, t − 1] ends here.
      for (let q = start; q < t; q++) out[row + q] = start + t - 1 - q;
      start = t;
    }
  }
  return out;
}

function validate(x: Tensor, reversal: Tensor): { batch: number; length: number; dim: number } {
  assertDType(OP, x, "f32");
  assertDType(OP, reversal, "i32");
  const [batch, length] = x.shape;
  const fix = "pass x as (batch, T, …) and the (batch · T) index from segmentReversal";
  if (x.shape.length < 2 || x.size === 0) {
    throw new RangeError(
      `${OP}: x must be a non-empty (batch, T, …) tensor, got ${x.describe()} with reversal ` +
        `${reversal.describe()}; ${fix}`,
    );
  }
  const r = reversal.shape;
  const flat = r.length === 1 && r[0] === batch * length;
  const rows = r.length === 2 && r[0] === batch && r[1] === length;
  if (!flat && !rows) {
    throw new RangeError(
      `${OP}: reversal must be i32 (${batch * length}) or (${batch}, ${length}) for x ` +
        `${x.describe()}, got ${reversal.describe()}; ${fix}`,
    );
  }
  return { batch, length, dim: x.size / (batch * length) };
}

/**
 * Reverses every packed segment in place: `out[b, t, :] = x[b, reversal[b·T + t], :]`, the
 * trailing dimensions flattened to a width D. Recorded on the tape. The backward is the same
 * gather of the gradient, which is exact only because the index is an involution (its own
 * inverse), such as {@link segmentReversal} returns; an arbitrary gather index would give a
 * wrong gradient. Indices outside `[0, T)` are clamped.
 * @param x f32 (batch, T, …), any trailing dimensions
 * @param reversal i32 (batch · T) or (batch, T): positions within the row from
 *   {@link segmentReversal}
 * @returns f32 shaped like x
 * @throws TypeError on the wrong dtypes, RangeError on mismatched shapes, before any dispatch
 */
export function reverseSegments(x: Tensor, reversal: Tensor): Tensor {
  const { length, dim } = validate(x, reversal);
  const gatherRows = (src: Tensor, name: string): Tensor => {
    const out = Tensor.empty(x.shape, "f32", name);
    const g = grid(x.size, WG);
    launch(
      name,
      GATHER_ROWS,
      packParams([x.size, g.stride, length, dim]),
      [src, reversal, out],
      g.groups,
    );
    return out;
  };
  const out = gatherRows(x, OP);
  return record(out, OP, [x], (gy) => [gatherRows(gy, `${OP} backward`)]);
}
