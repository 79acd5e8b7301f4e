/**
 * The weights of the streaming form's layers (`mamba4rec_stream.ts`): a trained Mamba4Rec's parameters
 * handed out again by name to the model's own layer classes, and per Mamba layer its step weights
 * (also packed once in the layouts of the fused step kernel, `mambaStep`) and its pools of user
 * windows and states.
 *
 * @module
 */
import { noGrad } from "../../ops/core/autograd.ts";
import { keep, type Tensor, tidy } from "../../ops/core/tensor.ts";
import { writeAt, zeros } from "../../ops/core/unrecorded.ts";
import { exp, reshape, scale } from "../../ops/pointwise/elementwise.ts";
import type { LayerTailWeights } from "../../ops/dense/layer_tail.ts";
import type { MambaStepWeights } from "../../ops/sequence/mamba_step.ts";
import { writeTransposedRows } from "../../ops/sequence/transposed_rows.ts";
import { FeedForward, LayerNorm, Linear } from "../layers.ts";
import type { Mamba4Rec } from "../mamba4rec.ts";
import { ParameterSet } from "../parameters.ts";
/**
 * A trained model's parameters, handed out again by name: the layer classes built on it take
 * the trained tensors instead of drawing new ones, so the step form runs the model's own layers.
 */
export class TrainedParameters extends ParameterSet {
  readonly #source: ParameterSet;

  constructor(source: ParameterSet) {
    super(0);
    this.#source = source;
  }

  #trained(name: string, shape: readonly number[]): Tensor {
    const t = this.#source.get(name);
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new RangeError(
        `Mamba4RecStream: parameter ${name} is ${t.describe()}, but the model's configuration ` +
          `makes it [${shape.join(", ")}]; build the stream from the model that owns it`,
      );
    }
    return t;
  }

  override normal(name: string, shape: number[]): Tensor {
    return this.#trained(name, shape);
  }

  override uniform(name: string, shape: number[]): Tensor {
    return this.#trained(name, shape);
  }

  override values(name: string, shape: number[]): Tensor {
    return this.#trained(name, shape);
  }

  override constant(name: string, shape: number[]): Tensor {
    return this.#trained(name, shape);
  }
}

/** One Mamba layer's trained weights, as the model's layer classes hold them, and its pools. */
export interface StepLayer {
  readonly inX: Linear;
  readonly inZ: Linear;
  readonly convWeight: Tensor;
  readonly convBias: Tensor;
  readonly xDt: Linear;
  readonly xB: Linear;
  readonly xC: Linear;
  readonly dtProj: Linear;
  /** −exp(A_log), computed once as the full model computes it. */
  readonly a: Tensor;
  readonly dSkip: Tensor;
  readonly out: Linear;
  readonly norm: LayerNorm;
  readonly ffn: FeedForward;
  /** `in_proj`'s two halves stacked, `[2·d_inner, d]`: one product gives the step's x and z. */
  readonly inProj: Tensor;
  /** The same transposed, `[d, 2·d_inner]`, as the step reads it when it makes x and z itself. */
  readonly inProjT: Tensor;
  /** The weights of the fused step, packed from the ones above. */
  readonly step: MambaStepWeights;
  /** The weights of the fused layers after the block (`out`, `norm`, `ffn`), packed alike. */
  readonly tail: LayerTailWeights;
  /** `[capacity, d_conv − 1, d_inner]`. */
  readonly window: Tensor;
  /** `[capacity, d_state, d_inner]`: state-major, as the fused step reads it coalesced. */
  readonly state: Tensor;
}

/** Frees what {@link stepLayer} allocated (not the trained tensors). */
export function disposeStepLayer(layer: StepLayer): void {
  const { tail } = layer;
  for (const t of [layer.a, layer.inProj, layer.inProjT, layer.step.xProjT, layer.step.aT]) {
    t.dispose();
  }
  for (const t of [tail.outT, tail.w1T, tail.w2T]) t.dispose();
  layer.window.dispose();
  layer.state.dispose();
}

