import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { basename, join } from "node:path";
import { trainConfig } from "../models/config.ts";
import type { CodeVersion } from "../run/code_version.ts";
import {
  describeSlice,
  type GridCell,
  gridRunKey,
  gridRuns,
  recordCommand,
  recordOrderLimit,
  variantSettings,
} from "../run/grid_runs.ts";
import { modelVariant, VARIANT_TRAIN_OPTIONS, variantTag } from "../run/model_variant.ts";
import { overallChart, overallTable, perSeedTable } from "../run/overall_table.ts";
import { MAMBA4REC_ABLATION, PAPER_SEEDS, RUN_GRIDS } from "../run/paper_grids.ts";
import type { RunGrid } from "../run/run_grid.ts";
import type { PaperValues } from "../run/paper_values.ts";
import { listNotebooks } from "../run/reproduce.ts";
import { planLines, planReproduction, scaledRunSeconds } from "../run/reproduction_plan.ts";
import {
  type IndexedRecord,
  presetSettingsDifferences,
  readRunIndex,
  RunIndex,
} from "../run/run_index.ts";
import {
  defaultRunsDirectory,
  readRunRecord,
  recordKey,
  RUN_RECORD_FORMAT,
  type RunRecord,
  runRecordPath,
  writeRunRecord,
} from "../run/run_record.ts";
import { formatSeedSummary, relativeDifference, summarizeSeeds } from "../run/seed_summary.ts";
import { withTempDir } from "./temp_files.ts";

const NOW: CodeVersion = {
  commit: "a".repeat(40),
  dirty: false,
  sourceHash: `sha256:${"1".repeat(64)}`,
};
const OTHER: CodeVersion = {
  commit: "b".repeat(40),
  dirty: false,
  sourceHash: `sha256:${"2".repeat(64)}`,
};

/**
 * A record of Mamba4Rec on Amazon Beauty with the preset's settings (L = 50, dropout 0.4) and
 * `seed`, made by `code`, whose epochs took `epochSeconds` each (training, then evaluation).
 */
function beautyRecord(
  seed: number,
  options: { code?: CodeVersion; ndcg?: number; epochs?: number; finishedAt?: string } = {},
): RunRecord {
  const ndcg = options.ndcg ?? 0.04;
  const epochs = options.epochs ?? 3;
  return {
    format: RUN_RECORD_FORMAT,
    code: options.code ?? NOW,
    deno: Deno.version.deno,
    model: "mamba4rec",
    dataset: "amazon-beauty",
    users: 22363,
    items: 12101,
    adapter: "test adapter",
    finishedAt: options.finishedAt ?? "2026-01-01T00:00:00.000Z",
    command: `deno task train --dataset amazon-beauty --seed ${seed}`,
    modelConfig: { dropoutProb: 0.4, seed },
    trainConfig: trainConfig({ maxLength: 50, seed }),
    parameters: 1,
    result: {
      history: Array.from({ length: epochs }, (_, epoch) => ({
        epoch,
        loss: 1,
        valid: {},
        trainSeconds: 10,
        evalSeconds: 2,
      })),
      bestEpoch: 0,
      bestValid: {},
      test: { "hit@10": 2 * ndcg, "ndcg@10": ndcg, "mrr@10": ndcg / 2 },
      stoppedEarly: false,
      complete: true,
      secondsPerEpoch: 10,
      epochsThisRun: epochs,
    } as unknown as RunRecord["result"],
  };
}

const GRID: RunGrid = {
  notebook: "t",
  title: "t",
  models: ["mamba4rec", "caser"],
  datasets: ["amazon-beauty"],
  seeds: [2020, 2021, 2022],
};

Deno.test("run records: the file name carries the model, dataset and seed", () => {
  assertEquals(
    basename(runRecordPath({ model: "Mamba4Rec", dataset: "ml-1m", seed: 2021 }, "/r")),
    "mamba4rec-ml-1m-seed2021.json",
  );
  let error: unknown;
  try {
    runRecordPath({ model: "m", dataset: "d", seed: -1 }, "/r");
  } catch (e) {
    error = e;
  }
  assertStringIncludes(String(error), "seed must be a non-negative integer, got -1");
});

