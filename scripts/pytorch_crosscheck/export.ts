/**
 * Writes what `mamba4rec_torch.py`, `gru4rec_torch.py`, `narm_torch.py`, `sasrec_torch.py`,
 * `bert4rec_torch.py`, `caser_torch.py` or `ssd4rec_torch.py` needs to check this project's model
 * against PyTorch: the preprocessed dataset (CSR offsets, items, the leave-one-out samples) as raw
 * little-endian int32 files, the seed's initial weights, the first training batch of epoch 0, and
 * that batch's loss, representation and every parameter's gradient (dropout off) as safetensors.
 *
 *     deno run -A scripts/pytorch_crosscheck/export.ts
 *       [--model mamba4rec|gru4rec|narm|sasrec|bert4rec|caser|ssd4rec]
 *       [--dataset ml-1m] [--out DIR] [--batch-size B] [--max-len L] [--seed 2020]
 *       [--mask-ratio ρ] [--max-segments N]
 *
 * Mamba4Rec (the default), GRU4Rec, NARM, SASRec, BERT4Rec and Caser, the models on padded
 * batches: the model built with its preset for the dataset (every dropout off; SASRec's and
 * BERT4Rec's position tables and Caser's convolutions sized to the window, as training sizes
 * them), batch `B` (default 2048) of `[B, L]` windows, `--max-len` defaulting to the preset's (200
 * for ML-1M); writes `batch_items` `[B·L]`, `batch_lengths` and `batch_targets`. The loss is the
 * cross-entropy of the item after each window, except for the models with their own objective:
 *
 * - BERT4Rec: its `trainingLoss`, on the batch masked as that draws it for (seed, epoch 0,
 *   batch 0); also writes the masked input `batch_masked_items` `[B·L]`, the flat positions
 *   `b·L + t` that enter the loss, `batch_loss_positions`, and their items `batch_loss_targets`;
 *   the representation is the output head's `[h | 1]` at those positions; `grads.safetensors`
 *   records the mask token, `int(maskRatio · L)`, the branch and the masked count in its metadata.
 * - Caser: its `trainingLoss`, the cross-entropy plus `regWeight` times the norms; also writes
 *   each row's user, `batch_users`; `grads.safetensors` records the norms' sum and `regWeight`.
 *
 * SSD4Rec: the model built as training builds it (the dataset's preset, dropout off) and its first
 * packed training batch (default 1024 samples, whole histories) masked with ρ as training draws
 * it: `--mask-ratio` defaults to the dataset's preset (0.1 for ML-1M, 0 without a preset), and
 * `--mask-ratio 0` turns masking off. `--max-len L` keeps the last L items of each history (the
 * official `var_len: False`). `--max-segments N` keeps the batch's first N samples, as drawn and
 * masked, to make a small check. Writes `batch_items` and `batch_seq_idx` `[T]` (T tokens, masked
 * ones 0), `batch_lengths` and `batch_targets` `[N]`; `grads.safetensors` records ρ and the
 * masked token count in its metadata.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  DEFAULT_SEED,
  DEFAULT_TRAIN_BATCH_SIZE,
  loadDatasetWithInfo,
  type PackedBatch,
  packedBatches,
  type PrefixBatch,
  prefixBatches,
  type SequentialDataset,
} from "../../data/mod.ts";
import { backward } from "../../ops/core/autograd.ts";
import { itemCrossEntropy } from "../../ops/training/cross_entropy.ts";
import { initGpu } from "../../ops/core/runtime.ts";
import { Tensor } from "../../ops/core/tensor.ts";
import { writeCheckpoint } from "../../models/training/checkpoint.ts";
import { uploadSequences } from "../../models/training/evaluator.ts";
import { createModel, findModel, modelPreset } from "../../models/registry.ts";
import { BERT4Rec } from "../../models/bert4rec.ts";
import { maskItemLength, maskItemSequence } from "../../models/bert4rec_masking.ts";
import { Caser } from "../../models/caser.ts";
import { embedding } from "../../ops/dense/embedding.ts";
import { reshape } from "../../ops/pointwise/elementwise.ts";
import { PACKED_TRAIN_DEFAULTS, TRAIN_DEFAULTS } from "../../models/config.ts";
import { packedInputs, SSD4REC_DEFAULTS } from "../../models/ssd4rec.ts";
import type { ModelBase, PaddedModel, TrainingBatchPosition } from "../../models/model.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "mamba4rec" },
    dataset: { type: "string", default: "ml-1m" },
    out: { type: "string", default: "crosscheck" },
    "batch-size": { type: "string" },
    "max-len": { type: "string" },
    seed: { type: "string", default: String(DEFAULT_SEED) },
    "mask-ratio": { type: "string" },
    "max-segments": { type: "string" },
  },
  strict: true,
});

/** The value of flag `--name` as a number accepted by `valid` (else exits), if it was given. */
function numberFlag(
  name: string,
  valid: (v: number) => boolean,
  expected: string,
): number | undefined {
  const text = values[name as keyof typeof values];
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text === "" || !valid(v)) {
    console.error(`export: --${name} must be ${expected}, got '${text}'`);
    Deno.exit(2);
  }
  return v;
}
const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

