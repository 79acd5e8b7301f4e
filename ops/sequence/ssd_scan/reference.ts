/**
 * Float64 reference of the SSD (Mamba-2) scan over packed segments, and its gradients: a plain
 * sequential recurrence per (segment, head) that keeps every state, and the hand-derived reverse
 * pass over the kept states. Per token, Δ = dt + dtBias (through PyTorch's softplus when the
 * problem says so); per (segment, head h) the state S ∈ R^{P×N} starts at the segment's initial
 * state (zero when none is given) and follows
 *
 *     S_t = exp(Δ_t·A_h)·S_{t−1} + Δ_t · x_t ⊗ B_t,   y_t = S_t·C_t + D_h·x_t,
 *
 * where head h reads the B and C of group ⌊h / (H/G)⌋. A segment is a maximal run of equal
 * `seqIdx` within one row; segments are numbered in order, row by row. It is slow and meant for
 * small problems: compare an `ssdScan` run, forward or backward, against it. Inputs and outputs
 * are flat row-major float64 arrays in the shapes the fields name.
 *
 * @module
 */

/** Sizes and switches of one SSD scan, for {@link ssdScanReference}. */
export interface SsdScanProblem {
  /** Rows (batch size). */
  batch: number;
  /** Tokens per row T. */
  length: number;
  /** Heads H. */
  heads: number;
  /** Channels per head P. */
  headDim: number;
  /** Groups G sharing one B and C; divides `heads`. */
  groups: number;
  /** State size N. */
  states: number;
  /** Whether Δ goes through softplus (after adding the bias). */
  dtSoftplus: boolean;
}

/** The scan's inputs as flat row-major arrays; the optional ones may be absent. */
export interface SsdScanInputs {
  /** Input x, (batch, T, H, P). */
  x: Float64Array;
  /** Step sizes before bias and softplus, (batch, T, H). */
  dt: Float64Array;
  /** Decay rate per head (negative for a decaying state), (H). */
  A: Float64Array;
  /** Input matrix B, (batch, T, G, N). */
  B: Float64Array;
  /** Output matrix C, (batch, T, G, N). */
  C: Float64Array;
  /** Skip connection, (H). */
  D?: Float64Array;
  /** Added to dt before the softplus, (H). */
  dtBias?: Float64Array;
  /**
   * Segment id per token, (batch, T), non-decreasing within each row
   * (absent: one segment a row).
   */
  seqIdx?: Int32Array;
  /** State before each segment's first token, (segments, H, P, N); absent: zero. */
  initialStates?: Float64Array;
}

