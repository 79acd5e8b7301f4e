/**
 * The SSD scan's options and their validation: the public option type, and the checks that turn
 * tensors and options into an {@link SsdSpec} (sizes and compile-time switches) before anything is
 * dispatched.
 *
 * @module
 */
import { assertDType } from "../../core/launch.ts";
import type { Tensor } from "../../core/tensor.ts";
import { checkChunk, OP, SSD_DEFAULT_CHUNK, SsdPieces } from "./pieces.ts";
import { ssdSegmentStarts } from "./reference.ts";

export { OP, SSD_DEFAULT_CHUNK, SSD_MAX_CHUNK } from "./pieces.ts";

/** Options of `ssdScan`. */
export interface SsdScanOptions {
  /** Skip connection D, shape (heads): adds D[h]·x to y. */
  D?: Tensor;
  /** Added to dt before the softplus, shape (heads). */
  dtBias?: Tensor;
  /** Apply softplus (PyTorch's, threshold 20) to dt + dtBias. Default false. */
  dtSoftplus?: boolean;
  /**
   * Segment id per token, (batch·length) values non-decreasing within each row, on the host: the
   * sequences packed into one row, which never see each other (the state restarts at every change
   * of id). Absent: one segment per row. Either the ids, or the {@link SsdPieces} that
   * `ssdPieces` builds from them (build it once per batch when several scans share the packing).
   */
  seqIdx?: ArrayLike<number> | SsdPieces;
  /**
   * State entering each segment, (segments, heads, headDim, states), segments numbered in order
   * row by row. Absent: zero. With one segment per row this is mamba_ssm's `initial_states`.
   */
  initialStates?: Tensor;
  /** Also return the state after each segment's last token (no gradient flows through it). */
  finalStates?: boolean;
  /**
   * Longest run of tokens one workgroup handles (default 64, at most 256): segments longer than
   * this are cut into chunks whose states are carried across. Changes rounding only.
   */
  chunkSize?: number;
  /**
   * How the forward runs: "recurrent" (the recurrence, one invocation per (segment, head,
   * channel) with the state row in registers; up to 64 states), "chunked" (the dual form per
   * chunk, any state size), or "auto" (the default: recurrent where it fits). Changes rounding
   * only; the backward is the same.
   */
  forward?: "auto" | "recurrent" | "chunked";
  /**
   * Hands x, dt, B and C over to the scan: it frees them once its backward has run (at once when
   * nothing is recorded), so that they do not outlive their last reader. Pass tensors that
   * nothing reads after the scan (freeing a view frees the storage once its other views are
   * gone).
   */
  releaseInputs?: boolean;
}

/**
 * The shader cache key of `spec`: its JSON without the batch and the length, which no SSD kernel's
 * source embeds (they reach the kernels as run-time parameters and work tables), so packed
 * batches of every token count share their kernels' sources.
 */
export function sizeFreeKey(spec: SsdSpec): string {
  const { batch: _batch, length: _length, ...rest } = spec;
  return JSON.stringify(rest);
}

/** Sizes and compile-time switches of one scan. */
export interface SsdSpec {
  /** Batch rows. */
  batch: number;
  /** Tokens per row. */
  length: number;
  /** Heads H. */
  heads: number;
  /** Head dimension P. */
  headDim: number;
  /** Groups G of B and C (H divisible by G). */
  groups: number;
  /** State size N. */
  states: number;
  /** Whether D is given. */
  hasD: boolean;
  /** Whether dtBias is given. */
  hasBias: boolean;
  /** Whether dt goes through softplus. */
  softplus: boolean;
  /** Whether initial states are given. */
  hasInit: boolean;
  /** Whether final states are returned. */
  wantFinal: boolean;
  /** Chunk length. */
  chunk: number;
  /** Whether the forward runs the recurrence (else the chunked dual form). */
  recurrent: boolean;
}

function sameShape(t: Tensor, shape: readonly number[]): boolean {
  return t.shape.length === shape.length && t.shape.every((v, i) => v === shape[i]);
}

/**
 * Checks dtypes, shapes and options of one call and returns its sizes and switches. Throws a
 * RangeError (TypeError for a dtype) naming the argument, its shape and the shapes it must agree
 * with.
 */
