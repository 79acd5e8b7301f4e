/**
 * A small seeded pseudo-random generator for reproducible shuffling and masking.
 *
 * The state is xoshiro128** (128 bits, period 2^128 − 1), seeded through a splitmix32 sequence so
 * that nearby seeds give unrelated streams. Everything is plain 32-bit integer arithmetic, so the
 * same seed gives the same numbers on every platform.
 *
 * @module
 */

/** RecBole's default seed (`seed: 2020`), the seed of every batcher unless one is given. */
export const DEFAULT_SEED = 2020;

/** Mixes a 32-bit value (the murmur3 finaliser). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Combines a seed with any number of stream numbers (an epoch, a split id, …) into one 32-bit seed.
 *
 * `deriveSeed(2020, 3)` and `deriveSeed(2020, 4)` are unrelated, and so are `deriveSeed(1, 2)` and
 * `deriveSeed(2, 1)`.
 */
export function deriveSeed(seed: number, ...streams: number[]): number {
  let h = mix32((seed >>> 0) ^ 0x9e3779b9);
  for (const s of streams) h = mix32((h + Math.imul(s >>> 0, 0x85ebca6b) + 0x7f4a7c15) >>> 0);
  return h;
}

/** A seeded generator of uniform 32-bit integers, floats in [0, 1), bounded integers and shuffles. */
export class SeededRandom {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * Starts a generator from `seed`, optionally combined with stream numbers (see {@link deriveSeed}).
   * Seeds are taken modulo 2^32.
   */
  constructor(seed: number, ...streams: number[]) {
    let x = streams.length > 0 ? deriveSeed(seed, ...streams) : seed >>> 0;
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** The next uniform integer in [0, 2^32). */
  nextUint32(): number {
    const s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.#s1 = s1 ^ n2;
    this.#s0 = s0 ^ n3;
    this.#s2 = n2 ^ t;
    this.#s3 = (n3 << 11) | (n3 >>> 21);
    return result;
  }

  /** The next uniform float in [0, 1), with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform integer in [0, bound), without modulo bias. `bound` must be in [1, 2^32]. */
  nextInt(bound: number): number {
    if (!(bound >= 1 && bound <= 4294967296) || !Number.isInteger(bound)) {
      throw new RangeError(`nextInt: bound must be an integer in [1, 2^32], got ${bound}`);
    }
    const limit = 4294967296 - (4294967296 % bound);
    let u = this.nextUint32();
    while (u >= limit) u = this.nextUint32();
    return u % bound;
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [index: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}

/** A seeded uniform permutation of `0 … n−1`. */
export function seededPermutation(n: number, random: SeededRandom): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return random.shuffle(order);
}
