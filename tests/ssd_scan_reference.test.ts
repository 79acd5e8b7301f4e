/**
 * The float64 SSD scan reference checked on its own: its backward against central finite
 * differences, packed segments against each segment run alone, the sequential recurrence against
 * the chunked dual (attention) form with seqIdx masks, the segment starts it derives, and the
 * messages for wrong input lengths.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  type SsdScanGrads,
  type SsdScanInputs,
  type SsdScanProblem,
  ssdScanReference,
  ssdScanReferenceBackward,
  ssdSegmentStarts,
} from "../ops/sequence/ssd_scan/reference.ts";
import { segmentLengths } from "./packed_segments.ts";
import { chunkedScan } from "./ssd_scan_chunked_reference.ts";
import {
  itemRange,
  randomSsdInputs,
  SSD_GRAD_KEYS,
  type SsdInputOptions,
} from "./ssd_scan_inputs.ts";
import { assertClose, freshSeed, makeRng, randn, relError } from "./util.ts";

/** Σ w·v. */
function dot(w: Float64Array, v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += w[i] * v[i];
  return s;
}

const FD_STEP = 1e-6;
const FD_TOL = 1e-6;

/** Checks every given input's analytic gradient against central finite differences. */
function checkBackward(
  p: SsdScanProblem,
  o: SsdInputOptions,
  withFinalGrad: boolean,
  seed: number,
  rng: () => number,
) {
  const inputs = randomSsdInputs(rng, p, o);
  const { y, finalStates } = ssdScanReference(p, inputs);
  const gy = randn(rng, y.length);
  const gFinal = withFinalGrad ? randn(rng, finalStates.length) : undefined;
  const grads = ssdScanReferenceBackward(p, inputs, gy, gFinal);
  const loss = (xs: SsdScanInputs) => {
    const r = ssdScanReference(p, xs);
    return dot(gy, r.y) + (gFinal ? dot(gFinal, r.finalStates) : 0);
  };
  const what = `${JSON.stringify(p)} ${JSON.stringify(o)} gFinal ${withFinalGrad} seed ${seed}`;
  for (const key of SSD_GRAD_KEYS) {
    const value = inputs[key];
    const analytic = grads[key as keyof SsdScanGrads];
    assertEquals(analytic === undefined, value === undefined, `${what}: d${key} present iff given`);
    if (!value || !analytic) continue;
    assertEquals(analytic.length, value.length, `${what}: d${key} length`);
    const fd = new Float64Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const probe = { ...inputs, [key]: Float64Array.from(value) };
      const v = probe[key]!;
      const h = FD_STEP * Math.max(1, Math.abs(value[i]));
      v[i] = value[i] + h;
      const up = loss(probe);
      v[i] = value[i] - h;
      const down = loss(probe);
      fd[i] = (up - down) / (2 * h);
    }
    assertClose(analytic, fd, FD_TOL, `${what}: d${key} vs finite differences`);
  }
}

Deno.test("ssdScanReferenceBackward matches central finite differences", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const all = { D: true, dtBias: true, initialStates: true };
  const base = { batch: 1, length: 1, heads: 1, headDim: 1, groups: 1, states: 1 };
  const cases: [SsdScanProblem, SsdInputOptions][] = [
    // One token, several rows, G = 1, odd P and N.
    [{ ...base, batch: 3, heads: 2, headDim: 3, states: 5, dtSoftplus: true }, all],
    [{ ...base, batch: 2, heads: 2, headDim: 3, states: 5, dtSoftplus: false }, all],
    // Packed segments with one-token segments; G = H and G between 1 and H.
    [
      {
        ...base,
        batch: 2,
        length: 7,
        heads: 4,
        headDim: 3,
        groups: 2,
        states: 3,
        dtSoftplus: true,
      },
      { ...all, segmentsPerRow: 3, chunk: 2 },
    ],
    [
      {
        ...base,
        batch: 2,
        length: 6,
        heads: 3,
        headDim: 1,
        groups: 3,
        states: 5,
        dtSoftplus: false,
      },
      { ...all, segmentsPerRow: 6 },
    ],
    [
      {
        ...base,
        batch: 1,
        length: 9,
        heads: 3,
        headDim: 5,
        groups: 3,
        states: 3,
        dtSoftplus: true,
      },
      { segmentsPerRow: 4, chunk: 3 },
    ],
    // Longer rows without seqIdx, with and without the optional inputs.
    [{ ...base, batch: 2, length: 8, heads: 2, headDim: 3, states: 3, dtSoftplus: true }, {
      D: true,
    }],
    [
      {
        ...base,
        batch: 1,
        length: 10,
        heads: 2,
        headDim: 1,
        groups: 2,
        states: 7,
        dtSoftplus: false,
      },
      { ...all, segmentsPerRow: 4, chunk: 4 },
    ],
  ];
  for (const [p, o] of cases) {
    for (const withFinalGrad of [true, false]) checkBackward(p, o, withFinalGrad, seed, rng);
  }
});

