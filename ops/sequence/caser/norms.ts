/**
 * Unsquared Frobenius norms of consecutive segments of a tensor, `‖x[segment]‖₂` each (PyTorch's
 * `W.norm(2)`), recorded on the tape: Caser's regularisation takes one per weight, and one per
 * height of its packed horizontal filters.
 *
 * Each segment is cut into blocks of {@link NORM_BLOCK} values; one workgroup per block sums its
 * squares (a tree in workgroup memory), one workgroup per segment adds its blocks' sums in order
 * and takes the root. The backward, `∂‖w‖/∂w = w / ‖w‖` (0 for a zero segment, as PyTorch's), is
 * one workgroup per block. Deterministic; no atomics.
 *
 * @module
 */
import { record } from "../../core/autograd.ts";
import { assertDType, launch, packParams } from "../../core/launch.ts";
import { Tensor } from "../../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL } from "../../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../../wgsl/reduce.ts";

const OP = "segmentNorms";
const WG = 256;
/** Values per block: each workgroup of the sum of squares covers one block of one segment. */
export const NORM_BLOCK = 16 * WG;

/** Block k's segment, first and end values: `blocks[3k … 3k + 2]`. */
const BLOCKS_WGSL = /* wgsl */ `
struct P { count: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> blocks: array<u32>;
${GRID_WGSL}`;

const SUM_SQUARES = /* wgsl */ `
${BLOCKS_WGSL}
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = min(grid_index(wid, p.gx), p.count - 1u);
  var s = 0.0;
  for (var i = blocks[3u * k + 1u] + lid; i < blocks[3u * k + 2u]; i += ${WG}u) { s += x[i] * x[i]; }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "s" })}
  if (lid == 0u && grid_index(wid, p.gx) < p.count) { partials[k] = red[0]; }
}`;

const FINISH = /* wgsl */ `
struct P { count: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
// Segment s's blocks are firsts[s] … firsts[s + 1] − 1.
@group(0) @binding(1) var<storage, read> firsts: array<u32>;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> norms: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = min(grid_index(wid, p.gx), p.count - 1u);
  var s = 0.0;
  for (var j = firsts[seg] + lid; j < firsts[seg + 1u]; j += ${WG}u) { s += partials[j]; }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "s" })}
  if (lid == 0u && grid_index(wid, p.gx) < p.count) { norms[seg] = sqrt(red[0]); }
}`;

const BACKWARD = /* wgsl */ `
${BLOCKS_WGSL}
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> norms: array<f32>;
@group(0) @binding(4) var<storage, read> dnorms: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = grid_index(wid, p.gx);
  if (k >= p.count) { return; }
  let seg = blocks[3u * k];
  let n = norms[seg];
  let scale = select(0.0, dnorms[seg] / n, n > 0.0);
  for (var i = blocks[3u * k + 1u] + lid; i < blocks[3u * k + 2u]; i += ${WG}u) {
    dx[i] = x[i] * scale;
  }
}`;

/** The block table (segment, first, end per block) and each segment's first block. */
function blockTables(sizes: readonly number[]): { blocks: Uint32Array; firsts: Uint32Array } {
  const blocks: number[] = [];
  const firsts = new Uint32Array(sizes.length + 1);
  let start = 0;
  sizes.forEach((size, seg) => {
    firsts[seg] = blocks.length / 3;
    for (let b = start; b < start + size; b += NORM_BLOCK) {
      blocks.push(seg, b, Math.min(b + NORM_BLOCK, start + size));
    }
    start += size;
  });
  firsts[sizes.length] = blocks.length / 3;
  return { blocks: Uint32Array.from(blocks), firsts };
}

/**
 * The unsquared Frobenius norm of each consecutive segment of `x` (flattened), `[S]` for S
 * segments: `out[s] = √(Σ x[j]²)` over segment s. Recorded on the tape; the gradient of a
 * segment is `x / ‖x‖` times its norm's gradient (0 where the norm is 0).
 * `segmentNormsReference` computes the same in float64.
 * @param x any f32 tensor
 * @param sizes the segments' lengths in order, each ≥ 1, adding up to `x.size`; default one
 *   segment, the whole tensor
 */
export function segmentNorms(x: Tensor, sizes: readonly number[] = [x.size]): Tensor {
  assertDType(OP, x, "f32");
  const total = sizes.reduce((a, s) => a + s, 0);
  if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 1) || total !== x.size) {
    throw new RangeError(
      `${OP}: segment sizes must be integers ≥ 1 adding up to the ${x.size} values of ` +
        `${x.describe()}; got ${sizes.length} sizes adding up to ${total}`,
    );
  }
  const tables = blockTables(sizes);
  const count = tables.blocks.length / 3;
  const blocks = Tensor.from(tables.blocks, [count, 3], "u32");
  const firsts = Tensor.from(tables.firsts, [sizes.length + 1], "u32");
  const partials = Tensor.empty([count], "f32", `${OP} partials`);
  const norms = Tensor.empty([sizes.length], "f32", OP);
  const bg = foldWorkgroups(count);
  launch(OP, SUM_SQUARES, packParams([count, bg[0]]), [blocks, x, partials], bg);
  const sg = foldWorkgroups(sizes.length);
  launch(
    `${OP} finish`,
    FINISH,
    packParams([sizes.length, sg[0]]),
    [firsts, partials, norms],
    sg,
  );
  partials.dispose();
  firsts.dispose();
  return record(norms, OP, [x], (dnorms) => {
    const dx = Tensor.empty(x.shape, "f32", `${OP} backward`);
    launch(
      `${OP} backward`,
      BACKWARD,
      packParams([count, bg[0]]),
      [blocks, x, norms, dnorms, dx],
      bg,
    );
    return [dx];
  }, [blocks]);
}
