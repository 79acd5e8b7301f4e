/**
 * `gatherPositions`: one position per sequence, `x[b, pos[b], :]` — the representation at each
 * sequence's last real item. Its backward scatters the gradient back to that position.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";

const WG = 256;

const GATHER = /* wgsl */ `
struct P { n: u32, stride: u32, len: u32, dim: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let b = i / p.dim;
  let l = u32(clamp(pos[b], 0, i32(p.len) - 1));
  out[i] = x[(b * p.len + l) * p.dim + i % p.dim];
}`;

const SCATTER = /* wgsl */ `
struct P { n: u32, stride: u32, len: u32, dim: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let b = i / (p.len * p.dim);
  let l = (i / p.dim) % p.len;
  let hit = i32(l) == clamp(pos[b], 0, i32(p.len) - 1);
  dx[i] = select(0.0, g[b * p.dim + i % p.dim], hit);
}`;

/**
 * Picks one position per sequence: `x` is `[B, L, D]`, `positions` i32 `[B]` (clamped to
 * `[0, L)`), the result `[B, D]`. Recorded on the tape.
 */
export function gatherPositions(x: Tensor, positions: Tensor): Tensor {
  assertDType("gatherPositions", x, "f32");
  assertDType("gatherPositions", positions, "i32");
  if (x.shape.length !== 3 || positions.shape.length !== 1 || positions.shape[0] !== x.shape[0]) {
    throw new RangeError(
      `gatherPositions: expected x [B, L, D] and positions [B], got [${x.shape.join(", ")}] and ` +
        `[${positions.shape.join(", ")}]`,
    );
  }
  const [B, L, D] = x.shape;
  const out = Tensor.empty([B, D], "f32", "gatherPositions");
  const g = grid(B * D, WG);
  launch(
    "gatherPositions",
    GATHER,
    packParams([B * D, g.stride, L, D]),
    [x, positions, out],
    g.groups,
  );
  return record(out, "gatherPositions", [x], (gy) => {
    const dx = Tensor.empty(x.shape, "f32", "gatherPositions backward");
    const s = grid(x.size, WG);
    launch(
      "gatherPositions backward",
      SCATTER,
      packParams([x.size, s.stride, L, D]),
      [gy, positions, dx],
      s.groups,
    );
    return [dx];
  });
}
