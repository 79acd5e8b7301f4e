import { assert, assertThrows } from "@std/assert";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { biSsdStep, type BiSsdStepPools } from "../ops/sequence/bi_ssd_step.ts";
import { biSsdStepReference } from "../ops/sequence/bi_ssd_step_reference.ts";
import { assertClose, assertScaled, freshSeed, makeRng, randn } from "./util.ts";

const f32 = (a: Float64Array) => Float32Array.from(a);

/** Zeroed pools for `slots` streams of a block of these sizes. */
function emptyPools(slots: number, inner: number, H: number, N: number, w: number) {
  const convDim = inner + 2 * N;
  const zeros = (...shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  return {
    window: zeros(slots, w - 1, convDim),
    state: zeros(slots, N, inner),
    closed: zeros(slots, N, inner),
    perHead: zeros(slots, 2 * w - 1, H),
    oldest: zeros(slots, 2 * inner + N),
  } satisfies BiSsdStepPools;
}

// One head, heads of one channel, channels past the 256 invocations, every convolution width, N
// odd; more events than the window holds, so that terms close and the oldest token settles.
const SIZES = [
  { inner: 8, H: 2, N: 3, w: 4 },
  { inner: 12, H: 12, N: 5, w: 2 },
  { inner: 6, H: 1, N: 4, w: 3 },
  { inner: 300, H: 5, N: 7, w: 4 },
];

for (const { inner, H, N, w } of SIZES) {
  Deno.test(`biSsdStep matches its float64 reference event by event (d_inner ${inner}, H ${H}, N ${N}, w ${w})`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const convDim = inner + 2 * N, row = inner + convDim + H;
    const weights64 = {
      convWeight: randn(rng, convDim * w, 0.5),
      convBias: randn(rng, convDim, 0.5),
      dtBias: randn(rng, H, 0.5),
      A: Float64Array.from(randn(rng, H), (v) => -Math.exp(0.5 * v)),
      D: randn(rng, H, 1),
    };
    const weights = tidy(() => ({
      convWeight: Tensor.from(f32(weights64.convWeight), [convDim, w]),
      convBias: Tensor.from(f32(weights64.convBias), [convDim]),
      dtBias: Tensor.from(f32(weights64.dtBias), [H]),
      A: Tensor.from(f32(weights64.A), [H]),
      D: Tensor.from(f32(weights64.D), [H]),
    }));
    const capacity = 5;
    const pools = tidy(() => emptyPools(capacity, inner, H, N, w));
    const histories: Float64Array[][] = Array.from({ length: capacity }, () => []);
    // Each event moves a different set of streams, so their counts drift apart.
    const events = [[3], [0, 3], [4, 0, 3], [3, 1], [0, 4, 3], [3], [2, 3, 0], [0, 3], [3, 4]];
    try {
      for (const [e, streams] of events.entries()) {
        // Rows of float32 values, so both sides start from the same numbers.
        const rows = streams.map(() => Float64Array.from(f32(randn(rng, row, 0.7))));
        const want = streams.map((s, i) => biSsdStepReference(rows[i], weights64, histories[s]));
        const out = tidy(() => {
          const flat = new Float32Array(streams.length * row);
          rows.forEach((r, i) => flat.set(r, i * row));
          return biSsdStep(
            Tensor.from(flat, [streams.length, row]),
            weights,
            pools,
            Tensor.from(Int32Array.from(streams), [streams.length], "i32"),
            Tensor.from(
              Int32Array.from(streams, (s) => histories[s].length - 1),
              [streams.length],
              "i32",
            ),
          );
        });
        const [yf, yb, zb] = await readTensors([out.yForward, out.yBackward, out.zBackward]);
        for (const t of Object.values(out)) t.dispose();
        streams.forEach((s, i) => {
          const at = (a: ArrayLike<number>) => Array.from(a).slice(i * inner, (i + 1) * inner);
          const what = (o: string) =>
            `seed ${seed}: event ${e}, stream ${s} (${histories[s].length} tokens): ${o}`;
          // Each y is a sum whose terms can cancel: its error is measured against Σ|terms|.
          assertScaled(at(yf), want[i].yForward, want[i].yForwardScale, 1e-5, what("forward y"));
          assertScaled(at(yb), want[i].yBackward, want[i].yBackwardScale, 1e-5, what("backward y"));
          assertClose(at(zb), want[i].zBackward, 1e-7, what("backward gate"));
        });
      }
      assert(histories[3].length > w + 2, `seed ${seed}: stream 3 must outgrow the window`);
    } finally {
      for (const t of [...Object.values(weights), ...Object.values(pools)]) t.dispose();
    }
  });
}

Deno.test("biSsdStep: mismatched shapes throw naming the argument", () => {
  tidy(() => {
    const inner = 8, H = 2, N = 3, w = 4, convDim = inner + 2 * N;
    const pools = emptyPools(2, inner, H, N, w);
    const weights = {
      convWeight: Tensor.from(new Float32Array(convDim * w), [convDim, w]),
      convBias: Tensor.from(new Float32Array(convDim), [convDim]),
      dtBias: Tensor.from(new Float32Array(H), [H]),
      A: Tensor.from(new Float32Array(H), [H]),
      D: Tensor.from(new Float32Array(H), [H]),
    };
    const slots = Tensor.from(Int32Array.of(0), [1], "i32");
    const step = (row: number, p: BiSsdStepPools = pools, w2 = weights) =>
      biSsdStep(Tensor.from(new Float32Array(row), [1, row]), w2, p, slots, slots);
    assertThrows(() => step(inner + convDim + H + 1), RangeError, "projection");
    assertThrows(
      () =>
        step(inner + convDim + H, {
          ...pools,
          closed: Tensor.from(new Float32Array(2 * N * inner), [2, inner, N]),
        }),
      RangeError,
      "closed",
    );
    assertThrows(
      () =>
        step(inner + convDim + H, pools, { ...weights, D: Tensor.from(new Float32Array(3), [3]) }),
      RangeError,
      "D must be",
    );
  });
});
