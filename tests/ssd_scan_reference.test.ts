/**
 * The float64 SSD scan reference checked on its own: its backward against central finite
 * differences, packed segments against each segment run alone, the sequential recurrence against
 * the chunked dual (attention) form with seqIdx masks, and the segment starts it derives.
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
import { randomSeqIdx, segmentLengths, segmentRowStarts } from "./packed_segments.ts";
import { unaryRef } from "./reference.ts";
import { assertClose, freshSeed, makeRng, randn, relError, uniform } from "./util.ts";

/** Which optional inputs a case gives, and its segments. */
interface CaseOptions {
  D?: boolean;
  dtBias?: boolean;
  initialStates?: boolean;
  /** Segments per row (absent: no seqIdx, one segment a row). */
  segmentsPerRow?: number;
  /** Chunk length the segment ids are drawn for. */
  chunk?: number;
}

/** Random inputs in realistic ranges for a problem. */
function randomInputs(rng: () => number, p: SsdScanProblem, o: CaseOptions): SsdScanInputs {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  const seqIdx = o.segmentsPerRow === undefined
    ? undefined
    : randomSeqIdx(rng, batch, T, { segmentsPerRow: o.segmentsPerRow, chunk: o.chunk });
  const segments = ssdSegmentStarts(batch, T, seqIdx).length;
  return {
    x: randn(rng, batch * T * H * P),
    // With softplus: raw dt in [−3, 0] and a bias in (−1, 1); without: Δ in about [0.01, 0.5].
    dt: p.dtSoftplus ? uniform(rng, batch * T * H, -3, 0) : uniform(rng, batch * T * H, 0.06, 0.45),
    A: uniform(rng, H, -4, -0.5),
    B: randn(rng, batch * T * G * N),
    C: randn(rng, batch * T * G * N),
    D: o.D ? randn(rng, H) : undefined,
    dtBias: o.dtBias
      ? (p.dtSoftplus ? uniform(rng, H, -1, 1) : uniform(rng, H, -0.05, 0.05))
      : undefined,
    seqIdx,
    initialStates: o.initialStates ? randn(rng, segments * H * P * N) : undefined,
  };
}

/** Σ w·v. */
function dot(w: Float64Array, v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += w[i] * v[i];
  return s;
}

/** The differentiable inputs, by name. */
const GRAD_KEYS = ["x", "dt", "A", "B", "C", "D", "dtBias", "initialStates"] as const;

const FD_STEP = 1e-6;
const FD_TOL = 1e-6;

/** Checks every given input's analytic gradient against central finite differences. */
function checkBackward(
  p: SsdScanProblem,
  o: CaseOptions,
  withFinalGrad: boolean,
  seed: number,
  rng: () => number,
) {
  const inputs = randomInputs(rng, p, o);
  const { y, finalStates } = ssdScanReference(p, inputs);
  const gy = randn(rng, y.length);
  const gFinal = withFinalGrad ? randn(rng, finalStates.length) : undefined;
  const grads = ssdScanReferenceBackward(p, inputs, gy, gFinal);
  const loss = (xs: SsdScanInputs) => {
    const r = ssdScanReference(p, xs);
    return dot(gy, r.y) + (gFinal ? dot(gFinal, r.finalStates) : 0);
  };
  const what = `${JSON.stringify(p)} ${JSON.stringify(o)} gFinal ${withFinalGrad} seed ${seed}`;
  for (const key of GRAD_KEYS) {
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
  const cases: [SsdScanProblem, CaseOptions][] = [
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

/** Copies `count` items of `size` values starting at item `from`. */
function items(a: Float64Array, from: number, count: number, size: number): Float64Array {
  return a.slice(from * size, (from + count) * size);
}

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
    const inputs = randomInputs(rng, p, {
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
        x: items(inputs.x, first, L, H * P),
        dt: items(inputs.dt, first, L, H),
        B: items(inputs.B, first, L, G * N),
        C: items(inputs.C, first, L, G * N),
        seqIdx: undefined,
        initialStates: items(inputs.initialStates!, k, 1, H * P * N),
      };
      const what = `softplus ${dtSoftplus} segment ${k} (token ${first}, length ${L}) seed ${seed}`;
      const r = ssdScanReference(alone, one);
      assertSame(items(packed.y, first, L, H * P), r.y, `${what}: y`);
      assertSame(items(packed.finalStates, k, 1, H * P * N), r.finalStates, `${what}: final`);
      const g = ssdScanReferenceBackward(
        alone,
        one,
        items(gy, first, L, H * P),
        items(gFinal, k, 1, H * P * N),
      );
      assertSame(items(packedGrads.x, first, L, H * P), g.x, `${what}: dx`);
      assertSame(items(packedGrads.dt, first, L, H), g.dt, `${what}: ddt`);
      assertSame(items(packedGrads.B, first, L, G * N), g.B, `${what}: dB`);
      assertSame(items(packedGrads.C, first, L, G * N), g.C, `${what}: dC`);
      assertSame(
        items(packedGrads.initialStates!, k, 1, H * P * N),
        g.initialStates!,
        `${what}: dInitialStates`,
      );
    }
  }
});

