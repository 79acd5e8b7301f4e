/**
 * Caser as RecBole v1.2 builds it. A window's item embeddings form an `[L, E]` matrix, read by
 *
 * - a vertical convolution, `Conv2d(1, nv, (L, 1))`: `nv` weighted sums of the L rows, no
 *   activation, `[nv · E]`;
 * - horizontal convolutions of every height h = 1 … L, `Conv2d(1, nh, (h, E))` each, with ReLU
 *   and a max-pool over all positions: `[nh · L]`.
 *
 * Their concatenation goes through dropout and `fc1` (→ E) with ReLU, is concatenated with the
 * user's embedding and goes through `fc2` (2E → E) with ReLU; scores are `h · Eᵀ` against the
 * item embedding, PAD row included. The training loss is the cross-entropy of the item after each
 * window plus `regWeight` times the sum of the unsquared Frobenius norms of the user and item
 * embeddings, `conv_v`'s, `fc1`'s and `fc2`'s weights and every height's horizontal filters
 * (RecBole's `RegLoss` and `reg_loss_conv_h`; biases are not regularised).
 *
 * Padding. Caser reads the whole right-padded window, pads included, as RecBole's: a pad
 * position contributes the PAD row of the item embedding (drawn at random like every row, and
 * given no gradient by the lookup), so a window's representation depends on how many pads it has
 * and on that row, and on nothing else of the padded positions: the id there is always 0.
 * Windows must be exactly `maxLength` long (the vertical filters span them). The representation
 * is one per window; there is none per position, so Caser trains on prefix samples only.
 *
 * The horizontal filters of all heights live in one packed parameter, `conv_h.weight` (height h's
 * `[nh, h, E]` block where `heightOffset` of `ops/sequence/caser/layout.ts` puts it; RecBole's
 * `conv_h.{h−1}.weight`), with their biases in `conv_h.bias` `[L, nh]`, so that one kernel family
 * serves every height.
 *
 * Initialisation as RecBole's: both embeddings N(0, 1/E) (standard deviation 1/E, PAD rows
 * included), Linear weights `xavier_normal_` with zero biases, convolutions PyTorch's default
 * U(±1/√fan_in) for weight and bias (fan_in L for `conv_v`, h·E for height h). The packed
 * horizontal filters are drawn from their own stream of the model's seed.
 *
 * @module
 */
import { DEFAULT_SEED } from "../data/mod.ts";
import { SeededRandom } from "../data/random.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { embedding } from "../ops/dense/embedding.ts";
import { add, relu, scale } from "../ops/pointwise/elementwise.ts";
import { concatColumns } from "../ops/pointwise/concat.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import {
  caserHorizontalConv,
  caserVerticalConv,
  heightOffset,
  heightSizes,
  type HorizontalFilterShape,
  packedFilterSize,
  segmentNorms,
} from "../ops/sequence/caser/mod.ts";
import { Tensor } from "../ops/core/tensor.ts";
import { applyDropout } from "./layers.ts";
import { ConfigError, mergeConfig, MODEL_CHECKS } from "./config.ts";
import { ParameterSet, xavierNormalStd } from "./parameters.ts";
import type { ModelInputs, PaddedModel, PaddedTrainingBatch } from "./model.ts";

/** Caser's hyperparameters (defaults: RecBole's `Caser.yaml`). */
export interface CaserConfig {
  /** Number of item ids including PAD (the item embedding's rows). */
  readonly numItems: number;
  /** Number of user ids including PAD (the user embedding's rows). */
  readonly numUsers: number;
  /** Embedding width E (`embedding_size`, 64), of items and users: the width items are scored in. */
  readonly embeddingSize: number;
  /**
   * The window length L (`MAX_ITEM_LIST_LENGTH`, 50) the convolutions span: the vertical
   * filters' length and the horizontal filters' tallest height. Windows must be exactly this long.
   */
  readonly maxLength: number;
  /** Vertical filters (`nv`, 4). */
  readonly nv: number;
  /** Horizontal filters per height (`nh`, 8). */
  readonly nh: number;
  /** Dropout on the concatenated convolution outputs (`dropout_prob`, 0.4). */
  readonly dropoutProb: number;
  /** Weight of the norms in the training loss (`reg_weight`, 1e-4). */
  readonly regWeight: number;
  /** Seed of the initial weights and the dropout stream. */
  readonly seed: number;
}

