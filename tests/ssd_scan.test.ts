/**
 * The SSD scan on the GPU (`ssdScan`): forward, final states and every gradient against the
 * float64 reference over packed segments of every awkward kind, central finite differences, chunk
 * sizes that agree with each other, packed runs that equal each segment run alone, bitwise
 * repeatability, one chunking shared by two scans, and the messages of rejected calls.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  backward,
  mul,
  readTensors,
  requireGrad,
  SsdPieces,
  ssdPieces,
  ssdScan,
  type SsdScanGrads,
  type SsdScanInputs,
  type SsdScanProblem,
  ssdScanReference,
  ssdScanReferenceBackward,
  ssdSegmentStarts,
  sumAll,
  Tensor,
  tidy,
} from "../ops/mod.ts";
import { randomSeqIdx } from "./packed_segments.ts";
import { freshSeed, gradCheck, type GradInput, makeRng, randn, relError, uniform } from "./util.ts";

/** Softplus, the optional inputs, and leaving the final states out (asked for otherwise). */
type Part = "softplus" | "D" | "dtBias" | "initialStates" | "noFinalStates";

/** Softplus and every optional input. */
const FULL: Part[] = ["softplus", "D", "dtBias", "initialStates"];

/** One random problem. */
interface Case {
  /** batch, length T, heads H, headDim P, groups G, states N. */
  size: readonly [number, number, number, number, number, number];
  /** Which of softplus and the optional inputs it has. */
  parts: readonly Part[];
  /** Segments per row; absent: no seqIdx, one segment a row. */
  perRow?: number;
  /** Chunk sizes to run it with; the first also shapes the drawn segments. */
  chunks: readonly number[];
}

/** The differentiable inputs, in the order of the scan's tape. */
const GRAD_KEYS = ["x", "dt", "A", "B", "C", "D", "dtBias", "initialStates"] as const;
type GradKey = typeof GRAD_KEYS[number];

/** A drawn problem: float32-exact inputs (so the reference sees what the GPU sees) and ∂L/∂y. */
interface Drawn {
  c: Case;
  p: SsdScanProblem;
  inputs: SsdScanInputs;
  segments: number;
  gy: Float64Array;
}

/** The GPU's outputs and gradients, on the host. */
interface GpuResult {
  y: Float32Array;
  finalStates?: Float32Array;
  grads: Partial<Record<GradKey, Float32Array>>;
}

/** Rounds to float32 values, kept as float64. */
const f32 = (v: Float64Array) => Float64Array.from(Float32Array.from(v));

/** A short description of a drawn case for assertion messages. */
function describe(d: Drawn): string {
  const [b, T, H, P, G, N] = d.c.size;
  const segments = d.inputs.seqIdx === undefined ? "no seqIdx" : `${d.segments} segments`;
  return `b${b} T${T} H${H} P${P} G${G} N${N} [${[...d.c.parts, segments].join(", ")}]`;
}

/** Random inputs in realistic ranges; `seqIdx` overrides the drawn segment ids. */
function draw(rng: () => number, c: Case, seqIdx?: Int32Array): Drawn {
  const [batch, T, H, P, G, N] = c.size;
  const has = (part: Part) => c.parts.includes(part);
  const softplus = has("softplus");
  const p: SsdScanProblem = {
    batch,
    length: T,
    heads: H,
    headDim: P,
    groups: G,
    states: N,
    dtSoftplus: softplus,
  };
  const ids = seqIdx ??
    (c.perRow === undefined
      ? undefined
      : randomSeqIdx(rng, batch, T, { segmentsPerRow: c.perRow, chunk: c.chunks[0] }));
  const segments = ssdSegmentStarts(batch, T, ids).length;
  const tokens = batch * T;
  const inputs: SsdScanInputs = {
    x: f32(randn(rng, tokens * H * P)),
    // With softplus: raw dt in [−3, 0] and a bias in (−1, 1); without: Δ = dt + bias in about
    // [0.01, 0.5].
    dt: f32(softplus ? uniform(rng, tokens * H, -3, 0) : uniform(rng, tokens * H, 0.06, 0.45)),
    A: f32(uniform(rng, H, -4, -0.5)),
    B: f32(randn(rng, tokens * G * N)),
    C: f32(randn(rng, tokens * G * N)),
    D: has("D") ? f32(randn(rng, H)) : undefined,
    dtBias: has("dtBias")
      ? f32(softplus ? uniform(rng, H, -1, 1) : uniform(rng, H, -0.05, 0.05))
      : undefined,
    seqIdx: ids,
    initialStates: has("initialStates") ? f32(randn(rng, segments * H * P * N)) : undefined,
  };
  return { c, p, inputs, segments, gy: f32(randn(rng, tokens * H * P)) };
}