Deno.test("run records: every repository record lives under its model, dataset and seed", async () => {
  const directory = defaultRunsDirectory();
  let count = 0;
  for await (const entry of Deno.readDir(directory)) {
    const path = join(directory, entry.name);
    const record = await readRunRecord(path);
    if (record === null) throw new Error(`${path}: not read`);
    assertEquals(path, runRecordPath(recordKey(record), directory), "record under another name");
    count++;
  }
  assert(count > 0, "no records in the repository");
});

Deno.test("preset settings: a record of the preset has no differences; others list each", () => {
  assertEquals(presetSettingsDifferences(beautyRecord(2020)), []);
  const other = beautyRecord(2021);
  const changed: RunRecord = {
    ...other,
    trainConfig: { ...other.trainConfig, maxLength: 20 },
    modelConfig: { ...other.modelConfig, dropoutProb: 0.2 },
  };
  assertEquals(presetSettingsDifferences(changed), [
    "maxLength: recorded 20, preset 50",
    "model.dropoutProb: recorded 0.2, preset 0.4",
  ]);
  assertEquals(presetSettingsDifferences({ ...other, model: "nope" }), [
    "model: 'nope' is not a registered model",
  ]);
});

Deno.test("run index and plan: recorded, stale, missing, other settings, and the time estimate", async () => {
  await withTempDir("ssmrec-plan-", async (dir) => {
    const at = (seed: number) =>
      runRecordPath({ model: "mamba4rec", dataset: "amazon-beauty", seed }, dir);
    await writeRunRecord(at(2020), beautyRecord(2020, { epochs: 3 }));
    await writeRunRecord(at(2021), beautyRecord(2021, { code: OTHER, epochs: 5 }));
    // Another file with seed 2022 but other settings: it never stands for the paper's run.
    const off = beautyRecord(2022);
    await writeRunRecord(join(dir, "mamba4rec-short.json"), {
      ...off,
      trainConfig: { ...off.trainConfig, maxLength: 20 },
    });
    const index = await readRunIndex(dir, NOW);
    assertEquals(index.records.length, 3);
    assertEquals(
      index.find({ model: "mamba4rec", dataset: "amazon-beauty", seed: 2022 }),
      undefined,
    );
    const plan = planReproduction([GRID, GRID], index);
    assertEquals(plan.runs.length, 6, "a run in two grids counts once");
    assertEquals([plan.recorded, plan.stale, plan.missing], [1, 1, 4]);
    assertEquals(plan.runs.map((r) => r.status), [
      "recorded",
      "stale",
      "missing",
      "missing",
      "missing",
      "missing",
    ]);
    // The mean of the recorded runs' seconds: (3 · 12 + 5 · 12) / 2 = 48 for the missing one; the
    // stale one is estimated by its own record, 5 · 12 = 60, and the current one not at all.
    assertAlmostEquals(plan.missingSeconds, 48);
    assertAlmostEquals(plan.staleSeconds, 60);
    assertEquals(plan.runs[0].estimateSeconds, undefined);
    assertAlmostEquals(plan.runs[1].estimateSeconds!, 60);
    assertEquals(plan.unknown.map((k) => `${k.model}/${k.seed}`), [
      "caser/2020",
      "caser/2021",
      "caser/2022",
    ]);
    assertEquals(plan.cellsWithoutRecord, [{ model: "caser", dataset: "amazon-beauty" }]);
    const quick = planLines(plan, "quick").join("\n");
    assertStringIncludes(
      quick,
      "6 run(s) in the selected notebooks: 2 recorded (1 of them by other code: stale), 4 missing",
    );
    assertStringIncludes(quick, "about 48s for 1 of them");
    assertStringIncludes(quick, "trains them again (about 1m 00s of GPU time by their records)");
    assertStringIncludes(quick, "unknown for 3 (nothing recorded of caser on amazon-beauty)");
    assertStringIncludes(quick, "1 cell(s) without any record get a smoke run");
    assertStringIncludes(
      planLines(plan, "full").join("\n"),
      "full mode trains the 4 missing run(s)",
    );
    assertEquals(planLines(planReproduction([], index), "quick"), [
      "plan: the selected notebooks neither train nor show any run",
    ]);
    const none = planReproduction([{ ...GRID, models: ["caser"] }], index);
    assertStringIncludes(
      planLines(none, "full").join("\n"),
      "GPU time of the missing runs: unknown",
    );
  });
});

