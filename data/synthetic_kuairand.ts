/**
 * Synthetic interactions shaped like SSD4Rec's KuaiRand (KuaiRand-Pure after 5-core filtering:
 * 23,951 users, 7,111 items, 1,134,420 interactions, history lengths min 5 / median 34 / mean
 * 47.36 / max about 809), for timing training on data of that shape where the real logs are not
 * at hand. It is not KuaiRand: its name ({@link SYNTHETIC_KUAIRAND_NAME}) and its source text say
 * synthetic, and nothing about its items is learnable beyond their popularity.
 *
 * - **History lengths**: lognormal with median {@link SyntheticKuaiRandShape.medianLength} and
 *   log-scale σ {@link SyntheticKuaiRandShape.lengthSigma} (ln(47.36 / 34) = σ² / 2 gives
 *   σ ≈ 0.81), clipped to `[minLength, maxLength]`, scaled to the exact interaction total and
 *   rounded; what rounding leaves over is added or taken one by one, in a seeded order of the
 *   users, where the bounds allow.
 * - **Item popularity**: every item gets `minItemInteractions` interactions, and the rest are
 *   shared out Zipf-like (the item of rank r weighs r^−s, s = `zipfExponent`), by largest
 *   remainder; so RecBole's k-core filter at that bound removes nothing.
 * - **Order**: all interactions (each item as often as its count) shuffled with the seed, then
 *   dealt to the users in turn, each user's rows in time order (no timestamps).
 *
 * The same options give the same interactions; every draw is seeded.
 *
 * @module
 */
import { InteractionBuilder, type LoadedInteractions } from "./interactions.ts";
import { DEFAULT_SEED, seededPermutation, SeededRandom } from "./random.ts";
import { heldOutCount } from "./split.ts";

/** The dataset name of the full-size synthetic KuaiRand ({@link SYNTHETIC_KUAIRAND_SHAPE}). */
export const SYNTHETIC_KUAIRAND_NAME = "kuairand-synthetic";

/** The sizes and distributions of a synthetic KuaiRand ({@link generateSyntheticKuaiRand}). */
export interface SyntheticKuaiRandShape {
  /** Users, each with at least `minLength` interactions. */
  readonly users: number;
  /** Items, each with at least `minItemInteractions` interactions. */
  readonly items: number;
  /** Interactions in all. */
  readonly interactions: number;
  /** Median of the lognormal history lengths (its e^μ). */
  readonly medianLength: number;
  /** σ of the logarithm of the history lengths. */
  readonly lengthSigma: number;
  /** Shortest history. */
  readonly minLength: number;
  /** Longest history. */
  readonly maxLength: number;
  /** Fewest interactions of an item. */
  readonly minItemInteractions: number;
  /** Exponent s of the items' Zipf-like popularity (rank r weighs r^−s). */
  readonly zipfExponent: number;
  /** The seed of every draw. */
  readonly seed: number;
}

/**
 * The shape of SSD4Rec's KuaiRand: its counts and history-length quantiles. The Zipf exponent is
 * a choice (the item popularity of the real data is not known here).
 */
export const SYNTHETIC_KUAIRAND_SHAPE: SyntheticKuaiRandShape = {
  users: 23_951,
  items: 7_111,
  interactions: 1_134_420,
  medianLength: 34,
  lengthSigma: 0.81,
  minLength: 5,
  maxLength: 809,
  minItemInteractions: 5,
  zipfExponent: 0.8,
  seed: DEFAULT_SEED,
};

/** Seeded streams of the generator's draws, apart from each other. */
const STREAMS = { lengths: 0x4b01, adjust: 0x4b02, deal: 0x4b03 } as const;