/**
 * The chunked dual form (ssd_minimal's steps with the fused kernel's seqIdx masks), written
 * independently of the reference: per chunk of Q tokens, the intra-chunk output is the masked
 * attention Σ_s (C_l·B_s)·exp(cs_l − cs_s)·Δ_s·x_s over earlier tokens of the same segment; the
 * state entering a chunk is carried only while the segment id at the chunk ends is unchanged, and
 * reaches a token only if its id equals the one ending the previous chunk. A segment's initial
 * state enters through the segment's first token, decayed by exp(Σ a) from there.
 */
function chunkedScan(p: SsdScanProblem, inp: SsdScanInputs, Q: number) {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  const PN = P * N;
  const seq = (b: number, t: number) => (inp.seqIdx ? inp.seqIdx[b * T + t] : 0);
  // Segment number and the row position where its segment starts, per token.
  const segOf = new Int32Array(batch * T);
  const segStart = new Int32Array(batch * T);
  let segments = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      const fresh = t === 0 || seq(b, t) !== seq(b, t - 1);
      if (fresh) segments++;
      segOf[b * T + t] = segments - 1;
      segStart[b * T + t] = fresh ? t : segStart[b * T + t - 1];
    }
  }
  const y = new Float64Array(batch * T * H * P);
  const finalStates = new Float64Array(segments * H * PN);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h * G / H);
      const tok = (t: number) => b * T + t;
      const xAt = (t: number, q: number) => inp.x[(tok(t) * H + h) * P + q];
      const bAt = (t: number, n: number) => inp.B[(tok(t) * G + g) * N + n];
      const cAt = (t: number, n: number) => inp.C[(tok(t) * G + g) * N + n];
      const delta = new Float64Array(T);
      const a = new Float64Array(T);
      for (let t = 0; t < T; t++) {
        const raw = inp.dt[tok(t) * H + h] + (inp.dtBias ? inp.dtBias[h] : 0);
        delta[t] = p.dtSoftplus ? unaryRef.softplus.f(raw, 0) : raw;
        a[t] = delta[t] * inp.A[h];
      }
      const initial = (t: number) => {
        const k = segOf[tok(t)];
        return inp.initialStates?.subarray((k * H + h) * PN, (k * H + h + 1) * PN);
      };
      let carried = new Float64Array(PN); // the state entering the current chunk
      for (let c0 = 0; c0 < T; c0 += Q) {
        const c1 = Math.min(T, c0 + Q);
        const cs = new Float64Array(T); // cumulative log-decay within the chunk
        for (let t = c0; t < c1; t++) cs[t] = (t > c0 ? cs[t - 1] : 0) + a[t];
        const takesCarry = (t: number) => c0 > 0 && seq(b, t) === seq(b, c0 - 1);
        const startsHere = (t: number) => segStart[tok(t)] >= c0;
        // Outputs: intra-chunk attention, the initial state, the carried state, D·x.
        for (let l = c0; l < c1; l++) {
          const s0 = segStart[tok(l)];
          const init = initial(l);
          for (let q = 0; q < P; q++) {
            let acc = 0;
            for (let s = c0; s <= l; s++) {
              if (seq(b, s) !== seq(b, l)) continue;
              let cb = 0;
              for (let n = 0; n < N; n++) cb += cAt(l, n) * bAt(s, n);
              acc += cb * Math.exp(cs[l] - cs[s]) * delta[s] * xAt(s, q);
            }
            if (init && startsHere(l)) {
              let sc = 0;
              for (let n = 0; n < N; n++) sc += init[q * N + n] * cAt(l, n);
              acc += Math.exp(cs[l] - cs[s0] + a[s0]) * sc;
            }
            if (takesCarry(l)) {
              let sc = 0;
              for (let n = 0; n < N; n++) sc += carried[q * N + n] * cAt(l, n);
              acc += Math.exp(cs[l]) * sc;
            }
            y[(tok(l) * H + h) * P + q] = acc + (inp.D ? inp.D[h] * xAt(l, q) : 0);
          }
        }
        // The state after token e, from this chunk's tokens of e's segment and what enters it.
        const stateAt = (e: number) => {
          const st = new Float64Array(PN);
          for (let l = c0; l <= e; l++) {
            if (seq(b, l) !== seq(b, e)) continue;
            const w = Math.exp(cs[e] - cs[l]) * delta[l];
            for (let q = 0; q < P; q++) {
              for (let n = 0; n < N; n++) st[q * N + n] += w * xAt(l, q) * bAt(l, n);
            }
          }
          const init = initial(e);
          if (init && startsHere(e)) {
            const s0 = segStart[tok(e)];
            const w = Math.exp(cs[e] - cs[s0] + a[s0]);
            for (let j = 0; j < PN; j++) st[j] += w * init[j];
          }
          if (takesCarry(e)) {
            const w = Math.exp(cs[e]);
            for (let j = 0; j < PN; j++) st[j] += w * carried[j];
          }
          return st;
        };
        for (let e = c0; e < c1; e++) {
          if (e + 1 === T || seq(b, e + 1) !== seq(b, e)) {
            finalStates.set(stateAt(e), (segOf[tok(e)] * H + h) * PN);
          }
        }
        carried = stateAt(c1 - 1);
      }
    }
  }
  return { y, finalStates };
}

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
      const inputs = randomInputs(rng, p, {
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
  const inputs = randomInputs(rng, p, { D: true, initialStates: true });
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
  const inputs = randomInputs(makeRng(1), p, { initialStates: true });
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

Deno.test("randomSeqIdx draws one-token, chunk-aligned and multi-chunk segments", () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [batch, length, chunk, segmentsPerRow] = [24, 40, 4, 8];
  const seqIdx = randomSeqIdx(rng, batch, length, { segmentsPerRow, chunk });
  const lengths = segmentLengths(seqIdx, batch, length);
  const starts = segmentRowStarts(seqIdx, batch, length);
  for (let b = 0; b < batch; b++) {
    assertEquals(seqIdx[b * length], 0, `row ${b} starts at id 0, seed ${seed}`);
    for (let t = 1; t < length; t++) {
      assert(seqIdx[b * length + t] >= seqIdx[b * length + t - 1], `row ${b} t ${t} seed ${seed}`);
    }
  }
  assertEquals(lengths.length, batch * segmentsPerRow, `segment count, seed ${seed}`);
  assert(lengths.includes(1), `a one-token segment, seed ${seed}`);
  assert(starts.some((t) => t > 0 && t % chunk === 0), `a chunk-aligned start, seed ${seed}`);
  assert(
    lengths.some((L, k) =>
      L > 2 * chunk && Math.floor((starts[k] + L - 1) / chunk) - Math.floor(starts[k] / chunk) >= 2
    ),
    `a segment over three chunks, seed ${seed}`,
  );
  const every = randomSeqIdx(rng, 2, 5, { segmentsPerRow: 9 });
  assertEquals(
    segmentLengths(every, 2, 5),
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    `clamped, seed ${seed}`,
  );
  assertEquals([...randomSeqIdx(rng, 1, 6, { segmentsPerRow: 1 })], [0, 0, 0, 0, 0, 0]);
});
