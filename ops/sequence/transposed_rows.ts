/**
 * Transposed copies into pool rows: {@link writeTransposedRows} writes each matrix of a batch,
 * transposed, into a row ("slot") of a pool, at a column offset. The step form of the Mamba
 * block keeps its SSM states state-major (`[slot, n, d]`, so that the step kernel reads them
 * coalesced) while the full scan returns them channel-major (`[batch, d, n]`), and packs its
 * step weights transposed; both are such copies. Every output entry is one input entry, so the
 * copy is exact. {@link writeTransposedRowsReference} does the same on the host.
 *
 * @module
 */
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import type { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const WG = 256;

const TRANSPOSED_ROWS_WGSL = shaderGenerator(
  "writeTransposedRows",
  (slotted: boolean) => /* wgsl */ `
struct P { n: u32, stride: u32, rows: u32, cols: u32, width: u32, offset: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${slotted ? "@group(0) @binding(3) var<storage, read> slot: array<i32>;" : ""}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let matrix = p.rows * p.cols;
  let b = i / matrix;
  let r = (i % matrix) / p.cols;
  let c = i % p.cols;
  let row = ${slotted ? "u32(slot[b])" : "b"};
  dst[(row * p.cols + c) * p.width + p.offset + r] = src[i];
}`,
);

/** The sizes of one {@link writeTransposedRows} call. */
export interface TransposedRowsShape {
  /** Matrices in `src`. */
  readonly batch: number;
  /** Rows of each source matrix (columns written in its slot). */
  readonly rows: number;
  /** Columns of each source matrix (rows of a slot). */
  readonly cols: number;
  /** Columns of a slot. */
  readonly width: number;
}

function shapeOf(
  dst: Tensor,
  slots: Tensor | null,
  src: Tensor,
  offset: number,
): TransposedRowsShape {
  const op = "writeTransposedRows";
  assertDType(op, src, "f32");
  assertDType(op, dst, "f32");
  if (src.shape.length !== 3 || dst.shape.length !== 3) {
    throw new RangeError(
      `${op}: src must be [batch, rows, cols] and dst [slots, cols, width], got src ` +
        `${src.describe()} and dst ${dst.describe()}; reshape a single matrix to [1, …]`,
    );
  }
  const [batch, rows, cols] = src.shape;
  const width = dst.shape[2];
  if (
    dst.shape[1] !== cols || !(Number.isInteger(offset) && offset >= 0) || offset + rows > width
  ) {
    throw new RangeError(
      `${op}: src ${src.describe()} transposed does not fit dst ${dst.describe()} at column ` +
        `offset ${offset}: dst must be [slots, ${cols}, ≥ offset + ${rows}]`,
    );
  }
  if (slots) {
    assertDType(op, slots, "i32");
    if (slots.shape.length !== 1 || slots.size !== batch) {
      throw new RangeError(`${op}: slots must be i32 [${batch}], got ${slots.describe()}`);
    }
  } else if (batch > dst.shape[0]) {
    throw new RangeError(`${op}: ${batch} matrices do not fit dst ${dst.describe()}`);
  }
  return { batch, rows, cols, width };
}

/**
 * In place: `dst[slots[b], c, offset + r] = src[b, r, c]` for every matrix b of `src`, i.e. each
 * matrix transposed into its slot's columns `[offset, offset + rows)`; the other columns keep
 * their values. Slots must be distinct.
 * @param dst the pool `[slots, cols, width]`, updated in place
 * @param slots i32 `[batch]`, in range; null writes matrix b into row b
 * @param src `[batch, rows, cols]`
 * @param offset the first column written (default 0)
 */
export function writeTransposedRows(
  dst: Tensor,
  slots: Tensor | null,
  src: Tensor,
  offset = 0,
): void {
  const s = shapeOf(dst, slots, src, offset);
  if (src.size === 0) return;
  const g = grid(src.size, WG);
  launch(
    "writeTransposedRows",
    TRANSPOSED_ROWS_WGSL(slots !== null),
    packParams([src.size, g.stride, s.rows, s.cols, s.width, offset]),
    slots ? [src, dst, slots] : [src, dst],
    g.groups,
  );
}

/**
 * Float64 reference of {@link writeTransposedRows} on host arrays of the same shapes.
 * @param dst `[slots, cols, width]`, updated in place
 * @param slots one slot per matrix, or null for matrix b into row b
 * @param src `[batch, rows, cols]`
 * @param shape the sizes: `batch`, `rows`, `cols` of `src` and the `width` of a dst row
 * @param offset the first column written
 */
export function writeTransposedRowsReference(
  dst: Float64Array,
  slots: Int32Array | null,
  src: Float64Array,
  shape: TransposedRowsShape,
  offset = 0,
): void {
  const { batch, rows, cols, width } = shape;
  for (let b = 0; b < batch; b++) {
    const row = slots ? slots[b] : b;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        dst[(row * cols + c) * width + offset + r] = src[(b * rows + r) * cols + c];
      }
    }
  }
}
