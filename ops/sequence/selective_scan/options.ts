/**
 * The selective scan's options and their validation: the public option types, and the checks
 * that turn tensors and options into a {@link ScanSpec} (sizes and compile-time switches) before
 * anything is dispatched.
 *
 * @module
 */
import { assertDType } from "../../core/launch.ts";
import type { Tensor } from "../../core/tensor.ts";

/** The op name in kernel labels and error messages. */
export const OP = "selectiveScan";

/** Largest state size supported. */
export const SELECTIVE_SCAN_MAX_STATES = 256;

/** Options of `selectiveScan`. */
export interface SelectiveScanOptions {
  /** Skip connection D, shape (d): adds D[c]·u[b,c,t] to y. */
  D?: Tensor;
  /** Gate z, shaped like u: the output is y·SiLU(z). */
  z?: Tensor;
  /** Added to delta before the softplus, shape (d). */
  deltaBias?: Tensor;
  /**
   * Δ as a low-rank product, computed where the kernels read it: with this (d, R) weight, `delta`
   * is (batch, length, R) and the step size before the bias is Σ_r delta[b,t,r]·deltaWeight[c,r]
   * (Mamba's `dt_proj` without its bias: the product `matmul(delta, deltaWeight, { transB: true
   * })` would give, to rounding), so that the (batch, length, d) Δ is never stored. Gradients
   * flow to both factors. Layout "bld" only.
   */
  deltaWeight?: Tensor;
  /**
   * The backward writes dB and dC over B's and C's storage (two (batch, length, n) buffers
   * fewer), for callers whose B and C nothing but this scan reads: their values are gone once the
   * backward has run. Default false.
   */
  gradsOverBC?: boolean;
  /** Apply softplus (PyTorch's, threshold 20) to delta + deltaBias. Default false. */
  deltaSoftplus?: boolean;
  /**
   * `"bdl"` (default): u, delta, z and the output are (batch, d, length), B and C are
   * (batch, n, length). `"bld"`: all of them are (batch, length, ·), channels-last, as linear
   * projections produce them.
   */
  layout?: "bdl" | "bld";
  /** Work-splitting overrides, for benchmarks and tests; the defaults suit the device. */
  tuning?: SelectiveScanTuning;
}

/** Options of `selectiveScanWithFinalState`: the scan's, and where each row's sequence ends. */
export interface SelectiveScanFinalStateOptions extends SelectiveScanOptions {
  /**
   * i32 (batch): each row's number of real tokens, right-padded rows being the rule; the final
   * state of row b is h after step `lengths[b] − 1`. A row whose length is outside 1 … length
   * gets a zero state. Default: every row is full (the state after the last step).
   */
  lengths?: Tensor;
}

/** Work-splitting overrides of `selectiveScan`. */
export interface SelectiveScanTuning {
  /** Length segments scanned in parallel by the channel-major kernels (1: one pass). */
  segments?: number;
  /** Steps per interval, the checkpoint spacing: 1, 2, 4, …, 64 (default 16 where it fits). */
  interval?: number;
  /** Invocations per workgroup of the channel-major kernels (default 64). */
  channelThreads?: number;
  /** Steps staged at a time by the channel-major kernels: 1, 2, 4, …, 32 (default 4). */
  channelSteps?: number;
  /** Intervals per workgroup of the state-major kernel (default: up to 64 invocations). */
  stateRows?: number;
  /** Channels staged at a time by the state-major kernel (default 8). */
  stateChunk?: number;
  /**
   * `selectiveScanAt` only: whether its backward re-scans forward in time in one kernel where
   * it applies (default true), or runs the adjoint and state passes from checkpoints, as the
   * full scan's backward does (false).
   */
  rescan?: boolean;
}

/** Sizes and compile-time switches of one scan. */
export interface ScanSpec {
  /** Batch rows. */
  batch: number;
  /** Channels d. */
  channels: number;
  /** Sequence length l. */
  length: number;
  /** State size n. */
  states: number;
  /** Whether D is given. */
  hasD: boolean;
  /** Whether z is given. */
  hasZ: boolean;
  /** The rank R of a low-rank Δ (`deltaWeight` (d, R)), or 0 where delta is Δ itself. */
  deltaRank: number;
  /** Whether the backward writes dB and dC over B and C (`gradsOverBC`). */
  gradsOverBC: boolean;
  /** Whether deltaBias is given. */
  hasBias: boolean;
  /** Whether Δ goes through softplus. */
  softplus: boolean;
  /** Layout "bld". */
  channelsLast: boolean;
  /** Whether the forward also writes each row's state after its last real token. */
  finalState: boolean;
  /**
   * Whether the output is read at one step per row only (`selectiveScanAt`): the kernels take
   * each row's position (binding `last`), the forward writes `[batch, d]` and stops there, and
   * the backward takes a `[batch, d]` gradient and starts there.
   */
  atPositions: boolean;
}

/** Largest value of the tunings that must be powers of two. */
const POWER_OF_TWO_TUNINGS: Record<string, number> = { interval: 64, channelSteps: 32 };

function describeShape(layout: string, second: string): string {
  return layout === "bdl" ? `(batch, ${second}, length)` : `(batch, length, ${second})`;
}

/** The tunings that are switches rather than counts. */
const SWITCH_TUNINGS = new Set(["rescan"]);

/**
 * Throws unless every tuning value is a positive integer (a power of two where required), or a
 * boolean for a switch.
 */
