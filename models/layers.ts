/**
 * The building blocks shared by the models: Linear, LayerNorm, the Transformer-style
 * position-wise feed-forward network and the Mamba block (mamba_ssm v1.1.4's `Mamba`, as
 * Mamba4Rec builds and initialises it).
 *
 * @module
 */
import { dropout, type DropoutRng } from "../ops/pointwise/dropout.ts";
import { add, exp, gelu, mul, scale, silu } from "../ops/pointwise/elementwise.ts";
import { gatherPositions } from "../ops/pointwise/gather.ts";
import { layerNorm, layerNormInto, layerNormOfRows } from "../ops/dense/layernorm.ts";
import { writeSlotRows } from "../ops/sequence/selective_step.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { causalConv1d } from "../ops/sequence/causal_conv1d.ts";
import { selectiveScan, selectiveScanAt } from "../ops/sequence/selective_scan/mod.ts";
import type { Tensor } from "../ops/core/tensor.ts";
import type { ParameterSet } from "./parameters.ts";

/** RecBole's initialiser range for Linear and Embedding weights. */
export const INIT_STD = 0.02;

/** `y = x Wᵀ + b` with W `[out, in]`; RecBole's init: W ~ N(0, 0.02), b = 0. */
export class Linear {
  /** Weight `[out, in]`. */
  readonly weight: Tensor;
  /** Bias `[out]`, if any. */
  readonly bias: Tensor | null;

  /**
   * Creates the layer's parameters (weight N(0, 0.02), bias 0).
   * @param params where the parameters live
   * @param name parameter name prefix
   * @param inFeatures input size
   * @param outFeatures output size
   * @param bias whether to add a bias
   */
  constructor(
    params: ParameterSet,
    name: string,
    inFeatures: number,
    outFeatures: number,
    bias = true,
  ) {
    this.weight = params.normal(`${name}.weight`, [outFeatures, inFeatures], INIT_STD);
    this.bias = bias ? params.constant(`${name}.bias`, [outFeatures], 0) : null;
  }

  /**
   * Applies the layer to `[..., in]`; with `addend` (`[..., out]`) adds it too, in the product's
   * epilogue: the values of `add(forward(x), addend)`, one kernel fewer.
   */
  forward(x: Tensor, addend?: Tensor): Tensor {
    return matmul(x, this.weight, { transB: true, bias: this.bias ?? undefined, addend });
  }
}

/** LayerNorm over the last dimension with affine weight 1 and bias 0 at init. */
export class LayerNorm {
  /** Scale `[d]`. */
  readonly weight: Tensor;
  /** Shift `[d]`. */
  readonly bias: Tensor;

  /**
   * Creates the scale (1) and shift (0).
   * @param params where the parameters live
   * @param name parameter name prefix
   * @param size normalised size
   * @param eps variance epsilon (the models use 1e-12)
   */
  constructor(params: ParameterSet, name: string, size: number, readonly eps = 1e-12) {
    this.weight = params.constant(`${name}.weight`, [size], 1);
    this.bias = params.constant(`${name}.bias`, [size], 0);
  }

  /** Normalises the last dimension of `x`. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }

  /** `forward(embedding(ids, table))` in one kernel, for inference ({@link layerNormOfRows}). */
  ofRows(table: Tensor, ids: Tensor): Tensor {
    return layerNormOfRows(table, ids, this.weight, this.bias, this.eps);
  }

  /** Writes `forward(x)`'s rows into rows `rows` of `target`, for inference ({@link layerNormInto}). */
  into(x: Tensor, target: Tensor, rows: Tensor): void {
    layerNormInto(x, this.weight, this.bias, this.eps, target, rows);
  }
}

/** Dropout settings shared by a model's layers. */
export interface DropoutContext {
  /** Drop probability. */
  readonly p: number;
  /** Counter-based generator (a fresh counter per call). */
  readonly rng: DropoutRng;
  /** Training mode: dropout is the identity otherwise. */
  readonly training: boolean;
}

/**
 * Returns `result` after freeing `read`, a tensor that `result`'s op has read and whose backward
 * does not (a sum's operand, a row gather's table, dropout's input, GELU's output); nothing when
 * the op passed `read` through (dropout off).
 */
export function freeAfter(result: Tensor, read: Tensor): Tensor {
  if (read !== result) read.dispose();
  return result;
}

/** Applies dropout under a context. */
export function applyDropout(x: Tensor, ctx: DropoutContext): Tensor {
  return ctx.training && ctx.p > 0 ? dropout(x, ctx.p, ctx.rng, { training: true }) : x;
}