/** RecBole's defaults, without `numItems` and `numUsers`. */
export const CASER_DEFAULTS: Omit<CaserConfig, "numItems" | "numUsers"> = {
  embeddingSize: 64,
  maxLength: 50,
  nv: 4,
  nh: 8,
  dropoutProb: 0.4,
  regWeight: 1e-4,
  seed: DEFAULT_SEED,
};

const CASER_CHECKS = {
  numItems: MODEL_CHECKS.positiveInt,
  numUsers: MODEL_CHECKS.positiveInt,
  embeddingSize: MODEL_CHECKS.positiveInt,
  maxLength: MODEL_CHECKS.positiveInt,
  nv: MODEL_CHECKS.positiveInt,
  nh: MODEL_CHECKS.positiveInt,
  dropoutProb: MODEL_CHECKS.probability,
  regWeight: (v: unknown) =>
    typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "must be a number ≥ 0",
  seed: MODEL_CHECKS.nonNegativeInt,
};

/**
 * Caser's configuration: RecBole's defaults overridden by `overrides` (which must set `numItems`
 * and `numUsers`, the dataset's counts with PAD), validated; an unknown key or a bad value fails
 * naming the key.
 */
export function caserConfig(overrides: Record<string, unknown>): CaserConfig {
  const c = mergeConfig(
    "caser config",
    { ...CASER_DEFAULTS, numItems: 0, numUsers: 0 },
    CASER_CHECKS,
    overrides,
  );
  for (const [key, what] of [["numItems", "item"], ["numUsers", "user"]] as const) {
    if (c[key] < 2) {
      throw new ConfigError(
        `caser config: '${key}' must count PAD and at least one ${what} (the dataset's ${key}), ` +
          `got ${c[key]}`,
        key,
      );
    }
  }
  return c;
}

/** The stream of the model's seed that the packed horizontal filters are drawn from. */
const HORIZONTAL_FILTER_STREAM = 0xca5e;

/**
 * PyTorch's default initialisation of every height's `Conv2d(1, nh, (h, E))`, packed: weights
 * and biases U(±1/√(h·E)).
 */
function horizontalFilters(
  shape: HorizontalFilterShape,
  seed: number,
): { weight: Float32Array; bias: Float32Array } {
  const random = new SeededRandom(seed, HORIZONTAL_FILTER_STREAM);
  const draw = (bound: number) => (2 * random.nextFloat() - 1) * bound;
  const weight = new Float32Array(packedFilterSize(shape));
  const bias = new Float32Array(shape.length * shape.filters);
  for (let h = 1; h <= shape.length; h++) {
    const bound = 1 / Math.sqrt(h * shape.dim);
    const start = heightOffset(shape, h);
    for (let j = start; j < heightOffset(shape, h + 1); j++) weight[j] = draw(bound);
    for (let f = 0; f < shape.filters; f++) bias[(h - 1) * shape.filters + f] = draw(bound);
  }
  return { weight, bias };
}

/** Caser on WebGPU, on padded batches with each row's user. */
export class Caser implements PaddedModel {
  /** Model name, as checkpoints record it. */
  readonly name = "caser";
  /** The input layout: padded `[B, L]` windows. */
  readonly layout = "padded";
  /** One representation per window, none per position: no all-positions training. */
  readonly lastItemOnly = true;
  /** The hyperparameters. */
  readonly config: CaserConfig;
  /** All trainable parameters by name (RecBole's names; `conv_h` packed). */
  readonly params: ParameterSet;
  /** Dropout counter stream (checkpointed with the model). */
  dropoutRng: DropoutRng;
  readonly #users: Tensor;
  readonly #items: Tensor;
  readonly #convV: { weight: Tensor; bias: Tensor };
  readonly #convH: { weight: Tensor; bias: Tensor };
  readonly #fc1: { weight: Tensor; bias: Tensor };
  readonly #fc2: { weight: Tensor; bias: Tensor };
  readonly #filterShape: HorizontalFilterShape;

