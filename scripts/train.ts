/**
 * `deno task train --model mamba4rec --dataset <name-or-file> [options]`: trains with RecBole's
 * protocol and prints the best validation and the test metrics and the time per epoch.
 *
 * Options: --format F, --epochs N, --batch-size B, --lr X, --max-len L, --seed S, --dropout P,
 * --layers N, --training-mode prefix|all-positions, --checkpoint-dir DIR, --resume FILE, --epochs-this-run N (split a long run across
 * processes: resume from DIR/last.safetensors), --json.
 */
import { parseArgs } from "node:util";
import { loadDatasetWithInfo } from "../data/load.ts";
import type { InteractionFormat } from "../data/formats.ts";
import { initGpu } from "../ops/runtime.ts";
import { trainConfig } from "../models/config.ts";
import { createModel, MAMBA4REC_PRESETS } from "../models/registry.ts";
import { train } from "../models/trainer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "mamba4rec" },
    dataset: { type: "string" },
    format: { type: "string" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    lr: { type: "string" },
    "max-len": { type: "string" },
    seed: { type: "string" },
    dropout: { type: "string" },
    layers: { type: "string" },
    "checkpoint-dir": { type: "string" },
    resume: { type: "string" },
    "epochs-this-run": { type: "string" },
    "training-mode": { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (values.help || !values.dataset) {
  console.log(
    "usage: deno task train --model mamba4rec --dataset <name-or-file> [--format F] [--epochs N]\n" +
      "       [--batch-size B] [--lr X] [--max-len L] [--seed S] [--dropout P] [--layers N]\n" +
      "       [--training-mode prefix|all-positions] [--checkpoint-dir DIR] [--resume FILE]\n" +
      "       [--epochs-this-run N] [--json]",
  );
  Deno.exit(values.help ? 0 : 2);
}

const num = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    console.error(`--${name}: expected a number, got '${v}'`);
    Deno.exit(2);
  }
  return n;
};

const datasetName = values.dataset;
const preset = MAMBA4REC_PRESETS[datasetName.toLowerCase()];
const seed = num("seed", values.seed) ?? 2020;
const config = trainConfig({
  epochs: num("epochs", values.epochs),
  batchSize: num("batch-size", values["batch-size"]),
  learningRate: num("lr", values.lr),
  maxLength: num("max-len", values["max-len"]) ?? preset?.maxLength,
  seed,
  checkpointDir: values["checkpoint-dir"] ?? null,
  trainingMode: values["training-mode"],
  verbose: !values.json,
});
const info = await initGpu();
const loaded = await loadDatasetWithInfo(datasetName, {
  format: values.format as InteractionFormat | undefined,
});
const dataset = loaded.dataset;
const model = createModel(values.model, dataset.numItems, {
  seed,
  dropoutProb: num("dropout", values.dropout) ?? preset?.dropoutProb,
  numLayers: num("layers", values.layers),
});
if (!values.json) {
  console.log(
    `${model.name} on ${dataset.name} (${dataset.numUsers - 1} users, ${dataset.numItems - 1} ` +
      `items; ${loaded.fromCache ? "from cache" : "processed"} in ${
        loaded.seconds.toFixed(2)
      } s), ` +
      `${model.params.count()} parameters, L = ${config.maxLength}, on ${info.description}`,
  );
}
const result = await train(model, dataset, config, {
  resumeFrom: values.resume,
  maxEpochsThisRun: num("epochs-this-run", values["epochs-this-run"]),
});
if (values.json) {
  console.log(JSON.stringify({
    model: model.name,
    dataset: dataset.name,
    adapter: info.description,
    seed,
    config,
    epochs: result.history.length,
    bestEpoch: result.bestEpoch,
    valid: result.bestValid,
    test: result.test,
    stoppedEarly: result.stoppedEarly,
    secondsPerEpoch: result.secondsPerEpoch,
    history: result.history,
  }));
} else {
  console.log(
    `${result.history.length} epochs, ${result.secondsPerEpoch.toFixed(2)} s per training epoch` +
      (result.stoppedEarly ? " (early stopping)" : ""),
  );
}
