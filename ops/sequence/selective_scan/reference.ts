/**
 * Float64 reference of the selective scan (mamba_ssm's `selective_scan_fn` semantics) and its
 * gradients: a plain sequential recurrence per (batch, channel), keeping every state, and the
 * hand-derived reverse pass over it. It is slow (every state of every step is kept on the host)
 * and meant for small problems: compare a `selectiveScan` run, forward or backward, against it
 * to check a device or a change. Inputs and outputs are flat float64 arrays in the layout the
 * problem names, the same element order as the tensors given to `selectiveScan`.
 *
 * @module
 */

/** Sizes and switches of one scan, for {@link selectiveScanReference}. */
export interface SelectiveScanProblem {
  /** Batch size. */
  batch: number;
  /** Channels d. */
  channels: number;
  /** Sequence length l. */
  length: number;
  /** State size n. */
  states: number;
  /** Whether Δ goes through softplus (after adding the bias). */
  softplus: boolean;
  /** `"bld"`: (batch, ·, length) tensors are stored (batch, length, ·). */
  channelsLast: boolean;
}

/**
 * The scan's inputs as flat arrays; the optional ones may be absent. (batch, d, l) and
 * (batch, n, l) arrays are stored (batch, l, ·) when the problem is `channelsLast`.
 */
export interface SelectiveScanInputs {
  /** Input u, (batch, d, l). */
  u: Float64Array;
  /** Step sizes before bias and softplus, (batch, d, l). */
  delta: Float64Array;
  /** State matrix A, (d, n). */
  A: Float64Array;
  /** Input matrix B, (batch, n, l). */
  B: Float64Array;
  /** Output matrix C, (batch, n, l). */
  C: Float64Array;
  /** Skip connection D, (d). */
  D?: Float64Array;
  /** Gate z, (batch, d, l). */
  z?: Float64Array;
  /** Added to delta before the softplus, (d). */
  deltaBias?: Float64Array;
}

/** Gradients of every input, each shaped like its input (absent inputs get none). */
export interface SelectiveScanGrads {
  /** du. */
  u: Float64Array;
  /** dΔ (before the bias and softplus, i.e. with respect to the `delta` input). */
  delta: Float64Array;
  /** dA. */
  A: Float64Array;
  /** dB. */
  B: Float64Array;
  /** dC. */
  C: Float64Array;
  /** dD. */
  D?: Float64Array;
  /** dz. */
  z?: Float64Array;
  /** d deltaBias. */
  deltaBias?: Float64Array;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

/** Index of (b, c, t) in a (batch, d, l) tensor of this problem. */
function channelIndex(p: SelectiveScanProblem, b: number, c: number, t: number): number {
  return p.channelsLast ? (b * p.length + t) * p.channels + c : (b * p.channels + c) * p.length + t;
}

/** Index of (b, s, t) in a (batch, n, l) tensor of this problem. */
function stateIndex(p: SelectiveScanProblem, b: number, s: number, t: number): number {
  return p.channelsLast ? (b * p.length + t) * p.states + s : (b * p.states + s) * p.length + t;
}

interface Trajectory {
  /** Δ after bias and softplus, per (b, c, t) in channel-index order. */
  dt: Float64Array;
  /** h_t for one (b, c): [t][s]. */
  h: (b: number, c: number) => Float64Array;
  /** y before gating. */
  y: Float64Array;
}

function run(p: SelectiveScanProblem, x: SelectiveScanInputs): Trajectory {
  const { batch, channels, length, states } = p;
  const dt = new Float64Array(batch * channels * length);
  const y = new Float64Array(dt.length);
  const hs = new Map<number, Float64Array>();
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const hist = new Float64Array(length * states);
      const h = new Float64Array(states);
      for (let t = 0; t < length; t++) {
        const i = channelIndex(p, b, c, t);
        const raw = x.delta[i] + (x.deltaBias ? x.deltaBias[c] : 0);
        const d = p.softplus ? softplus(raw) : raw;
        dt[i] = d;
        let acc = x.D ? x.D[c] * x.u[i] : 0;
        for (let s = 0; s < states; s++) {
          const j = stateIndex(p, b, s, t);
          h[s] = Math.exp(d * x.A[c * states + s]) * h[s] + d * x.B[j] * x.u[i];
          hist[t * states + s] = h[s];
          acc += x.C[j] * h[s];
        }
        y[i] = acc;
      }
      hs.set(b * channels + c, hist);
    }
  }
  return { dt, y, h: (b, c) => hs.get(b * channels + c)! };
}

/**
 * The scan's output in float64: per (b, c), Δ_t = delta + deltaBias (softplus'd when the problem
 * says so), h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·u_t from h_{−1} = 0, y_t = C_t·h_t + D·u_t, gated
 * by y·SiLU(z) when z is given.
 *
 * @param p sizes, softplus and layout
 * @param x the inputs
 * @returns the output, (batch, d, l) (or (batch, l, d) when `channelsLast`)
 */
export function selectiveScanReference(
  p: SelectiveScanProblem,
  x: SelectiveScanInputs,
): Float64Array {
  const { y } = run(p, x);
  if (!x.z) return y;
  return y.map((v, i) => v * x.z![i] * sigmoid(x.z![i]));
}

/**
 * Each row's state after its last real token in float64, the recurrence of
 * {@link selectiveScanReference} stopped at step `lengths[b] − 1`; a row whose length is outside
 * 1 … l gets zeros.
 *
 * @param p sizes, softplus and layout
 * @param x the inputs (D and z do not enter the state)
 * @param lengths real tokens per row, (batch)
 * @returns the states, (batch, d, n)
 */