/** The models on padded batches this export takes. */
type PaddedName = "mamba4rec" | "gru4rec" | "narm" | "sasrec" | "bert4rec" | "caser";

/**
 * Per padded model, the hyperparameters the export sets over the preset for a window of
 * `maxLength` items: every dropout off, and what the window sizes (SASRec's and BERT4Rec's
 * positions, Caser's convolutions) sized to it, as training sizes it.
 */
const PADDED_OVERRIDES: Record<PaddedName, (maxLength: number) => Record<string, unknown>> = {
  mamba4rec: () => ({ dropoutProb: 0 }),
  gru4rec: () => ({ dropoutProb: 0 }),
  narm: () => ({ dropoutProbs: [0, 0] }),
  sasrec: (maxLength) => ({ hiddenDropoutProb: 0, attnDropoutProb: 0, maxLength }),
  bert4rec: (maxLength) => ({ hiddenDropoutProb: 0, attnDropoutProb: 0, maxLength }),
  caser: (maxLength) => ({ dropoutProb: 0, maxLength }),
};
const isPadded = (name: string): name is PaddedName => Object.hasOwn(PADDED_OVERRIDES, name);

const modelName = values.model.toLowerCase();
if (!isPadded(modelName) && modelName !== "ssd4rec") {
  console.error(
    `export: --model must be one of ${Object.keys(PADDED_OVERRIDES).join(", ")} or ssd4rec, ` +
      `got '${values.model}'`,
  );
  Deno.exit(2);
}
if (modelName !== "ssd4rec") {
  const packedOnly = ["mask-ratio", "max-segments"].find((k) => k in values);
  if (packedOnly) {
    console.error(`export: --${packedOnly} is a setting of --model ssd4rec; leave it out`);
    Deno.exit(2);
  }
}
const out = values.out;
const seed = numberFlag("seed", (v) => Number.isInteger(v) && v >= 0, "an integer ≥ 0") ??
  DEFAULT_SEED;
