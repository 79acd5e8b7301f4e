/**
 * `splitColumns`: a tensor `[..., width]` cut into pieces `[..., w_k]` that lie side by side in
 * its last dimension (as one input projection yields the gate, the convolved channels and the
 * step sizes of a Mamba-2 block), in one launch. Each piece is recorded on the tape; their
 * gradients are written into the columns of one gradient of the whole, so the backward makes no
 * full-width sums. Every entry is a copy, so forward and backward are exact.
 *
 * @module
 */
import { gradEnabled, record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const OP = "splitColumns";
const WG = 256;

/** The forward kernel for one list of piece widths: entry i of x goes to its piece. */
function splitShader(widths: readonly number[]): string {
  const bindings = widths.map((_, k) =>
    `@group(0) @binding(${k + 2}) var<storage, read_write> out${k}: array<f32>;`
  );
  let start = 0;
  const branches = widths.map((w, k) => {
    const end = start + w;
    const store = `out${k}[row * ${w}u + col - ${start}u] = v;`;
    const branch = k === widths.length - 1 ? `{ ${store} }` : `if (col < ${end}u) { ${store} }`;
    start = end;
    return branch;
  });
  return /* wgsl */ `// splitColumns ${widths.join(" ")}
struct P { n: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${bindings.join("\n")}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let row = i / ${start}u;
  let col = i % ${start}u;
  let v = x[i];
  ${branches.join(" else ")}
}`;
}

/**
 * A piece-gradient kernel: the shared parameters (the whole's width, the piece's column offset and
 * width) and bindings, with `body` run for every index `i < n`.
 */
function pieceGradShader(body: string): string {
  return /* wgsl */ `
struct P { n: u32, stride: u32, width: u32, offset: u32, cols: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  ${body}
}`;
}

/**
 * The first piece gradient to arrive: the whole gradient `[rows, width]`, the piece's columns
 * `[offset, offset + cols)` from `g`, zero elsewhere (pieces that get no gradient stay zero).
 */
const FIRST_GRAD = pieceGradShader(`let c = i % p.width - p.offset;
  let inside = i % p.width >= p.offset && c < p.cols;
  dx[i] = select(0.0, g[(i / p.width) * p.cols + select(0u, c, inside)], inside);`);

/** A later piece gradient: written into its columns `[offset, offset + cols)` of the whole. */
const LATER_GRAD = pieceGradShader(
  `dx[(i / p.cols) * p.width + p.offset + i % p.cols] = g[i];`,
);

/** {@link splitShader}, generated once per list of widths. */
const splitSource = shaderGenerator("splitColumns", splitShader, (widths) => widths.join(" "));

/**
 * Cuts `x` (`[..., width]`) into pieces `[..., widths[k]]`, side by side in that order
 * (`widths` sums to `width`), in one launch. Recorded on the tape for `x`.
 *
 * While gradients are recorded, `x` must be the output of a recorded op that nothing else
 * consumes (make it just before the call, and hand it to nothing else): the first piece gradient
 * to arrive becomes the whole gradient of `x` and the later ones are written into its columns,
 * which is right only while the tape holds no other gradient for `x`. `x` itself is not needed
 * by the backward, so the caller may dispose of it right after the call.
 * @param x the tensor to cut, f32 with at least one dimension
 * @param widths the widths of the pieces, positive integers summing to x's last dimension
 * @returns the pieces, in order
 */
export function splitColumns(x: Tensor, widths: readonly number[]): Tensor[] {
  assertDType(OP, x, "f32");
  const width = x.shape.at(-1) ?? 0;
  const total = widths.reduce((a, b) => a + b, 0);
  if (
    x.size === 0 || widths.length === 0 || total !== width ||
    !widths.every((w) => Number.isInteger(w) && w > 0)
  ) {
    throw new RangeError(
      `${OP}: widths [${widths.join(", ")}] must be positive integers that sum to the last ` +
        `dimension of a non-empty ${x.describe()}`,
    );
  }
  if (gradEnabled() && x.requiresGrad && !x.node) {
    throw new Error(
      `${OP}: ${x.describe()} needs a gradient but was made by no recorded op; pass the output ` +
        "of the op that makes it (its piece gradients are gathered into the gradient the tape " +
        "gives that op)",
    );
  }
  const rows = x.size / width;
  const lead = x.shape.slice(0, -1);
  const pieces = widths.map((w) => Tensor.empty([...lead, w], "f32", OP));
  const g = grid(x.size, WG);
  launch(OP, splitSource(widths), packParams([x.size, g.stride]), [x, ...pieces], g.groups);
  const shape = x.shape;
  let whole: Tensor | null = null;
  let offset = 0;
  return pieces.map((piece, k) => {
    const start = offset, cols = widths[k];
    offset += cols;
    return record(piece, OP, [x], (gy) => {
      const name = `${OP} backward`;
      if (whole === null) {
        whole = Tensor.empty(shape, "f32", name);
        const f = grid(whole.size, WG);
        launch(
          name,
          FIRST_GRAD,
          packParams([whole.size, f.stride, width, start, cols]),
          [gy, whole],
          f.groups,
        );
        return [whole];
      }
      if (whole.disposed) {
        throw new Error(
          `${OP}: the gradient of the [${
            shape.join(", ")
          }] tensor was used before all of its pieces' gradients ` +
            "arrived, so x has a consumer besides splitColumns; hand x to splitColumns alone",
        );
      }
      const l = grid(rows * cols, WG);
      launch(
        name,
        LATER_GRAD,
        packParams([rows * cols, l.stride, width, start, cols]),
        [gy, whole],
        l.groups,
      );
      return [null];
    });
  });
}
