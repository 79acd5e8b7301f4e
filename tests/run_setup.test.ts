import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import { ConfigError } from "../models/config.ts";
import { findKnownDataset, KUAIRAND_PURE_LOGS } from "../data/paths.ts";
import { MODEL_NAMES, MODELS } from "../models/registry.ts";
import { SETTINGS_METADATA_KEY, SettingsMismatchError } from "../models/training/checkpoint.ts";
import { firstUsersName, firstUsersText } from "../run/dataset_slice.ts";
import { checkOutputDirectory, checkOutputFile, OutputPathError } from "../run/outputs.ts";
import { checkResume } from "../run/resume.ts";
import { plannedSettings, planRun } from "../run/setup.ts";

/** A datasets directory with small stand-ins for ML-1M and Amazon Beauty, and a nested copy. */
async function datasetsDirectory(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const text = "1 1\n1 2\n2 1\n2 2\n";
  await Deno.writeTextFile(join(dir, "ml-1m.txt"), text);
  await Deno.writeTextFile(join(dir, "amazon-beauty.txt"), text);
  await Deno.mkdir(join(dir, "some", "dir"), { recursive: true });
  await Deno.writeTextFile(join(dir, "some", "dir", "amazon-beauty.inter"), text);
  await Deno.writeTextFile(join(dir, "other.txt"), text);
  return dir;
}

