/**
 * The Mamba-2 block (mamba_ssm 2.2's `Mamba2` with its defaults) as SSD4Rec builds it, on packed
 * sequences: one input projection split into the gate z, the convolved xBC and the step sizes dt;
 * a depthwise causal convolution with SiLU over x, B and C that never reaches across a segment;
 * the SSD scan with A = −exp(A_log), the D skip and softplus(dt + dt_bias); the gated RMSNorm
 * `RMSNorm(y ⊙ SiLU(z)) ⊙ w`; and the output projection.
 *
 * The projection and the convolution are each one parameter, as in the official module
 * (`in_proj.weight`, `conv1d.weight`, `conv1d.bias`). The projection is one matrix product whose
 * columns are cut into z, xBC and dt; the convolution runs once over the channels of xBC, and its
 * output is cut into x, B and C. `project` and `mix` are the block's two halves: the projection
 * acts token by token, so a bidirectional layer projects once and reverses the rows for its
 * reversed direction (`projectBothWays`) instead of projecting the reversed input again.
 *
 * @module
 */
import type { SeededRandom } from "../data/random.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { gatedRmsNorm } from "../ops/dense/gated_rms_norm.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { exp, reshape, scale } from "../ops/pointwise/elementwise.ts";
import { causalConv1d } from "../ops/sequence/causal_conv1d.ts";
import { reverseSegments } from "../ops/sequence/reverse_segments.ts";
import { type SsdPieces, ssdScan, ssdScanLast } from "../ops/sequence/ssd_scan/mod.ts";
import type { Tensor } from "../ops/core/tensor.ts";
import { splitColumns } from "../ops/pointwise/split_columns.ts";
import type { BiSsdStepWeights } from "../ops/sequence/bi_ssd_step.ts";
import { INIT_STD, Linear } from "./layers.ts";
import type { ParameterSet } from "./parameters.ts";

/** Sizes of a {@link Mamba2Block}. */
export interface Mamba2BlockConfig {
  /** Model width d. */
  readonly dModel: number;
  /** SSM state size N. */
  readonly dState: number;
  /** Channels per head P; d_inner = expand · d must be a multiple of it. */
  readonly headDim: number;
  /** Causal convolution width (2, 3 or 4). */
  readonly dConv: number;
  /** Inner expansion factor (d_inner = expand · d). */
  readonly expand: number;
  /** Groups G sharing one B and C (`ngroups`); the heads must divide into them. */
  readonly groups: number;
}

/** Range of the initial decay rates: A ~ U(1, 16), A_log = log A (`A_init_range`). */
const A_INIT_RANGE = [1, 16] as const;
/** Range of the initial step sizes: softplus(dt_bias) ~ logU(0.001, 0.1) (`dt_min`, `dt_max`). */
const DT_INIT_RANGE = [0.001, 0.1] as const;
/** Smallest initial step size (`dt_init_floor`). */
const DT_INIT_FLOOR = 1e-4;
/** Epsilon of the gated RMSNorm (`RMSNormGated`'s 1e-5). */
const NORM_EPS = 1e-5;

/** The segments of a packed batch, as the block's convolution and scan take them. */
export interface PackedSegments {
  /** Segment id per token, i32 `[batch, length]`, for the convolution. */
  readonly seqIdx: Tensor;
  /** The scan's chunking of the same segments (`ssdPieces` of the same ids). */
  readonly pieces: SsdPieces;
}

/** The input projection's pieces for one direction of a block. */
export interface BlockProjection {
  /** The gate, `[batch, length, d_inner]`, or `[segments, d_inner]` at the last tokens. */
  readonly z: Tensor;
  /** The convolution's input (x, B and C), `[batch, length, d_inner + 2·G·N]`. */
  readonly xBC: Tensor;
  /** The step sizes before bias and softplus, `[batch, length, H]`. */
  readonly dt: Tensor;
}

/** softplus⁻¹(v) = v + log(−expm1(−v)), so that softplus of the result is v. */
function inverseSoftplus(v: number): number {
  return v + Math.log(-Math.expm1(-v));
}