/** Gradients of every input, each shaped like its input (absent inputs get none). */
export interface SsdScanGrads {
  /** dx. */
  x: Float64Array;
  /** d dt, with respect to the `dt` input (before the bias and softplus). */
  dt: Float64Array;
  /** dA. */
  A: Float64Array;
  /** dB (summed over the heads of each group). */
  B: Float64Array;
  /** dC (summed over the heads of each group). */
  C: Float64Array;
  /** dD. */
  D?: Float64Array;
  /** d dtBias. */
  dtBias?: Float64Array;
  /** d initialStates. */
  initialStates?: Float64Array;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
/** PyTorch's softplus threshold: above it softplus is the identity. */
const SOFTPLUS_THRESHOLD = 20;
const softplus = (v: number) => (v > SOFTPLUS_THRESHOLD ? v : Math.log1p(Math.exp(v)));
/** Derivative of {@link softplus}, exactly 1 where it is the identity. */
const softplusDerivative = (v: number) => (v > SOFTPLUS_THRESHOLD ? 1 : sigmoid(v));

/**
 * The flat token index (b·T + t) of every segment's first token, in segment order (row by row).
 * Without `seqIdx` every row is one segment.
 *
 * @param batch rows
 * @param length tokens per row
 * @param seqIdx segment id per token, (batch, length), non-decreasing within each row
 * @returns the segments' first tokens; their count is the number of segments
 * @throws {RangeError} when `seqIdx` has the wrong length or decreases within a row
 */
export function ssdSegmentStarts(
  batch: number,
  length: number,
  seqIdx?: ArrayLike<number>,
): Int32Array {
  if (seqIdx !== undefined && seqIdx.length !== batch * length) {
    throw new RangeError(
      `ssdSegmentStarts: seqIdx has ${seqIdx.length} values, expected batch·length = ` +
        `${batch}·${length} = ${batch * length}; give one segment id per token`,
    );
  }
  if (length === 0) return new Int32Array(0);
  const starts: number[] = [];
  for (let b = 0; b < batch; b++) {
    const row = b * length;
    starts.push(row);
    if (seqIdx === undefined) continue;
    for (let t = 1; t < length; t++) {
      const prev = seqIdx[row + t - 1], cur = seqIdx[row + t];
      if (cur < prev) {
        throw new RangeError(
          `ssdSegmentStarts: seqIdx decreases in row ${b} at position ${t} ` +
            `(${cur} after ${prev}); segment ids must be non-decreasing within each row`,
        );
      }
      if (cur !== prev) starts.push(row + t);
    }
  }
  return Int32Array.from(starts);
}

/** Throws when an array's length is not the one the problem implies. */
function expectLength(what: string, got: number, want: number, shape: string): void {
  if (got !== want) {
    throw new RangeError(
      `ssdScanReference: ${what} has ${got} values, expected ${want} = ${shape}`,
    );
  }
}

/** Checks every input's length against the problem; returns the segment starts. */
function validate(p: SsdScanProblem, x: SsdScanInputs): Int32Array {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  if (G <= 0 || H % G !== 0) {
    throw new RangeError(
      `ssdScanReference: heads ${H} must be a multiple of groups ${G} ` +
        "(each group serves H/G heads)",
    );
  }
  expectLength("x", x.x.length, batch * T * H * P, "(batch, T, H, P)");
  expectLength("dt", x.dt.length, batch * T * H, "(batch, T, H)");
  expectLength("A", x.A.length, H, "(H)");
  expectLength("B", x.B.length, batch * T * G * N, "(batch, T, G, N)");
  expectLength("C", x.C.length, batch * T * G * N, "(batch, T, G, N)");
  if (x.D) expectLength("D", x.D.length, H, "(H)");
  if (x.dtBias) expectLength("dtBias", x.dtBias.length, H, "(H)");
  const starts = ssdSegmentStarts(batch, T, x.seqIdx);
  if (x.initialStates) {
    expectLength(
      "initialStates",
      x.initialStates.length,
      starts.length * H * P * N,
      `(segments ${starts.length}, H, P, N)`,
    );
  }
  return starts;
}

/** The forward pass with everything the backward needs. */
interface Trajectory {
  /** Each segment's first token. */
  starts: Int32Array;
  /** Δ after bias and softplus, (batch, T, H). */
  delta: Float64Array;
  /** S_t after every token, (batch, T, H, P, N). */
  states: Float64Array;
  /** y, (batch, T, H, P). */
  y: Float64Array;
  /** S after each segment's last token, (segments, H, P, N). */
  finalStates: Float64Array;
}

/** Runs the recurrence of every (segment, head), keeping every state. */
function run(p: SsdScanProblem, x: SsdScanInputs): Trajectory {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  const starts = validate(p, x);
  const tokens = batch * T;
  const PN = P * N;
  const delta = new Float64Array(tokens * H);
  for (let i = 0; i < delta.length; i++) {
    const raw = x.dt[i] + (x.dtBias ? x.dtBias[i % H] : 0);
    delta[i] = p.dtSoftplus ? softplus(raw) : raw;
  }
  const states = new Float64Array(tokens * H * PN);
  const y = new Float64Array(tokens * H * P);
  const finalStates = new Float64Array(starts.length * H * PN);
  const S = new Float64Array(PN);
  for (let k = 0; k < starts.length; k++) {
    const end = k + 1 < starts.length ? starts[k + 1] : tokens;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / G));
      if (x.initialStates) S.set(x.initialStates.subarray((k * H + h) * PN, (k * H + h + 1) * PN));
      else S.fill(0);
      for (let i = starts[k]; i < end; i++) {
        const d = delta[i * H + h];
        const decay = Math.exp(d * x.A[h]);
        const bc = (i * G + g) * N;
        for (let q = 0; q < P; q++) {
          const xv = x.x[(i * H + h) * P + q];
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const s = decay * S[q * N + n] + d * xv * x.B[bc + n];
            S[q * N + n] = s;
            acc += s * x.C[bc + n];
          }
          y[(i * H + h) * P + q] = acc + (x.D ? x.D[h] * xv : 0);
        }
        states.set(S, (i * H + h) * PN);
      }
      finalStates.set(S, (k * H + h) * PN);
    }
  }
  return { starts, delta, states, y, finalStates };
}

/**
 * The scan's outputs in float64, by the sequential recurrence of every (segment, head).
 *
 * @param p sizes and the softplus switch
 * @param x the inputs
 * @returns y, (batch, T, H, P), and the state after each segment's last token,
 *   (segments, H, P, N)
 * @throws {RangeError} when an input's length does not match the problem, H is not a multiple of
 *   G, or `seqIdx` decreases within a row
 */
