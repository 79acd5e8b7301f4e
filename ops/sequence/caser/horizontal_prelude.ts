/**
 * WGSL shared by the kernels of Caser's horizontal convolutions: the parameter block and
 * `height_offset(h)`, the start of height h's filters in the packed weights (`heightOffset` of
 * `layout.ts`).
 *
 * @module
 */
import { GRID_WGSL } from "../../wgsl/grid.ts";

/**
 * The parameter block `p` (`n` and `stride` count what each kernel's grid counts: invocations,
 * or workgroups for the forward), `height_offset(h)` and `grid_index`.
 */
export const HORIZONTAL_PRELUDE: string = /* wgsl */ `
struct P { n: u32, stride: u32, batch: u32, length: u32, dim: u32, filters: u32 }
@group(0) @binding(0) var<uniform> p: P;
fn height_offset(h: u32) -> u32 { return p.filters * p.dim * (h * (h - 1u) / 2u); }
${GRID_WGSL}`;
