/**
 * Random SSD scan inputs in realistic ranges, shared by the float64 reference tests and the GPU
 * scan tests: the differentiable inputs in the scan's order, the draw itself, and a slice of
 * per-token or per-segment values.
 */
import {
  type SsdScanInputs,
  type SsdScanProblem,
  ssdSegmentStarts,
} from "../ops/sequence/ssd_scan/reference.ts";
import { randomSeqIdx } from "./packed_segments.ts";
import { randn, uniform } from "./util.ts";

/** The differentiable inputs of the SSD scan, in the order of its tape. */
export const SSD_GRAD_KEYS = ["x", "dt", "A", "B", "C", "D", "dtBias", "initialStates"] as const;

/** One differentiable input of the SSD scan. */
export type SsdGradKey = typeof SSD_GRAD_KEYS[number];

/** Which optional inputs a drawn problem gives, and its segments. */
export interface SsdInputOptions {
  /** Draw a skip weight D per head. */
  D?: boolean;
  /** Draw a Δ bias per head. */
  dtBias?: boolean;
  /** Draw an initial state per segment. */
  initialStates?: boolean;
  /** Segments per row (absent: no seqIdx, one segment a row). */
  segmentsPerRow?: number;
  /** Chunk length the segment ids are drawn for. */
  chunk?: number;
  /** Segment ids to use instead of drawing them. */
  seqIdx?: Int32Array;
}

/**
 * Random inputs in realistic ranges for a problem, drawn from `rng` in a fixed order: segment
 * ids, x, dt, A, B, C, then D, dtBias and initial states where asked for.
 */
export function randomSsdInputs(
  rng: () => number,
  p: SsdScanProblem,
  o: SsdInputOptions,
): SsdScanInputs {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  const seqIdx = o.seqIdx ??
    (o.segmentsPerRow === undefined
      ? undefined
      : randomSeqIdx(rng, batch, T, { segmentsPerRow: o.segmentsPerRow, chunk: o.chunk }));
  const segments = ssdSegmentStarts(batch, T, seqIdx).length;
  return {
    x: randn(rng, batch * T * H * P),
    // With softplus: raw dt in [−3, 0] and a bias in (−1, 1); without: Δ = dt + bias in about
    // [0.01, 0.5].
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

/** The values of items [from, from + count) of an array of `size` values an item, as a view. */
export function itemRange(
  values: Float64Array,
  size: number,
  from: number,
  count: number,
): Float64Array {
  return values.subarray(from * size, (from + count) * size);
}
