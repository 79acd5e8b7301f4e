/**
 * A GRU layer with PyTorch's `torch.nn.GRU` semantics (one layer, one direction, batch first),
 * recorded on the tape with gradients for the input, h_0, both weights and both biases, and a
 * float64 reference beside it.
 *
 * The work is split in two. The input projection gi = x·W_ihᵀ + b_ih of all steps is one
 * `matmul` (its gradients, for x, W_ih and b_ih, are that op's). The recurrence over time is one
 * kernel per call with one workgroup per batch row (`kernels.ts`), and its backward one kernel
 * walking time backwards; the forward saves r, z, n and W_hn·h + b_hn of every step (4·H floats
 * per step and row) so the backward recomputes nothing. The backward writes per-step gate
 * gradients, from which ∂L/∂W_hh is one `matmul` over all (row, step) pairs and ∂L/∂b_hh a
 * `sumLeading`: deterministic, no atomics.
 *
 * @module
 */
import { record, recordsGradient } from "../../core/autograd.ts";
import { assertDType } from "../../core/launch.ts";
import { Tensor } from "../../core/tensor.ts";
import { matmul } from "../../dense/matmul/mod.ts";
import { gatherPositions } from "../../pointwise/gather.ts";
import { sumLeading } from "../../pointwise/reduce.ts";
import {
  GRU_MAX_HIDDEN,
  OP,
  recurrenceBackward,
  recurrenceForward,
  type RecurrenceSpec,
} from "./kernels.ts";

export { GRU_MAX_HIDDEN } from "./kernels.ts";
export { gruReference, gruReferenceBackward } from "./reference.ts";
export type { GruGrads, GruInputs, GruProblem } from "./reference.ts";

/** The parameters of one GRU layer, in PyTorch's layout (gate rows in the order r, z, n). */
export interface GruWeights {
  /** weight_ih, (3H, I). */
  weightIh: Tensor;
  /** weight_hh, (3H, H). */
  weightHh: Tensor;
  /** bias_ih, (3H); absent for a layer built with `bias=False` (as RecBole's GRU4Rec and NARM). */
  biasIh?: Tensor;
  /** bias_hh, (3H); absent for a layer built with `bias=False`. */
  biasHh?: Tensor;
}

/** Options of {@link gru}. */
export interface GruOptions {
  /** Initial state h_0, (batch, H); zero when absent. */
  h0?: Tensor;
}

/** What {@link gru} returns. */
export interface GruResult {
  /** Every state h_t, (batch, length, H): PyTorch's `output`. */
  output: Tensor;
  /** The state after the last step, (batch, H): PyTorch's `h_n` without the layer dimension. */
  last: Tensor;
}

function describeShapes(x: Tensor, w: GruWeights, h0?: Tensor): string {
  const parts = [
    `x ${x.describe()}`,
    `weightIh ${w.weightIh.describe()}`,
    `weightHh ${w.weightHh.describe()}`,
  ];
  if (w.biasIh) parts.push(`biasIh ${w.biasIh.describe()}`);
  if (w.biasHh) parts.push(`biasHh ${w.biasHh.describe()}`);
  if (h0) parts.push(`h0 ${h0.describe()}`);
  return parts.join(", ");
}

