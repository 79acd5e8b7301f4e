/**
 * The head layout changes around {@link attention}: a `[B, L, H·d]` projection viewed as H heads
 * becomes `[B, H, L, d]` (each head's L × d matrix contiguous, as the batched products need), and
 * the context goes back to `[B, L, H·d]` with the heads concatenated, as RecBole's
 * `MultiHeadAttention` does with `view`/`permute` before and after the attention itself.
 *
 * Both are one copy kernel swapping the two middle axes of a `[A, X, Y, D]` tensor; the
 * gradient of a swap is the swap back.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";

const WG = 256;

const SWAP = /* wgsl */ `
struct P { n: u32, stride: u32, x: u32, y: u32, d: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${GRID_WGSL}
// dst[a, j, i, c] = src[a, i, j, c] for src [A, X, Y, D]; one invocation per element of dst.
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let o = grid_index(gid, p.stride);
  if (o >= p.n) { return; }
  let c = o % p.d;
  let i = (o / p.d) % p.x;
  let j = (o / (p.d * p.x)) % p.y;
  let a = o / (p.d * p.x * p.y);
  dst[o] = src[((a * p.x + i) * p.y + j) * p.d + c];
}`;

/**
 * `t` read as `[A, X, Y, D]` written as `[A, Y, X, D]` into a tensor of shape `outShape` (the
 * same size), recorded (the gradient is the swap back, in `t`'s shape).
 */
function swapMiddle(
  op: string,
  t: Tensor,
  [x, y, d]: readonly number[],
  outShape: readonly number[],
): Tensor {
  const out = Tensor.empty(outShape, "f32", op);
  const g = grid(out.size, WG);
  launch(op, SWAP, packParams([out.size, g.stride, x, y, d]), [t, out], g.groups);
  return record(out, op, [t], (dy) => {
    const dt = Tensor.empty(t.shape, "f32", `${op} backward`);
    const gb = grid(dt.size, WG);
    launch(`${op} backward`, SWAP, packParams([dt.size, gb.stride, y, x, d]), [dy, dt], gb.groups);
    return [dt];
  });
}

/**
 * A projection `[B, L, H·d]` as `[B, H, L, d]`: head h of position l is columns h·d … h·d + d − 1,
 * as RecBole's `view(B, L, H, d).permute(0, 2, 1, 3)`. Recorded.
 * @param x the Q, K or V projection `[B, L, H·d]`
 * @param heads H, which must divide the last dimension
 * @returns `[B, H, L, d]`, the layout {@link attention} takes
 */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const op = "splitHeads";
  assertDType(op, x, "f32");
  if (
    x.shape.length !== 3 || !(Number.isInteger(heads) && heads > 0) || x.shape[2] % heads !== 0
  ) {
    throw new RangeError(
      `${op}: expected x [B, L, H·d] with ${heads} heads dividing its last dimension, got x ` +
        `[${x.shape.join(", ")}]`,
    );
  }
  const [b, l, width] = x.shape;
  const d = width / heads;
  return swapMiddle(op, x, [l, heads, d], [b, heads, l, d]);
}

/**
 * The context `[B, H, L, d]` as `[B, L, H·d]`, heads concatenated in order, as RecBole's
 * `permute(0, 2, 1, 3).view(B, L, H·d)`; the inverse of {@link splitHeads}. Recorded.
 * @param x `[B, H, L, d]`, the result of {@link attention}
 * @returns `[B, L, H·d]`
 */
export function mergeHeads(x: Tensor): Tensor {
  const op = "mergeHeads";
  assertDType(op, x, "f32");
  if (x.shape.length !== 4) {
    throw new RangeError(`${op}: expected x [B, H, L, d], got x [${x.shape.join(", ")}]`);
  }
  const [b, h, l, d] = x.shape;
  return swapMiddle(op, x, [h, l, d], [b, l, h * d]);
}