/**
 * mamba_ssm 2.2's `Mamba2(d_model, d_state, headdim, d_conv, expand)` on channels-last tensors
 * `[batch, length, d]` of packed segments, initialised as SSD4Rec leaves it: `in_proj` and
 * `out_proj` N(0, 0.02) (the model's initialiser overrides Mamba-2's), the convolution at
 * PyTorch's default U(±1/√d_conv), A_log = log U(1, 16), dt_bias = softplus⁻¹(dt) with
 * dt = exp(U(log 0.001, log 0.1)) floored at 1e-4, D = 1 per head and the norm weight 1.
 */
export class Mamba2Block {
  /** The sizes. */
  readonly config: Mamba2BlockConfig;
  readonly #inProj: Tensor;
  readonly #convWeight: Tensor;
  readonly #convBias: Tensor;
  readonly #dtBias: Tensor;
  readonly #aLog: Tensor;
  readonly #d: Tensor;
  readonly #normWeight: Tensor;
  readonly #outProj: Linear;

  /**
   * Creates the block's parameters under `name` (`in_proj.weight`, `conv1d.weight`,
   * `conv1d.bias`, `dt_bias`, `A_log`, `D`, `norm.weight`, `out_proj.weight`).
   * @param params where the parameters live (in_proj, out_proj and the convolution draw from it)
   * @param name parameter name prefix
   * @param config block sizes
   * @param random the source of the initial A_log and dt_bias
   */
  constructor(
    params: ParameterSet,
    name: string,
    config: Mamba2BlockConfig,
    random: SeededRandom,
  ) {
    const { dModel, dState: N, headDim: P, dConv, expand, groups: G } = config;
    const inner = expand * dModel;
    if (inner % P !== 0 || (inner / P) % G !== 0) {
      throw new RangeError(
        `Mamba2Block ${name}: d_inner = expand · d = ${inner} must split into heads of ${P} ` +
          `channels whose count divides into ${G} groups; choose a head size that divides ` +
          `${inner}`,
      );
    }
    const H = inner / P;
    this.config = config;
    const convDim = inner + 2 * G * N;
    this.#inProj = params.normal(`${name}.in_proj.weight`, [inner + convDim + H, dModel], INIT_STD);
    // PyTorch's Conv1d default: kaiming_uniform(a=√5) → U(±1/√fan_in), fan_in = 1·d_conv.
    const bound = 1 / Math.sqrt(dConv);
    this.#convWeight = params.uniform(`${name}.conv1d.weight`, [convDim, dConv], bound);
    this.#convBias = params.uniform(`${name}.conv1d.bias`, [convDim], bound);
    const [dtMin, dtMax] = DT_INIT_RANGE.map(Math.log);
    const dtBias = Float32Array.from({ length: H }, () => {
      const dt = Math.exp(dtMin + random.nextFloat() * (dtMax - dtMin));
      return inverseSoftplus(Math.max(dt, DT_INIT_FLOOR));
    });
    this.#dtBias = params.values(`${name}.dt_bias`, [H], dtBias);
    const [aLo, aHi] = A_INIT_RANGE;
    const aLog = Float32Array.from(
      { length: H },
      () => Math.log(aLo + random.nextFloat() * (aHi - aLo)),
    );
    this.#aLog = params.values(`${name}.A_log`, [H], aLog);
    this.#d = params.constant(`${name}.D`, [H], 1);
    this.#normWeight = params.constant(`${name}.norm.weight`, [inner], 1);
    this.#outProj = new Linear(params, `${name}.out_proj`, inner, dModel, false);
  }

  /**
   * The input projection of `u` (`[batch, length, d]`), cut into its pieces: xBC and dt over every
   * token, the gate z over every token or, with `lastTokens`, at those tokens alone
   * (`[segments, d_inner]`, from those rows of `u` and the gate's rows of the weight).
   * @param u the input
   * @param lastTokens the flat index of every segment's last token, in segment order
   */
  project(u: Tensor, lastTokens?: Tensor): BlockProjection {
    return this.#project(u, lastTokens)[0];
  }

