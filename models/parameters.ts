/**
 * Named, trainable parameters and the initialisers the models use (RecBole's N(0, 0.02), PyTorch's
 * default Linear/Conv1d uniform, constants), drawn from a seeded generator so that a model is
 * reproducible from its seed.
 *
 * @module
 */
import { SeededRandom } from "../data/random.ts";
import { requireGrad } from "../ops/core/autograd.ts";
import { Tensor } from "../ops/core/tensor.ts";

/** A model's parameters by name, in creation order (the checkpoint order). */
export class ParameterSet {
  readonly #byName = new Map<string, Tensor>();
  readonly #random: SeededRandom;

  /** An empty set whose initialisers draw from `seed`.
   * @param seed the initialisation seed
   */
  constructor(seed: number) {
    this.#random = new SeededRandom(seed, 0x1417);
  }

  /** Registers a trainable tensor under a unique name. */
  add(name: string, t: Tensor): Tensor {
    if (this.#byName.has(name)) throw new Error(`parameter ${name} is defined twice`);
    t.name = name;
    this.#byName.set(name, requireGrad(t));
    return t;
  }

  /** A parameter with N(0, std) entries. */
  normal(name: string, shape: number[], std: number): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = Math.max(this.#random.nextFloat(), 1e-12);
      const u2 = this.#random.nextFloat();
      const r = std * Math.sqrt(-2 * Math.log(u1));
      v[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) v[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return this.add(name, Tensor.from(v, shape));
  }

  /** A parameter with U(−bound, bound) entries. */
  uniform(name: string, shape: number[], bound: number): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (2 * this.#random.nextFloat() - 1) * bound;
    return this.add(name, Tensor.from(v, shape));
  }

  /** A parameter with the given values. */
  values(name: string, shape: number[], values: Float32Array): Tensor {
    return this.add(name, Tensor.from(values, shape));
  }

  /** A parameter filled with one value. */
  constant(name: string, shape: number[], value: number): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    return this.add(name, Tensor.from(new Float32Array(n).fill(value), shape));
  }

  /** The parameter of that name. */
  get(name: string): Tensor {
    const t = this.#byName.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  /** Every parameter in creation order. */
  list(): Tensor[] {
    return [...this.#byName.values()];
  }

  /** `[name, tensor]` pairs in creation order. */
  entries(): [string, Tensor][] {
    return [...this.#byName.entries()];
  }

  /** Total number of scalar parameters. */
  count(): number {
    let n = 0;
    for (const t of this.#byName.values()) n += t.size;
    return n;
  }
}

/** The standard deviation of PyTorch's `xavier_normal_` for a `[fanOut, fanIn]` weight. */
export function xavierNormalStd(shape: readonly [number, number]): number {
  return Math.sqrt(2 / (shape[0] + shape[1]));
}
