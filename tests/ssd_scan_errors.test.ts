/**
 * The messages of rejected `ssdScan` and `ssdPieces` calls: decreasing or miscounted segment ids,
 * groups that do not divide the heads, misshapen inputs, chunk sizes out of range, and
 * `SsdPieces` built for another chunk or batch.
 */
import { assertThrows } from "@std/assert";
import { type SsdPieces, ssdPieces, ssdScan, Tensor, tidy } from "../ops/mod.ts";
// Initialises the GPU.
import "./util.ts";

Deno.test("ssdScan: rejected calls say what is wrong", () => {
  const [batch, T, H, P, G, N] = [2, 5, 4, 3, 2, 5];
  const zeros = (shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  type Shapes = Partial<Record<"x" | "dt" | "A" | "B" | "C" | "D" | "init", number[]>>;
  const scan = (s: Shapes, seqIdx?: ArrayLike<number> | SsdPieces, chunkSize?: number) => () =>
    tidy(() => {
      ssdScan(
        zeros(s.x ?? [batch, T, H, P]),
        zeros(s.dt ?? [batch, T, H]),
        zeros(s.A ?? [H]),
        zeros(s.B ?? [batch, T, G, N]),
        zeros(s.C ?? [batch, T, G, N]),
        {
          D: s.D && zeros(s.D),
          initialStates: s.init && zeros(s.init),
          seqIdx,
          chunkSize,
        },
      );
    });
  const decreasing = [0, 0, 1, 1, 2, 0, 1, 3, 2, 2];
  const where = "seqIdx decreases in row 1 at position 3 (2 after 3)";
  assertThrows(scan({}, decreasing), RangeError, where);
  assertThrows(() => ssdPieces(batch, T, decreasing), RangeError, where);
  assertThrows(
    scan({}, decreasing.slice(1)),
    RangeError,
    "seqIdx has 9 values, expected batch·length = 2·5 = 10",
  );
  assertThrows(
    scan({ B: [batch, T, 3, N], C: [batch, T, 3, N] }),
    RangeError,
    "heads 4 must be divisible by the groups of B, 3",
  );
  assertThrows(
    scan({ dt: [batch, T + 1, H] }),
    RangeError,
    "dt must be (batch, length, heads) [2, 5, 4], got [2, 6, 4] f32",
  );
  assertThrows(
    scan({ B: [batch, T - 1, G, N] }),
    RangeError,
    "B must be (batch, length, groups, states) with batch 2 and length 5, got [2, 4, 2, 5] f32",
  );
  assertThrows(
    scan({ C: [batch, T, G, N + 1] }),
    RangeError,
    "C must be shaped like B [2, 5, 2, 5] f32, got [2, 5, 2, 6] f32",
  );
  assertThrows(scan({ D: [H + 1] }), RangeError, "D must be (heads) [4], got [5] f32");
  const ids = [0, 0, 1, 1, 2, 0, 1, 1, 2, 2];
  assertThrows(
    scan({ init: [batch, H, P, N] }, ids),
    RangeError,
    "initialStates must be (segments, heads, headDim, states) [6, 4, 3, 5], got [2, 4, 3, 5] " +
      "f32 (the segment ids give 6 segments)",
  );
  for (const chunk of [0, 300]) {
    const message = `chunkSize must be an integer in [1, 256], got ${chunk}`;
    assertThrows(scan({}, ids, chunk), RangeError, message);
    assertThrows(() => ssdPieces(batch, T, ids, chunk), RangeError, message);
  }
  const pieces = ssdPieces(batch, T, ids, 8);
  assertThrows(
    scan({}, pieces, 16),
    RangeError,
    "chunkSize 16 differs from the chunk of the SsdPieces passed as seqIdx, 8",
  );
  const oneRow = ssdPieces(1, T, undefined, 8);
  assertThrows(
    scan({}, oneRow),
    RangeError,
    "the SsdPieces passed as seqIdx were built for batch 1, length 5, but x is [2, 5, 4, 3] f32",
  );
  pieces.dispose();
  oneRow.dispose();
  const withForward = (forward: string, states: number) => () =>
    tidy(() => {
      ssdScan(
        zeros([batch, T, H, P]),
        zeros([batch, T, H]),
        zeros([H]),
        zeros([batch, T, G, states]),
        zeros([batch, T, G, states]),
        { forward: forward as "auto" },
      );
    });
  assertThrows(
    withForward("recurrent", 65),
    RangeError,
    'forward "recurrent" keeps at most 64 states in registers, got 65; use forward "chunked"',
  );
  assertThrows(
    withForward("fast", N),
    RangeError,
    'forward must be "auto", "recurrent" or "chunked", got "fast"',
  );
});
