/**
 * The cases and random inputs shared by the selective scan tests (the full scan and the scan
 * read at one step per row): a case's problem, its float64 inputs and their tensor shapes in
 * either layout, and the unpacking of a gradient check's input list back into scan inputs.
 *
 * @module
 */
import type {
  SelectiveScanGrads,
  SelectiveScanInputs,
  SelectiveScanProblem,
  SelectiveScanTuning,
} from "../ops/sequence/selective_scan/mod.ts";
import { type GradInput, randn, uniform } from "./util.ts";

/** One selective scan test case: its sizes, which optional inputs it has, and its tuning. */
export interface ScanCase {
  /** Batch size. */
  batch: number;
  /** Channels D. */
  channels: number;
  /** Sequence length L. */
  length: number;
  /** States N. */
  states: number;
  /** Whether the skip weight D is given. */
  D?: boolean;
  /** Whether the gate z is given. */
  z?: boolean;
  /** Whether a Δ bias is given. */
  bias?: boolean;
  /** Whether Δ goes through softplus. */
  softplus?: boolean;
  /** Explicit workgroup shapes and split lengths. */
  tuning?: SelectiveScanTuning;
}

/** The optional scan inputs, in the order they follow u, Δ, A, B and C. */
export const OPTIONAL_SCAN_INPUTS = ["D", "z", "deltaBias"] as const;

/** Moderate random inputs: Δ between about 0.1 and 1.5, A = −(1..n)·jitter (S4D-real-like). */
export function makeScanInputs(c: ScanCase, rng: () => number): SelectiveScanInputs {
  const nd = c.batch * c.channels * c.length;
  const nn = c.batch * c.states * c.length;
  const A = new Float64Array(c.channels * c.states);
  for (let i = 0; i < A.length; i++) A[i] = -(1 + (i % c.states)) * (0.6 + 0.8 * rng());
  return {
    u: randn(rng, nd),
    delta: c.softplus ? randn(rng, nd, 0.5) : uniform(rng, nd, 0.1, 0.9),
    A,
    B: randn(rng, nn),
    C: randn(rng, nn),
    D: c.D ? randn(rng, c.channels) : undefined,
    z: c.z ? randn(rng, nd) : undefined,
    // Without softplus Δ = delta + bias itself must stay positive (a negative Δ makes exp(Δ·A)
    // grow without bound).
    deltaBias: c.bias
      ? (c.softplus ? randn(rng, c.channels, 0.3) : uniform(rng, c.channels, 0, 0.2))
      : undefined,
  };
}

/** A case set up for a check: its problem, inputs and how to read them back. */
export interface ScanSetup {
  /** The problem the references solve. */
  p: SelectiveScanProblem;
  /** The tensor layout of the op. */
  layout: "bld" | "bdl";
  /** The optional inputs the case has. */
  present: (typeof OPTIONAL_SCAN_INPUTS)[number][];
  /** The inputs with their tensor shapes: u, Δ, A, B, C, then the optional ones present. */
  inputs: GradInput[];
  /** An input list in the order of `inputs` back as scan inputs. */
  unpack: (xs: Float64Array[]) => SelectiveScanInputs;
  /**
   * The same, with u, B, C and D at their absolute values: the scan of these adds every term of
   * each of the real scan's sums with one sign (Δ, A and the gate are common factors), so its
   * outputs, and its gradients for |output gradient|, are the sizes of those terms. Float32's
   * error is a rounding of the terms, which random inputs can cancel far below.
   */
  termSizes: (xs: Float64Array[]) => SelectiveScanInputs;
  /** A reference backward's gradients in the order of `inputs`. */
  gradientsOf: (gr: SelectiveScanGrads) => Float64Array[];
  /** The optional inputs and softplus, for messages. */
  flags: string;
}

/** Draws a case's inputs from `rng` and lays them out as `channelsLast` says. */
export function setUpScan(c: ScanCase, channelsLast: boolean, rng: () => number): ScanSetup {
  const p: SelectiveScanProblem = {
    batch: c.batch,
    channels: c.channels,
    length: c.length,
    states: c.states,
    softplus: c.softplus ?? false,
    channelsLast,
  };
  const x = makeScanInputs(c, rng);
  const layout = channelsLast ? "bld" : "bdl";
  const dShape = channelsLast ? [c.batch, c.length, c.channels] : [c.batch, c.channels, c.length];
  const nShape = channelsLast ? [c.batch, c.length, c.states] : [c.batch, c.states, c.length];
  const present = OPTIONAL_SCAN_INPUTS.filter((k) => x[k] !== undefined);
  const inputs: GradInput[] = [
    { data: x.u, shape: dShape },
    { data: x.delta, shape: dShape },
    { data: x.A, shape: [c.channels, c.states] },
    { data: x.B, shape: nShape },
    { data: x.C, shape: nShape },
    ...present.map((k) => ({ data: x[k]!, shape: k === "z" ? dShape : [c.channels] })),
  ];
  const unpack = (xs: Float64Array[]): SelectiveScanInputs => {
    const o: SelectiveScanInputs = { u: xs[0], delta: xs[1], A: xs[2], B: xs[3], C: xs[4] };
    present.forEach((k, i) => (o[k] = xs[5 + i]));
    return o;
  };
  const termSizes = (xs: Float64Array[]): SelectiveScanInputs => {
    const o = unpack(xs);
    const abs = (a: Float64Array) => a.map(Math.abs);
    return { ...o, u: abs(o.u), B: abs(o.B), C: abs(o.C), ...(o.D ? { D: abs(o.D) } : {}) };
  };
  const flags = `${present.join("+") || "plain"}${p.softplus ? " softplus" : ""}`;
  const gradientsOf = (gr: SelectiveScanGrads) => [
    gr.u,
    gr.delta,
    gr.A,
    gr.B,
    gr.C,
    ...present.map((k) => gr[k]!),
  ];
  return { p, layout, present, inputs, unpack, termSizes, gradientsOf, flags };
}
