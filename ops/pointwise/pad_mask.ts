/**
 * `padMask`: which entries of an id tensor are PAD (id 0), as the i32 flags the attention op's
 * `keyPadding` takes, computed on the GPU so that a model holding only its uploaded ids needs no
 * readback. Not differentiable (ids carry no gradient).
 *
 * @module
 */
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";

const WG = 256;

const PAD_MASK = /* wgsl */ `
struct P { n: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  out[i] = select(0, 1, ids[i] == 0);
}`;

/** i32 flags of the same shape as the i32 `ids`: 1 where the id is 0 (PAD), 0 elsewhere. */
export function padMask(ids: Tensor): Tensor {
  const op = "padMask";
  assertDType(op, ids, "i32");
  const out = Tensor.empty(ids.shape, "i32", op);
  if (ids.size === 0) return out;
  const g = grid(ids.size, WG);
  launch(op, PAD_MASK, packParams([ids.size, g.stride]), [ids, out], g.groups);
  return out;
}