Deno.test("seed summary: mean and sample standard deviation, printed to RecBole's 4 decimals", () => {
  const s = summarizeSeeds([0.1, 0.2, 0.3])!;
  assertAlmostEquals(s.mean, 0.2, 1e-12);
  assertAlmostEquals(s.std!, 0.1, 1e-12);
  assertEquals(formatSeedSummary(s), "0.2000 ± 0.1000");
  assertEquals(formatSeedSummary(summarizeSeeds([0.25])), "0.2500");
  assertEquals(summarizeSeeds([]), undefined);
  assertEquals(relativeDifference(0.2474, 0.3121), "-20.7%");
  assertEquals(relativeDifference(0.33, 0.3), "+10.0%");
  assertEquals(relativeDifference(undefined, 0.3), "—");
});

Deno.test("overall table: ours over the seeds beside verified paper values; no invented numbers", async () => {
  await withTempDir("ssmrec-table-", async (dir) => {
    const at = (seed: number) =>
      runRecordPath({ model: "mamba4rec", dataset: "amazon-beauty", seed }, dir);
    await writeRunRecord(at(2020), beautyRecord(2020, { ndcg: 0.04 }));
    await writeRunRecord(at(2021), beautyRecord(2021, { ndcg: 0.06, code: OTHER }));
    const index = await readRunIndex(dir, NOW);
    const runs = index.ofModelAndDataset("mamba4rec", "amazon-beauty");
    const cells: GridCell[] = [
      {
        model: "mamba4rec",
        dataset: "amazon-beauty",
        runs,
        missingSeeds: [2022],
        smoke: undefined,
        orderLimit: undefined,
      },
      {
        model: "caser",
        dataset: "amazon-beauty",
        runs: [],
        missingSeeds: [...PAPER_SEEDS],
        smoke: undefined,
        orderLimit: undefined,
      },
    ];
    const paper: PaperValues[] = [{
      model: "mamba4rec",
      dataset: "amazon-beauty",
      metrics: { "ndcg@10": 0.1 },
      source: "test",
    }];
    const table = overallTable("t", cells, paper);
    const [ours, caser] = table.rows;
    assertEquals(ours.model, "Mamba4Rec");
    assertEquals(ours.seeds, "2 seeds (2022 not recorded yet)");
    assertEquals(ours["NDCG@10 ours"], "0.0500 ± 0.0141");
    assertEquals(ours["NDCG@10 paper"], "0.1000");
    assertEquals(ours["NDCG@10 Δ"], "-50.0%");
    assertEquals(ours["HR@10 paper"], "—");
    assertStringIncludes(String(ours.notes), "stale: seed 2021 recorded by other code");
    assertEquals(caser["NDCG@10 ours"], "not recorded yet");
    assertEquals(caser["NDCG@10 Δ"], "—");
    assertStringIncludes(table.toHTML(), "--retrain-stale");
    const seeds = perSeedTable(cells);
    // Seeds print as written (a number column would get thousands separators).
    assertEquals(seeds.rows.map((r) => [r.seed, r["NDCG@10"]]), [
      ["2020", "0.0400"],
      ["2021", "0.0600"],
    ]);
  });
});

Deno.test("smoke slices: described by what they hold", () => {
  assertEquals(
    describeSlice({ users: 11, items: 52, interactions: 1234 }),
    "11 users, 52 items, 1,234 interactions",
  );
});

Deno.test("order limit: ML-1M from the datasets folder's file is flagged, from a RecBole file not", () => {
  const ml1m = { ...beautyRecord(2020), dataset: "ml-1m" };
  assert(recordOrderLimit({ ...ml1m, command: "deno task train --dataset ml-1m" }) !== undefined);
  assertEquals(
    recordOrderLimit({ ...ml1m, command: "deno task train --dataset data/ml-1m.inter" }),
    undefined,
  );
  assertEquals(recordOrderLimit(beautyRecord(2020)), undefined);
});