/** The shape of every differentiable input of a drawn problem. */
function shapesOf(d: Drawn): Record<GradKey, number[]> {
  const [batch, T, H, P, G, N] = d.c.size;
  return {
    x: [batch, T, H, P],
    dt: [batch, T, H],
    A: [H],
    B: [batch, T, G, N],
    C: [batch, T, G, N],
    D: [H],
    dtBias: [H],
    initialStates: [d.segments, H, P, N],
  };
}

/** Runs `fn`; an error it throws is rethrown with `what` (the case and the seed) in front. */
async function labelled<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${what}: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
}

/**
 * Runs `ssdScan` with the loss Σ y ⊙ gy and reads y, the final states (unless the case leaves
 * them out) and every input's gradient; `what` (the case and the seed) heads any error. `seqIdx`
 * defaults to the drawn ids; `chunkSize` is left out when `seqIdx` is an {@link SsdPieces}.
 */
function runGpu(
  d: Drawn,
  chunk: number,
  what: string,
  seqIdx: ArrayLike<number> | SsdPieces | undefined = d.inputs.seqIdx,
): Promise<GpuResult> {
  return labelled(what, () => scanOnGpu(d, chunk, seqIdx));
}

/** {@link runGpu} without the label. */
async function scanOnGpu(
  d: Drawn,
  chunk: number,
  seqIdx: ArrayLike<number> | SsdPieces | undefined,
): Promise<GpuResult> {
  const shapes = shapesOf(d);
  const keys = GRAD_KEYS.filter((k) => d.inputs[k] !== undefined);
  const wantFinal = !d.c.parts.includes("noFinalStates");
  const out = tidy(() => {
    const t = Object.fromEntries(
      keys.map((k) => [k, requireGrad(Tensor.from(Float32Array.from(d.inputs[k]!), shapes[k]))]),
    ) as Partial<Record<GradKey, Tensor>>;
    const { y, finalStates } = ssdScan(t.x!, t.dt!, t.A!, t.B!, t.C!, {
      D: t.D,
      dtBias: t.dtBias,
      dtSoftplus: d.p.dtSoftplus,
      seqIdx,
      initialStates: t.initialStates,
      finalStates: wantFinal,
      chunkSize: seqIdx instanceof SsdPieces ? undefined : chunk,
    });
    assertEquals(finalStates !== undefined, wantFinal, "final states returned iff asked for");
    backward(sumAll(mul(y, Tensor.from(Float32Array.from(d.gy), y.shape))));
    return [y, ...(finalStates ? [finalStates] : []), ...keys.map((k) => t[k]!.grad!)];
  });
  const host = (await readTensors(out)) as Float32Array[];
  for (const t of out) t.dispose();
  const y = host.shift()!;
  const finalStates = wantFinal ? host.shift()! : undefined;
  return { y, finalStates, grads: Object.fromEntries(keys.map((k, i) => [k, host[i]])) };
}

/** The gradients that sum a term of every token: one value per head. */
const HEAD_SUMS = ["A", "D", "dtBias"] as const;
type HeadSum = typeof HEAD_SUMS[number];