export function ssdScanReference(
  p: SsdScanProblem,
  x: SsdScanInputs,
): { y: Float64Array; finalStates: Float64Array } {
  const { y, finalStates } = run(p, x);
  return { y, finalStates };
}

/**
 * The scan's backward in float64: every input's gradient for the gradients of y and of the final
 * states, by the hand-derived reverse pass over the kept states. The adjoint R_t = ∂L/∂S_t
 * starts at each segment's end from its final-state gradient (or zero), R_t = G_t ⊗ C_t +
 * exp(Δ_{t+1}·A)·R_{t+1} inside the segment, and the initial state's gradient is
 * exp(Δ_first·A)·R_first.
 *
 * @param p sizes and the softplus switch
 * @param x the inputs
 * @param gy ∂L/∂y, (batch, T, H, P)
 * @param gFinalStates ∂L/∂finalStates, (segments, H, P, N); absent: zero
 * @returns the gradient of every given input
 * @throws {RangeError} when an input's or gradient's length does not match the problem
 */
export function ssdScanReferenceBackward(
  p: SsdScanProblem,
  x: SsdScanInputs,
  gy: Float64Array,
  gFinalStates?: Float64Array,
): SsdScanGrads {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  const tr = run(p, x);
  const tokens = batch * T;
  const PN = P * N;
  const segments = tr.starts.length;
  expectLength("gy", gy.length, tokens * H * P, "(batch, T, H, P)");
  if (gFinalStates) {
    expectLength("gFinalStates", gFinalStates.length, segments * H * PN, "(segments, H, P, N)");
  }
  const out: SsdScanGrads = {
    x: new Float64Array(x.x.length),
    dt: new Float64Array(x.dt.length),
    A: new Float64Array(H),
    B: new Float64Array(x.B.length),
    C: new Float64Array(x.C.length),
    D: x.D ? new Float64Array(H) : undefined,
    dtBias: x.dtBias ? new Float64Array(H) : undefined,
    initialStates: x.initialStates ? new Float64Array(x.initialStates.length) : undefined,
  };
  const R = new Float64Array(PN);
  const zero = new Float64Array(PN);
  for (let k = 0; k < segments; k++) {
    const start = tr.starts[k];
    const end = k + 1 < segments ? tr.starts[k + 1] : tokens;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / G));
      const a = x.A[h];
      const seg = (k * H + h) * PN;
      if (gFinalStates) R.set(gFinalStates.subarray(seg, seg + PN));
      else R.fill(0);
      const initial = x.initialStates ? x.initialStates.subarray(seg, seg + PN) : zero;
      for (let i = end - 1; i >= start; i--) {
        const d = tr.delta[i * H + h];
        const decay = Math.exp(d * a);
        const bc = (i * G + g) * N;
        const prev = i > start ? tr.states.subarray((i - 1) * H * PN + h * PN) : initial;
        const cur = (i * H + h) * PN;
        let dDelta = 0; // Σ_q x_q (R B)_q, the input term of ∂L/∂Δ
        let dDecay = 0; // ⟨R_t, S_{t−1}⟩: ∂L/∂exp(a_t)
        for (let q = 0; q < P; q++) {
          const xi = (i * H + h) * P + q;
          const xv = x.x[xi];
          const gq = gy[xi];
          if (x.D) {
            out.D![h] += gq * xv;
            out.x[xi] += gq * x.D[h];
          }
          let rb = 0;
          for (let n = 0; n < N; n++) {
            // R_t = G_t ⊗ C_t + (the next step's decay of R_{t+1}, already applied).
            const r = R[q * N + n] + gq * x.C[bc + n];
            R[q * N + n] = r;
            out.C[bc + n] += gq * tr.states[cur + q * N + n];
            out.B[bc + n] += r * d * xv;
            rb += r * x.B[bc + n];
            dDecay += r * prev[q * N + n];
          }
          out.x[xi] += d * rb;
          dDelta += xv * rb;
        }
        const da = decay * dDecay; // ∂L/∂a_t with a_t = Δ_t·A
        out.A[h] += da * d;
        const dd = dDelta + a * da;
        const raw = x.dt[i * H + h] + (x.dtBias ? x.dtBias[h] : 0);
        const dRaw = p.dtSoftplus ? dd * softplusDerivative(raw) : dd;
        out.dt[i * H + h] = dRaw;
        if (x.dtBias) out.dtBias![h] += dRaw;
        for (let j = 0; j < PN; j++) R[j] *= decay; // carried to step t − 1
      }
      if (out.initialStates) out.initialStates.set(R, seg);
    }
  }
  return out;
}