const maxLen = numberFlag("max-len", positiveInt, "a positive integer");
const batchSizeFlag = numberFlag("batch-size", positiveInt, "a positive integer");
const maskRatioFlag = numberFlag("mask-ratio", (v) => v >= 0 && v <= 1, "a number in [0, 1]");
const maxSegments = numberFlag("max-segments", positiveInt, "a positive integer");
await Deno.mkdir(out, { recursive: true });
const info = await initGpu();
const { dataset } = await loadDatasetWithInfo(values.dataset);
const writeInts = (name: string, a: Int32Array) =>
  Deno.writeFile(join(out, `${name}.i32`), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
await writeInts("offsets", dataset.offsets);
await writeInts("items", dataset.items);
for (const split of ["train", "valid", "test"] as const) {
  await writeInts(`${split}_users`, dataset.split[split].users);
  await writeInts(`${split}_pos`, dataset.split[split].targetPositions);
}
const summary = isPadded(modelName)
  ? await exportPadded(modelName, dataset)
  : await exportSsd4rec(dataset);
console.log(
  `${dataset.name}: ${dataset.numUsers - 1} users, ${dataset.numItems - 1} items; ${modelName} ` +
    `${summary} on ${info.description}; written to ${out}/`,
);

/**
 * Runs the backward of `loss` and writes `grads.safetensors`: the loss, the representation `h`
 * and every parameter's gradient (`grad.<name>`); returns the loss.
 */
async function writeGradients(
  model: Pick<ModelBase, "params">,
  loss: Tensor,
  h: Tensor,
  metadata: Record<string, string>,
): Promise<number> {
  backward(loss);
  const grads = model.params.entries().map(([n, t]) => [`grad.${n}`, t.grad!] as [string, Tensor]);
  await writeCheckpoint(
    join(out, "grads.safetensors"),
    [["loss", loss], ["h", h], ...grads],
    metadata,
  );
  return (await loss.toArray())[0];
}

/** The loss an export differentiates, the representation it records, and what it notes. */
interface ExportedLoss {
  /** The batch's training loss `[]`. */
  readonly loss: Tensor;
  /** The representation the PyTorch check compares (`h` of `grads.safetensors`). */
  readonly h: Tensor;
  /** Metadata of `grads.safetensors`. */
  readonly metadata: Record<string, string>;
  /** What the summary line adds after the batch's shape. */
  readonly note: string;
}

/**
 * A padded-batch model's (Mamba4Rec's, GRU4Rec's, NARM's, SASRec's, BERT4Rec's, Caser's) first
 * training batch of epoch 0, the model built with its preset for the dataset; returns the summary
 * line's middle.
 */
async function exportPadded(name: PaddedName, dataset: SequentialDataset): Promise<string> {
  const batchSize = batchSizeFlag ?? DEFAULT_TRAIN_BATCH_SIZE;
  const preset = modelPreset(name, dataset.name);
  const presetLength = preset?.train.maxLength as number | undefined;
  const maxLength = maxLen ?? presetLength ?? TRAIN_DEFAULTS.maxLength;
  const sizes = { numItems: dataset.numItems, numUsers: dataset.numUsers };
  const model = createModel(name, sizes, {
    seed,
    ...preset?.model,
    ...PADDED_OVERRIDES[name](maxLength),
  });
  await writeCheckpoint(join(out, "init.safetensors"), model.params.entries(), {
    modelConfig: JSON.stringify(model.config),
  });
  const batch = prefixBatches(dataset, { maxLength, batchSize, seed, epoch: 0 })
    [Symbol.iterator]().next().value!;
  await writeInts("batch_items", batch.items);
  await writeInts("batch_lengths", batch.lengths);
  await writeInts("batch_targets", batch.targets);
  // The position the trainer gives the first batch of epoch 0.
  const at: TrainingBatchPosition = { seed, epoch: 0, batch: 0 };
  const exported = model instanceof BERT4Rec
    ? await bert4recLoss(model, batch, at)
    : model instanceof Caser
    ? await caserLoss(model, batch)
    : lastItemLoss(model, batch);
  const value = await writeGradients(model, exported.loss, exported.h, exported.metadata);
  return `batch ${batch.size} × ${maxLength}${exported.note}; loss ${value}`;
}

/** RecBole's loss of a padded model: the cross-entropy of the item after each window. */
function lastItemLoss(model: PaddedModel, batch: PrefixBatch): ExportedLoss {
  const { size, maxLength } = batch;
  const h = model.forward(uploadSequences(batch.items, batch.lengths, size, maxLength), true);
  const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(batch.targets, [size], "i32"));
  return { loss, h, metadata: {}, note: "" };
}

/**
 * BERT4Rec's `trainingLoss` at `at`, with the batch masked as it draws it written beside the
 * windows; the representation is `[h | 1]` at the loss positions.
 */
async function bert4recLoss(
  model: BERT4Rec,
  batch: PrefixBatch,
  at: TrainingBatchPosition,
): Promise<ExportedLoss> {
  const { size, maxLength: L } = batch;
  const { maskRatio, ftRatio, hiddenSize } = model.config;
  const maskToken = model.maskToken;
  const masked = maskItemSequence(batch, { maskToken, maskRatio, ftRatio }, at);
  const count = masked.lossPositions.length;
  if (count === 0) {
    console.error(
      `export: BERT4Rec's first batch has no loss position (the ${
        masked.fineTune ? "fine-tune" : "masking"
      } branch masked no position past the first of a window); export with another --seed`,
    );
    Deno.exit(1);
  }
  await writeInts("batch_masked_items", masked.items);
  await writeInts("batch_loss_positions", masked.lossPositions);
  await writeInts("batch_loss_targets", masked.lossTargets);
  const loss = model.trainingLoss(batch, at);
  const everyPosition = model.forward({ items: Tensor.from(masked.items, [size, L], "i32") }, true);
  const h = embedding(
    Tensor.from(masked.lossPositions, [count], "i32"),
    reshape(everyPosition, [size * L, hiddenSize + 1]),
  );
  const branch = masked.fineTune ? "fine-tune" : "masking";
  return {
    loss,
    h,
    metadata: {
      maskToken: String(maskToken),
      maskItemLength: String(maskItemLength(maskRatio, L)),
      branch,
      maskedCount: String(masked.maskedCount),
    },
    note: `, ${branch} branch, ${masked.maskedCount} masked, ${count} in the loss`,
  };
}

