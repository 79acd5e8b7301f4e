import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import { basename, join } from "node:path";
import { trainConfig } from "../models/config.ts";
import type { CodeVersion } from "../run/code_version.ts";
import { describeSlice, type GridCell, recordOrderLimit } from "../run/grid_runs.ts";
import { overallTable, perSeedTable } from "../run/overall_table.ts";
import { PAPER_SEEDS, type PaperValues, type RunGrid } from "../run/paper_grids.ts";
import { listNotebooks } from "../run/reproduce.ts";
import { planLines, planReproduction } from "../run/reproduction_plan.ts";
import { presetSettingsDifferences, readRunIndex } from "../run/run_index.ts";
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
    // The mean of the recorded runs' seconds: (3 · 12 + 5 · 12) / 2 = 48 for the missing one.
    assertAlmostEquals(plan.missingSeconds, 48);
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