/**
 * Σ over tokens of |term| for each per-head parameter gradient, from the float64 reference
 * gradients: float32 rounding of such a sum scales with this, not with the sum itself, which
 * random terms can cancel to nearly zero. dD sums gy·x, ddtBias sums the per-token ∂dt, and dA
 * sums Δ_t·∂a_t, recovered per token from ∂Δ_t = (x-term) + A·∂a_t where
 * Δ_t·(x-term) = Σ_q x_q·(dx_q − D·gy_q).
 */
function headSumScales(d: Drawn, g: SsdScanGrads): Record<HeadSum, Float64Array> {
  const { heads: H, headDim: P, dtSoftplus } = d.p;
  const { x, dt, A, D, dtBias } = d.inputs;
  const scales = { A: new Float64Array(H), D: new Float64Array(H), dtBias: new Float64Array(H) };
  const sumA = new Float64Array(H);
  for (let j = 0; j < dt.length; j++) {
    const h = j % H;
    const raw = dt[j] + (dtBias ? dtBias[h] : 0);
    // raw stays far below PyTorch's softplus threshold (20) in these tests.
    const delta = dtSoftplus ? Math.log1p(Math.exp(raw)) : raw;
    const slope = dtSoftplus ? 1 / (1 + Math.exp(-raw)) : 1;
    let inputTerm = 0;
    for (let q = 0; q < P; q++) {
      const i = j * P + q;
      inputTerm += x[i] * (g.x[i] - (D ? D[h] * d.gy[i] : 0));
      scales.D[h] += Math.abs(d.gy[i] * x[i]);
    }
    const termA = (delta * g.dt[j] / slope - inputTerm) / A[h];
    sumA[h] += termA;
    scales.A[h] += Math.abs(termA);
    scales.dtBias[h] += Math.abs(g.dt[j]);
  }
  assert(relError(sumA, g.A) < 1e-9, `per-token terms of dA sum to ${sumA}, reference ${g.A}`);
  return scales;
}

/**
 * Errors of y, final states and every gradient of `got` against `want`, by name: relative
 * errors, except for the per-head sums, measured against their Σ|terms| (`scales`).
 */
function errors(
  got: GpuResult,
  want: { y: ArrayLike<number>; finalStates?: ArrayLike<number> },
  wantGrads: Partial<Record<GradKey, ArrayLike<number>>>,
  scales: Record<HeadSum, Float64Array>,
): [string, number][] {
  const out: [string, number][] = [["y", relError(got.y, want.y)]];
  if (got.finalStates) out.push(["finalStates", relError(got.finalStates, want.finalStates!)]);
  for (const k of GRAD_KEYS) {
    const g = got.grads[k], w = wantGrads[k];
    if (g === undefined && w === undefined) continue;
    if (g === undefined || w === undefined) throw new Error(`gradient of ${k} missing on one side`);
    assertEquals(g.length, w.length, `length of the gradient of ${k}`);
    const scale = (HEAD_SUMS as readonly string[]).includes(k) ? scales[k as HeadSum] : undefined;
    if (!scale) {
      out.push([`d${k}`, relError(g, w)]);
      continue;
    }
    let num = 0, den = 0;
    for (let h = 0; h < g.length; h++) {
      num += (g[h] - w[h]) ** 2;
      den += scale[h] ** 2;
    }
    out.push([`d${k} (against Σ|terms|)`, Math.sqrt(num / den)]);
  }
  return out;
}

/** Asserts every error is at most `tol`, naming the case, the chunk and the seed. */
function assertErrors(errs: [string, number][], tol: number, what: string): void {
  const bad = errs.filter(([, e]) => !(e <= tol));
  const list = bad.map(([n, e]) => `${n} ${e.toExponential(2)}`).join(", ");
  assert(bad.length === 0, `${what}: relative error above ${tol}: ${list}`);
}

