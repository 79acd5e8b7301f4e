/**
 * A whole model's parameter gradients against central finite differences of its float64
 * reference loss: a few random probes per parameter, the same tolerances for every model.
 */
import { assert } from "@std/assert";
import { relError } from "./util.ts";

/**
 * Probes up to 4 random entries of each named parameter: the GPU gradient `grads[i]` of `names[i]` against
 * (lossOf(p + ε) − lossOf(p − ε)) / 2ε with the reference parameter `refData(name)` perturbed in
 * place (and restored). A flat direction (finite differences ≈ 0) must be tiny on the GPU too;
 * otherwise the relative error must be below 2e-3. Every message names the seed and parameter.
 */
export function checkParameterGradients(o: {
  seed: number;
  rng: () => number;
  names: readonly string[];
  grads: readonly ArrayLike<number>[];
  refData: (name: string) => Float64Array;
  lossOf: () => number;
}): void {
  const { seed, rng } = o;
  for (const [i, name] of o.names.entries()) {
    const g = o.grads[i];
    const p = o.refData(name);
    const probes = Math.min(4, p.length);
    const fd: number[] = [], gpu: number[] = [];
    for (let k = 0; k < probes; k++) {
      const j = Math.floor(rng() * p.length);
      const old = p[j];
      const eps = 1e-5 * Math.max(1, Math.abs(old));
      p[j] = old + eps;
      const up = o.lossOf();
      p[j] = old - eps;
      const down = o.lossOf();
      p[j] = old;
      fd.push((up - down) / (2 * eps));
      gpu.push(g[j]);
    }
    const scale = Math.max(...fd.map(Math.abs));
    if (scale < 1e-7) {
      // A flat direction (e.g. an item row nothing uses): the GPU gradient must be tiny too.
      assert(
        Math.max(...gpu.map(Math.abs)) < 1e-5,
        `seed ${seed}: ${name} gradient ${gpu} where FD ≈ 0`,
      );
      continue;
    }
    const e = relError(gpu, fd);
    assert(
      e < 2e-3,
      `seed ${seed}: ${name} gradient vs finite differences: relative error ${
        e.toExponential(2)
      } (gpu ${gpu}, fd ${fd})`,
    );
  }
}