/** `[x1 | x2 | …]ᵀ` for matrices `[rows_i, cols]`: `[cols, Σ rows_i]`, each transposed in turn. */
function transposedSideBySide(matrices: readonly Tensor[]): Tensor {
  const cols = matrices[0].shape[1];
  const width = matrices.reduce((sum, m) => sum + m.shape[0], 0);
  const out = zeros([1, cols, width]);
  let offset = 0;
  for (const m of matrices) {
    writeTransposedRows(out, null, reshape(m, [1, ...m.shape]), offset);
    offset += m.shape[0];
  }
  return reshape(out, [cols, width]);
}

/** Rows of `top` then rows of `bottom` (same columns). */
function stackedRows(top: Tensor, bottom: Tensor): Tensor {
  const out = zeros([top.shape[0] + bottom.shape[0], top.shape[1]]);
  writeAt(out, top, 0);
  writeAt(out, bottom, top.size);
  return out;
}

/** Builds layer `i`'s step weights over the trained parameters (names as in Mamba4Rec). */
export function stepLayer(
  params: TrainedParameters,
  i: number,
  config: Mamba4Rec["config"],
  capacity: number,
): StepLayer {
  const { hiddenSize: d, dState, dConv, expand } = config;
  const inner = expand * d;
  const dtRank = Math.ceil(d / 16);
  const name = `mamba_layers.${i}`;
  const mamba = `${name}.mamba`;
  const aLog = params.values(`${mamba}.A_log`, [inner, dState]);
  const inX = new Linear(params, `${mamba}.in_proj_x`, d, inner, false);
  const inZ = new Linear(params, `${mamba}.in_proj_z`, d, inner, false);
  const convWeight = params.uniform(`${mamba}.conv1d.weight`, [inner, dConv]);
  const convBias = params.uniform(`${mamba}.conv1d.bias`, [inner]);
  const xDt = new Linear(params, `${mamba}.x_proj_dt`, inner, dtRank, false);
  const xB = new Linear(params, `${mamba}.x_proj_B`, inner, dState, false);
  const xC = new Linear(params, `${mamba}.x_proj_C`, inner, dState, false);
  const dtProj = new Linear(params, `${mamba}.dt_proj`, dtRank, inner, true);
  const dSkip = params.constant(`${mamba}.D`, [inner]);
  const a = keep(tidy(() => noGrad(() => scale(exp(aLog), -1))));
  const out = new Linear(params, `${mamba}.out_proj`, inner, d, false);
  const norm = new LayerNorm(params, `${name}.LayerNorm`, d);
  const ffn = new FeedForward(params, `${name}.ffn`, d, 4 * d);
  const packed = tidy(() =>
    noGrad(() => ({
      inProj: keep(stackedRows(inX.weight, inZ.weight)),
      inProjT: keep(transposedSideBySide([inX.weight, inZ.weight])),
      xProjT: keep(transposedSideBySide([xDt.weight, xB.weight, xC.weight])),
      aT: keep(transposedSideBySide([a])),
      outT: keep(transposedSideBySide([out.weight])),
      w1T: keep(transposedSideBySide([ffn.w1.weight])),
      w2T: keep(transposedSideBySide([ffn.w2.weight])),
    }))
  );
  return {
    inX,
    inZ,
    convWeight,
    convBias,
    xDt,
    xB,
    xC,
    dtProj,
    a,
    dSkip,
    out,
    norm,
    ffn,
    inProj: packed.inProj,
    inProjT: packed.inProjT,
    step: {
      convWeight,
      convBias,
      xProjT: packed.xProjT,
      dtWeight: dtProj.weight,
      dtBias: dtProj.bias!,
      aT: packed.aT,
      D: dSkip,
    },
    tail: {
      outT: packed.outT,
      norm1: norm,
      w1T: packed.w1T,
      b1: ffn.w1.bias!,
      w2T: packed.w2T,
      b2: ffn.w2.bias!,
      norm2: ffn.norm!,
      eps: norm.eps,
    },
    window: keep(zeros([capacity, dConv - 1, inner])),
    state: keep(zeros([capacity, dState, inner])),
  };
}