/**
 * The position-wise feed-forward block, W₁: d → 4d and W₂: 4d → d with exact GELU, its residual
 * inside the LayerNorm. Where its second dropout goes differs between the papers' code:
 * `"before-residual"` (RecBole's, Mamba4Rec): `LayerNorm(Dropout(W₂ Dropout(GELU(W₁ x))) + x)`;
 * `"after-norm"` (SSD4Rec's): `Dropout(LayerNorm(W₂ Dropout(GELU(W₁ x)) + x))`.
 */
export class FeedForward {
  readonly #w1: Linear;
  readonly #w2: Linear;
  readonly #norm: LayerNorm | null;
  readonly #dropoutAfterNorm: boolean;

  /** W₁: d → inner, with its bias. */
  get w1(): Linear {
    return this.#w1;
  }

  /** W₂: inner → d, with its bias. */
  get w2(): Linear {
    return this.#w2;
  }

  /** The output LayerNorm (null in Mamba4Rec's ablation without it). */
  get norm(): LayerNorm | null {
    return this.#norm;
  }

  /**
   * Creates both projections and the output LayerNorm.
   * @param params where the parameters live
   * @param name parameter name prefix
   * @param size model width d
   * @param inner inner width (4d)
   * @param dropout where the second dropout goes (default `"before-residual"`)
   * @param options `layerNorm: false` leaves the output LayerNorm out (Mamba4Rec's ablation;
   *   no LayerNorm parameters are made)
   */
  constructor(
    params: ParameterSet,
    name: string,
    size: number,
    inner: number,
    dropout: "before-residual" | "after-norm" = "before-residual",
    options: { readonly layerNorm?: boolean } = {},
  ) {
    this.#w1 = new Linear(params, `${name}.w_1`, size, inner);
    this.#w2 = new Linear(params, `${name}.w_2`, inner, size);
    this.#norm = options.layerNorm === false
      ? null
      : new LayerNorm(params, `${name}.LayerNorm`, size);
    this.#dropoutAfterNorm = dropout === "after-norm";
  }

