/**
 * The SSD scan on the GPU (`ssdScan`) against the float64 reference: forward, final states and
 * every gradient over packed segments of every awkward kind and chunk sizes 1–256, and every
 * gradient against central finite differences.
 */
import { assert } from "@std/assert";
import {
  ssdScan,
  type SsdScanInputs,
  ssdScanReference,
  ssdScanReferenceBackward,
} from "../ops/mod.ts";
import {
  assertErrors,
  type Case,
  describe,
  draw,
  errors,
  FULL,
  referenceOf,
  runGpu,
  shapesOf,
} from "./ssd_scan_cases.ts";
import { SSD_GRAD_KEYS } from "./ssd_scan_inputs.ts";
import { freshSeed, gradCheck, type GradInput, makeRng } from "./util.ts";

const REFERENCE_CASES: Case[] = [
  // One token a row, nothing carried (no initial or final states): no state slots at all.
  { size: [3, 1, 2, 3, 1, 5], parts: ["softplus", "D", "dtBias", "noFinalStates"], chunks: [7, 1] },
  // One token with an initial state; G = H.
  { size: [2, 1, 3, 5, 3, 3], parts: ["initialStates"], perRow: 1, chunks: [64] },
  // T = 37, not a multiple of 7: one-token, chunk-aligned and multi-chunk segments; 1 < G < H.
  { size: [2, 37, 4, 3, 2, 5], parts: FULL, perRow: 4, chunks: [7, 16] },
  // Chunk 1: every token its own chunk, states carried token by token; G = H, no softplus.
  { size: [2, 13, 3, 5, 3, 3], parts: ["dtBias", "noFinalStates"], perRow: 3, chunks: [1, 7] },
  // Hundreds of segments in a row, mostly one or two tokens long.
  { size: [2, 420, 2, 3, 1, 5], parts: ["softplus", "D", "dtBias"], perRow: 200, chunks: [16, 7] },
  // One segment a row (no seqIdx) spanning several chunks, with P 16 and N 64.
  { size: [2, 150, 4, 16, 2, 64], parts: FULL, chunks: [64] },
  // No optional input and no final states: only the segments that are cut carry a state.
  { size: [3, 150, 2, 3, 2, 5], parts: ["noFinalStates"], perRow: 5, chunks: [16, 64] },
  // Segments longer than the largest chunks.
  { size: [1, 600, 2, 3, 1, 5], parts: FULL, perRow: 3, chunks: [128, 256] },
  // N 40: one invocation holds a row of ten vec4s (40 states, not a power of two).
  { size: [2, 60, 2, 3, 1, 40], parts: FULL, perRow: 2, chunks: [16] },
  // N 72, more states than the recurrent forward keeps in registers: the chunked forward.
  { size: [2, 45, 2, 3, 1, 72], parts: FULL, perRow: 3, chunks: [16, 64] },
];

Deno.test(
  "ssdScan: y, final states and every gradient match the float64 reference (chunks 1–256, " +
    "packed segments of every kind, G = 1 / between / H, optional D, dtBias, initial states)",
  async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    // Every case runs, failing or not; the failures are reported together at the end.
    const failures: string[] = [];
    for (const c of REFERENCE_CASES) {
      const d = draw(rng, c);
      const ref = referenceOf(d);
      for (const chunk of c.chunks) {
        const what = `${describe(d)} chunk ${chunk} seed ${seed}`;
        try {
          const got = await runGpu(d, chunk, what);
          assertErrors(errors(got, ref.out, ref.grads, ref.scales), 1e-5, what);
        } catch (e) {
          failures.push(e instanceof Error ? e.message : String(e));
        }
      }
    }
    assert(failures.length === 0, `${failures.length} failing runs:\n${failures.join("\n")}`);
  },
);

Deno.test("ssdScan: every gradient against central finite differences", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const d = draw(rng, { size: [2, 19, 4, 3, 2, 5], parts: FULL, perRow: 3, chunks: [4] });
  const shapes = shapesOf(d);
  const inputs: GradInput[] = SSD_GRAD_KEYS.map((k) => ({ data: d.inputs[k]!, shape: shapes[k] }));
  const unpack = (xs: Float64Array[]): SsdScanInputs => ({
    ...Object.fromEntries(SSD_GRAD_KEYS.map((k, i) => [k, xs[i]])) as Omit<SsdScanInputs, "seqIdx">,
    seqIdx: d.inputs.seqIdx,
  });
  await gradCheck({
    what: `ssdScan ${describe(d)} chunk 4 seed ${seed}`,
    inputs,
    gpu: ([x, dt, A, B, C, D, dtBias, initialStates]) =>
      ssdScan(x, dt, A, B, C, {
        D,
        dtBias,
        initialStates,
        dtSoftplus: true,
        seqIdx: d.inputs.seqIdx,
        chunkSize: 4,
      }).y,
    ref: (xs) => ssdScanReference(d.p, unpack(xs)).y,
    refGrad: (xs, g) => {
      const r = ssdScanReferenceBackward(d.p, unpack(xs), g);
      return SSD_GRAD_KEYS.map((k) => r[k]!);
    },
    rng,
    tol: 1e-5,
    probes: 12,
  });
});
