/**
 * A whole model's parameter gradients against central finite differences of its float64
 * reference loss: a few random probes per parameter, the same tolerances for every model; and
 * the whole check of a padded-batch model against its reference (loss, representation, every
 * gradient).
 */
import { assert } from "@std/assert";
import { backward, zeroGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { itemCrossEntropy } from "../ops/training/cross_entropy.ts";
import { uploadSequences } from "../models/training/evaluator.ts";
import type { PaddedModel } from "../models/model.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";
import { assertClose, paddedItems, relError } from "./util.ts";

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

/**
 * Runs `model` (a padded-batch model with dropout off) forward and backward on `batch` with the
 * tied cross-entropy, and checks against `reference` (a float64 reference of the same model
 * reading the GPU's parameters): the loss to 1e-5, the last-position representation to 1e-4, and
 * every parameter's gradient by {@link checkParameterGradients}. Clears the gradients after.
 */
export async function checkPaddedModel(o: {
  seed: number;
  rng: () => number;
  model: PaddedModel;
  batch: RefBatch;
  reference: (params: RefParams, batch: RefBatch) => { loss: number; h: Float64Array };
}): Promise<void> {
  const { seed, model, batch } = o;
  const { items, lengths, targets, size: B, maxLength: L } = batch;
  const entries = model.params.entries();
  const { loss, h } = tidy(() => {
    const h = model.forward(uploadSequences(items, lengths, B, L), true);
    const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(targets, [B], "i32"));
    backward(loss);
    return { loss, h };
  });
  const host = await readTensors([
    loss,
    h,
    ...entries.map(([, t]) => t),
    ...entries.map(([, t]) => t.grad!),
  ]);
  const ref: RefParams = new Map();
  entries.forEach(([name, t], i) =>
    ref.set(name, { data: Float64Array.from(host[2 + i]), shape: t.shape })
  );
  const want = o.reference(ref, batch);
  assertClose([host[0][0]], [want.loss], 1e-5, `seed ${seed}: loss`);
  assertClose(host[1], want.h, 1e-4, `seed ${seed}: last-position representation`);
  checkParameterGradients({
    seed,
    rng: o.rng,
    names: entries.map(([name]) => name),
    grads: host.slice(2 + entries.length, 2 + 2 * entries.length),
    refData: (name) => ref.get(name)!.data,
    lossOf: () => o.reference(ref, batch).loss,
  });
  zeroGrad(model.params.list());
}

/**
 * A batch of 3 right-padded windows of length `L` for the model checks: one full window, one
 * padded at least by one, the third of random length; random items and targets in [1, numItems).
 */
export function randomPaddedBatch(rng: () => number, L: number, numItems: number): RefBatch {
  const lengths = Int32Array.of(L, 1 + Math.floor(rng() * (L - 1)), 1 + Math.floor(rng() * L));
  const items = paddedItems(rng, lengths, L, numItems);
  const targets = Int32Array.from({ length: 3 }, () => 1 + Math.floor(rng() * (numItems - 1)));
  return { items, lengths, targets, size: 3, maxLength: L };
}