Deno.test("notebook discovery: the top level and one folder down, sorted, autosaves left out", async () => {
  await withTempDir("ssmrec-notebooks-", async (root) => {
    const files = [
      "notebooks/datasets.ipynb",
      "notebooks/ssd4rec/b.ipynb",
      "notebooks/mamba4rec/table2_overall.ipynb",
      "notebooks/mamba4rec/.ipynb_checkpoints/table2_overall-checkpoint.ipynb",
      "notebooks/mamba4rec/deeper/x.ipynb",
      "notebooks/readme.md",
    ];
    for (const f of files) {
      await Deno.mkdir(join(root, f, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, f), "{}");
    }
    const found = await listNotebooks(root);
    assertEquals(found.map((n) => [n.folder, n.name]), [
      ["", "datasets"],
      ["mamba4rec", "table2_overall"],
      ["ssd4rec", "b"],
    ]);
  });
});

/** A Beauty record of the ablation row with model settings `settings` over the preset's. */
function variantRecord(seed: number, settings: Record<string, unknown>, ndcg: number): RunRecord {
  const base = beautyRecord(seed, { ndcg });
  return { ...base, modelConfig: { ...base.modelConfig, ...settings } };
}

Deno.test("model variants: the tag of model settings over the preset's; none for the paper's", () => {
  assertEquals(variantTag({}), undefined);
  assertEquals(
    variantTag({ numLayers: 2, ffn: false, seed: 1, numItems: 9 }),
    "ffn-false_numLayers-2",
  );
  assertEquals(variantTag({ positionEmbedding: true, maxLength: 50 }), "positionEmbedding-true");
  assertEquals(
    modelVariant("mamba4rec", "amazon-beauty", beautyRecord(2020).modelConfig),
    undefined,
  );
  // The preset's dropout is 0.4 on Beauty: 0 is a variant, 0.2 too, the model's default aside.
  assertEquals(
    modelVariant("mamba4rec", "amazon-beauty", { dropoutProb: 0, seed: 1 }),
    "dropoutProb-0",
  );
  assertEquals(modelVariant("mamba4rec", "ml-1m", { dropoutProb: 0.2, numItems: 9 }), undefined);
  assertEquals(modelVariant("nope", "ml-1m", { ffn: false }), undefined);
  // Every ablation row's key is the one its record reads back as.
  for (const variant of MAMBA4REC_ABLATION.variants!) {
    const record = variantRecord(2020, variantSettings(variant, 50), 0.05);
    assertEquals(
      recordKey(record),
      gridRunKey("mamba4rec", "amazon-beauty", 2020, variant),
      variant.label,
    );
  }
});

Deno.test("run records: a model variant's record has its own file, and the paper's name is kept", () => {
  const key = { model: "mamba4rec", dataset: "amazon-beauty", seed: 2020 };
  assertEquals(basename(runRecordPath(key, "/r")), "mamba4rec-amazon-beauty-seed2020.json");
  assertEquals(
    basename(runRecordPath({ ...key, variant: "ffn-false_numLayers-2" }, "/r")),
    "mamba4rec-amazon-beauty-seed2020-ffn-false_numlayers-2.json",
  );
  assertStringIncludes(
    recordCommand(key, "/r/x.json", { dropoutProb: 0, numLayers: 2 }),
    "--seed 2020 --dropout 0 --layers 2 --record /r/x.json",
  );
});