/** The shape with `overrides`, checked: a bad size fails naming the key and what would fit. */
export function syntheticKuaiRandShape(
  overrides: Partial<SyntheticKuaiRandShape> = {},
): SyntheticKuaiRandShape {
  const s = { ...SYNTHETIC_KUAIRAND_SHAPE, ...overrides };
  const fail = (key: string, problem: string): never => {
    throw new RangeError(`synthetic KuaiRand: '${key}' ${problem}`);
  };
  for (const key of ["users", "items", "interactions", "minLength", "maxLength"] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 1) {
      fail(key, `must be a positive integer, got ${s[key]}`);
    }
  }
  if (!Number.isInteger(s.minItemInteractions) || s.minItemInteractions < 0) {
    fail("minItemInteractions", `must be a non-negative integer, got ${s.minItemInteractions}`);
  }
  if (!(s.medianLength > 0)) fail("medianLength", `must be positive, got ${s.medianLength}`);
  if (!(s.lengthSigma >= 0)) fail("lengthSigma", `must be non-negative, got ${s.lengthSigma}`);
  if (!(s.zipfExponent >= 0)) fail("zipfExponent", `must be non-negative, got ${s.zipfExponent}`);
  if (!Number.isInteger(s.seed) || s.seed < 0) {
    fail("seed", `must be a non-negative integer, got ${s.seed}`);
  }
  if (s.minLength > s.maxLength) {
    fail("minLength", `${s.minLength} exceeds maxLength ${s.maxLength}`);
  }
  if (s.interactions < s.users * s.minLength || s.interactions > s.users * s.maxLength) {
    fail(
      "interactions",
      `${s.interactions} cannot be shared by ${s.users} users of ${s.minLength} to ` +
        `${s.maxLength} interactions; choose between ${s.users * s.minLength} and ` +
        `${s.users * s.maxLength}`,
    );
  }
  if (s.interactions < s.items * s.minItemInteractions) {
    fail(
      "interactions",
      `${s.interactions} cannot give ${s.items} items ${s.minItemInteractions} interactions ` +
        `each; choose at least ${s.items * s.minItemInteractions}`,
    );
  }
  return s;
}

/** A standard normal draw (Box–Muller, the cosine branch), from two uniform draws. */
function normal(random: SeededRandom): number {
  const u = 1 - random.nextFloat(); // in (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.nextFloat());
}

/**
 * The history length of every user (`[users]`, summing to `interactions`, each in
 * `[minLength, maxLength]`), as the module documentation describes.
 */
export function syntheticHistoryLengths(shape: SyntheticKuaiRandShape): Int32Array {
  const { users, interactions, minLength, maxLength } = shape;
  const clip = (v: number) => Math.min(maxLength, Math.max(minLength, v));
  const random = new SeededRandom(shape.seed, STREAMS.lengths);
  const mu = Math.log(shape.medianLength);
  const drawn = Float64Array.from(
    { length: users },
    () => clip(Math.exp(mu + shape.lengthSigma * normal(random))),
  );
  const total = drawn.reduce((sum, v) => sum + v, 0);
  const lengths = Int32Array.from(drawn, (v) => clip(Math.round((v * interactions) / total)));
  let left = interactions - lengths.reduce((sum, v) => sum + v, 0);
  const order = seededPermutation(users, new SeededRandom(shape.seed, STREAMS.adjust));
  // The shape's check keeps the total reachable, so every pass over the users moves it closer.
  while (left !== 0) {
    const step = Math.sign(left);
    for (let k = 0; k < users && left !== 0; k++) {
      const u = order[k];
      const next = lengths[u] + step;
      if (next < minLength || next > maxLength) continue;
      lengths[u] = next;
      left -= step;
    }
  }
  return lengths;
}

/**
 * The interactions of every item by popularity rank (`[items]`, rank 1 first, summing to
 * `interactions`, each at least `minItemInteractions`), as the module documentation describes.
 */
export function syntheticItemCounts(shape: SyntheticKuaiRandShape): Int32Array {
  const { items, interactions, minItemInteractions, zipfExponent } = shape;
  const weights = Float64Array.from({ length: items }, (_, r) => Math.pow(r + 1, -zipfExponent));
  const weightSum = weights.reduce((sum, w) => sum + w, 0);
  const extra = interactions - items * minItemInteractions;
  const shares = Float64Array.from(weights, (w) => (w * extra) / weightSum);
  const counts = Int32Array.from(shares, (v) => minItemInteractions + Math.floor(v));
  let left = interactions - counts.reduce((sum, c) => sum + c, 0);
  // Largest remainder: the items whose shares lost most to rounding down get one more each
  // (ties to the more popular rank).
  const byRemainder = Array.from({ length: items }, (_, r) => r).sort((a, b) =>
    (shares[b] - Math.floor(shares[b])) - (shares[a] - Math.floor(shares[a])) || a - b
  );
  for (let k = 0; left > 0; k++, left--) counts[byRemainder[k]]++;
  return counts;
}