export function selectiveScanReferenceFinalState(
  p: SelectiveScanProblem,
  x: SelectiveScanInputs,
  lengths: ArrayLike<number>,
): Float64Array {
  const { batch, channels, length, states } = p;
  const tr = run(p, x);
  const out = new Float64Array(batch * channels * states);
  for (let b = 0; b < batch; b++) {
    const n = lengths[b];
    if (!(Number.isInteger(n) && n >= 1 && n <= length)) continue;
    for (let c = 0; c < channels; c++) {
      const hist = tr.h(b, c);
      out.set(hist.subarray((n - 1) * states, n * states), (b * channels + c) * states);
    }
  }
  return out;
}

/**
 * The scan's backward in float64: every input's gradient for the output gradient `g`, by the
 * hand-derived reverse pass over the kept states.
 *
 * @param p sizes, softplus and layout
 * @param x the inputs
 * @param g ∂L/∂output, shaped like the output
 * @returns the gradient of every given input
 */
export function selectiveScanReferenceBackward(
  p: SelectiveScanProblem,
  x: SelectiveScanInputs,
  g: Float64Array,
): SelectiveScanGrads {
  const { batch, channels, length, states } = p;
  const tr = run(p, x);
  const out: SelectiveScanGrads = {
    u: new Float64Array(x.u.length),
    delta: new Float64Array(x.delta.length),
    A: new Float64Array(x.A.length),
    B: new Float64Array(x.B.length),
    C: new Float64Array(x.C.length),
    D: x.D ? new Float64Array(channels) : undefined,
    z: x.z ? new Float64Array(x.z.length) : undefined,
    deltaBias: x.deltaBias ? new Float64Array(channels) : undefined,
  };
  const lam = new Float64Array(states);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const hist = tr.h(b, c);
      lam.fill(0);
      for (let t = length - 1; t >= 0; t--) {
        const i = channelIndex(p, b, c, t);
        let gy = g[i];
        if (x.z) {
          const zz = x.z[i];
          const sg = sigmoid(zz);
          out.z![i] = g[i] * tr.y[i] * sg * (1 + zz * (1 - sg));
          gy = g[i] * zz * sg;
        }
        if (x.D) {
          out.D![c] += gy * x.u[i];
          out.u[i] += gy * x.D[c];
        }
        const d = tr.dt[i];
        let dd = 0;
        for (let s = 0; s < states; s++) {
          const j = stateIndex(p, b, s, t);
          const a = x.A[c * states + s];
          const da = Math.exp(d * a);
          const hPrev = t > 0 ? hist[(t - 1) * states + s] : 0;
          out.C[j] += gy * hist[t * states + s];
          // λ_t = ∂L/∂h_t: this step's output plus the next step's decay of it.
          lam[s] = gy * x.C[j] + lam[s];
          out.B[j] += lam[s] * d * x.u[i];
          out.u[i] += lam[s] * d * x.B[j];
          out.A[c * states + s] += lam[s] * d * da * hPrev;
          dd += lam[s] * (x.B[j] * x.u[i] + a * da * hPrev);
          lam[s] *= da; // carried to step t − 1
        }
        const raw = x.delta[i] + (x.deltaBias ? x.deltaBias[c] : 0);
        const ddelta = p.softplus ? dd * sigmoid(raw) : dd;
        out.delta[i] = ddelta;
        if (x.deltaBias) out.deltaBias![c] += ddelta;
      }
    }
  }
  return out;
}

/** A position clamped to [0, l), as `selectiveScanAt` and `gatherPositions` clamp it. */
const clampPosition = (p: SelectiveScanProblem, t: number) =>
  Math.min(Math.max(t, 0), p.length - 1);

/**
 * The scan's output at one step per row in float64: {@link selectiveScanReference} read at
 * (b, c, positions[b]), positions clamped to [0, l).
 *
 * @param p sizes, softplus and layout
 * @param x the inputs
 * @param positions the step each row is read at, (batch)
 * @returns the output at the positions, (batch, d)
 */
export function selectiveScanReferenceAt(
  p: SelectiveScanProblem,
  x: SelectiveScanInputs,
  positions: ArrayLike<number>,
): Float64Array {
  const y = selectiveScanReference(p, x);
  const out = new Float64Array(p.batch * p.channels);
  for (let b = 0; b < p.batch; b++) {
    const t = clampPosition(p, positions[b]);
    for (let c = 0; c < p.channels; c++) out[b * p.channels + c] = y[channelIndex(p, b, c, t)];
  }
  return out;
}

/**
 * The backward of {@link selectiveScanReferenceAt} in float64: {@link
 * selectiveScanReferenceBackward} for the output gradient that is `g` at each row's position and
 * zero at every other step.
 *
 * @param p sizes, softplus and layout
 * @param x the inputs
 * @param positions the step each row is read at, (batch)
 * @param g ∂L/∂output at the positions, (batch, d)
 * @returns the gradient of every given input
 */
export function selectiveScanReferenceAtBackward(
  p: SelectiveScanProblem,
  x: SelectiveScanInputs,
  positions: ArrayLike<number>,
  g: Float64Array,
): SelectiveScanGrads {
  const full = new Float64Array(p.batch * p.channels * p.length);
  for (let b = 0; b < p.batch; b++) {
    const t = clampPosition(p, positions[b]);
    for (let c = 0; c < p.channels; c++) full[channelIndex(p, b, c, t)] = g[b * p.channels + c];
  }
  return selectiveScanReferenceBackward(p, x, full);
}
