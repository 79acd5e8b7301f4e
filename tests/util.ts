/**
 * Test helpers: seeded random data (a fresh seed per run, printed on failure), float64
 * comparisons, and gradient checks of a GPU op against its float64 reference by central finite
 * differences and by the reference's analytic gradient.
 */
import { assert } from "@std/assert";
import {
  backward,
  initGpu,
  mul,
  readTensors,
  requireGrad,
  sumAll,
  Tensor,
  tidy,
  zeroGrad,
} from "../ops/mod.ts";

await initGpu();

/** Builds a loss inside `tidy`, backpropagates it into the parameters' gradients, returns it. */
export function lossAndBackward(loss: () => Tensor): Promise<number> {
  return tidy(() => {
    const l = loss();
    backward(l);
    return l;
  }).item();
}

/** Each parameter's gradient, read back in order, then every gradient cleared. */
export async function takeGradients(params: readonly Tensor[]): Promise<Float32Array[]> {
  const grads = await readTensors(params.map((p) => p.grad!));
  zeroGrad([...params]);
  return grads.map((g) => Float32Array.from(g));
}

/** A seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The environment variable that fixes {@link freshSeed}, to rerun a failed case. */
export const TEST_SEED_VARIABLE = "SSMREC_TEST_SEED";

/**
 * A fresh seed for this run, or `$SSMREC_TEST_SEED` when set (to rerun the case a failure names:
 * `SSMREC_TEST_SEED=1234 deno test -A tests/foo.test.ts`). Every failing assertion message of a
 * test that draws from it includes it.
 */
export function freshSeed(): number {
  const fixed = Deno.env.get(TEST_SEED_VARIABLE);
  if (fixed !== undefined && fixed !== "") {
    const seed = Number(fixed);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`${TEST_SEED_VARIABLE}=${fixed}: expected an integer in [0, 2^32)`);
    }
    return seed;
  }
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Normal(0, std) values in float64. */
export function randn(rng: () => number, n: number, std = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rng(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
  }
  return out;
}

/** Uniform values in [lo, hi). */
export function uniform(rng: () => number, n: number, lo: number, hi: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

/** Uniform integers in [0, n). */
export function randint(rng: () => number, count: number, n: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(rng() * n);
  return out;
}

/** ‖got − want‖ / ‖want‖ (absolute norm when `want` is zero). */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  if (Number.isNaN(num)) return Infinity;
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}

/** Asserts relative error below `tol`, naming what was compared and the seed. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert(got.length >= want.length, `${what}: got ${got.length} values, want ${want.length}`);
  const e = relError(got, want);
  assert(e < tol, `${what}: relative error ${e.toExponential(3)} ≥ ${tol}`);
}

/** A float64 input of a gradient check. */
export interface GradInput {
  /** Values. */
  data: Float64Array;
  /** Shape. */
  shape: number[];
  /** Whether to check this input's gradient (default true). */
  differentiable?: boolean;
}

/** Asserts that `got` differs from `want` by less than `tol` relative to `scale` (Σ|terms|). */
export function assertScaled(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  let num = 0, den = 0;
  for (let i = 0; i < scale.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += scale[i] * scale[i];
  }
  // No terms at all (a gradient that is exactly zero): the error itself must vanish.
  const e = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  assert(e < tol, `${what}: error ${e.toExponential(3)} relative to Σ|terms| ≥ ${tol}`);
}

/** Options of {@link gradCheck}. */
export interface GradCheckOptions {
  /** Label for messages (include the seed). */
  what: string;
  /** The inputs, in the order `gpu` and `ref` take them. */
  inputs: GradInput[];
  /** The GPU op under test. */
  gpu: (xs: Tensor[]) => Tensor;
  /** Float64 reference forward. */
  ref: (xs: Float64Array[]) => Float64Array;
  /**
   * For outputs that are sums: Σ|terms| of each output entry. The forward's error is then
   * measured against it, as for {@link GradCheckOptions.refGradScale}.
   */
  refScale?: (xs: Float64Array[]) => Float64Array;
  /** Float64 analytic gradients given the output gradient (optional). */
  refGrad?: (xs: Float64Array[], gOut: Float64Array) => (Float64Array | null)[];
  /**
   * For gradients that are sums (broadcast operands): Σ|terms| of each analytic gradient entry.
   * The error is then measured against it, as float32 summation error scales with it, not with
   * the sum itself, which random terms can cancel to nearly zero.
   */
  refGradScale?: (xs: Float64Array[], gOut: Float64Array) => (Float64Array | null)[];
  /** Seeded generator for the output weights and probed coordinates. */
  rng: () => number;
  /** Tolerance for the forward and analytic gradients (default 1e-5). */
  tol?: number;
  /** Tolerance against finite differences (default 1e-3). */
  fdTol?: number;
  /** Coordinates probed by finite differences per input (default 24). */
  probes?: number;
  /** Finite-difference step (default 1e-4 × max(1, |x|)). */
  eps?: number;
}