/** The reference's outputs, gradients and per-head sum scales for a drawn problem. */
function referenceOf(d: Drawn) {
  const out = ssdScanReference(d.p, d.inputs);
  const grads = ssdScanReferenceBackward(d.p, d.inputs, d.gy);
  return { out, grads, scales: headSumScales(d, grads) };
}

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
  const inputs: GradInput[] = GRAD_KEYS.map((k) => ({ data: d.inputs[k]!, shape: shapes[k] }));
  const unpack = (xs: Float64Array[]): SsdScanInputs => ({
    ...Object.fromEntries(GRAD_KEYS.map((k, i) => [k, xs[i]])) as Omit<SsdScanInputs, "seqIdx">,
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
      return GRAD_KEYS.map((k) => r[k]!);
    },
    rng,
    tol: 1e-5,
    probes: 12,
  });
});

/**
 * Segment ids for `batch` rows of `length` tokens where every row holds a segment of `long`
 * tokens (at a random place), a one-token segment, and random segments around them.
 */
function packingWithLongSegment(
  rng: () => number,
  batch: number,
  length: number,
  long: number,
): Int32Array {
  const ids = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const start = 1 + Math.floor(rng() * (length - long - 1));
    const cuts = new Set([1, start, start + long]);
    for (let t = 2; t < length; t++) {
      if ((t < start || t > start + long) && rng() < 0.05) cuts.add(t);
    }
    let id = 0;
    for (let t = 0; t < length; t++) {
      if (cuts.has(t)) id++;
      ids[b * length + t] = id;
    }
  }
  return ids;
}

Deno.test("ssdScan: chunks 64, 128 and 256 agree on segments longer than 256", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { size: [2, 700, 2, 3, 1, 5], parts: FULL, chunks: [64, 128, 256] };
  const long = 257 + Math.floor(rng() * 300);
  const d = draw(rng, c, packingWithLongSegment(rng, 2, 700, long));
  const { scales } = referenceOf(d);
  const label = (chunk: number) =>
    `${describe(d)} with a segment of ${long} tokens, chunk ${chunk} seed ${seed}`;
  const base = await runGpu(d, 64, label(64));
  for (const chunk of [128, 256]) {
    const what = `${label(chunk)} vs chunk 64`;
    const got = await runGpu(d, chunk, what);
    assertErrors(errors(got, base, base.grads, scales), 1e-5, what);
  }
});

/** The flat token slice [start, start + count) of a per-token array with `per` values a token. */
const tokenSlice = (v: Float64Array, per: number, start: number, count: number) =>
  v.subarray(start * per, (start + count) * per);

Deno.test("ssdScan: a packed run equals each segment run alone", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { size: [2, 40, 4, 3, 2, 5], parts: FULL, perRow: 4, chunks: [7] };
  const [batch, T, H, P, G, N] = c.size;
  const d = draw(rng, c);
  const what = `${describe(d)} chunk 7 seed ${seed}`;
  const packed = await runGpu(d, 7, what);
  const starts = ssdSegmentStarts(batch, T, d.inputs.seqIdx);
  const perToken = { x: H * P, dt: H, B: G * N, C: G * N };
  const PN = H * P * N;
  // The separate runs, concatenated in segment order; the per-head parameter gradients summed.
  const sep = {
    y: new Float64Array(packed.y.length),
    finalStates: new Float64Array(packed.finalStates!.length),
  };
  const sepGrads = Object.fromEntries(
    GRAD_KEYS.map((k) => [k, new Float64Array(packed.grads[k]!.length)]),
  ) as Record<GradKey, Float64Array>;
  for (let k = 0; k < starts.length; k++) {
    const start = starts[k];
    const rowEnd = (Math.floor(start / T) + 1) * T;
    const len = Math.min(k + 1 < starts.length ? starts[k + 1] : rowEnd, rowEnd) - start;
    const slice = (key: keyof typeof perToken) =>
      tokenSlice(d.inputs[key], perToken[key], start, len);
    const got = await runGpu(
      {
        c: { ...c, size: [1, len, H, P, G, N], perRow: undefined },
        p: { ...d.p, batch: 1, length: len },
        inputs: {
          ...d.inputs,
          x: slice("x"),
          dt: slice("dt"),
          B: slice("B"),
          C: slice("C"),
          seqIdx: undefined,
          initialStates: d.inputs.initialStates!.subarray(k * PN, (k + 1) * PN),
        },
        segments: 1,
        gy: tokenSlice(d.gy, H * P, start, len),
      },
      7,
      `${what}, segment ${k} alone`,
    );
    sep.y.set(got.y, start * H * P);
    sep.finalStates.set(got.finalStates!, k * PN);
    for (const key of ["x", "dt", "B", "C"] as const) {
      sepGrads[key].set(got.grads[key]!, start * perToken[key]);
    }
    sepGrads.initialStates.set(got.grads.initialStates!, k * PN);
    for (const key of HEAD_SUMS) {
      for (let h = 0; h < H; h++) sepGrads[key][h] += got.grads[key]![h];
    }
  }
  assertErrors(errors(packed, sep, sepGrads, referenceOf(d).scales), 1e-6, what);
});

