/**
 * The float64 host reference of `biSsdStep` (`bi_ssd_step.ts`): one stream's Bi-SSD outputs at
 * its newest event, computed by running both directions over the whole history as the full model
 * does (the forward recurrence over every token, the backward one over the history newest first,
 * read at its end), so that the step's carried state is checked against the definition, not
 * against itself.
 *
 * @module
 */

/** One stream's block weights for {@link biSsdStepReference}, in the model's layouts. */
export interface BiSsdStepReferenceWeights {
  /** `[d_inner + 2N, w]`. */
  readonly convWeight: Float64Array;
  /** `[d_inner + 2N]`. */
  readonly convBias: Float64Array;
  /** `[H]`. */
  readonly dtBias: Float64Array;
  /** `[H]`, negative. */
  readonly A: Float64Array;
  /** `[H]`. */
  readonly D: Float64Array;
}

const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * Float64 reference of `biSsdStep`, written as the definitions rather than the kernel's
 * bookkeeping: it keeps the stream's whole history of projected rows (`history`, appended to)
 * and recomputes both directions at the newest token from it, the forward one as the recurrence
 * over every token and the backward one as the recurrence over the tokens newest first.
 * @param row the new token's `[z | xBC | dt]` row
 * @param weights the block's weights
 * @param history the stream's earlier rows, oldest first; the new row is appended
 * @returns the forward y, the backward y and the backward gate, each `[d_inner]`, and each y's
 *   scale: per channel the sum of its terms' magnitudes (|D·x| + Σ |C|·|h|, with |h| summed from
 *   its own terms' magnitudes), which bounds float32 rounding where the terms cancel
 */
export function biSsdStepReference(
  row: Float64Array,
  weights: BiSsdStepReferenceWeights,
  history: Float64Array[],
): {
  yForward: Float64Array;
  yBackward: Float64Array;
  zBackward: Float64Array;
  yForwardScale: Float64Array;
  yBackwardScale: Float64Array;
} {
  history.push(row);
  const H = weights.A.length;
  const W = weights.convWeight.length / weights.convBias.length;
  const convDim = weights.convBias.length;
  const inner = row.length - convDim - H;
  const states = (convDim - inner) / 2;
  const P = inner / H;
  /** The block over `rows` (in scan order): y at the last of them, and its terms' magnitudes. */
  const scanEnd = (rows: Float64Array[]): { y: Float64Array; scale: Float64Array } => {
    const h = new Float64Array(inner * states);
    const hAbs = new Float64Array(inner * states);
    let last = new Float64Array(convDim);
    rows.forEach((_, t) => {
      const xbc = new Float64Array(convDim);
      for (let c = 0; c < convDim; c++) {
        let acc = weights.convBias[c];
        for (let k = 0; k < W; k++) {
          const src = t - (W - 1) + k;
          if (src >= 0) acc += weights.convWeight[c * W + k] * rows[src][inner + c];
        }
        xbc[c] = silu(acc);
      }
      for (let c = 0; c < inner; c++) {
        const head = Math.floor(c / P);
        const dt = softplus(rows[t][inner + convDim + head] + weights.dtBias[head]);
        const decay = Math.exp(dt * weights.A[head]);
        for (let i = 0; i < states; i++) {
          const input = dt * xbc[c] * xbc[inner + i];
          h[c * states + i] = decay * h[c * states + i] + input;
          hAbs[c * states + i] = decay * hAbs[c * states + i] + Math.abs(input);
        }
      }
      last = xbc;
    });
    const y = new Float64Array(inner), scale = new Float64Array(inner);
    for (let c = 0; c < inner; c++) {
      let acc = weights.D[Math.floor(c / P)] * last[c];
      let mag = Math.abs(acc);
      for (let i = 0; i < states; i++) {
        const C = last[inner + states + i];
        acc += h[c * states + i] * C;
        mag += hAbs[c * states + i] * Math.abs(C);
      }
      y[c] = acc;
      scale[c] = mag;
    }
    return { y, scale };
  };
  // The backward direction reads the history newest first and ends at the oldest token.
  const forward = scanEnd(history), backward = scanEnd([...history].reverse());
  return {
    yForward: forward.y,
    yBackward: backward.y,
    zBackward: history[0].slice(0, inner),
    yForwardScale: forward.scale,
    yBackwardScale: backward.scale,
  };
}