export function ssdSpec(
  x: Tensor,
  dt: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  o: SsdScanOptions,
  segments: number,
  chunk: number,
): SsdSpec {
  for (const t of [x, dt, A, B, C, o.D, o.dtBias, o.initialStates]) {
    if (t) assertDType(OP, t, "f32");
  }
  if (x.shape.length !== 4 || x.size === 0) {
    throw new RangeError(
      `${OP}: x must be a non-empty (batch, length, heads, headDim) tensor, got ${x.describe()}`,
    );
  }
  const [batch, length, heads, headDim] = x.shape;
  const where = `(x ${x.describe()})`;
  if (!sameShape(dt, [batch, length, heads])) {
    throw new RangeError(
      `${OP}: dt must be (batch, length, heads) [${batch}, ${length}, ${heads}], got ` +
        `${dt.describe()} ${where}`,
    );
  }
  if (!sameShape(A, [heads])) {
    throw new RangeError(`${OP}: A must be (heads) [${heads}], got ${A.describe()} ${where}`);
  }
  if (B.shape.length !== 4 || B.shape[0] !== batch || B.shape[1] !== length || B.size === 0) {
    throw new RangeError(
      `${OP}: B must be (batch, length, groups, states) with batch ${batch} and length ` +
        `${length}, got ${B.describe()} ${where}`,
    );
  }
  const [, , groups, states] = B.shape;
  if (heads % groups !== 0) {
    throw new RangeError(
      `${OP}: heads ${heads} must be divisible by the groups of B, ${groups} (B ` +
        `${B.describe()}, ${where})`,
    );
  }
  if (!sameShape(C, B.shape)) {
    throw new RangeError(`${OP}: C must be shaped like B ${B.describe()}, got ${C.describe()}`);
  }
  for (const [name, t] of [["D", o.D], ["dtBias", o.dtBias]] as const) {
    if (t && !sameShape(t, [heads])) {
      throw new RangeError(`${OP}: ${name} must be (heads) [${heads}], got ${t.describe()}`);
    }
  }
  const stateShape = [segments, heads, headDim, states];
  if (o.initialStates && !sameShape(o.initialStates, stateShape)) {
    throw new RangeError(
      `${OP}: initialStates must be (segments, heads, headDim, states) ` +
        `[${stateShape.join(", ")}], got ${o.initialStates.describe()} (the segment ids give ` +
        `${segments} segments)`,
    );
  }
  return {
    batch,
    length,
    heads,
    headDim,
    groups,
    states,
    hasD: o.D !== undefined,
    hasBias: o.dtBias !== undefined,
    softplus: o.dtSoftplus === true,
    hasInit: o.initialStates !== undefined,
    wantFinal: o.finalStates === true,
    chunk,
    recurrent: forwardIsRecurrent(o.forward ?? "auto", states),
  };
}

/** Most states the recurrent forward keeps in registers per invocation. */
export const RECURRENT_MAX_STATES = 64;

/** Whether a forward of `states` states runs the recurrence; throws for an impossible choice. */
function forwardIsRecurrent(choice: string, states: number): boolean {
  if (choice === "chunked") return false;
  if (choice === "recurrent") {
    if (states > RECURRENT_MAX_STATES) {
      throw new RangeError(
        `${OP}: forward "recurrent" keeps at most ${RECURRENT_MAX_STATES} states in registers, ` +
          `got ${states}; use forward "chunked" or "auto"`,
      );
    }
    return true;
  }
  if (choice === "auto") return states <= RECURRENT_MAX_STATES;
  throw new RangeError(
    `${OP}: forward must be "auto", "recurrent" or "chunked", got ${JSON.stringify(choice)}`,
  );
}

/** An optional tensor as a list of zero or one, for building binding lists. */
export const listed = (t: Tensor | undefined): Tensor[] => (t ? [t] : []);

/**
 * The chunking of a call: the caller's {@link SsdPieces}, or one built from its segment ids (or one
 * segment a row) and owned by the call.
 */
export function piecesOf(
  x: Tensor,
  options: Pick<SsdScanOptions, "seqIdx" | "chunkSize">,
): { pieces: SsdPieces; owned: boolean } {
  const given = options.seqIdx;
  if (given instanceof SsdPieces) {
    if (options.chunkSize !== undefined && options.chunkSize !== given.chunk) {
      throw new RangeError(
        `${OP}: chunkSize ${options.chunkSize} differs from the chunk of the SsdPieces passed as ` +
          `seqIdx, ${given.chunk}; build the pieces with the chunk you want and omit chunkSize`,
      );
    }
    if (x.shape.length >= 2 && (given.batch !== x.shape[0] || given.length !== x.shape[1])) {
      throw new RangeError(
        `${OP}: the SsdPieces passed as seqIdx were built for batch ${given.batch}, length ` +
          `${given.length}, but x is ${x.describe()}`,
      );
    }
    return { pieces: given, owned: false };
  }
  const chunk = options.chunkSize ?? SSD_DEFAULT_CHUNK;
  checkChunk(chunk);
  if (x.shape.length !== 4) {
    throw new RangeError(
      `${OP}: x must be a (batch, length, heads, headDim) tensor, got ${x.describe()}`,
    );
  }
  const [batch, length] = x.shape;
  const starts = ssdSegmentStarts(batch, length, given);
  return { pieces: new SsdPieces(batch, length, starts, chunk, false), owned: true };
}