  /** Builds the model with fresh weights drawn from `config.seed`. */
  constructor(config: CaserConfig) {
    this.config = config;
    const { numItems, numUsers, embeddingSize: e, maxLength: L, nv, nh, seed } = config;
    this.params = new ParameterSet(seed);
    this.dropoutRng = new DropoutRng(seed);
    this.#users = this.params.normal("user_embedding.weight", [numUsers, e], 1 / e);
    this.#items = this.params.normal("item_embedding.weight", [numItems, e], 1 / e);
    const vBound = 1 / Math.sqrt(L);
    this.#convV = {
      weight: this.params.uniform("conv_v.weight", [nv, L], vBound),
      bias: this.params.uniform("conv_v.bias", [nv], vBound),
    };
    this.#filterShape = { length: L, dim: e, filters: nh };
    const filters = horizontalFilters(this.#filterShape, seed);
    this.#convH = {
      weight: this.params.values("conv_h.weight", [filters.weight.length], filters.weight),
      bias: this.params.values("conv_h.bias", [L, nh], filters.bias),
    };
    const joined = nv * e + nh * L;
    const linear = (name: string, out: number, inF: number) => ({
      weight: this.params.normal(`${name}.weight`, [out, inF], xavierNormalStd([out, inF])),
      bias: this.params.constant(`${name}.bias`, [out], 0),
    });
    this.#fc1 = linear("fc1", e, joined);
    this.#fc2 = linear("fc2", e, 2 * e);
  }

  /** The item embedding table `[numItems, E]`, tied between input and output. */
  get itemTable(): Tensor {
    return this.#items;
  }

  /**
   * Representations `[B, E]` of whole windows (`inputs.positions` is not read) for the users
   * `inputs.users`. Fails when the users are missing or the windows are not `maxLength` long.
   */
  forward(inputs: ModelInputs, training: boolean): Tensor {
    const { items, users } = inputs;
    const { maxLength: L, dropoutProb } = this.config;
    if (!users) {
      throw new Error(
        "caser: inputs.users is missing: Caser needs each row's user id ([B] i32), as the " +
          "trainer's and evaluator's padded batches upload it",
      );
    }
    if (items.shape.length !== 2 || items.shape[1] !== L || users.shape[0] !== items.shape[0]) {
      throw new ConfigError(
        `caser: got windows ${items.describe()} and users ${users.describe()}, but the ` +
          `convolutions span maxLength ${L}: train and evaluate with windows of ${L} items ` +
          `(train.maxLength ${L}) and one user per window`,
        "maxLength",
      );
    }
    const x = embedding(items, this.#items, { paddingIdx: 0 }); // [B, L, E]
    const vertical = caserVerticalConv(x, this.#convV.weight, this.#convV.bias);
    const horizontal = caserHorizontalConv(x, this.#convH.weight, this.#convH.bias);
    const joined = concatColumns(vertical, horizontal);
    const dropped = applyDropout(joined, { p: dropoutProb, rng: this.dropoutRng, training });
    const z = relu(matmul(dropped, this.#fc1.weight, { transB: true, bias: this.#fc1.bias }));
    const user = embedding(users, this.#users, { paddingIdx: 0 }); // [B, E]
    const withUser = concatColumns(z, user);
    return relu(matmul(withUser, this.#fc2.weight, { transB: true, bias: this.#fc2.bias }));
  }

  /**
   * The sum of the unsquared Frobenius norms that RecBole's Caser regularises, as a `[]`
   * tensor: the user and item embeddings, `conv_v`, `fc1` and `fc2` weights, and each height's
   * horizontal filters (not multiplied by `regWeight`).
   */
  regularization(): Tensor {
    const whole = [this.#users, this.#items, this.#convV.weight, this.#fc1.weight, this.#fc2.weight]
      .map((w) => sumAll(segmentNorms(w)));
    const heights = sumAll(segmentNorms(this.#convH.weight, heightSizes(this.#filterShape)));
    return whole.reduce((sum, norm) => add(sum, norm), heights);
  }

  /**
   * RecBole's training loss on a prefix batch (call inside `tidy`): the mean cross-entropy of
   * the item after each window plus `regWeight` × {@link regularization}.
   */
  trainingLoss(batch: PaddedTrainingBatch): Tensor {
    const { size, maxLength } = batch;
    const h = this.forward({
      items: Tensor.from(batch.items.subarray(0, size * maxLength), [size, maxLength], "i32"),
      users: Tensor.from(batch.users.subarray(0, size), [size], "i32"),
    }, true);
    const targets = Tensor.from(batch.targets.subarray(0, size), [size], "i32");
    const ce = itemCrossEntropy(h, this.#items, targets);
    return add(ce, scale(this.regularization(), this.config.regWeight));
  }
}