  /**
   * Applies the block to `[..., d]`. What no backward reads is freed once read: GELU's output
   * (its backward reads its input), W₂'s output and the residual sum's dropped operand (a sum's
   * backward reads neither operand), and the LayerNorm's output before the last dropout.
   */
  forward(x: Tensor, ctx: DropoutContext): Tensor {
    const activated = gelu(this.#w1.forward(x));
    const f = this.#w2.forward(freeAfter(applyDropout(activated, ctx), activated));
    const norm = (y: Tensor) => this.#norm ? this.#norm.forward(y) : y;
    if (this.#dropoutAfterNorm) {
      const normed = norm(freeAfter(add(f, x), f));
      return freeAfter(applyDropout(normed, ctx), normed);
    }
    const dropped = freeAfter(applyDropout(f, ctx), f);
    return norm(freeAfter(add(dropped, x), dropped));
  }

  /**
   * The block at inference (dropout off, where both placements agree): GELU and the residual sum
   * run in the products' epilogues (`matmul`'s `activation` and `addend`), two kernels fewer than
   * {@link FeedForward.forward} for the same values. GELU there has no backward, so this is for
   * runs that record no gradient (`matmul` refuses otherwise).
   */
  inference(x: Tensor): Tensor {
    const f = this.#inferenceSum(x);
    return this.#norm ? freeAfter(this.#norm.forward(f), f) : f;
  }

  /**
   * {@link FeedForward.inference} with its rows written into rows `rows` of `target`: with the
   * output LayerNorm, by that LayerNorm's kernel ({@link LayerNorm.into}).
   */
  inferenceInto(x: Tensor, target: Tensor, rows: Tensor): void {
    const f = this.#inferenceSum(x);
    if (this.#norm) this.#norm.into(f, target, rows);
    else writeSlotRows(target, rows, f);
    f.dispose();
  }

  /** `W₂ GELU(W₁ x) + x` with GELU and the sum in the products' epilogues. */
  #inferenceSum(x: Tensor): Tensor {
    const w1 = this.#w1;
    const activated = matmul(x, w1.weight, {
      transB: true,
      bias: w1.bias ?? undefined,
      activation: "gelu",
    });
    return freeAfter(this.#w2.forward(activated, x), activated);
  }
}

/** Sizes of a {@link MambaBlock}. */
export interface MambaBlockConfig {
  /** Model width d. */
  readonly dModel: number;
  /** SSM state size N. */
  readonly dState: number;
  /** Causal convolution width. */
  readonly dConv: number;
  /** Inner expansion factor (d_inner = expand · d). */
  readonly expand: number;
}

/**
 * mamba_ssm's `Mamba` block on channels-last tensors `[B, L, d]`: input projection to x and z,
 * depthwise causal convolution with SiLU, input-dependent Δ, B, C, the selective scan with the
 * D skip and the SiLU(z) gate, and the output projection.
 *
 * The input projection `in_proj` (d → 2·d_inner) is held as its two halves (x and z) and
 * `x_proj` (d_inner → dt_rank + 2N) as its three parts: the same function and the same N(0, 0.02)
 * init, without slicing copies. Mamba4Rec's initialiser re-draws every Linear, zeroes the Δ bias
 * (`dt_proj.bias`), and leaves the convolution at PyTorch's default, A_log = log(1..N), D = 1.
 *
 * What training holds: Δ = `dt_proj.weight · dt` is formed inside the scan from its two factors
 * (the `[B, L, d_inner]` product is never stored), the scan's backward writes dB and dC over B
 * and C, and read at positions the block projects z at those rows only.
 */
export class MambaBlock {
  readonly #inX: Linear;
  readonly #inZ: Linear;
  readonly #convWeight: Tensor;
  readonly #convBias: Tensor;
  readonly #xDt: Linear;
  readonly #xB: Linear;
  readonly #xC: Linear;
  readonly #dtProj: Linear;
  readonly #aLog: Tensor;
  readonly #d: Tensor;
  readonly #out: Linear;

  /**
   * Creates the block's parameters with Mamba4Rec's initialisation.
   * @param params where the parameters live
   * @param name parameter name prefix
   * @param config block sizes
   */
  constructor(params: ParameterSet, name: string, config: MambaBlockConfig) {
    const { dModel, dState, dConv, expand } = config;
    const inner = expand * dModel;
    const dtRank = Math.ceil(dModel / 16);
    this.#inX = new Linear(params, `${name}.in_proj_x`, dModel, inner, false);
    this.#inZ = new Linear(params, `${name}.in_proj_z`, dModel, inner, false);
    // PyTorch's Conv1d default: kaiming_uniform(a=√5) → U(±1/√fan_in), fan_in = 1·dConv.
    const bound = 1 / Math.sqrt(dConv);
    this.#convWeight = params.uniform(`${name}.conv1d.weight`, [inner, dConv], bound);
    this.#convBias = params.uniform(`${name}.conv1d.bias`, [inner], bound);
    this.#xDt = new Linear(params, `${name}.x_proj_dt`, inner, dtRank, false);
    this.#xB = new Linear(params, `${name}.x_proj_B`, inner, dState, false);
    this.#xC = new Linear(params, `${name}.x_proj_C`, inner, dState, false);
    this.#dtProj = new Linear(params, `${name}.dt_proj`, dtRank, inner, true);
    const aLog = new Float32Array(inner * dState);
    for (let c = 0; c < inner; c++) {
      for (let s = 0; s < dState; s++) aLog[c * dState + s] = Math.log(s + 1);
    }
    this.#aLog = params.values(`${name}.A_log`, [inner, dState], aLog);
    this.#d = params.constant(`${name}.D`, [inner], 1);
    this.#out = new Linear(params, `${name}.out_proj`, inner, dModel, false);
  }

  /**
   * Applies the block to `[B, L, d]`; with `positions` (i32 `[B]`) only each row's output at its
   * position, `[B, d]`: the scan read there (`selectiveScanAt`, ungated), the gate SiLU(z) with z
   * projected from the input rows at the positions only (`[B, d_inner]`, where the full path
   * projects every position: the scan's output elsewhere is never read), then the output
   * projection. So the prefix path never holds z or its gradient over `[B, L, d_inner]`.
   */
  forward(h: Tensor, positions?: Tensor): Tensor {
    const x = causalConv1d(this.#inX.forward(h), this.#convWeight, this.#convBias, {
      activation: "silu",
      layout: "bld",
    });
    // Δ = dt_proj.weight · dt, formed inside the scan from its two factors (the [B, L, d_inner]
    // product is never stored); its bias is added (and softplus applied) there too.
    const dt = this.#xDt.forward(x);
    const a = scale(exp(this.#aLog), -1);
    const b = this.#xB.forward(x), c = this.#xC.forward(x);
    const options = {
      D: this.#d,
      deltaWeight: this.#dtProj.weight,
      deltaBias: this.#dtProj.bias!,
      // B and C feed the scan alone (their projections' backward reads x): its backward writes
      // their gradients over them.
      gradsOverBC: true,
      deltaSoftplus: true,
      layout: "bld" as const,
    };
    if (!positions) {
      const z = this.#inZ.forward(h);
      return this.#out.forward(selectiveScan(x, dt, a, b, c, { ...options, z }));
    }
    const y = selectiveScanAt(x, dt, a, b, c, positions, options);
    const z = this.#inZ.forward(gatherPositions(h, positions));
    // The gate first: the tape then runs the scan's backward before the gathered rows' [B, L, d]
    // gradient exists.
    return this.#out.forward(mul(silu(z), y));
  }
}
