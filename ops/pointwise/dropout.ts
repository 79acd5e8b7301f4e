/**
 * Inverted dropout (`nn.Dropout`) with a counter-based random number generator: the keep/drop
 * decision of element `i` is a hash of (seed, counter, i), so the backward recomputes the mask
 * instead of storing it, and a run is reproducible from the seed alone.
 *
 * The hash is three rounds of the PCG output permutation (a 32-bit LCG step followed by a
 * random xorshift and a multiply, O'Neill 2014), each round keyed by XOR with a word derived
 * from the seed and the counter. An element is kept when the top 24 bits of its hash are at or
 * above ⌈p·2²⁴⌉, so the keep probability is 1 − p to within 2⁻²⁴.
 *
 * Performance floor (H200, ~4.3 TB/s): 8 bytes per element each way (read x, write y; the same
 * for the backward), e.g. 409,600 × 64 values: 210 MB → ~49 µs. The hash is ~20 integer
 * operations per element, far below the integer issue rate, so the kernel is bandwidth bound;
 * it moves vec4s, which Deno's WebGPU on an H200 copies about 1.45× faster than scalars.
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";

const WG = 256;
const TWO_32 = 2 ** 32;

/** The saved state of a {@link DropoutRng}: its seed and the next counter it will hand out. */
export interface DropoutRngState {
  /** The user's seed, an integer in [0, 2⁵³). */
  seed: number;
  /** The counter the next {@link DropoutRng.next} call returns. */
  counter: number;
}

/**
 * The source of dropout masks: a seed and a counter. Each {@link dropout} call in training takes
 * a fresh counter with {@link DropoutRng.next}; the mask is a pure function of (seed, counter,
 * element index). Save {@link DropoutRng.state} with a checkpoint and rebuild the generator with
 * {@link DropoutRng.fromState} to continue the same stream of masks.
 */
export class DropoutRng {
  /** The seed, an integer in [0, 2⁵³). */
  readonly seed: number;
  #counter: number;

  /**
   * A generator for one seed, handing out counters from `counter` on.
   * @param seed an integer in [0, 2⁵³)
   * @param counter the first counter to hand out (default 0)
   */
  constructor(seed: number, counter = 0) {
    checkWord("seed", seed);
    checkWord("counter", counter);
    this.seed = seed;
    this.#counter = counter;
  }

  /** Hands out the next counter (each mask gets its own). */
  next(): number {
    const c = this.#counter;
    checkWord("counter", c + 1);
    this.#counter = c + 1;
    return c;
  }

  /** The seed and the next counter, for a checkpoint. */
  state(): DropoutRngState {
    return { seed: this.seed, counter: this.#counter };
  }

  /** A generator that continues from a saved {@link DropoutRngState}. */
  static fromState(state: DropoutRngState): DropoutRng {
    return new DropoutRng(state.seed, state.counter);
  }
}

function checkWord(what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`DropoutRng: ${what} must be an integer in [0, 2^53), got ${v}`);
  }
}

/** Options of {@link dropout}. */
export interface DropoutOptions {
  /** Drop elements only in training (default true); `false` is the identity, as `model.eval()`. */
  training?: boolean;
}

/**
 * WGSL: the keyed hash of the module comment, `dropout_hash(seed, counter, i) -> u32`, and the
 * keep test every dropping kernel applies, `dropout_keep(seed, counter, i, threshold) -> bool`
 * (threshold from {@link dropoutDraw}).
 */
export const DROPOUT_HASH_WGSL: string = /* wgsl */ `
fn pcg_permute(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
// The 32-bit hash of element i under (seed, counter), each given as (low, high) words.
fn dropout_hash(seed: vec2u, counter: vec2u, i: u32) -> u32 {
  let k0 = pcg_permute(seed.x ^ pcg_permute(seed.y));
  let k1 = pcg_permute(counter.x ^ pcg_permute(counter.y ^ k0));
  let k2 = pcg_permute(k0 ^ k1);
  return pcg_permute(pcg_permute(pcg_permute(i ^ k0) ^ k1) ^ k2);
}
// Whether element i is kept: the top 24 bits of its hash at or above the threshold ⌈p·2²⁴⌉.
fn dropout_keep(seed: vec2u, counter: vec2u, i: u32, threshold: u32) -> bool {
  return (dropout_hash(seed, counter, i) >> 8u) >= threshold;
}`;

