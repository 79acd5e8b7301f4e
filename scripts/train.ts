/**
 * `deno task train --model mamba4rec --dataset <name-or-file> [options]`: trains with RecBole's
 * protocol and prints the best validation and the test metrics and the time per epoch.
 *
 * Options: --format F, --epochs N, --batch-size B, --lr X, --max-len L, --seed S, --dropout P,
 * --layers N, --training-mode prefix|all-positions, --checkpoint-dir DIR, --resume FILE,
 * --continue (resume from DIR/last.safetensors when it exists), --epochs-this-run N and
 * --max-seconds S (stop early in this process; run the same command again to go on),
 * --record FILE (when training is over, save the run as a JSON record for the notebooks), --json.
 *
 * A full run longer than one command may last (a lent GPU caps commands at 10 minutes):
 *
 *     deno task train --dataset ml-1m --checkpoint-dir DIR --continue --max-seconds 540 \
 *       --record results/runs/mamba4rec-ml-1m.json
 *
 * repeated until it prints the test metrics.
 */
import { parseArgs } from "node:util";
import { loadDatasetWithInfo } from "../data/load.ts";
import { resolveDatasetSource } from "../data/paths.ts";
import type { InteractionFormat } from "../data/formats.ts";
import { initGpu } from "../ops/core/runtime.ts";
import { trainConfig } from "../models/config.ts";
import { createModel, MAMBA4REC_PRESETS } from "../models/registry.ts";
import { train } from "../models/training/trainer.ts";
import { meanEpochSeconds, RUN_RECORD_FORMAT, writeRunRecord } from "../run/run_record.ts";

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
    "max-seconds": { type: "string" },
    continue: { type: "boolean", default: false },
    record: { type: "string" },
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
      "       [--continue] [--epochs-this-run N] [--max-seconds S] [--record FILE] [--json]",
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
// The paper's settings by the dataset's name (a file is named by its stem: `…/ml-1m.inter` is
// ml-1m); a missing dataset fails at loading, after the configuration is checked.
const sourceName = (() => {
  try {
    return resolveDatasetSource(datasetName).name;
  } catch {
    return datasetName;
  }
})();
const preset = MAMBA4REC_PRESETS[sourceName.toLowerCase()];
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
let resumeFrom = values.resume;
if (values.continue) {
  if (!values["checkpoint-dir"]) {
    console.error("--continue needs --checkpoint-dir (it resumes from DIR/last.safetensors)");
    Deno.exit(2);
  }
  const last = `${values["checkpoint-dir"]}/last.safetensors`;
  resumeFrom ??= await Deno.stat(last).then(() => last, () => undefined);
  if (resumeFrom && !values.json) console.log(`continuing from ${resumeFrom}`);
}
const result = await train(model, dataset, config, {
  resumeFrom,
  maxEpochsThisRun: num("epochs-this-run", values["epochs-this-run"]),
  maxSecondsThisRun: num("max-seconds", values["max-seconds"]),
});
// A call that only resumed a finished run leaves an existing record as it is.
const recordExists = values.record
  ? await Deno.stat(values.record).then(() => true, () => false)
  : false;
if (values.record && result.complete && (result.epochsThisRun > 0 || !recordExists)) {
  await writeRunRecord(values.record, {
    format: RUN_RECORD_FORMAT,
    model: model.name,
    dataset: dataset.name,
    users: dataset.numUsers - 1,
    items: dataset.numItems - 1,
    adapter: info.description,
    finishedAt: new Date().toISOString(),
    command: ["deno task train", ...Deno.args.filter((a) => a !== "--json")].join(" "),
    modelConfig: { ...model.config },
    trainConfig: config,
    parameters: model.params.count(),
    result,
  });
  if (!values.json) console.log(`run recorded in ${values.record}`);
}
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
    complete: result.complete,
    secondsPerEpoch: result.secondsPerEpoch,
    meanEpochSeconds: meanEpochSeconds(result),
    history: result.history,
  }));
} else {
  console.log(
    `${result.history.length} epochs, ${result.secondsPerEpoch.toFixed(2)} s per training epoch` +
      (result.stoppedEarly ? " (early stopping)" : ""),
  );
  if (!result.complete) {
    console.log(
      `paused after epoch ${result.history.length}: run the same command with --continue to go on ` +
        "(the test metrics above are those of the best epoch so far)",
    );
  }
}
