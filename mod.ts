/**
 * ssmrec: state-space sequential recommenders (Mamba4Rec, SSD4Rec) on WebGPU for Deno.
 *
 * - `ops`: the GPU runtime, the {@link Tensor} type with reverse-mode autograd and the WGSL kernels.
 * - `data`: Arrow-based loaders, the RecBole-equivalent preprocessing pipeline and batchers.
 * - `models`: Mamba4Rec, the RecBole-protocol trainer, the full-ranking evaluator, checkpoints.
 * - `viz`: Plotly figures with a static SVG fallback for notebooks.
 *
 * @module
 */
export * from "./ops/mod.ts";
export * from "./data/mod.ts";
export * from "./viz/mod.ts";
export * from "./models/mod.ts";
export * from "./run/mod.ts";
