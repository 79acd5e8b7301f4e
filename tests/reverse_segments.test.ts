import { assertEquals, assertThrows } from "@std/assert";
import {
  backward,
  mul,
  readTensors,
  requireGrad,
  reverseSegments,
  runtime,
  segmentReversal,
  sumAll,
  Tensor,
  tidy,
} from "../ops/mod.ts";
import { randomSeqIdx, segmentLengths } from "./packed_segments.ts";
import { freshSeed, makeRng, randn } from "./util.ts";

/**
 * The reversal written from the segment lengths, row after row: each segment [s, e] contributes
 * e, e − 1, …, s (positions within its row).
 */
function reversalPerRow(lengths: number[], length: number): number[] {
  const out: number[] = [];
  let start = 0;
  for (const n of lengths) {
    for (let q = n - 1; q >= 0; q--) out.push(start + q);
    start = (start + n) % length;
  }
  return out;
}

/** Plain host reversal: row b, position t takes x[b, source(t), :]. */
function reverseOnHost(
  x: Float32Array,
  batch: number,
  length: number,
  dim: number,
  source: ArrayLike<number>,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      const from = (b * length + source[b * length + t]) * dim;
      out.set(x.subarray(from, from + dim), (b * length + t) * dim);
    }
  }
  return out;
}

interface Case {
  /** x's shape: batch, T, then trailing dimensions. */
  shape: number[];
  /** Segments per row (default: the generator's). */
  segmentsPerRow?: number;
  /** Pass the index as (batch, T) instead of (batch · T). */
  rowShaped?: boolean;
}

const CASES: Case[] = [
  { shape: [1, 1, 1] }, // T = 1
  { shape: [2, 9, 4], segmentsPerRow: 9 }, // every segment of length 1
  { shape: [3, 17, 5], segmentsPerRow: 1 }, // one segment per row
  { shape: [1, 1200, 7], segmentsPerRow: 500 }, // hundreds of segments, odd D
  { shape: [4, 60, 1], rowShaped: true }, // D = 1, batch > 1
  { shape: [2, 23, 3, 5] }, // trailing dimensions
  { shape: [3, 300, 64], segmentsPerRow: 12 },
];

Deno.test("segmentReversal: reverses each segment in place, rows independent", () => {
  assertEquals([...segmentReversal(1, 5, [0, 0, 0, 1, 1])], [2, 1, 0, 4, 3]);
  // Ids may jump and may restart in the next row; only their runs matter.
  assertEquals([...segmentReversal(2, 3, [4, 9, 9, 0, 0, 0])], [0, 2, 1, 2, 1, 0]);
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const c of CASES) {
    const [batch, length] = c.shape;
    const ids = randomSeqIdx(rng, batch, length, { segmentsPerRow: c.segmentsPerRow });
    const want = reversalPerRow(segmentLengths(ids, batch, length), length);
    const got = segmentReversal(batch, length, ids);
    assertEquals([...got], want, `segmentReversal [${c.shape}] seed ${seed}`);
  }
});

Deno.test("reverseSegments: matches the host reversal; twice is the identity; exact gradient", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const c of CASES) {
    const [batch, length] = c.shape;
    const dim = c.shape.slice(2).reduce((a, b) => a * b, 1);
    const what = `reverseSegments x[${c.shape}] seed ${seed}`;
    const ids = randomSeqIdx(rng, batch, length, { segmentsPerRow: c.segmentsPerRow });
    const source = reversalPerRow(segmentLengths(ids, batch, length), length);
    const reversal = segmentReversal(batch, length, ids);
    const xHost = Float32Array.from(randn(rng, batch * length * dim));
    const wHost = Float32Array.from(randn(rng, batch * length * dim));
    const { out, twice, grad } = tidy(() => {
      const x = requireGrad(Tensor.from(xHost, c.shape));
      const r = Tensor.from(reversal, c.rowShaped ? [batch, length] : [batch * length]);
      const out = reverseSegments(x, r);
      const twice = reverseSegments(out, r);
      backward(sumAll(mul(out, Tensor.from(wHost, c.shape))));
      return { out, twice, grad: x.grad! };
    });
    assertEquals(out.shape, c.shape, `${what}: output shape`);
    const [got, back, dx] = await readTensors([out, twice, grad]);
    // A gather moves values without arithmetic, so every comparison is exact.
    assertEquals(got, reverseOnHost(xHost, batch, length, dim, source), `${what}: forward`);
    assertEquals(back, xHost, `${what}: applied twice`);
    // d/dx Σ w ⊙ reverse(x) = reverse(w), as the reversal is its own inverse.
    assertEquals(dx, reverseOnHost(wHost, batch, length, dim, source), `${what}: gradient`);
    for (const t of [out, twice, grad]) t.dispose();
  }
});

