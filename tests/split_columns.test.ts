import { assertThrows } from "@std/assert";
import { splitColumns } from "../ops/pointwise/split_columns.ts";
import { concatColumns, requireGrad, scale } from "../ops/mod.ts";
import { Tensor, tidy } from "../ops/core/tensor.ts";
import { freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/** Columns `[start, start + cols)` of the `[rows, width]` matrix `x`, row by row. */
function columnsOf(x: Float64Array, rows: number, width: number, start: number, cols: number) {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    out.set(x.subarray(r * width + start, r * width + start + cols), r * cols);
  }
  return out;
}

Deno.test("splitColumns: pieces and the gradient gathered from them, an unused piece's zero", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const cases: [number, number[]][] = [[1, [1]], [3, [2, 1]], [17, [5, 3, 4, 1, 2]], [300, [
    8,
    65,
    3,
  ]]];
  for (const [n, widths] of cases) {
    const width = widths.reduce((a, b) => a + b, 0);
    const starts = widths.map((_, k) => widths.slice(0, k).reduce((a, b) => a + b, 0));
    // The pieces reversed and side by side again, the second piece left out when there are
    // three or more: every piece's gradient lands in its own columns, an unused one's is zero.
    const used = widths.map((_, k) => k).reverse().filter((k) => widths.length < 3 || k !== 1);
    const joinedWidth = used.reduce((a, k) => a + widths[k], 0);
    await gradCheck({
      what: `splitColumns [${n}, ${width}] into [${widths}] seed ${seed}`,
      inputs: [{ data: randn(rng, n * width), shape: [n, width] }],
      // The input passes through one recorded op first: splitColumns takes an op's output.
      gpu: ([x]) => {
        const pieces = splitColumns(scale(x, 1), widths as number[]);
        return used.map((k) => pieces[k]).reduce((a, b) => concatColumns(a, b));
      },
      ref: ([x]) => {
        const out = new Float64Array(n * joinedWidth);
        let at = 0;
        for (const k of used) {
          const cols = widths[k];
          const piece = columnsOf(x, n, width, starts[k], cols);
          for (let r = 0; r < n; r++) {
            out.set(piece.subarray(r * cols, (r + 1) * cols), r * joinedWidth + at);
          }
          at += cols;
        }
        return out;
      },
      refGrad: (_x, g) => {
        const dx = new Float64Array(n * width);
        let at = 0;
        for (const k of used) {
          const cols = widths[k];
          for (let r = 0; r < n; r++) {
            dx.set(
              g.subarray(r * joinedWidth + at, r * joinedWidth + at + cols),
              r * width + starts[k],
            );
          }
          at += cols;
        }
        return [dx];
      },
      rng,
      tol: 1e-7,
    });
  }
});

Deno.test("splitColumns: refuses widths that do not cut the last dimension, and a bare leaf", () => {
  tidy(() => {
    const x = Tensor.from(new Float32Array(12), [2, 6]);
    for (const widths of [[], [2, 3], [4, 3], [6, 0], [2.5, 3.5]]) {
      assertThrows(() => splitColumns(x, widths), RangeError, "must be positive integers");
    }
    assertThrows(() => splitColumns(requireGrad(x), [2, 4]), Error, "made by no recorded op");
  });
});