function validate(x: Tensor, w: GruWeights, h0: Tensor | undefined): RecurrenceSpec {
  for (const t of [x, w.weightIh, w.weightHh, w.biasIh, w.biasHh, h0]) {
    if (t) assertDType(OP, t, "f32");
  }
  const fail = (what: string) => new RangeError(`${OP}: ${what}; got ${describeShapes(x, w, h0)}`);
  if (x.shape.length !== 3 || x.size === 0) {
    throw fail("x must be a non-empty (batch, length, input) tensor");
  }
  const [batch, length, input] = x.shape;
  const hidden = w.weightHh.shape[1];
  if (w.weightHh.shape.length !== 2 || w.weightHh.shape[0] !== 3 * hidden || hidden === 0) {
    throw fail("weightHh must be (3·hidden, hidden)");
  }
  if (hidden > GRU_MAX_HIDDEN) {
    throw fail(`hidden ${hidden} exceeds the largest supported, ${GRU_MAX_HIDDEN}`);
  }
  const ih = w.weightIh.shape;
  if (ih.length !== 2 || ih[0] !== 3 * hidden || ih[1] !== input) {
    throw fail(`weightIh must be (3·hidden ${3 * hidden}, input ${input})`);
  }
  for (const [name, b] of [["biasIh", w.biasIh], ["biasHh", w.biasHh]] as const) {
    if (b && (b.shape.length !== 1 || b.shape[0] !== 3 * hidden)) {
      throw fail(`${name} must be (3·hidden ${3 * hidden})`);
    }
  }
  if (h0 && (h0.shape.length !== 2 || h0.shape[0] !== batch || h0.shape[1] !== hidden)) {
    throw fail(`h0 must be (batch ${batch}, hidden ${hidden})`);
  }
  return { batch, length, hidden, bias: w.biasHh !== undefined, h0: h0 !== undefined };
}

/**
 * One GRU layer over a batch of sequences, as PyTorch's `torch.nn.GRU(input, hidden,
 * batch_first=True)` with one layer and one direction (stack calls for more layers):
 *
 *     r = σ(W_ir x + b_ir + W_hr h + b_hr)
 *     z = σ(W_iz x + b_iz + W_hz h + b_hz)
 *     n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
 *     h' = (1 − z) ⊙ n + z ⊙ h
 *
 * from h_0 (zero unless given). Every step of the window is run as it is: padded positions are
 * not skipped, as in RecBole's GRU4Rec and NARM, which pass the right-padded item window to the
 * GRU without packing, so pads only follow the last real item and never change the state read at
 * index length − 1 of a sequence. Gradients flow to x, the weights, the biases given and h_0.
 * {@link gruReference} computes the same in float64.
 *
 * When a gradient is wanted it keeps r, z, n and W_hn·h + b_hn of every step (4·H floats per
 * step and row) until the backward has run.
 *
 * @param x input, (batch, length, I)
 * @param weights weight_ih (3H, I), weight_hh (3H, H) and optional biases (3H); H ≤ 512
 * @param options the initial state
 * @returns every h_t, (batch, length, H), and the last, (batch, H)
 */
export function gru(x: Tensor, weights: GruWeights, options: GruOptions = {}): GruResult {
  const { h0 } = options;
  const spec = validate(x, weights, h0);
  const { weightIh, weightHh, biasHh } = weights;
  const gi = matmul(x, weightIh, { transB: true, bias: weights.biasIh });
  const inputs = [gi, weightHh, ...(biasHh ? [biasHh] : []), ...(h0 ? [h0] : [])];
  const save = recordsGradient(inputs);
  const fwd = recurrenceForward(spec, gi, weightHh, biasHh, h0, save);
  let output = fwd.out;
  if (fwd.gates) {
    const gates = fwd.gates;
    output = record(fwd.out, OP, inputs, (gy) => {
      const back = recurrenceBackward(
        spec,
        gy,
        { out: fwd.out, gates },
        weightHh,
        h0,
        h0?.requiresGrad ?? false,
      );
      const dWhh = weightHh.requiresGrad ? matmul(back.dgh, back.hprev, { transA: true }) : null;
      const dbhh = biasHh?.requiresGrad ? sumLeading(back.dgh, [3 * spec.hidden]) : null;
      back.dgh.dispose();
      back.hprev.dispose();
      return [back.dgi, dWhh, ...(biasHh ? [dbhh] : []), ...(h0 ? [back.dh0 ?? null] : [])];
    }, [gates]);
  }
  if (!output.requiresGrad) gi.dispose();
  const lastStep = new Int32Array(spec.batch).fill(spec.length - 1);
  const positions = Tensor.from(lastStep, [spec.batch], "i32");
  const state = gatherPositions(output, positions);
  // A recorded gather reads the positions again in its backward; the enclosing scope frees them.
  if (!state.requiresGrad) positions.dispose();
  return { output, last: state };
}