Deno.test("reverseSegments: the backward is the same gather, so it needs an involution", async () => {
  // A rotation is not its own inverse: its true gradient of Σ w ⊙ x[r] would be [30, 10, 20];
  // the documented backward gathers w by the same index instead.
  const x = requireGrad(Tensor.from([1, 2, 3], [1, 3, 1]));
  const out = reverseSegments(x, Tensor.from(new Int32Array([1, 2, 0])));
  backward(sumAll(mul(out, Tensor.from([10, 20, 30], [1, 3, 1]))));
  const [y, dx] = await readTensors([out, x.grad!]);
  assertEquals([...y], [2, 3, 1]);
  assertEquals([...dx], [20, 30, 10]);
});

Deno.test("segmentReversal: bad input says what was wrong, where, and what is expected", () => {
  assertThrows(
    () => segmentReversal(2, 3, [0, 0, 1, 1]),
    RangeError,
    "segmentReversal: seqIdx has 4 ids, expected batch 2 × length 3 = 6",
  );
  assertThrows(
    () => segmentReversal(2, 4, [0, 0, 1, 1, 3, 4, 4, 2]),
    RangeError,
    "segmentReversal: seqIdx decreases in row 1 at position 3 (id 2 after 4); expected " +
      "non-decreasing segment ids within each row",
  );
  assertThrows(
    () => segmentReversal(0, 3, []),
    RangeError,
    "segmentReversal: batch must be a positive integer, got 0",
  );
  assertThrows(
    () => segmentReversal(1, 2.5, [0, 0]),
    RangeError,
    "segmentReversal: length must be a positive integer, got 2.5",
  );
});

Deno.test("reverseSegments: bad input names the op and both shapes before any dispatch", () => {
  const x = Tensor.from(new Float32Array(2 * 3 * 4), [2, 3, 4]);
  const r = Tensor.from(new Int32Array(6), [6]);
  const before = runtime().dispatchCount;
  assertThrows(
    () => reverseSegments(x, Tensor.from(new Int32Array(5), [5])),
    RangeError,
    "reverseSegments: reversal must be i32 (6) or (2, 3) for x [2, 3, 4] f32, got [5] i32; " +
      "pass x as (batch, T, …) and the (batch · T) index from segmentReversal",
  );
  assertThrows(
    () => reverseSegments(x, Tensor.from(new Int32Array(6), [3, 2])),
    RangeError,
    "reversal must be i32 (6) or (2, 3) for x [2, 3, 4] f32, got [3, 2] i32",
  );
  assertThrows(
    () => reverseSegments(Tensor.from([1, 2, 3]), Tensor.from(new Int32Array(3))),
    RangeError,
    "reverseSegments: x must be a non-empty (batch, T, …) tensor, got [3] f32 with reversal [3] i32",
  );
  assertThrows(
    () => reverseSegments(x, Tensor.from(new Float32Array(6))),
    TypeError,
    "reverseSegments: expected a i32 tensor, got [6] f32",
  );
  assertThrows(
    () => reverseSegments(Tensor.from(new Int32Array(6), [2, 3]), r),
    TypeError,
    "reverseSegments: expected a f32 tensor, got [2, 3] i32",
  );
  assertEquals(runtime().dispatchCount, before);
});