/** The words a kernel needs for one dropout draw, and the scale of the values it keeps. */
export interface DropoutDraw {
  /** Seed (low, high 32 bits) and counter (low, high): the hash's keys for this draw. */
  readonly words: readonly [number, number, number, number];
  /** An element is kept when `dropout_keep(…, threshold)` holds: ⌈p·2²⁴⌉. */
  readonly threshold: number;
  /** 1 / (1 − p), or 0 for p = 1. */
  readonly scale: number;
}

/**
 * Takes one counter from `rng` and returns what a kernel needs to draw dropout with drop
 * probability `p` by {@link DROPOUT_HASH_WGSL}: every op that drops draws its masks this way.
 */
export function dropoutDraw(p: number, rng: DropoutRng): DropoutDraw {
  const counter = rng.next();
  return {
    words: [
      rng.seed % TWO_32,
      Math.floor(rng.seed / TWO_32),
      counter % TWO_32,
      Math.floor(counter / TWO_32),
    ],
    threshold: Math.ceil(p * 2 ** 24),
    scale: p === 1 ? 0 : 1 / (1 - p),
  };
}

const SHADER = /* wgsl */ `
struct P {
  n4: u32, stride: u32, seed_lo: u32, seed_hi: u32, counter_lo: u32, counter_hi: u32,
  threshold: u32, scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;
${DROPOUT_HASH_WGSL}
// One kernel for both directions: y = x ⊙ mask · scale, and dx = dy ⊙ mask · scale. Each
// invocation handles four consecutive values (vec4 loads and stores); the last vec4 may run into
// the buffer's padding (buffers are whole multiples of 16 bytes), which nothing reads.
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let q = grid_index(gid, p.stride);
  if (q >= p.n4) { return; }
  let seed = vec2u(p.seed_lo, p.seed_hi);
  let counter = vec2u(p.counter_lo, p.counter_hi);
  let i = 4u * q;
  let keep = vec4<bool>(
    dropout_keep(seed, counter, i, p.threshold),
    dropout_keep(seed, counter, i + 1u, p.threshold),
    dropout_keep(seed, counter, i + 2u, p.threshold),
    dropout_keep(seed, counter, i + 3u, p.threshold),
  );
  dst[q] = select(vec4f(0.0), src[q] * p.scale, keep);
}`;

/**
 * Inverted dropout, as `nn.Dropout(p)`: in training each element is zeroed with probability `p`
 * and the survivors are scaled by `1/(1 − p)`; with `p = 0` or `training: false` it is the
 * identity (a zero-copy view, and no counter is used, as PyTorch returns its input). `p = 1`
 * zeroes everything, as PyTorch does. Recorded on the tape: the backward applies the same mask,
 * recomputed from (seed, counter).
 * @param x input of any shape
 * @param p drop probability in [0, 1]
 * @param rng the generator; a training call with 0 < p takes one counter from it
 * @param options `training` (default true)
 */
export function dropout(
  x: Tensor,
  p: number,
  rng: DropoutRng,
  options: DropoutOptions = {},
): Tensor {
  const op = "dropout";
  assertDType(op, x, "f32");
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`${op}: p must be in [0, 1], got ${p} (input ${x.describe()})`);
  }
  if (p === 0 || options.training === false) {
    const view = new Tensor(x.storage, x.shape, "f32");
    return record(view, op, [x], (g) => [g]);
  }
  const draw = dropoutDraw(p, rng);
  const n4 = Math.ceil(x.size / 4);
  const g = grid(n4, WG);
  const params = packParams([n4, g.stride, ...draw.words, draw.threshold], [draw.scale]);
  const y = Tensor.empty(x.shape, "f32", op);
  launch(op, SHADER, params, [x, y], g.groups);
  return record(y, op, [x], (dy) => {
    const dx = Tensor.empty(x.shape, "f32", `${op} backward`);
    launch(`${op} backward`, SHADER, params, [dy, dx], g.groups);
    return [dx];
  });
}