Deno.test("ssdScan: the same call twice gives identical y and gradients", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const d = draw(rng, { size: [2, 90, 4, 5, 2, 7], parts: FULL, perRow: 6, chunks: [16] });
  const what = `${describe(d)} chunk 16 seed ${seed}`;
  const first = await runGpu(d, 16, what);
  const second = await runGpu(d, 16, what);
  assertEquals(second.y, first.y, `${what}: y differs between two identical calls`);
  assertEquals(second.finalStates, first.finalStates, `${what}: final states differ`);
  for (const k of GRAD_KEYS) {
    assertEquals(second.grads[k], first.grads[k], `${what}: d${k} differs between two calls`);
  }
});

Deno.test("ssdScan: one ssdPieces shared by two stacked scans equals raw segment ids", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const chunk = 8;
  const parts: Part[] = ["softplus", "initialStates"];
  const d = draw(rng, { size: [2, 45, 2, 3, 1, 5], parts, perRow: 4, chunks: [chunk] });
  const [batch, T, H] = d.c.size;
  const shapes = shapesOf(d);
  const dt2 = Float32Array.from(uniform(rng, batch * T * H, -3, 0));
  /**
   * Two scans, the second on the first's output with B and C swapped: the first with initial
   * and final states (every segment gets a state slot), the second without (only cut segments).
   */
  const run = async (seqIdx: ArrayLike<number> | SsdPieces) => {
    const chunkSize = seqIdx instanceof SsdPieces ? undefined : chunk;
    const out = tidy(() => {
      const [x, dt, A, B, C, init] = (["x", "dt", "A", "B", "C", "initialStates"] as const).map(
        (k) => requireGrad(Tensor.from(Float32Array.from(d.inputs[k]!), shapes[k])),
      );
      const common = { dtSoftplus: true, seqIdx, chunkSize };
      const first = ssdScan(x, dt, A, B, C, { ...common, initialStates: init, finalStates: true });
      const second = ssdScan(first.y, Tensor.from(dt2, shapes.dt), A, C, B, common);
      backward(sumAll(mul(second.y, Tensor.from(Float32Array.from(d.gy), second.y.shape))));
      return [second.y, first.finalStates!, ...[x, dt, A, B, C, init].map((t) => t.grad!)];
    });
    const host = await readTensors(out);
    for (const t of out) t.dispose();
    return host;
  };
  const pieces = ssdPieces(batch, T, d.inputs.seqIdx, chunk);
  const shared = await run(pieces);
  // The pieces' tables outlive the tidy scope of their first use: a second use still works.
  const again = await run(pieces);
  assert(pieces.tensors().length > 0, "the pieces hold their GPU tables until disposed");
  pieces.dispose();
  assertEquals(pieces.tensors().length, 0, "dispose() frees the pieces' GPU tables");
  const raw = await run(d.inputs.seqIdx!);
  ["y", "final states", "dx", "ddt", "dA", "dB", "dC", "dinitialStates"].forEach((n, i) => {
    assertEquals(shared[i], raw[i], `${n}: shared pieces differ from raw ids, seed ${seed}`);
    assertEquals(again[i], raw[i], `${n}: second use of the pieces differs, seed ${seed}`);
  });
});

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
});