Deno.test("planRun: dataset aliases and files get the model's preset for the canonical dataset", async () => {
  const dir = await datasetsDirectory();
  try {
    const cases: [string, string, number, number][] = [
      ["ML1M", "ml-1m", 200, 0.2],
      ["movielens-1m", "ml-1m", 200, 0.2],
      ["ml-1m", "ml-1m", 200, 0.2],
      ["beauty", "amazon-beauty", 50, 0.4],
      ["Amazon-Beauty", "amazon-beauty", 50, 0.4],
      [join(dir, "some", "dir", "amazon-beauty.inter"), "amazon-beauty", 50, 0.4],
      [join(dir, "ml-1m.txt"), "ml-1m", 200, 0.2],
    ];
    for (const [dataset, name, maxLength, dropoutProb] of cases) {
      const plan = planRun({ dataset, datasetsDirectory: dir });
      assertEquals(
        [plan.source.name, plan.datasetName, plan.config.maxLength, plan.modelConfig.dropoutProb],
        [name, name, maxLength, dropoutProb],
        dataset,
      );
    }
    // A dataset no paper has settings for gets the defaults.
    const other = planRun({ dataset: "other", datasetsDirectory: dir });
    assertEquals([other.preset, other.config.maxLength, other.modelConfig.dropoutProb], [
      undefined,
      200,
      undefined,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: ssd4rec gets its training defaults and per-dataset presets; explicit settings beat them", async () => {
  const dir = await datasetsDirectory();
  try {
    const plan = (dataset: string, train: Record<string, unknown> = {}) =>
      planRun({ model: "ssd4rec", dataset, datasetsDirectory: dir, train });
    const pick = ({ config, modelConfig }: ReturnType<typeof plan>) => [
      [config.batchSize, config.evalBatchSize, config.learningRate, config.stoppingStep],
      [config.maskRatio, config.varLen, config.maxLength, config.topk],
      [modelConfig.numLayers, modelConfig.normEmbedding, modelConfig.dropoutProb, modelConfig.beta],
    ];
    const shipped = [1024, 2048, 0.001, 10];
    assertEquals(pick(plan("ML1M")), [
      shipped,
      [0.1, true, 200, [10, 20]],
      [2, true, 0.2, 0.1],
    ]);
    assertEquals(pick(plan("beauty")), [
      shipped,
      [0.2, true, 50, [10, 20]],
      [1, false, 0.4, 0.1],
    ]);
    // No preset: the model's own training defaults (whole histories, no masking).
    assertEquals(pick(plan("other")), [
      shipped,
      [0, true, 200, [10, 20]],
      [undefined, undefined, undefined, undefined],
    ]);
    const explicit = plan("ml-1m", { maskRatio: 0.3, varLen: false, maxLength: 40 });
    assertEquals(pick(explicit)[1], [0.3, false, 40, [10, 20]]);
    const settings = plannedSettings(explicit);
    assertEquals([settings.model, settings["train.maskRatio"], settings["train.varLen"]], [
      "ssd4rec",
      0.3,
      false,
    ]);
    // Mamba4Rec's plan has no packed-batch settings, and refuses them by key.
    const mamba = planRun({ dataset: "ml-1m", datasetsDirectory: dir });
    assertEquals(["maskRatio" in mamba.config, "train.maskRatio" in plannedSettings(mamba)], [
      false,
      false,
    ]);
    const refused = assertThrows(
      () => planRun({ dataset: "ml-1m", datasetsDirectory: dir, train: { maskRatio: 0.1 } }),
      ConfigError,
    );
    assertEquals(refused.key, "maskRatio");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every preset is keyed by a known dataset's canonical name", () => {
  for (const [model, entry] of Object.entries(MODELS)) {
    for (const name of Object.keys(entry.presets)) {
      assertEquals(findKnownDataset(name)?.name, name, `${model} preset '${name}'`);
    }
  }
});

Deno.test("planRun: explicit settings beat the preset; undefined ones leave it; the seed reaches the model", async () => {
  const dir = await datasetsDirectory();
  try {
    const plan = planRun({
      dataset: "beauty",
      datasetsDirectory: dir,
      train: { maxLength: 30, seed: 7, epochs: undefined },
      modelConfig: { dropoutProb: 0.1, numLayers: undefined },
    });
    assertEquals([plan.config.maxLength, plan.config.seed, plan.config.epochs], [30, 7, 300]);
    assertEquals(plan.modelConfig, { seed: 7, dropoutProb: 0.1 });
    const kept = planRun({
      dataset: "beauty",
      datasetsDirectory: dir,
      train: { maxLength: undefined },
    });
    assertEquals(kept.config.maxLength, 50);
    const slice = planRun({ dataset: "beauty", datasetsDirectory: dir, maxUsers: 40 });
    assertEquals([slice.datasetName, slice.config.maxLength], [
      firstUsersName("amazon-beauty", 40),
      50,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: an unknown model or a bad setting fails before the dataset is looked up, naming the key", () => {
  const missing = { dataset: "no-such-dataset", datasetsDirectory: "/nonexistent" };
  const model = assertThrows(() => planRun({ ...missing, model: "sasrec9" }), ConfigError);
  assertEquals(model.key, "model");
  assertStringIncludes(model.message, `unknown model 'sasrec9' (known: ${MODEL_NAMES.join(", ")})`);
  const users = assertThrows(() => planRun({ ...missing, maxUsers: 0 }), ConfigError);
  assertEquals(users.key, "maxUsers");
  assertThrows(() => planRun(missing), Deno.errors.NotFound, 'dataset "no-such-dataset" not found');
});

Deno.test("planRun: bad settings fail naming the key", async () => {
  const dir = await datasetsDirectory();
  try {
    const request = { dataset: "ml-1m", datasetsDirectory: dir };
    const batch = assertThrows(() => planRun({ ...request, train: { batchSize: 0 } }), ConfigError);
    assertEquals(batch.key, "batchSize");
    const layers = assertThrows(
      () => planRun({ ...request, modelConfig: { numLayers: -1 } }),
      ConfigError,
    );
    assertEquals(layers.key, "numLayers");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("firstUsersText keeps every line of the first users and nothing else", () => {
  const text = "1 5\n2 6\n1 7\n\n3 8\n2 9\n4 1";
  assertEquals(firstUsersText(text, 2), "1 5\n2 6\n1 7\n2 9");
  assertEquals(firstUsersText(text, 10), "1 5\n2 6\n1 7\n3 8\n2 9\n4 1");
});

Deno.test("output paths: a file in the way of a directory, or a directory in the way of a file, fail at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "taken");
    await Deno.writeTextFile(file, "x");
    await assertRejects(
      () => checkOutputDirectory("--checkpoint-dir", file),
      OutputPathError,
      `--checkpoint-dir ${file}: exists and is not a directory`,
    );
    await assertRejects(
      () => checkOutputDirectory("--checkpoint-dir", join(file, "below")),
      OutputPathError,
      "cannot create or write files in it",
    );
    await assertRejects(() => checkOutputFile("--record", dir), OutputPathError, "is a directory");
    await assertRejects(
      () => checkOutputFile("--record", join(file, "run.json")),
      OutputPathError,
      "--record directory",
    );
    const fresh = join(dir, "new", "ckpt");
    await checkOutputDirectory("--checkpoint-dir", fresh);
    assertEquals([...Deno.readDirSync(fresh)], []);
    await checkOutputFile("--record", join(dir, "runs", "run.json"));
    assertEquals(Deno.statSync(join(dir, "runs")).isDirectory, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Writes a header-only safetensors file with the given metadata. */
async function checkpointWith(path: string, metadata: Record<string, string>): Promise<void> {
  let header = new TextEncoder().encode(JSON.stringify({ __metadata__: metadata }));
  const padded = new Uint8Array(Math.ceil(header.length / 8) * 8).fill(0x20);
  padded.set(header);
  header = padded;
  const bytes = new Uint8Array(8 + header.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  await Deno.writeFile(path, bytes);
}

Deno.test("checkResume: each differing setting is named with both values; safe ones pass only when explicit", async () => {
  const dir = await datasetsDirectory();
  try {
    const request = { dataset: "ml-1m", datasetsDirectory: dir, train: { epochs: 5 } };
    const stored = plannedSettings(planRun(request));
    const path = join(dir, "last.safetensors");
    await checkpointWith(path, { [SETTINGS_METADATA_KEY]: JSON.stringify(stored) });
    assertEquals(await checkResume(planRun(request), path, { explicit: [] }), []);
    // Fewer layers and another batch size: refused, naming both with both values.
    const changed = planRun({
      ...request,
      train: { epochs: 5, batchSize: 64 },
      modelConfig: { numLayers: 2 },
    });
    const e = await assertRejects(
      () => checkResume(changed, path, { explicit: ["model.numLayers", "train.batchSize"] }),
      SettingsMismatchError,
    ) as SettingsMismatchError;
    assertEquals(e.differences.map((d) => d.key), ["model.numLayers", "train.batchSize"]);
    assertStringIncludes(e.message, "model.numLayers is 1 there, 2 now");
    assertStringIncludes(e.message, "train.batchSize is 2048 there, 64 now");
    // Another dataset (or slice) is another training.
    const slice = planRun({ ...request, maxUsers: 10 });
    await assertRejects(
      () => checkResume(slice, path, { explicit: [] }),
      SettingsMismatchError,
      'dataset is "ml-1m" there, "ml-1m (first 10 users)" now',
    );
    // The epoch limit may change, when set explicitly.
    const longer = planRun({ ...request, train: { epochs: 9 } });
    await assertRejects(
      () => checkResume(longer, path, { explicit: [], label: (k) => `${k} (--flag)` }),
      SettingsMismatchError,
      "train.epochs (--flag) (set it explicitly to change it) is 5 there, 9 now",
    );
    assertEquals(
      await checkResume(longer, path, { explicit: ["train.epochs", "train.verbose"] }),
      ["train.epochs", "train.verbose"],
    );
    // A checkpoint without settings is refused, saying what to do.
    const old = join(dir, "old.safetensors");
    await checkpointWith(old, { model: "mamba4rec" });
    await assertRejects(
      () => checkResume(planRun(request), old, { explicit: [] }),
      Error,
      "stores no run settings",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: the KuaiRand log set is checked, named in the dataset and refused elsewhere", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const logs = join(dir, "KuaiRand-Pure", "data");
    await Deno.mkdir(logs, { recursive: true });
    for (const f of KUAIRAND_PURE_LOGS.all) await Deno.writeTextFile(join(logs, f), "user_id\n");
    const base = { dataset: "kuairand", datasetsDirectory: dir, model: "ssd4rec" };
    assertEquals(planRun(base).datasetName, "kuairand-pure");
    assertEquals(planRun({ ...base, kuaiRandLogs: "standard-early" }).datasetName, "kuairand-pure");
    const standard = planRun({ ...base, kuaiRandLogs: "standard" });
    assertEquals(standard.datasetName, "kuairand-pure (standard logs)");
    assertEquals(standard.source.files.length, 2);
    assertEquals(planRun({ ...base, kuaiRandLogs: "all" }).source.files.length, 3);
    const bad = assertThrows(
      () => planRun({ ...base, kuaiRandLogs: "early" as "all" }),
      ConfigError,
      "'kuaiRandLogs' must be one of standard, standard-early, all, got \"early\"",
    );
    assertEquals(bad.key, "kuaiRandLogs");
    const other = join(dir, "tiny.txt");
    await Deno.writeTextFile(other, "1 2\n");
    const elsewhere = assertThrows(
      () => planRun({ dataset: other, kuaiRandLogs: "all" }),
      ConfigError,
      "chooses the logs of a KuaiRand-Pure folder",
    );
    assertEquals(elsewhere.key, "kuaiRandLogs");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: a model that reads only the last item refuses all-positions training up front", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, "1 2\n");
    const request = { dataset: data, train: { trainingMode: "all-positions" } };
    const refused = assertThrows(
      () => planRun({ ...request, model: "narm" }),
      ConfigError,
      'narm represents a window at its last real item only; use trainingMode "prefix"',
    );
    assertEquals(refused.key, "trainingMode");
    assertEquals(planRun({ ...request, model: "gru4rec" }).config.trainingMode, "all-positions");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: a model with its own training loss refuses all-positions training up front", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, "1 2\n");
    const request = { dataset: data, train: { trainingMode: "all-positions" } };
    for (const model of ["bert4rec", "caser"]) {
      const refused = assertThrows(
        () => planRun({ ...request, model }),
        ConfigError,
        `${model} trains with its own objective on prefix batches; use trainingMode "prefix"`,
      );
      assertEquals(refused.key, "trainingMode");
      assertEquals(planRun({ dataset: data, model }).config.trainingMode, "prefix");
    }
    assertEquals(planRun({ ...request, model: "sasrec" }).config.trainingMode, "all-positions");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: Caser's maxLength is the training window's, never another", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, "1 2\n");
    const base = { dataset: data, model: "caser", train: { maxLength: 30 } };
    assertEquals(planRun(base).modelConfig.maxLength, 30);
    assertEquals(planRun({ ...base, modelConfig: { maxLength: 30 } }).modelConfig.maxLength, 30);
    for (const maxLength of [40, 20]) {
      const refused = assertThrows(
        () => planRun({ ...base, modelConfig: { maxLength } }),
        ConfigError,
        `'maxLength' is ${maxLength}, but caser takes windows of exactly its maxLength and the ` +
          "training windows are 30 long (train.maxLength); give both the same length",
      );
      assertEquals(refused.key, "maxLength");
    }
    // A model that only needs windows no longer than its table takes a longer table.
    const sasrec = planRun({ ...base, model: "sasrec", modelConfig: { maxLength: 40 } });
    assertEquals(sasrec.modelConfig.maxLength, 40);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planRun: a window-sized model table follows the training window unless set, never shorter", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, "1 2\n");
    const base = { dataset: data, model: "sasrec" };
    assertEquals(planRun(base).modelConfig.maxLength, planRun(base).config.maxLength);
    const longer = planRun({ ...base, train: { maxLength: 300 } });
    assertEquals(longer.modelConfig.maxLength, 300);
    const shorter = assertThrows(
      () => planRun({ ...base, train: { maxLength: 300 }, modelConfig: { maxLength: 100 } }),
      ConfigError,
      "'maxLength' is 100, shorter than the training windows (train.maxLength 300)",
    );
    assertEquals(shorter.key, "maxLength");
    assertEquals(planRun({ ...base, model: "gru4rec" }).modelConfig.maxLength, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