/** Asserts two arrays are equal bit for bit, naming the first difference. */
function assertSame(got: Float64Array, want: Float64Array, what: string) {
  assertEquals(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) {
      assert(false, `${what}: index ${i} is ${got[i]}, want ${want[i]} (must be exactly equal)`);
    }
  }
}

Deno.test("ssdScanReference: packed segments equal each segment run alone", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const dtSoftplus of [true, false]) {
    const p: SsdScanProblem = {
      batch: 2,
      length: 23,
      heads: 4,
      headDim: 3,
      groups: 2,
      states: 5,
      dtSoftplus,
    };
    const { heads: H, headDim: P, groups: G, states: N } = p;
    const inputs = randomSsdInputs(rng, p, {
      D: true,
      dtBias: true,
      initialStates: true,
      segmentsPerRow: 6,
      chunk: 4,
    });
    const packed = ssdScanReference(p, inputs);
    const gy = randn(rng, packed.y.length);
    const gFinal = randn(rng, packed.finalStates.length);
    const packedGrads = ssdScanReferenceBackward(p, inputs, gy, gFinal);
    const starts = ssdSegmentStarts(p.batch, p.length, inputs.seqIdx);
    const lengths = segmentLengths(inputs.seqIdx!, p.batch, p.length);
    assertEquals(lengths.length, starts.length, `segment count, seed ${seed}`);
    for (let k = 0; k < starts.length; k++) {
      const [first, L] = [starts[k], lengths[k]];
      const alone: SsdScanProblem = { ...p, batch: 1, length: L };
      const one: SsdScanInputs = {
        ...inputs,
        x: itemRange(inputs.x, H * P, first, L),
        dt: itemRange(inputs.dt, H, first, L),
        B: itemRange(inputs.B, G * N, first, L),
        C: itemRange(inputs.C, G * N, first, L),
        seqIdx: undefined,
        initialStates: itemRange(inputs.initialStates!, H * P * N, k, 1),
      };
      const what = `softplus ${dtSoftplus} segment ${k} (token ${first}, length ${L}) seed ${seed}`;
      const r = ssdScanReference(alone, one);
      assertSame(itemRange(packed.y, H * P, first, L), r.y, `${what}: y`);
      assertSame(itemRange(packed.finalStates, H * P * N, k, 1), r.finalStates, `${what}: final`);
      const g = ssdScanReferenceBackward(
        alone,
        one,
        itemRange(gy, H * P, first, L),
        itemRange(gFinal, H * P * N, k, 1),
      );
      assertSame(itemRange(packedGrads.x, H * P, first, L), g.x, `${what}: dx`);
      assertSame(itemRange(packedGrads.dt, H, first, L), g.dt, `${what}: ddt`);
      assertSame(itemRange(packedGrads.B, G * N, first, L), g.B, `${what}: dB`);
      assertSame(itemRange(packedGrads.C, G * N, first, L), g.C, `${what}: dC`);
      assertSame(
        itemRange(packedGrads.initialStates!, H * P * N, k, 1),
        g.initialStates!,
        `${what}: dInitialStates`,
      );
    }
  }
});

