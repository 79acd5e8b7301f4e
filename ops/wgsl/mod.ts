/**
 * WGSL building blocks shared by the kernels: scalar math, the workgroup tree reduction, the
 * folding of long workgroup ranges into grids, small products of staged rows, and the cache of
 * generated sources.
 *
 * @module
 */
export { GELU_WGSL, MATH_WGSL, NORMAL_CDF_WGSL } from "./math.ts";
export { workgroupReduceWgsl } from "./reduce.ts";
export type { ReduceArray, ReduceCombine, WorkgroupReduce } from "./reduce.ts";
export { foldWorkgroups, grid, GRID_WGSL, MAX_WORKGROUPS_PER_DIMENSION } from "./grid.ts";
export type { Grid } from "./grid.ts";
export { cachedShader, SHADER_CACHE_ENTRIES, shaderGenerator } from "./cache.ts";
export {
  type StagedProduct,
  type StagedProductLayout,
  stagedProductLayout,
  type StagedProductSharing,
  stagedProductWgsl,
  WEIGHT_LOADS,
} from "./staged_product.ts";