Deno.test("ablation grid: each row finds its own records, a recorded-only dataset is never trained", async () => {
  await withTempDir("ssmrec-ablation-", async (dir) => {
    const rows: [Record<string, unknown>, number][] = [
      [{}, 0.04],
      [{ ffn: false }, 0.03],
      [{ dropoutProb: 0 }, 0.02],
      [{ positionEmbedding: true, maxLength: 50 }, 0.01],
    ];
    for (const [settings, ndcg] of rows) {
      const record = variantRecord(2021, settings, ndcg);
      await writeRunRecord(runRecordPath(recordKey(record), dir), record);
    }
    const index = await readRunIndex(dir, NOW);
    assertEquals(index.records.length, 4, "the rows overwrote each other");
    assertEquals(
      index.find({ model: "mamba4rec", dataset: "amazon-beauty", seed: 2021 })?.record.result
        .test["ndcg@10"],
      0.04,
    );
    const grid: RunGrid = { ...MAMBA4REC_ABLATION, datasets: [], recordedOnly: ["amazon-beauty"] };
    const cells = await gridRuns(grid, { mode: "quick", index, directory: dir });
    assertEquals(cells.length, MAMBA4REC_ABLATION.variants!.length);
    assert(cells.every((c) => c.smoke === undefined), "a recorded-only dataset got a smoke run");
    const ndcg = cells.map((c) => c.runs.map((r) => r.record.result.test["ndcg@10"]));
    assertEquals(ndcg, [[0.04], [0.03], [], [0.02], [0.01], [], []]);
    const paper: PaperValues[] = [{
      model: "mamba4rec",
      dataset: "amazon-beauty",
      metrics: { "ndcg@10": 0.1 },
      source: "test",
    }];
    const table = overallTable("t", cells, paper);
    assertEquals(table.rows.map((r) => r.model), MAMBA4REC_ABLATION.variants!.map((v) => v.label));
    assertEquals(table.rows.map((r) => r["NDCG@10 paper"]), [
      "0.1000",
      "—",
      "—",
      "—",
      "—",
      "—",
      "—",
    ]);
    assertEquals(table.rows[2]["NDCG@10 ours"], "not recorded yet");
    const chart = overallChart("t", cells, { key: "ndcg@10", label: "NDCG@10" });
    assertEquals(chart.data.length, MAMBA4REC_ABLATION.variants!.length);
  });
});

Deno.test("the plan counts every ablation row: its own missing runs and smoke cells, and a recorded-only dataset only where recorded", async () => {
  await withTempDir("ssmrec-plan-ablation-", async (dir) => {
    const index = await readRunIndex(dir, NOW);
    const rows = MAMBA4REC_ABLATION.variants!.length;
    const seeds = MAMBA4REC_ABLATION.seeds.length;
    const plan = planReproduction([MAMBA4REC_ABLATION], index);
    assertEquals(plan.missing, rows * seeds, "each row's seeds on the trained dataset");
    assertEquals(plan.cellsWithoutRecord.length, rows, "a cell without record per row");
    assertEquals(plan.smokeCells.map((c) => c.row), ["+ position embedding"]);
    assert(plan.runs.every((r) => r.key.dataset === "amazon-beauty"), "recorded-only left out");
    const tags = new Set(plan.runs.map((r) => r.key.variant ?? "full"));
    assertEquals(tags.size, rows, `one key per row: ${[...tags].join(", ")}`);
    assertStringIncludes(planLines(plan, "quick").join("\n"), `${rows} cell(s) without any record`);
  });
});

