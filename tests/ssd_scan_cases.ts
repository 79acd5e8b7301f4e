/**
 * Shared ground of the GPU SSD scan tests: random problems described by their sizes and parts,
 * drawn float32-exact; `ssdScan` run with a loss Σ y ⊙ gy and read back with every gradient; the
 * float64 reference of a problem; and the error measures with their assertion.
 */
import { assert, assertEquals } from "@std/assert";
import {
  backward,
  mul,
  readTensors,
  requireGrad,
  SsdPieces,
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
import { randomSsdInputs, SSD_GRAD_KEYS, type SsdGradKey } from "./ssd_scan_inputs.ts";
import { randn, relError } from "./util.ts";

/** Softplus, the optional inputs, and leaving the final states out (asked for otherwise). */
export type Part = "softplus" | "D" | "dtBias" | "initialStates" | "noFinalStates";

/** Softplus and every optional input. */
export const FULL: Part[] = ["softplus", "D", "dtBias", "initialStates"];

/** One random problem. */
export interface Case {
  /** batch, length T, heads H, headDim P, groups G, states N. */
  size: readonly [number, number, number, number, number, number];
  /** Which of softplus and the optional inputs it has. */
  parts: readonly Part[];
  /** Segments per row; absent: no seqIdx, one segment a row. */
  perRow?: number;
  /** Chunk sizes to run it with; the first also shapes the drawn segments. */
  chunks: readonly number[];
}

/** A drawn problem: float32-exact inputs (so the reference sees what the GPU sees) and ∂L/∂y. */
export interface Drawn {
  /** The case it was drawn for. */
  c: Case;
  /** Its sizes and whether Δ goes through softplus. */
  p: SsdScanProblem;
  /** The inputs, float32-exact. */
  inputs: SsdScanInputs;
  /** Segments in all (rows without seqIdx count one each). */
  segments: number;
  /** ∂L/∂y. */
  gy: Float64Array;
}

/** The GPU's outputs and gradients, on the host. */
export interface GpuResult {
  /** The output. */
  y: Float32Array;
  /** The final states, unless the case leaves them out. */
  finalStates?: Float32Array;
  /** The gradient of every given input. */
  grads: Partial<Record<SsdGradKey, Float32Array>>;
}

/** Rounds to float32 values, kept as float64. */
const f32 = (v: Float64Array) => Float64Array.from(Float32Array.from(v));

/** A short description of a drawn case for assertion messages. */
export function describe(d: Drawn): string {
  const [b, T, H, P, G, N] = d.c.size;
  const segments = d.inputs.seqIdx === undefined ? "no seqIdx" : `${d.segments} segments`;
  return `b${b} T${T} H${H} P${P} G${G} N${N} [${[...d.c.parts, segments].join(", ")}]`;
}

/** Random float32-exact inputs in realistic ranges; `seqIdx` overrides the drawn segment ids. */
export function draw(rng: () => number, c: Case, seqIdx?: Int32Array): Drawn {
  const [batch, T, H, P, G, N] = c.size;
  const has = (part: Part) => c.parts.includes(part);
  const p: SsdScanProblem = {
    batch,
    length: T,
    heads: H,
    headDim: P,
    groups: G,
    states: N,
    dtSoftplus: has("softplus"),
  };
  const drawn = randomSsdInputs(rng, p, {
    D: has("D"),
    dtBias: has("dtBias"),
    initialStates: has("initialStates"),
    segmentsPerRow: c.perRow,
    chunk: c.chunks[0],
    seqIdx,
  });
  const inputs = { ...drawn };
  for (const k of SSD_GRAD_KEYS) {
    const v = drawn[k];
    if (v !== undefined) inputs[k] = f32(v);
  }
  const segments = ssdSegmentStarts(batch, T, inputs.seqIdx).length;
  return { c, p, inputs, segments, gy: f32(randn(rng, batch * T * H * P)) };
}

/** The shape of every differentiable input of a drawn problem. */
export function shapesOf(d: Drawn): Record<SsdGradKey, number[]> {
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
export function runGpu(
  d: Drawn,
  chunk: number,
  what: string,
  seqIdx: ArrayLike<number> | SsdPieces | undefined = d.inputs.seqIdx,
  forward: "auto" | "recurrent" | "chunked" = "auto",
): Promise<GpuResult> {
  return labelled(what, () => scanOnGpu(d, chunk, seqIdx, forward));
}

/** {@link runGpu} without the label. */
async function scanOnGpu(
  d: Drawn,
  chunk: number,
  seqIdx: ArrayLike<number> | SsdPieces | undefined,
  forward: "auto" | "recurrent" | "chunked",
): Promise<GpuResult> {
  const shapes = shapesOf(d);
  const keys = SSD_GRAD_KEYS.filter((k) => d.inputs[k] !== undefined);
  const wantFinal = !d.c.parts.includes("noFinalStates");
  const out = tidy(() => {
    const t = Object.fromEntries(
      keys.map((k) => [k, requireGrad(Tensor.from(Float32Array.from(d.inputs[k]!), shapes[k]))]),
    ) as Partial<Record<SsdGradKey, Tensor>>;
    const { y, finalStates } = ssdScan(t.x!, t.dt!, t.A!, t.B!, t.C!, {
      D: t.D,
      dtBias: t.dtBias,
      dtSoftplus: d.p.dtSoftplus,
      seqIdx,
      initialStates: t.initialStates,
      finalStates: wantFinal,
      chunkSize: seqIdx instanceof SsdPieces ? undefined : chunk,
      forward,
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
export const HEAD_SUMS = ["A", "D", "dtBias"] as const;
export type HeadSum = typeof HEAD_SUMS[number];

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
export function errors(
  got: GpuResult,
  want: { y: ArrayLike<number>; finalStates?: ArrayLike<number> },
  wantGrads: Partial<Record<SsdGradKey, ArrayLike<number>>>,
  scales: Record<HeadSum, Float64Array>,
): [string, number][] {
  const out: [string, number][] = [["y", relError(got.y, want.y)]];
  if (got.finalStates) out.push(["finalStates", relError(got.finalStates, want.finalStates!)]);
  for (const k of SSD_GRAD_KEYS) {
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
export function assertErrors(errs: [string, number][], tol: number, what: string): void {
  const bad = errs.filter(([, e]) => !(e <= tol));
  const list = bad.map(([n, e]) => `${n} ${e.toExponential(2)}`).join(", ");
  assert(bad.length === 0, `${what}: relative error above ${tol}: ${list}`);
}

/** The reference's outputs, gradients and per-head sum scales for a drawn problem. */
export function referenceOf(d: Drawn): {
  out: { y: Float64Array; finalStates: Float64Array };
  grads: SsdScanGrads;
  scales: Record<HeadSum, Float64Array>;
} {
  const out = ssdScanReference(d.p, d.inputs);
  const grads = ssdScanReferenceBackward(d.p, d.inputs, d.gy);
  return { out, grads, scales: headSumScales(d, grads) };
}