  /**
   * The projections of `u` and of `u` reversed within every segment, as `project` makes each.
   * The product acts token by token, so the reversed input's is `u`'s with its rows reversed, bit
   * for bit, and is not computed again; a gate at the last tokens is projected anew from the
   * reversed input's rows there.
   * @param u the input
   * @param reversal the packed batch's in-place segment reversal (`segmentReversal`)
   * @param lastTokens the flat index of every segment's last token, in segment order
   * @returns the projection of `u`, then that of `u` reversed
   */
  projectBothWays(
    u: Tensor,
    reversal: Tensor,
    lastTokens?: Tensor,
  ): [BlockProjection, BlockProjection] {
    const [forward, reversed] = this.#project(u, lastTokens, reversal);
    return [forward, reversed!];
  }

  /** `project`, and with `reversal` the reversed input's projection from the same product. */
  #project(
    u: Tensor,
    lastTokens?: Tensor,
    reversal?: Tensor,
  ): [BlockProjection, BlockProjection?] {
    this.#checkInput(u);
    const inner = this.heads * this.config.headDim;
    const convDim = this.#convWeight.shape[0];
    let forward: BlockProjection, gate: Tensor | undefined;
    if (!lastTokens) {
      // The whole projection is needed only to cut it: free it as soon as it is cut.
      const projected = matmul(u, this.#inProj, { transB: true });
      const [z, xBC, dt] = splitColumns(projected, [inner, convDim, this.heads]);
      projected.dispose();
      forward = { z, xBC, dt };
    } else {
      const d = this.config.dModel;
      const [gateRows, rest] = this.#weightPieces();
      gate = gateRows;
      const projected = matmul(u, reshape(rest, [convDim + this.heads, d]), { transB: true });
      const [xBC, dt] = splitColumns(projected, [convDim, this.heads]);
      projected.dispose();
      forward = { z: this.#gateAt(u, lastTokens, gate), xBC, dt };
    }
    if (!reversal) return [forward];
    const xBC = reverseSegments(forward.xBC, reversal);
    const dt = reverseSegments(forward.dt, reversal);
    if (!lastTokens || !gate) {
      return [forward, { z: reverseSegments(forward.z, reversal), xBC, dt }];
    }
    // A row gather's backward reads neither table: the reversed input goes once read.
    const reversedInput = reverseSegments(u, reversal);
    const z = this.#gateAt(reversedInput, lastTokens, gate);
    reversedInput.dispose();
    return [forward, { z, xBC, dt }];
  }

  /** The projection's weight cut into the gate's rows and the rest (xBC's and dt's), flat. */
  #weightPieces(): Tensor[] {
    const inner = this.heads * this.config.headDim;
    const d = this.config.dModel;
    // The weight's rows are contiguous: the gate's first, then those of xBC and dt.
    return splitColumns(reshape(this.#inProj, [1, this.#inProj.size]), [
      inner * d,
      this.#inProj.size - inner * d,
    ]);
  }

  /** The gate at rows `lastTokens` of `u`, from the gate's weight rows `gate` (flat). */
  #gateAt(u: Tensor, lastTokens: Tensor, gate: Tensor): Tensor {
    const d = this.config.dModel;
    const flat = reshape(u, [u.size / d, d]);
    const picked = embedding(lastTokens, flat, { distinctIds: true });
    flat.dispose();
    return matmul(picked, reshape(gate, [gate.size / d, d]), { transB: true });
  }

  #checkInput(u: Tensor): void {
    if (u.shape.length !== 3 || u.shape[2] !== this.config.dModel) {
      throw new RangeError(
        `Mamba2Block: the input must be [batch, length, ${this.config.dModel}], got ` +
          `${u.describe()}`,
      );
    }
  }

  /** Heads H = d_inner / P. */
  get heads(): number {
    return (this.config.expand * this.config.dModel) / this.config.headDim;
  }

  /**
   * Applies the block to `u` (`[batch, length, d]`) whose tokens belong to the segments of
   * `segments`; no segment sees another. With `lastTokens`, the output at each segment's last
   * token only: the scan is read there alone (`ssdScanLast`, which forms no other token's output),
   * and the gated norm and the output projection, which act token by token, run on those rows.
   * @param u the input
   * @param segments the segments of `u`'s tokens
   * @param lastTokens the flat index (`b · length + t`) of every segment's last token, in segment
   *   order, i32 `[segments]`
   * @returns `[batch, length, d]`, or `[segments, d]` with `lastTokens`
   */
  forward(u: Tensor, segments: PackedSegments, lastTokens?: Tensor): Tensor {
    return this.mix(this.project(u, lastTokens), segments, lastTokens);
  }

  /**
   * The block after its input projection: the convolution, the scan, the gated norm and the
   * output projection, on `projection` (`project`'s or `projectBothWays`') over the tokens of
   * `segments`, read at `lastTokens` when given (as `project` was). Frees z and dt once they are
   * no longer needed (at once when nothing is recorded): make every projection first.
   * @returns `[batch, length, d]`, or `[segments, d]` with `lastTokens`
   */
  mix(projection: BlockProjection, segments: PackedSegments, lastTokens?: Tensor): Tensor {
    const { z, xBC, dt } = projection;
    const [batch, length] = xBC.shape;
    if (lastTokens && lastTokens.size !== segments.pieces.segments) {
      throw new RangeError(
        `Mamba2Block: lastTokens must give one token per segment, ${segments.pieces.segments}, ` +
          `got ${lastTokens.describe()}`,
      );
    }
    const { dState: N, headDim: P, groups: G } = this.config;
    const H = this.heads;
    const inner = H * P, GN = G * N;
    const convolved = causalConv1d(xBC, this.#convWeight, this.#convBias, {
      activation: "silu",
      seqIdx: segments.seqIdx,
      layout: "bld",
    });
    // Likewise the convolution's output: its backward recomputes from xBC, not from it.
    const [x, B, C] = splitColumns(convolved, [inner, GN, GN]);
    convolved.dispose();
    // The scan and the gated norm are handed what only they read (x, B, C, dt; y, z): each
    // frees those once its backward has run, and the views below hold the only references.
    const xs = reshape(x, [batch, length, H, P]);
    const Bs = reshape(B, [batch, length, G, N]);
    const Cs = reshape(C, [batch, length, G, N]);
    for (const piece of [x, B, C]) piece.dispose();
    const A = this.#decayRates();
    const scanOptions = {
      D: this.#d,
      dtBias: this.#dtBias,
      dtSoftplus: true,
      seqIdx: segments.pieces,
      releaseInputs: true,
    };
    const y = lastTokens
      ? ssdScanLast(xs, dt, A, Bs, Cs, scanOptions)
      : ssdScan(xs, dt, A, Bs, Cs, scanOptions).y;
    const gated = reshape(y, lastTokens ? [lastTokens.size, inner] : [batch, length, inner]);
    y.dispose();
    return this.readout(gated, z);
  }

  /**
   * The block's last two steps on the scan's output `y` (`[…, d_inner]`): the gated RMSNorm with
   * the gate `z` (same shape), then the output projection. Frees `y` and `z` once their backward
   * has run (at once when nothing is recorded).
   * @returns `[…, d]`
   */
  readout(y: Tensor, z: Tensor): Tensor {
    const normed = gatedRmsNorm(y, this.#normWeight, {
      z,
      eps: NORM_EPS,
      groupSize: (this.heads * this.config.headDim) / this.config.groups,
      normBeforeGate: false,
      releaseInputs: true,
    });
    return this.#outProj.forward(normed);
  }

  /** The decay rates A = −exp(A_log) per head, `[H]`, as the scan and the step read them. */
  #decayRates(): Tensor {
    return scale(exp(this.#aLog), -1);
  }

  /**
   * The input projection's whole rows for tokens `u` (`[…, d]`): `[…, 2·d_inner + 2·G·N + H]`,
   * the gate z, then xBC, then dt, as one step of the block reads them (`biSsdStep`).
   */
  inputProjection(u: Tensor): Tensor {
    return matmul(u, this.#inProj, { transB: true });
  }

  /**
   * The weights one step of the block reads (`biSsdStep`): the convolution's, dt's bias, D, and
   * A = −exp(A_log) computed now, which the caller disposes.
   */
  stepWeights(): BiSsdStepWeights {
    return {
      convWeight: this.#convWeight,
      convBias: this.#convBias,
      dtBias: this.#dtBias,
      A: this.#decayRates(),
      D: this.#d,
    };
  }
}