function validateTuning(tuning: SelectiveScanTuning): void {
  for (const [key, v] of Object.entries(tuning)) {
    if (SWITCH_TUNINGS.has(key)) {
      if (v !== undefined && typeof v !== "boolean") {
        throw new RangeError(`${OP}: tuning.${key} must be true or false, got ${v}`);
      }
      continue;
    }
    const max = POWER_OF_TWO_TUNINGS[key] ?? Infinity;
    const power = max < Infinity;
    if (
      v !== undefined &&
      !(Number.isInteger(v) && v >= 1 && v <= max && (!power || (v & (v - 1)) === 0))
    ) {
      const powerNote = power ? `, a power of two up to ${max}` : "";
      throw new RangeError(
        `${OP}: tuning.${key} must be an integer ≥ 1${powerNote}, got ${v}`,
      );
    }
  }
}

/**
 * Checks dtypes, shapes, the layout and the tuning of one call, and returns its sizes and
 * switches; `finalState` asks for the final-state output (and checks `o.lengths`), `positions`
 * (i32, one per row) the output at those steps only. Throws a RangeError (TypeError for a dtype)
 * naming the argument and its shape.
 */
export function scanSpec(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  o: SelectiveScanFinalStateOptions,
  finalState = false,
  positions?: Tensor,
): ScanSpec {
  const layout = o.layout ?? "bdl";
  if (layout !== "bdl" && layout !== "bld") {
    throw new RangeError(`${OP}: layout must be "bdl" or "bld", got ${JSON.stringify(layout)}`);
  }
  for (const t of [u, delta, A, B, C, o.D, o.z, o.deltaBias, o.deltaWeight]) {
    if (t) assertDType(OP, t, "f32");
  }
  if (u.shape.length !== 3 || u.size === 0) {
    throw new RangeError(
      `${OP}: u must be a non-empty ${describeShape(layout, "d")} tensor, got ${u.describe()}`,
    );
  }
  const [batch, second, third] = u.shape;
  const [channels, length] = layout === "bdl" ? [second, third] : [third, second];
  if (A.shape.length !== 2 || A.shape[0] !== channels || A.shape[1] === 0) {
    throw new RangeError(`${OP}: A must be (d ${channels}, n), got ${A.describe()}`);
  }
  const states = A.shape[1];
  if (states > SELECTIVE_SCAN_MAX_STATES) {
    throw new RangeError(
      `${OP}: n = ${states} states exceeds the supported ${SELECTIVE_SCAN_MAX_STATES} (A ` +
        `${A.describe()})`,
    );
  }
  const dShape = layout === "bdl" ? [batch, channels, length] : [batch, length, channels];
  const nShape = layout === "bdl" ? [batch, states, length] : [batch, length, states];
  const expect = (name: string, t: Tensor | undefined, shape: number[], what: string) => {
    if (t && (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i]))) {
      throw new RangeError(
        `${OP}: ${name} must be ${what} [${shape.join(", ")}], got ${t.describe()} ` +
          `(u ${u.describe()}, A ${A.describe()}, layout ${layout})`,
      );
    }
  };
  const rank = o.deltaWeight?.shape[1] ?? 0;
  if (o.deltaWeight) {
    if (layout !== "bld") {
      throw new RangeError(
        `${OP}: a low-rank delta (deltaWeight ${o.deltaWeight.describe()}) needs layout "bld"; ` +
          `give delta as (batch, d, length) without deltaWeight, or use "bld"`,
      );
    }
    if (o.deltaWeight.shape.length !== 2 || rank === 0) {
      throw new RangeError(
        `${OP}: deltaWeight must be (d ${channels}, R ≥ 1), got ${o.deltaWeight.describe()}`,
      );
    }
    expect("deltaWeight", o.deltaWeight, [channels, rank], "(d, R)");
    expect("delta", delta, [batch, length, rank], "with deltaWeight (batch, length, R)");
  } else expect("delta", delta, dShape, describeShape(layout, "d"));
  expect("z", o.z, dShape, describeShape(layout, "d"));
  expect("B", B, nShape, describeShape(layout, "n"));
  expect("C", C, nShape, describeShape(layout, "n"));
  expect("D", o.D, [channels], "(d)");
  expect("deltaBias", o.deltaBias, [channels], "(d)");
  if (finalState && o.lengths) {
    assertDType(OP, o.lengths, "i32");
    if (o.lengths.shape.length !== 1 || o.lengths.shape[0] !== batch) {
      throw new RangeError(
        `${OP}: lengths must be i32 (batch ${batch}), one length per row, got ` +
          `${o.lengths.describe()} (u ${u.describe()})`,
      );
    }
  }
  if (positions) {
    assertDType(`${OP}At`, positions, "i32");
    if (positions.shape.length !== 1 || positions.shape[0] !== batch) {
      throw new RangeError(
        `${OP}At: positions must be i32 (batch ${batch}), one step per row, got ` +
          `${positions.describe()} (u ${u.describe()})`,
      );
    }
  }
  validateTuning(o.tuning ?? {});
  return {
    batch,
    channels,
    length,
    states,
    hasD: o.D !== undefined,
    hasZ: o.z !== undefined,
    deltaRank: rank,
    gradsOverBC: o.gradsOverBC === true,
    hasBias: o.deltaBias !== undefined,
    softplus: o.deltaSoftplus === true,
    channelsLast: layout === "bld",
    finalState,
    atPositions: positions !== undefined,
  };
}

/** An optional tensor as a list of zero or one, for building binding lists. */
export const listed = (t: Tensor | undefined): Tensor[] => (t ? [t] : []);
