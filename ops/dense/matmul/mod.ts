/**
 * Matrix products `C = op(A) · op(B) (+ bias)` on batches of matrices, recorded on the tape.
 *
 * One kernel generator serves the forward and both backward products: the WGSL is specialised
 * by a few compile-time constants and the runtime caches one pipeline per distinct source. Long
 * reductions over few output tiles are split across workgroups and summed by a second,
 * deterministic pass.
 *
 * @module
 */
export { matmul } from "./matmul.ts";
export type { MatmulOptions } from "./matmul.ts";
export { planMatmul, splitCount } from "./plan.ts";
export type { MatmulPlan, MatmulTiles } from "./plan.ts";
