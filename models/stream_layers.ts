/**
 * The weights of the streaming form's layers (`streaming.ts`): a trained Mamba4Rec's parameters
 * handed out again by name to the model's own layer classes, and per Mamba layer its step weights
 * and its pools of user windows and states.
 *
 * @module
 */
import { noGrad } from "../ops/core/autograd.ts";
import { keep, type Tensor, tidy } from "../ops/core/tensor.ts";
import { zeros } from "../ops/core/unrecorded.ts";
import { exp, scale } from "../ops/pointwise/elementwise.ts";
import { FeedForward, LayerNorm, Linear } from "./layers.ts";
import type { Mamba4Rec } from "./mamba4rec.ts";
import { ParameterSet } from "./parameters.ts";
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
  /** `[capacity, d_conv − 1, d_inner]`. */
  readonly window: Tensor;
  /** `[capacity, d_inner, d_state]`. */
  readonly state: Tensor;
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
  return {
    inX: new Linear(params, `${mamba}.in_proj_x`, d, inner, false),
    inZ: new Linear(params, `${mamba}.in_proj_z`, d, inner, false),
    convWeight: params.uniform(`${mamba}.conv1d.weight`, [inner, dConv]),
    convBias: params.uniform(`${mamba}.conv1d.bias`, [inner]),
    xDt: new Linear(params, `${mamba}.x_proj_dt`, inner, dtRank, false),
    xB: new Linear(params, `${mamba}.x_proj_B`, inner, dState, false),
    xC: new Linear(params, `${mamba}.x_proj_C`, inner, dState, false),
    dtProj: new Linear(params, `${mamba}.dt_proj`, dtRank, inner, true),
    a: keep(tidy(() => noGrad(() => scale(exp(aLog), -1)))),
    dSkip: params.constant(`${mamba}.D`, [inner]),
    out: new Linear(params, `${mamba}.out_proj`, inner, d, false),
    norm: new LayerNorm(params, `${name}.LayerNorm`, d),
    ffn: new FeedForward(params, `${name}.ffn`, d, 4 * d),
    window: keep(zeros([capacity, dConv - 1, inner])),
    state: keep(zeros([capacity, inner, dState])),
  };
}
