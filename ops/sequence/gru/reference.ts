/**
 * Float64 reference of the GRU layer ({@link gruReference}) and its gradients
 * ({@link gruReferenceBackward}): the plain recurrence of PyTorch's `torch.nn.GRU` (one layer,
 * one direction, batch first), every gate of every step kept on the host, and the hand-derived
 * backward through time. Slow and meant for small problems: compare a `gru` run against it.
 * Arrays are flat, in the element order of the tensors given to `gru`.
 *
 * @module
 */

/** Sizes and switches of one GRU layer call, for {@link gruReference}. */
export interface GruProblem {
  /** Batch size. */
  batch: number;
  /** Sequence length. */
  length: number;
  /** Input features I. */
  input: number;
  /** Hidden size H. */
  hidden: number;
}

/** The layer's inputs as flat float64 arrays; the optional ones may be absent. */
export interface GruInputs {
  /** Input x, (batch, length, I). */
  x: Float64Array;
  /** weight_ih, (3H, I), gate rows in the order r, z, n. */
  weightIh: Float64Array;
  /** weight_hh, (3H, H), gate rows in the order r, z, n. */
  weightHh: Float64Array;
  /** bias_ih, (3H). */
  biasIh?: Float64Array;
  /** bias_hh, (3H). */
  biasHh?: Float64Array;
  /** Initial state h_0, (batch, H); zero when absent. */
  h0?: Float64Array;
}

/** Gradients of every input, each shaped like its input (absent inputs get none). */
export interface GruGrads {
  /** ∂L/∂x. */
  x: Float64Array;
  /** ∂L/∂weight_ih. */
  weightIh: Float64Array;
  /** ∂L/∂weight_hh. */
  weightHh: Float64Array;
  /** ∂L/∂bias_ih. */
  biasIh?: Float64Array;
  /** ∂L/∂bias_hh. */
  biasHh?: Float64Array;
  /** ∂L/∂h_0. */
  h0?: Float64Array;
}

/** Every step's gates and states: r, z, n and W_hn·h + b_hn per (b, t, j), and h_t. */
interface Trace {
  r: Float64Array;
  z: Float64Array;
  n: Float64Array;
  hn: Float64Array;
  /** h_t per (b, t, j): the output. */
  h: Float64Array;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** h_{t−1}[b, j]: the previous output, h_0 at t = 0. */
function previous(p: GruProblem, x: GruInputs, h: Float64Array, b: number, t: number, j: number) {
  const H = p.hidden;
  if (t > 0) return h[(b * p.length + t - 1) * H + j];
  return x.h0 ? x.h0[b * H + j] : 0;
}

function trace(p: GruProblem, x: GruInputs): Trace {
  const { batch, length, input: I, hidden: H } = p;
  const size = batch * length * H;
  const tr: Trace = {
    r: new Float64Array(size),
    z: new Float64Array(size),
    n: new Float64Array(size),
    hn: new Float64Array(size),
    h: new Float64Array(size),
  };
  const gi = new Float64Array(3 * H);
  const gh = new Float64Array(3 * H);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      const row = b * length + t;
      for (let g = 0; g < 3 * H; g++) {
        let si = x.biasIh ? x.biasIh[g] : 0;
        for (let i = 0; i < I; i++) si += x.weightIh[g * I + i] * x.x[row * I + i];
        let sh = x.biasHh ? x.biasHh[g] : 0;
        for (let k = 0; k < H; k++) sh += x.weightHh[g * H + k] * previous(p, x, tr.h, b, t, k);
        gi[g] = si;
        gh[g] = sh;
      }
      for (let j = 0; j < H; j++) {
        const o = row * H + j;
        const r = sigmoid(gi[j] + gh[j]);
        const z = sigmoid(gi[H + j] + gh[H + j]);
        const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        tr.r[o] = r;
        tr.z[o] = z;
        tr.n[o] = n;
        tr.hn[o] = gh[2 * H + j];
        tr.h[o] = (1 - z) * n + z * previous(p, x, tr.h, b, t, j);
      }
    }
  }
  return tr;
}

/**
 * The GRU layer in float64: every h_t, (batch, length, H), from h_0 (zero when absent), with
 * r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
 * n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
 */
export function gruReference(p: GruProblem, x: GruInputs): Float64Array {
  return trace(p, x).h;
}

/**
 * Gradients of Σ output ⊙ gOut with respect to every input given, by backpropagation through
 * time over the float64 trace.
 * @param p sizes
 * @param x inputs
 * @param gOut ∂L/∂output, (batch, length, H)
 */
export function gruReferenceBackward(p: GruProblem, x: GruInputs, gOut: Float64Array): GruGrads {
  const { batch, length, input: I, hidden: H } = p;
  const tr = trace(p, x);
  const grads: GruGrads = {
    x: new Float64Array(x.x.length),
    weightIh: new Float64Array(3 * H * I),
    weightHh: new Float64Array(3 * H * H),
    biasIh: x.biasIh ? new Float64Array(3 * H) : undefined,
    biasHh: x.biasHh ? new Float64Array(3 * H) : undefined,
    h0: x.h0 ? new Float64Array(batch * H) : undefined,
  };
  const dgi = new Float64Array(3 * H);
  const dgh = new Float64Array(3 * H);
  for (let b = 0; b < batch; b++) {
    let carry = new Float64Array(H);
    for (let t = length - 1; t >= 0; t--) {
      const row = b * length + t;
      const next = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const o = row * H + j;
        const d = gOut[o] + carry[j];
        const { r, z, n, hn } = { r: tr.r[o], z: tr.z[o], n: tr.n[o], hn: tr.hn[o] };
        const an = d * (1 - z) * (1 - n * n);
        const ar = an * hn * r * (1 - r);
        const az = d * (previous(p, x, tr.h, b, t, j) - n) * z * (1 - z);
        dgi[j] = dgh[j] = ar;
        dgi[H + j] = dgh[H + j] = az;
        dgi[2 * H + j] = an;
        dgh[2 * H + j] = an * r;
        next[j] = d * z;
      }
      for (let g = 0; g < 3 * H; g++) {
        for (let i = 0; i < I; i++) {
          grads.weightIh[g * I + i] += dgi[g] * x.x[row * I + i];
          grads.x[row * I + i] += dgi[g] * x.weightIh[g * I + i];
        }
        for (let k = 0; k < H; k++) {
          grads.weightHh[g * H + k] += dgh[g] * previous(p, x, tr.h, b, t, k);
          next[k] += dgh[g] * x.weightHh[g * H + k];
        }
        if (grads.biasIh) grads.biasIh[g] += dgi[g];
        if (grads.biasHh) grads.biasHh[g] += dgh[g];
      }
      carry = next;
    }
    if (grads.h0) grads.h0.set(carry, b * H);
  }
  return grads;
}