/** Options of {@link generateSyntheticKuaiRand}. */
export interface SyntheticKuaiRandOptions extends Partial<SyntheticKuaiRandShape> {
  /**
   * Keep only the first this many users' interactions (of the full draw, so the same users as
   * in the whole dataset; a slice for quick runs). Default: every user.
   */
  readonly firstUsers?: number;
}

/** The text a synthetic dataset names as its source, saying what it is and how it was drawn. */
export function syntheticKuaiRandSource(shape: SyntheticKuaiRandShape): string {
  return `synthetic KuaiRand-shaped interactions (generated, not real data; seed ${shape.seed}, ` +
    `${shape.users} users, ${shape.items} items, ${shape.interactions} interactions)`;
}

/**
 * Generates a synthetic KuaiRand ({@link SYNTHETIC_KUAIRAND_SHAPE}, overridden by `options`) as
 * loaded interactions: users `u1, u2, …`, items `i<rank>`, each user's rows together and in time
 * order, read as `user-item-pairs` (rows in time order, no timestamps).
 */
export function generateSyntheticKuaiRand(
  options: SyntheticKuaiRandOptions = {},
): LoadedInteractions {
  const { firstUsers, ...overrides } = options;
  const shape = syntheticKuaiRandShape(overrides);
  if (firstUsers !== undefined && !(Number.isInteger(firstUsers) && firstUsers >= 1)) {
    throw new RangeError(
      `synthetic KuaiRand: 'firstUsers' must be a positive integer, got ${firstUsers}`,
    );
  }
  const lengths = syntheticHistoryLengths(shape);
  const counts = syntheticItemCounts(shape);
  const pool = new Int32Array(shape.interactions);
  for (let r = 0, at = 0; r < counts.length; r++) {
    pool.fill(r + 1, at, at + counts[r]);
    at += counts[r];
  }
  new SeededRandom(shape.seed, STREAMS.deal).shuffle(pool);
  const builder = new InteractionBuilder(false, false);
  const itemIds = new Int32Array(shape.items + 1); // rank → builder id, 0 until first seen
  const kept = Math.min(firstUsers ?? shape.users, shape.users);
  for (let u = 0, at = 0; u < kept; u++) {
    const user = builder.userId(`u${u + 1}`);
    for (const end = at + lengths[u]; at < end; at++) {
      const rank = pool[at];
      if (itemIds[rank] === 0) itemIds[rank] = builder.itemId(`i${rank}`);
      builder.add(user, itemIds[rank]);
    }
  }
  return builder.finish(syntheticKuaiRandSource(shape), "user-item-pairs");
}

/** Quantiles and moments of history lengths ({@link historyLengthSummary}). */
export interface HistoryLengthSummary {
  /** Users. */
  readonly users: number;
  /** Interactions, the lengths' sum. */
  readonly interactions: number;
  /** Shortest history. */
  readonly min: number;
  /** Median history (the mean of the two middle ones for an even count). */
  readonly median: number;
  /** Mean history. */
  readonly mean: number;
  /** Longest history. */
  readonly max: number;
  /**
   * Training samples of RecBole's leave-one-out split (SSD4Rec's packed segments): a user of n
   * interactions gives n − 3 from four interactions on, its prefixes of 1 … n − 3 items.
   */
  readonly trainSamples: number;
  /** Mean history length of those training samples (tokens per packed segment). */
  readonly meanTrainPrefix: number;
}

/**
 * The quantiles of `lengths` (one per user) and the training samples and mean training-prefix
 * length their leave-one-out split gives, to compare a draw with the shape it was made for.
 */
export function historyLengthSummary(lengths: ArrayLike<number>): HistoryLengthSummary {
  if (lengths.length === 0) throw new RangeError("historyLengthSummary: no lengths given");
  const sorted = Float64Array.from(lengths).sort();
  const n = sorted.length;
  let interactions = 0, trainSamples = 0, prefixTokens = 0;
  for (let i = 0; i < n; i++) {
    const length = sorted[i];
    interactions += length;
    const samples = Math.max(0, length - 1 - heldOutCount(length));
    trainSamples += samples;
    prefixTokens += (samples * (samples + 1)) / 2;
  }
  return {
    users: n,
    interactions,
    min: sorted[0],
    median: n % 2 ? sorted[n >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    mean: interactions / n,
    max: sorted[n - 1],
    trainSamples,
    meanTrainPrefix: trainSamples > 0 ? prefixTokens / trainSamples : 0,
  };
}