Deno.test("ssdScanReference agrees with the chunked dual form under seqIdx masks", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const TOL = 1e-12;
  for (const Q of [1, 3, 4, 8]) {
    const variants = [
      { dtSoftplus: true, initialStates: true, segmentsPerRow: 5 },
      { dtSoftplus: false, initialStates: false, segmentsPerRow: 3 },
    ];
    for (const { dtSoftplus, initialStates, segmentsPerRow } of variants) {
      const p: SsdScanProblem = {
        batch: 2,
        length: 29,
        heads: 4,
        headDim: 3,
        groups: 2,
        states: 5,
        dtSoftplus,
      };
      const inputs = randomSsdInputs(rng, p, {
        D: true,
        dtBias: true,
        initialStates,
        segmentsPerRow,
        chunk: Q,
      });
      const want = ssdScanReference(p, inputs);
      const got = chunkedScan(p, inputs, Q);
      const what = `Q ${Q} softplus ${dtSoftplus} initial states ${initialStates} seed ${seed}`;
      assertClose(got.y, want.y, TOL, `${what}: y`);
      assertClose(got.finalStates, want.finalStates, TOL, `${what}: final states`);
    }
  }
  // Without seqIdx: one segment a row, chunk boundaries inside it.
  const p: SsdScanProblem = {
    batch: 2,
    length: 13,
    heads: 2,
    headDim: 2,
    groups: 1,
    states: 3,
    dtSoftplus: true,
  };
  const inputs = randomSsdInputs(rng, p, { D: true, initialStates: true });
  const want = ssdScanReference(p, inputs);
  const got = chunkedScan(p, inputs, 4);
  assert(relError(got.y, want.y) < TOL, `no seqIdx: y, seed ${seed}`);
  assert(relError(got.finalStates, want.finalStates) < TOL, `no seqIdx: final, seed ${seed}`);
});

Deno.test("ssdSegmentStarts: first token of each segment, and errors naming row and position", () => {
  const seqIdx = [0, 0, 1, 1, 1, 3, 4, 4, 4, 7];
  assertEquals([...ssdSegmentStarts(2, 5, seqIdx)], [0, 2, 5, 6, 9]);
  assertEquals([...ssdSegmentStarts(3, 4)], [0, 4, 8]);
  assertEquals([...ssdSegmentStarts(2, 3, [5, 5, 5, 5, 5, 5])], [0, 3]);
  assertEquals([...ssdSegmentStarts(1, 4, [0, 1, 2, 3])], [0, 1, 2, 3]);
  assertEquals([...ssdSegmentStarts(2, 0, [])], []);
  assertThrows(
    () => ssdSegmentStarts(2, 4, [0, 0, 1, 1, 0, 2, 1, 3]),
    RangeError,
    "seqIdx decreases in row 1 at position 2 (1 after 2)",
  );
  assertThrows(() => ssdSegmentStarts(2, 5, [0, 0, 0]), RangeError, "seqIdx has 3 values");
});

Deno.test("ssdScanReference: wrong input lengths are named", () => {
  const p: SsdScanProblem = {
    batch: 1,
    length: 4,
    heads: 2,
    headDim: 2,
    groups: 1,
    states: 3,
    dtSoftplus: false,
  };
  const inputs = randomSsdInputs(makeRng(1), p, { initialStates: true });
  assertThrows(
    () => ssdScanReference(p, { ...inputs, B: new Float64Array(5) }),
    RangeError,
    "B has 5 values, expected 12",
  );
  assertThrows(
    () => ssdScanReference({ ...p, groups: 3 }, inputs),
    RangeError,
    "heads 2 must be a multiple of groups 3",
  );
  assertThrows(
    () => ssdScanReference(p, { ...inputs, seqIdx: Int32Array.from([0, 1, 1, 2]) }),
    RangeError,
    "initialStates has 12 values, expected 36",
  );
});
