import { assertEquals, assertThrows } from "@std/assert";
import { gatedRmsNorm } from "../ops/dense/gated_rms_norm.ts";
import {
  type GatedRmsNormProblem,
  gatedRmsNormReference,
  gatedRmsNormReferenceBackward,
} from "../ops/dense/gated_rms_norm_reference.ts";
import { backward, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { freshSeed, gradCheck, makeRng, randn, uniform } from "./util.ts";

/** Where the gate enters: no z, SiLU(z) before the normalization (default), or after it. */
type GateCase = "none" | "gate then norm" | "norm then gate";
const GATES: GateCase[] = ["none", "gate then norm", "norm then gate"];

// [shape, groupSize]: one row, odd D, D not a multiple of a team or the workgroup, several
// invocations per value, several rows per workgroup, and the SSD4Rec width 512 as one group and
// as four groups of 128.
const CASES: [number[], number][] = [
  [[1, 5], 5],
  [[3, 7], 7],
  [[2, 4, 33], 33],
  [[6, 300], 300],
  [[2, 1500], 1500],
  [[9, 12], 3],
  [[300, 64], 64],
  [[5, 512], 512],
  [[5, 512], 128],
];

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Values already rounded to f32, so the float64 reference sees exactly what the GPU sees. */
function f32(v: Float64Array): Float64Array {
  return v.map(Math.fround);
}

/** x ~ N(0, 1), z ~ N(0, 2²), weights of both signs away from zero. */
function inputs(rng: () => number, shape: number[]) {
  const cols = shape.at(-1)!;
  const x = f32(randn(rng, numel(shape)));
  const z = f32(randn(rng, numel(shape), 2));
  const w = f32(uniform(rng, cols, 0.5, 1.5).map((v) => (rng() < 0.3 ? -v : v)));
  return { x, z, w, cols };
}

for (const gate of GATES) {
  Deno.test(`gatedRmsNorm (${gate}): forward and every gradient match float64`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    for (const [shape, groupSize] of CASES) {
      const { x, z, w, cols } = inputs(rng, shape);
      const p: GatedRmsNormProblem = {
        cols,
        groupSize,
        eps: 1e-5,
        normBeforeGate: gate === "norm then gate",
      };
      const what = `gatedRmsNorm ${gate} [${shape}] group ${groupSize} seed ${seed}`;
      if (gate === "none") {
        await gradCheck({
          what,
          inputs: [{ data: x, shape }, { data: w, shape: [cols] }],
          gpu: ([tx, tw]) => gatedRmsNorm(tx, tw, { groupSize }),
          ref: ([vx, vw]) => gatedRmsNormReference(vx, null, vw, p),
          refGrad: ([vx, vw], g) => {
            const r = gatedRmsNormReferenceBackward(vx, null, vw, p, g);
            return [r.dx, r.dweight];
          },
          rng,
          probes: 8,
        });
      } else {
        await gradCheck({
          what,
          inputs: [{ data: x, shape }, { data: z, shape }, { data: w, shape: [cols] }],
          gpu: ([tx, tz, tw]) =>
            gatedRmsNorm(tx, tw, { z: tz, groupSize, normBeforeGate: p.normBeforeGate }),
          ref: ([vx, vz, vw]) => gatedRmsNormReference(vx, vz, vw, p),
          refGrad: ([vx, vz, vw], g) => {
            const r = gatedRmsNormReferenceBackward(vx, vz, vw, p, g);
            return [r.dx, r.dz, r.dweight];
          },
          rng,
          probes: 8,
        });
      }
    }
  });
}

Deno.test("gatedRmsNorm: eps is applied, and only x and z differentiable", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // mean(v²) ≈ 1e-4, so eps = 1e-3 changes the scale by ~3×: a kernel ignoring eps fails.
  const shape = [4, 24];
  const { z, w, cols } = inputs(rng, shape);
  const x = f32(randn(rng, numel(shape), 0.01));
  const p: GatedRmsNormProblem = { cols, groupSize: 8, eps: 1e-3, normBeforeGate: false };
  await gradCheck({
    what: `gatedRmsNorm eps 1e-3 [${shape}] seed ${seed}`,
    inputs: [
      { data: x, shape },
      { data: z, shape },
      { data: w, shape: [cols], differentiable: false },
    ],
    gpu: ([tx, tz, tw]) => gatedRmsNorm(tx, tw, { z: tz, groupSize: 8, eps: 1e-3 }),
    ref: ([vx, vz, vw]) => gatedRmsNormReference(vx, vz, vw, p),
    refGrad: ([vx, vz, vw], g) => {
      const r = gatedRmsNormReferenceBackward(vx, vz, vw, p, g);
      return [r.dx, r.dz, null];
    },
    rng,
    probes: 8,
  });
});

Deno.test("gatedRmsNorm: gradients repeat bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [257, 512];
  const { x, z, w } = inputs(rng, shape);
  const g = Float32Array.from(randn(rng, x.length));
  const run = () =>
    tidy(() => {
      const ts = [x, z].map((v) => requireGrad(Tensor.from(Float32Array.from(v), shape)));
      const tw = requireGrad(Tensor.from(Float32Array.from(w)));
      const y = gatedRmsNorm(ts[0], tw, { z: ts[1], groupSize: 128 });
      backward(sumAll(mul(y, Tensor.from(g, shape))));
      return [y, ts[0].grad!, ts[1].grad!, tw.grad!];
    });
  const first = await readTensors(run());
  const second = await readTensors(run());
  ["y", "dx", "dz", "dweight"].forEach((what, i) =>
    assertEquals(second[i], first[i], `gatedRmsNorm ${what} differs between runs, seed ${seed}`)
  );
});

Deno.test("gatedRmsNorm: bad input names the op and the shapes", () => {
  const x = Tensor.from(new Float32Array(12), [2, 6]);
  const w6 = Tensor.from(new Float32Array(6));
  assertThrows(
    () => gatedRmsNorm(x, Tensor.from(new Float32Array(4)), {}),
    RangeError,
    "gatedRmsNorm: weight has shape [4] but x has shape [2, 6]; expected [6]",
  );
  assertThrows(
    () => gatedRmsNorm(x, w6, { z: Tensor.from(new Float32Array(12), [3, 4]) }),
    RangeError,
    "gatedRmsNorm: z has shape [3, 4] but x has shape [2, 6]",
  );
  assertThrows(
    () => gatedRmsNorm(x, w6, { groupSize: 4 }),
    RangeError,
    "gatedRmsNorm: groupSize 4 must be a positive divisor of the last dimension 6 of [2, 6]",
  );
  assertThrows(() => gatedRmsNorm(x, w6, { groupSize: 0 }), RangeError, "groupSize 0");
  assertThrows(() => gatedRmsNorm(x, w6, { eps: -1 }), RangeError, "gatedRmsNorm: eps must be");
  assertThrows(
    () => gatedRmsNorm(Tensor.from(new Int32Array(6)), w6),
    TypeError,
    "gatedRmsNorm: expected a f32 tensor",
  );
  const wide = Tensor.from(new Float32Array(4100));
  assertThrows(
    () => gatedRmsNorm(Tensor.empty([1, 4100]), wide),
    RangeError,
    "gatedRmsNorm: group size 4100 of [1, 4100] exceeds 4096; pass a smaller groupSize",
  );
});