/**
 * Checks forward values and every input's gradient: the loss is Σ out ⊙ W with random W;
 * gradients from the GPU tape are compared with the reference's analytic gradient (all
 * coordinates) and with central finite differences of the reference (sampled coordinates).
 */
export async function gradCheck(o: GradCheckOptions): Promise<void> {
  const tol = o.tol ?? 1e-5;
  const fdTol = o.fdTol ?? 1e-3;
  // The GPU gets the inputs as float32; the reference gets the same values, so that their
  // rounding, which a cancelling sum magnifies, is not counted as the op's error.
  const inputs = o.inputs.map((x) => ({
    ...x,
    data: Float64Array.from(Float32Array.from(x.data)),
  }));
  const want = o.ref(inputs.map((x) => x.data));
  const w = randn(o.rng, want.length);
  const { out, grads } = tidy(() => {
    const ts = inputs.map((x) => {
      const t = Tensor.from(Float32Array.from(x.data), x.shape);
      return x.differentiable === false ? t : requireGrad(t);
    });
    const out = o.gpu(ts);
    const loss = sumAll(mul(out, Tensor.from(Float32Array.from(w), out.shape)));
    backward(loss);
    return { out, grads: ts.map((t) => t.grad ?? t) };
  });
  const host = await readTensors([out, ...grads]);
  const forwardScale = o.refScale?.(inputs.map((x) => x.data));
  if (forwardScale) assertScaled(host[0], want, forwardScale, tol, `${o.what} forward`);
  else assertClose(host[0], want, tol, `${o.what} forward`);
  const lossOf = (xs: Float64Array[]) => {
    const y = o.ref(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * w[i];
    return s;
  };
  const analytic = o.refGrad?.(inputs.map((x) => x.data), w);
  const scales = o.refGradScale?.(inputs.map((x) => x.data), w);
  for (let k = 0; k < inputs.length; k++) {
    const input = inputs[k];
    if (input.differentiable === false) continue;
    const g = host[k + 1];
    const scale = scales?.[k];
    if (analytic?.[k]) {
      const label = `${o.what} grad[${k}] vs analytic`;
      if (scale) assertScaled(g, analytic[k]!, scale, tol, label);
      else assertClose(g, analytic[k]!, tol, label);
    }
    const probes = Math.min(o.probes ?? 24, input.data.length);
    const idx = new Set<number>();
    while (idx.size < probes) idx.add(Math.floor(o.rng() * input.data.length));
    const fd: number[] = [], gpu: number[] = [], probedScale: number[] = [];
    for (const i of idx) {
      const xs = inputs.map((x) => Float64Array.from(x.data));
      const h = o.eps ?? 1e-4 * Math.max(1, Math.abs(xs[k][i]));
      xs[k][i] += h;
      const up = lossOf(xs);
      xs[k][i] -= 2 * h;
      const down = lossOf(xs);
      fd.push((up - down) / (2 * h));
      gpu.push(g[i]);
      if (scale) probedScale.push(scale[i]);
    }
    // A gradient that is a sum is measured against Σ|terms| here too, as in the analytic check.
    const label = `${o.what} grad[${k}] vs finite differences`;
    if (scale) assertScaled(gpu, fd, probedScale, fdTol, label);
    else assertClose(gpu, fd, fdTol, label);
  }
  out.dispose();
  for (const g of grads) g.dispose();
}

/**
 * Right-padded windows of random item ids: row b holds `lengths[b]` ids in [1, numItems) and then
 * PAD (0) up to `L`, as RecBole's padded batches.
 */
export function paddedItems(
  rng: () => number,
  lengths: Int32Array,
  L: number,
  numItems: number,
): Int32Array {
  const items = new Int32Array(lengths.length * L);
  lengths.forEach((len, b) => {
    for (let t = 0; t < len; t++) items[b * L + t] = 1 + Math.floor(rng() * (numItems - 1));
  });
  return items;
}

/** `[rows, cols]` row-major into `[cols, rows]`. */
export function transposed(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