/** Caser's `trainingLoss` (cross-entropy plus the weighted norms), with each row's user written. */
async function caserLoss(model: Caser, batch: PrefixBatch): Promise<ExportedLoss> {
  const { size, maxLength } = batch;
  await writeInts("batch_users", batch.users);
  const loss = model.trainingLoss(batch);
  const inputs = uploadSequences(batch.items, batch.lengths, size, maxLength, batch.users);
  const h = model.forward(inputs, true);
  const norms = (await model.regularization().toArray())[0];
  return {
    loss,
    h,
    metadata: { regularization: String(norms), regWeight: String(model.config.regWeight) },
    note: `, norms ${norms}`,
  };
}

/** The first `count` samples of a packed batch: a prefix of its tokens, masking kept. */
function firstSegments(batch: PackedBatch, count: number): PackedBatch {
  if (count >= batch.size) return batch;
  const tokens = batch.lastIndex[count - 1] + 1;
  const items = batch.items.slice(0, tokens);
  return {
    size: count,
    tokens,
    items,
    seqIdx: batch.seqIdx.slice(0, tokens),
    lastIndex: batch.lastIndex.slice(0, count),
    flipIndex: batch.flipIndex.slice(0, tokens),
    lengths: batch.lengths.slice(0, count),
    targets: batch.targets.slice(0, count),
    users: batch.users.slice(0, count),
    // Item ids start at 1, so a 0 in a history is a masked token.
    maskedTokens: items.reduce((n, item) => n + (item === 0 ? 1 : 0), 0),
  };
}

/** SSD4Rec's first packed training batch of epoch 0; returns the summary line's middle. */
async function exportSsd4rec(dataset: SequentialDataset): Promise<string> {
  const entry = findModel("ssd4rec");
  const preset = entry.presets[dataset.name];
  const batchSize = batchSizeFlag ?? (entry.trainDefaults.batchSize as number);
  const presetRho = (preset?.train.maskRatio as number | undefined) ??
    PACKED_TRAIN_DEFAULTS.maskRatio;
  const rho = maskRatioFlag ?? presetRho;
  const segments = maxSegments ?? batchSize;
  const model = createModel("ssd4rec", dataset.numItems, {
    seed,
    ...preset?.model,
    dropoutProb: 0,
  });
  // The gradient check runs without dropout; `train` takes the dropout the preset trains with.
  const trainingDropout = (preset?.model.dropoutProb as number | undefined) ??
    SSD4REC_DEFAULTS.dropoutProb;
  await writeCheckpoint(join(out, "init.safetensors"), model.params.entries(), {
    modelConfig: JSON.stringify(model.config),
    trainingDropoutProb: String(trainingDropout),
  });
  const drawn = packedBatches(dataset, {
    split: "train",
    batchSize,
    maxLength: maxLen,
    maskRatio: rho,
    seed,
    epoch: 0,
  })[Symbol.iterator]().next().value!;
  const batch = firstSegments(drawn, segments);
  await writeInts("batch_items", batch.items);
  await writeInts("batch_seq_idx", batch.seqIdx);
  await writeInts("batch_lengths", batch.lengths);
  await writeInts("batch_targets", batch.targets);
  const inputs = packedInputs(batch, model.config.chunkSize);
  const h = model.forward(inputs, true);
  const loss = itemCrossEntropy(
    h,
    model.itemTable,
    Tensor.from(batch.targets, [batch.size], "i32"),
  );
  const value = await writeGradients(model, loss, h, {
    maskRatio: String(rho),
    maskedTokens: String(batch.maskedTokens),
    tokens: String(batch.tokens),
    segments: String(batch.size),
    batchSize: String(batchSize),
    maxLength: maxLen === undefined ? "whole histories" : String(maxLen),
  });
  inputs.dispose();
  return `batch ${batch.size} of ${drawn.size} samples, ${batch.tokens} tokens ` +
    `(${batch.maskedTokens} masked, ρ ${rho}); loss ${value}`;
}