Deno.test("training-setting variants: tagged, found by their grid row, and trained by their command", async () => {
  const row = { label: "all positions", model: {}, train: { trainingMode: "all-positions" } };
  const base = beautyRecord(2022, { ndcg: 0.03 });
  const record: RunRecord = {
    ...base,
    trainConfig: { ...base.trainConfig, trainingMode: "all-positions" },
  };
  const key = gridRunKey("mamba4rec", "amazon-beauty", 2022, row);
  assertEquals(key.variant, "trainingMode-all-positions");
  assertEquals(recordKey(record), key);
  // A training setting outside the variant keys never makes a variant.
  assertEquals(variantTag({}, { learningRate: 0.01 }), undefined);
  assertEquals(
    variantTag({ beta: 0 }, { maxLength: 50, varLen: false }),
    "beta-0_maxLength-50_varLen-false",
  );
  assertStringIncludes(
    recordCommand(key, "/r/x.json", {}, row.train),
    "--seed 2022 --training-mode all-positions --record /r/x.json",
  );
  assertThrows(
    () => recordCommand(key, "/r/x.json", {}, { learningRate: 0.1 }),
    Error,
    "learningRate",
  );
  // Every training setting of every grid row has its train option.
  for (const grid of RUN_GRIDS) {
    for (const variant of grid.variants ?? []) {
      const command = recordCommand(key, "/r/x.json", {}, variant.train ?? {});
      for (const [setting, value] of Object.entries(variant.train ?? {})) {
        assertStringIncludes(command, ` ${VARIANT_TRAIN_OPTIONS[setting]} ${value}`, setting);
      }
    }
  }
  await withTempDir("ssmrec-train-variant-", async (dir) => {
    await writeRunRecord(runRecordPath(recordKey(record), dir), record);
    await writeRunRecord(runRecordPath(recordKey(base), dir), base);
    const index = await readRunIndex(dir, NOW);
    assertEquals(index.find(key)?.record.trainConfig.trainingMode, "all-positions");
    assertEquals(index.find(key)?.settingsDifferences, []);
    const paper = index.find({ model: "mamba4rec", dataset: "amazon-beauty", seed: 2022 });
    assertEquals(paper?.record.trainConfig.trainingMode, base.trainConfig.trainingMode);
  });
});

/** An indexed record of `model` on `dataset` whose one epoch took `seconds`, for estimates. */
function timedRecord(
  model: string,
  dataset: string,
  seed: number,
  seconds: number,
  settingsDifferences: string[] = [],
): IndexedRecord {
  const record = beautyRecord(seed, { epochs: 1 });
  const history = [{ ...record.result.history[0], trainSeconds: seconds, evalSeconds: 0 }];
  return {
    path: `${model}-${dataset}-${seed}.json`,
    record: { ...record, model, dataset, result: { ...record.result, history } },
    key: { model, dataset, seed },
    staleness: { stale: false, reasons: [] },
    settingsDifferences,
  } as unknown as IndexedRecord;
}

Deno.test("plan: a cell without records is estimated from its model on other datasets", () => {
  const index = new RunIndex([
    timedRecord("mamba4rec", "a", 2020, 100),
    timedRecord("mamba4rec", "b", 2020, 400),
    timedRecord("sasrec", "a", 2020, 40),
    timedRecord("sasrec", "a", 2021, 60),
    timedRecord("sasrec", "c", 2020, 30),
    timedRecord("caser", "a", 2020, 10),
    timedRecord("caser", "b", 2020, 60),
    // Other settings never count, whatever their time.
    timedRecord("caser", "c", 2020, 1e6, ["maxLength: 20"]),
  ]);
  // sasrec on b: its 50 s on a, times b / a of mamba4rec (4) and of caser (6): √(200 · 300).
  assertAlmostEquals(scaledRunSeconds(index, "sasrec", "b")!, Math.sqrt(200 * 300), 1e-9);
  // caser on c: its 10 s on a times sasrec's c / a (0.6); its b has no reference on c.
  assertAlmostEquals(scaledRunSeconds(index, "caser", "c")!, 6, 1e-9);
  assertAlmostEquals(scaledRunSeconds(index, "mamba4rec", "c")!, 60, 1e-9);
  assertEquals(scaledRunSeconds(index, "gru4rec", "a"), undefined, "no run of the model");
  assertEquals(scaledRunSeconds(index, "sasrec", "d"), undefined, "no run on the dataset");

  const grid: RunGrid = { ...GRID, models: ["sasrec", "gru4rec"], datasets: ["b"] };
  const plan = planReproduction([grid], index);
  assertEquals(plan.scaled.map((k) => `${k.model}/${k.seed}`), [
    "sasrec/2020",
    "sasrec/2021",
    "sasrec/2022",
  ]);
  assertEquals(plan.unknown.length, 3);
  assertAlmostEquals(plan.missingSeconds, 3 * Math.sqrt(200 * 300), 1e-6);
  const lines = planLines(plan, "full").join("\n");
  assertStringIncludes(lines, "for 3 of them (3 scaled, roughly, from the same model's runs on");
  assertStringIncludes(
    lines,
    "ran there: sasrec on b); unknown for 3 (nothing recorded of gru4rec on b)",
  );
});
