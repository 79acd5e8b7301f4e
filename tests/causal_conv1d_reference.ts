/**
 * Float64 reference of the depthwise causal convolution and its gradients, written as directly
 * from the definition as possible: explicit loops over batch, channel, position and tap.
 */

/** Problem description shared by the forward and backward references. */
export interface ConvProblem {
  /** Batch size. */
  batch: number;
  /** Channels. */
  channels: number;
  /** Sequence length. */
  length: number;
  /** Taps per channel. */
  width: number;
  /** Whether SiLU follows the bias. */
  silu: boolean;
  /** `"bld"`: x is (batch, length, channels). */
  channelsLast: boolean;
  /** Segment id per (batch, position), or undefined for one sequence per row. */
  seq?: Int32Array;
}

/** Flat index of (b, c, t) in the problem's layout. */
export function convIndex(p: ConvProblem, b: number, c: number, t: number): number {
  return p.channelsLast ? (b * p.length + t) * p.channels + c : (b * p.channels + c) * p.length + t;
}

/** Whether tap position s may feed output position t of row b (no segment change in [s, t]). */
export function tapAllowed(p: ConvProblem, b: number, s: number, t: number): boolean {
  if (s < 0) return false;
  if (!p.seq) return true;
  for (let r = s + 1; r <= t; r++) {
    if (p.seq[b * p.length + r] !== p.seq[b * p.length + r - 1]) return false;
  }
  return true;
}

function preactivations(
  p: ConvProblem,
  x: Float64Array,
  w: Float64Array,
  bias?: Float64Array,
): Float64Array {
  const a = new Float64Array(x.length);
  for (let b = 0; b < p.batch; b++) {
    for (let c = 0; c < p.channels; c++) {
      for (let t = 0; t < p.length; t++) {
        let acc = bias ? bias[c] : 0;
        for (let k = 0; k < p.width; k++) {
          const s = t - (p.width - 1) + k;
          if (tapAllowed(p, b, s, t)) acc += w[c * p.width + k] * x[convIndex(p, b, c, s)];
        }
        a[convIndex(p, b, c, t)] = acc;
      }
    }
  }
  return a;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Forward: bias + Σ taps, then SiLU when asked. */
export function causalConvRef(
  p: ConvProblem,
  x: Float64Array,
  w: Float64Array,
  bias?: Float64Array,
): Float64Array {
  const a = preactivations(p, x, w, bias);
  return p.silu ? a.map((v) => v * sigmoid(v)) : a;
}

/** Analytic gradients [dx, dweight, dbias] for the output gradient `g`. */
export function causalConvGradRef(
  p: ConvProblem,
  x: Float64Array,
  w: Float64Array,
  bias: Float64Array | undefined,
  g: Float64Array,
): Float64Array[] {
  const a = preactivations(p, x, w, bias);
  const ga = p.silu
    ? a.map((v, i) => g[i] * sigmoid(v) * (1 + v * (1 - sigmoid(v))))
    : Float64Array.from(g);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(p.channels);
  for (let b = 0; b < p.batch; b++) {
    for (let c = 0; c < p.channels; c++) {
      for (let t = 0; t < p.length; t++) {
        const gt = ga[convIndex(p, b, c, t)];
        db[c] += gt;
        for (let k = 0; k < p.width; k++) {
          const s = t - (p.width - 1) + k;
          if (!tapAllowed(p, b, s, t)) continue;
          dw[c * p.width + k] += gt * x[convIndex(p, b, c, s)];
          dx[convIndex(p, b, c, s)] += gt * w[c * p.width + k];
        }
      }
    }
  }
  return [dx, dw, db];
}
