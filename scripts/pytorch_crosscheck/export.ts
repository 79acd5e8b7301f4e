/**
 * Writes what `mamba4rec_torch.py` needs to check this project's Mamba4Rec against PyTorch: the
 * preprocessed dataset (CSR offsets, items, the leave-one-out samples) as raw little-endian int32
 * files, the seed's initial weights, the first training batch of epoch 0, and that batch's loss,
 * representation and every parameter's gradient (dropout off) as safetensors.
 *
 *     deno run -A scripts/pytorch_crosscheck/export.ts [--dataset ml-1m] [--out DIR]
 *       [--batch-size 2048] [--max-len L] [--seed 2020]
 *
 * `--max-len` defaults to the model's preset for the dataset (200 for ML-1M).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  DEFAULT_SEED,
  DEFAULT_TRAIN_BATCH_SIZE,
  loadDatasetWithInfo,
  prefixBatches,
} from "../../data/mod.ts";
import { backward } from "../../ops/core/autograd.ts";
import { itemCrossEntropy } from "../../ops/training/cross_entropy.ts";
import { initGpu } from "../../ops/core/runtime.ts";
import { Tensor } from "../../ops/core/tensor.ts";
import { writeCheckpoint } from "../../models/training/checkpoint.ts";
import { uploadSequences } from "../../models/training/evaluator.ts";
import { createModel, modelPreset } from "../../models/registry.ts";
import { TRAIN_DEFAULTS } from "../../models/config.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dataset: { type: "string", default: "ml-1m" },
    out: { type: "string", default: "crosscheck" },
    "batch-size": { type: "string", default: String(DEFAULT_TRAIN_BATCH_SIZE) },
    "max-len": { type: "string" },
    seed: { type: "string", default: String(DEFAULT_SEED) },
  },
  strict: true,
});
const out = values.out;
const batchSize = Number(values["batch-size"]);
const seed = Number(values.seed);
await Deno.mkdir(out, { recursive: true });
const info = await initGpu();
const { dataset } = await loadDatasetWithInfo(values.dataset);
const presetLength = modelPreset("mamba4rec", dataset.name)?.train.maxLength as number | undefined;
const maxLength = values["max-len"] !== undefined
  ? Number(values["max-len"])
  : presetLength ?? TRAIN_DEFAULTS.maxLength;
const writeInts = (name: string, a: Int32Array) =>
  Deno.writeFile(join(out, `${name}.i32`), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
await writeInts("offsets", dataset.offsets);
await writeInts("items", dataset.items);
for (const split of ["train", "valid", "test"] as const) {
  await writeInts(`${split}_users`, dataset.split[split].users);
  await writeInts(`${split}_pos`, dataset.split[split].targetPositions);
}
const model = createModel("mamba4rec", dataset.numItems, { seed, dropoutProb: 0 });
await writeCheckpoint(join(out, "init.safetensors"), model.params.entries(), {
  modelConfig: JSON.stringify(model.config),
});
const batch = prefixBatches(dataset, { maxLength, batchSize, seed, epoch: 0 })
  [Symbol.iterator]().next().value!;
await writeInts("batch_items", batch.items);
await writeInts("batch_lengths", batch.lengths);
await writeInts("batch_targets", batch.targets);
const h = model.forward(uploadSequences(batch.items, batch.lengths, batch.size, maxLength), true);
const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(batch.targets, [batch.size], "i32"));
backward(loss);
const grads = model.params.entries().map(([n, t]) => [`grad.${n}`, t.grad!] as [string, Tensor]);
await writeCheckpoint(join(out, "grads.safetensors"), [["loss", loss], ["h", h], ...grads], {});
console.log(
  `${dataset.name}: ${dataset.numUsers - 1} users, ${dataset.numItems - 1} items; batch ` +
    `${batch.size} × ${maxLength}; loss ${(await loss.toArray())[0]} on ${info.description}; ` +
    `written to ${out}/`,
);
