/**
 * The global gradient norm (`clip_grad_norm_`'s total norm) on the GPU: one dispatch takes
 * per-block sums of squares of up to 31 gradients, then one workgroup adds the blocks in a fixed
 * order, so the norm is deterministic; nothing is read back.
 *
 * @module
 */
import { fill } from "../core/unrecorded.ts";
import { grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { cachedShader } from "../wgsl/cache.ts";
import { bindable, chunks, PARAM_WORDS, perTensorBranches, WG } from "./packed_dispatch.ts";

/** Values per workgroup of the sum-of-squares pass (each invocation loops over a strip). */
const NORM_VALUES_PER_GROUP = 16 * WG;
/** Tensors per sum-of-squares dispatch: two parameter words each, two shared. */
const MAX_NORM_TENSORS = (PARAM_WORDS - 2) / 2;

/** The sum-of-squares pass over `count` gradients: one partial sum per block of each. */
function sumSquaresShader(count: number): string {
  const ints = Array.from({ length: count }, (_, k) => `end${k}: u32, n${k}: u32`).join(", ");
  const bindings = Array.from(
    { length: count },
    (_, k) => `@group(0) @binding(${k + 1}) var<storage, read> g${k}: array<f32>;`,
  ).join("\n");
  return /* wgsl */ `
struct P { base: u32, gx: u32, ${ints} }
@group(0) @binding(0) var<uniform> p: P;
${bindings}
@group(0) @binding(${count + 1}) var<storage, read_write> partials: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
${GRID_WGSL}
// Workgroup w sums the squares of one ${NORM_VALUES_PER_GROUP}-value block of one tensor.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = grid_index(wid, p.gx);
  var s = 0.0;
  ${
    perTensorBranches(count, (k) =>
      `    let stop = min(p.n${k}, (j + 1u) * ${NORM_VALUES_PER_GROUP}u);
    for (var i = j * ${NORM_VALUES_PER_GROUP}u + lid; i < stop; i += ${WG}u) { s += g${k}[i] * g${k}[i]; }`)
  }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "s" })}
  if (lid == 0u && w < p.end${count - 1}) { partials[p.base + w] = red[0]; }
}`;
}

const SQRT_OF_SUM = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${WG}u) { s += partials[i]; }
  ${workgroupReduceWgsl({ array: "red", size: WG, combine: "sum", value: "s" })}
  if (lid == 0u) { norm[0] = sqrt(red[0]); }
}`;

/**
 * The L2 norm of all the parameters' gradients taken together (`clip_grad_norm_`'s total norm),
 * as a `[]` tensor computed on the GPU: per-block sums of squares of many gradients per dispatch,
 * then one workgroup adds the blocks in a fixed order (deterministic) and takes the root.
 * Parameters without a gradient are skipped; with none the norm is 0.
 * @param params parameters whose `.grad` is read
 */
export function globalGradNorm(params: readonly Tensor[]): Tensor {
  const op = "globalGradNorm";
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null && g.size > 0);
  if (grads.length === 0) return fill([], 0);
  const blocks = (g: Tensor) => Math.ceil(g.size / NORM_VALUES_PER_GROUP);
  const total = grads.reduce((a, g) => a + blocks(g), 0);
  const partials = Tensor.empty([total], "f32", op);
  let base = 0;
  for (const batch of chunks(grads, Math.min(MAX_NORM_TENSORS, bindable(1, 1)))) {
    const ints: number[] = [];
    let end = 0;
    for (const g of batch) ints.push(end += blocks(g), g.size);
    const gr = grid(end, 1);
    const shader = cachedShader(`norm ${batch.length}`, () => sumSquaresShader(batch.length));
    launch(op, shader, packParams([base, gr.groups[0], ...ints]), [
      ...batch,
      partials,
    ], gr.groups);
    base += end;
  }
  const norm = Tensor.empty([], "f32", op);
  launch(op, SQRT_OF_SUM, packParams([total]), [partials, norm], [1]);
  partials.dispose();
  return norm;
}
