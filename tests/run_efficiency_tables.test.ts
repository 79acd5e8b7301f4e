/**
 * The efficiency notebooks' tables from efficiency files: ours beside the paper's with the ratios
 * to Mamba4Rec, the smoke table without the paper, memory by purpose, the length sweep and the
 * padding comparison; finding files by model, dataset and layout; and the training-modes table.
 */
import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import type { TrainResult } from "../models/training/trainer.ts";
import {
  type EfficiencyMeasurement,
  type HistoryLayout,
  layoutText,
  writeEfficiencyMeasurement,
} from "../run/efficiency_file.ts";
import { efficiencyMeasurements } from "../run/efficiency_runs.ts";
import { layoutTable, lengthSweepTable, sweepRequests } from "../run/efficiency_sweep.ts";
import {
  MAMBA4REC_PAPER_EFFICIENCY,
  memoryByPurposeTable,
  paperEfficiencyTable,
  smokeEfficiencyTable,
} from "../run/efficiency_tables.ts";
import type { GridCell } from "../run/grid_runs.ts";
import { MAMBA4REC_TRAINING_MODES } from "../run/paper_grids.ts";
import type { IndexedRecord } from "../run/run_index.ts";
import {
  compareSeeds,
  epochsToBest,
  secondsToBest,
  trainingModesTable,
  trainingModesVerdict,
} from "../run/training_modes.ts";
import { FAKE_MEASUREMENT_PROVENANCE } from "./fake_efficiency.ts";
import { withTempDir } from "./temp_files.ts";

/** A measurement with the given figures (seconds per epoch over 10 steps, or projected). */
function measurement(
  model: string,
  histories: HistoryLayout,
  figures: { seconds: number; peak: number; inference: number; projected?: boolean },
  dataset = "ml-1m",
): EfficiencyMeasurement {
  const projected = figures.projected ?? false;
  return {
    ...FAKE_MEASUREMENT_PROVENANCE,
    model,
    dataset,
    parameters: 1,
    trainConfig: {} as EfficiencyMeasurement["trainConfig"],
    modelConfig: {},
    histories,
    training: {
      stepsPerEpoch: 10,
      stepsTimed: projected ? 2 : 10,
      epochsTimed: projected ? 0 : 1,
      warmupSteps: 2,
      projected,
      seconds: projected ? figures.seconds / 5 : figures.seconds,
      secondsPerEpoch: figures.seconds,
      samples: 100,
      tokens: projected ? 200 : 1000,
      tokensPerSecond: 1,
      meanLoss: 1,
      peakLiveBytes: figures.peak,
      peakByPurpose: { parameters: figures.peak / 4, activations: (3 * figures.peak) / 4, pool: 7 },
    },
    inference: {
      split: "test",
      users: 4096,
      secondsPerBatch: figures.inference,
      repeats: [figures.inference],
      peakLiveBytes: 1e6,
      peakByPurpose: { parameters: 5e5, activations: 5e5 },
    },
  };
}

const window200: HistoryLayout = { kind: "window", length: 200 };

Deno.test("efficiency table: ours beside the paper's, each side's ratio to Mamba4Rec", () => {
  const ours = [
    measurement("sasrec", window200, { seconds: 30, peak: 6e9, inference: 0.02 }),
    measurement("mamba4rec", window200, { seconds: 10, peak: 2e9, inference: 0.01 }),
  ];
  const table = paperEfficiencyTable(ours);
  assertEquals(table.rows.map((r) => r.model), ["SASRec", "Mamba4Rec"]);
  const sasrec = table.rows[0];
  assertEquals(sasrec["GPU memory (GB) ours"], 6);
  assertEquals(sasrec["GPU memory (GB) paper"], 14.98);
  assertEquals(sasrec["GPU memory (GB) ours ÷ Mamba4Rec"], 3);
  assertEquals(sasrec["GPU memory (GB) paper ÷ Mamba4Rec"], Math.round((14.98 / 4.82) * 100) / 100);
  assertEquals(sasrec["training s / epoch ours ÷ Mamba4Rec"], 3);
  assertEquals(sasrec["training s / epoch paper ÷ Mamba4Rec"], 1.74);
  assertEquals(sasrec["inference s / batch ours ÷ Mamba4Rec"], 2);
  assertEquals(table.rows[1]["training s / epoch ours ÷ Mamba4Rec"], 1);
  assertStringIncludes(table.toText(), "unverified");
  // Without Mamba4Rec measured, no ratio of ours is invented.
  const alone = paperEfficiencyTable(ours.slice(0, 1));
  assertEquals(alone.rows[0]["GPU memory (GB) ours ÷ Mamba4Rec"], "—");
  assertEquals(MAMBA4REC_PAPER_EFFICIENCY.rows.length, 3);
});

Deno.test("efficiency smoke table: the slice and our figures, no paper column", () => {
  const smoke = {
    ...measurement("mamba4rec", { kind: "window", length: 20 }, {
      seconds: 4.321,
      peak: 1.7e7,
      inference: 0.14637,
    }),
    slice: { maxUsers: 10, contents: { users: 10, items: 18, interactions: 99 } },
  };
  const table = smokeEfficiencyTable([smoke]);
  assert(!table.columns.some((c) => c.includes("paper")), table.columns.join(", "));
  assertEquals(table.rows[0].slice, "10 users, 18 items, 99 interactions");
  assertEquals(table.rows[0]["memory (MB)"], 17);
  assertEquals(table.rows[0]["training s / epoch"], 4.32);
  assertEquals(smokeEfficiencyTable([]).rows.length, 1);
  const purposes = memoryByPurposeTable([smoke]);
  assertEquals(purposes.rows.map((r) => r.phase), ["training", "inference"]);
  // Each row names what was measured: several layouts of one model share the table.
  assertEquals(purposes.rows[0].dataset, "ML-1M");
  assertEquals(purposes.rows[0].histories, layoutText(smoke.histories));
  assertEquals(purposes.rows[0]["peak (MB)"], 17);
  assertEquals(purposes.rows[0].activations, 12.8);
});

Deno.test("length sweep and padding tables: projected epochs, missing points, ratios", () => {
  const sweep = [
    measurement("ssd4rec", { kind: "cut", length: 50 }, {
      seconds: 2,
      peak: 1e8,
      inference: 0.1,
      projected: true,
    }),
    measurement("sasrec", { kind: "window", length: 50 }, { seconds: 3, peak: 2e8, inference: 1 }),
  ];
  const table = lengthSweepTable(sweep, { models: ["ssd4rec", "sasrec"], lengths: [50, 100] });
  assertEquals(table.rows.map((r) => [r.model, r.L, r.timing]), [
    ["SSD4Rec", 50, "projected from 2 of 10 steps"],
    ["SASRec", 50, "measured"],
  ]);
  assertStringIncludes(table.toText(), "Not measured yet: SSD4Rec L = 100, SASRec L = 100.");
  const requests = sweepRequests("ml-1m", [50], 40);
  assertEquals(requests.map((r) => [r.model, r.varLen, r.maxSteps]), [
    ["ssd4rec", false, 40],
    ["sasrec", undefined, 40],
    ["mamba4rec", undefined, 40],
  ]);
  assert(!("maxSteps" in sweepRequests("ml-1m", [10])[0]), "a smoke request sets no maxSteps");
  const layouts = layoutTable("packed vs padded", [
    measurement("ssd4rec", { kind: "whole" }, { seconds: 2, peak: 1e8, inference: 0.1 }),
    measurement("ssd4rec", { kind: "padded", length: 50 }, {
      seconds: 5,
      peak: 3e8,
      inference: 0.2,
      projected: true,
    }),
    // A second dataset's rows are compared with its own first row, not with ML-1M's.
    measurement("ssd4rec", { kind: "whole" }, { seconds: 4, peak: 2e8, inference: 0.1 }, "x"),
    measurement("ssd4rec", { kind: "padded", length: 50 }, {
      seconds: 6,
      peak: 5e8,
      inference: 0.1,
    }, "x"),
  ]);
  assertEquals(layouts.rows.map((r) => r["× time"]), [1, 2.5, 1, 1.5]);
  assertEquals(layouts.rows.map((r) => r["× memory"]), [1, 3, 1, 2.5]);
  // Tokens of an epoch: counted over whole epochs, or projected from the steps timed.
  assertEquals(layouts.rows.map((r) => r["tokens / epoch"]), [1000, 1000, 1000, 1000]);
});

Deno.test("efficiency runs: files found by model, dataset and layout; quick mode measures no missing one", async () => {
  await withTempDir("efficiency-runs-", async (dir) => {
    const datasets = join(dir, "datasets");
    await Deno.mkdir(datasets);
    await Deno.writeTextFile(join(datasets, "ml-1m.txt"), "1 1\n1 2\n2 1\n2 2\n");
    const out = join(dir, "efficiency");
    const preset = { batchSize: 2048, evalBatchSize: 4096 } as EfficiencyMeasurement["trainConfig"];
    const found = {
      ...measurement("sasrec", window200, { seconds: 3, peak: 1, inference: 1 }),
      trainConfig: preset,
    };
    await writeEfficiencyMeasurement(out, found);
    // Another batch size is another measurement: not the paper settings' one.
    await writeEfficiencyMeasurement(out, {
      ...found,
      model: "mamba4rec",
      trainConfig: { ...preset, batchSize: 512 },
    });
    await writeEfficiencyMeasurement(out, {
      ...found,
      histories: { kind: "window", length: 50 },
      measuredAt: "2027-01-01T00:00:00.000Z",
    });
    const runs = await efficiencyMeasurements(
      [{ model: "sasrec", dataset: "ml-1m" }, { model: "mamba4rec", dataset: "ml-1m" }],
      { mode: "quick", smoke: [], directory: out, datasetsDirectory: datasets },
    );
    assertEquals(runs.measured.map((m) => [m.model, m.histories.length]), [["sasrec", 200]]);
    assertEquals(runs.missing.map((r) => r.model), ["mamba4rec"]);
    assertEquals(runs.smoke, []);
  });
});

/** A record's result: epochs with the given train and eval seconds, the best one, the test. */
function result(seconds: [number, number][], bestEpoch: number, ndcg: number): TrainResult {
  return {
    history: seconds.map(([trainSeconds, evalSeconds], epoch) => ({
      epoch,
      loss: 1,
      valid: {},
      trainSeconds,
      evalSeconds,
    })),
    bestEpoch,
    bestValid: {},
    test: { "hit@10": 2 * ndcg, "ndcg@10": ndcg, "mrr@10": ndcg / 2 },
    stoppedEarly: true,
    complete: true,
    secondsPerEpoch: 1,
    epochsThisRun: seconds.length,
  };
}

/** A grid cell of the training-modes grid's `row` with runs of the given results. */
function cell(row: number, dataset: string, results: TrainResult[]): GridCell {
  const runs = results.map((r, i) =>
    ({
      path: `r${i}.json`,
      key: { model: "mamba4rec", dataset, seed: 2020 + i },
      record: { adapter: "Test GPU", result: r },
      staleness: { stale: false },
      settingsDifferences: [],
    }) as unknown as IndexedRecord
  );
  return {
    model: "mamba4rec",
    dataset,
    variant: MAMBA4REC_TRAINING_MODES.variants![row],
    runs,
    missingSeeds: [],
    smoke: undefined,
    orderLimit: undefined,
  };
}

Deno.test("training modes: epochs and GPU seconds to the best epoch, ratios to the paper's objective", () => {
  const prefix = [result([[2, 1], [2, 1], [2, 1]], 1, 0.04), result([[2, 1], [2, 1]], 1, 0.06)];
  const all = [result([[5, 1], [5, 1]], 0, 0.06), result([[5, 1], [5, 1]], 0, 0.06)];
  assertEquals([epochsToBest(prefix[0]), secondsToBest(prefix[0])], [2, 6]);
  assertEquals([epochsToBest(all[0]), secondsToBest(all[0])], [1, 6]);
  const table = trainingModesTable([
    cell(0, "amazon-beauty", prefix),
    cell(1, "amazon-beauty", all),
    cell(0, "ml-1m", []),
  ]);
  assertEquals(table.rows.map((r) => r.objective), [
    "last position (paper)",
    "all positions",
    "last position (paper)",
  ]);
  const [first, second, unrecorded] = table.rows;
  assertEquals(first["NDCG@10"], "0.0500 ± 0.0141");
  assertEquals(first["NDCG@10 ÷ paper's"], "");
  assertEquals(second["NDCG@10 ÷ paper's"], "× 1.20");
  assertEquals(first["epochs to best"], "2.0 ± 0.0");
  assertEquals(second["epochs to best ÷ paper's"], "× 0.50");
  assertEquals(second["GPU s to best ÷ paper's"], "× 1.00");
  assertEquals([unrecorded.seeds, unrecorded["HR@10"]], ["not recorded yet", "—"]);
  assertEquals([first.notes, second.notes], ["", ""]);
  const stale = cell(0, "amazon-beauty", prefix.slice(0, 1));
  const staleRow = trainingModesTable([{
    ...stale,
    runs: [{ ...stale.runs[0], staleness: { stale: true, recordedBy: "x" } } as IndexedRecord],
  }]).rows[0];
  assertEquals(staleRow.notes, "stale: seed 2020 recorded by other code");
  assertAlmostEquals(secondsToBest(result([[1.5, 0.25]], 0, 0)), 1.75);
});

Deno.test("training modes: the verdict weighs each difference against its standard error", () => {
  // Paper: NDCG 0.10, 0.11, 0.12 (mean 0.11, std 0.01); the SE of a difference with another
  // objective of std 0.01 over 3 seeds is 0.01·√(2/3) ≈ 0.00816.
  const paper = [0.10, 0.11, 0.12].map((n) => result([[1, 1]], 0, n));
  const worse = [0.08, 0.09, 0.10].map((n) => result([[2, 1]], 0, n)); // −0.02: −2.45 SE
  const equal = [0.095, 0.105, 0.115].map((n) => result([[1, 1]], 0, n)); // −0.005: −0.61 SE
  const better = [0.125, 0.135, 0.145].map((n) => result([[1, 1]], 0, n)); // +0.025: +3.06 SE
  const c = compareSeeds({ mean: 0.09, std: 0.01, n: 3 }, { mean: 0.11, std: 0.01, n: 3 })!;
  assertAlmostEquals(c.standardErrors, -0.02 / (0.01 * Math.sqrt(2 / 3)), 1e-9);
  assertEquals(c.verdict, "worse");
  assertEquals(
    compareSeeds({ mean: 0.1, std: undefined, n: 1 }, { mean: 0.1, std: 0, n: 2 }),
    undefined,
  );
  const rows = trainingModesVerdict([
    cell(0, "amazon-beauty", paper),
    cell(1, "amazon-beauty", worse),
    cell(2, "amazon-beauty", equal),
    cell(0, "ml-1m", paper),
    cell(1, "ml-1m", better),
    cell(2, "ml-1m", paper.slice(0, 1)),
  ]).rows;
  assertEquals(rows.map((r) => [r.dataset, r.objective]), [
    ["Beauty", "all positions"],
    ["Beauty", "all positions, 2,048 targets a step"],
    ["ML-1M", "all positions"],
    ["ML-1M", "all positions, 2,048 targets a step"],
  ]);
  assertEquals(rows[0]["NDCG@10 Δ"], "-0.0200 (-2.4 SE): worse");
  assertEquals(rows[0].verdict, "worse than the paper's on HR@10, NDCG@10, MRR@10");
  assertEquals(rows[0]["GPU s to best ÷ paper's"], "× 1.50");
  assertEquals(rows[1]["NDCG@10 Δ"], "-0.0050 (-0.6 SE): equal");
  assertEquals(
    rows[1].verdict,
    "equal to or better than the paper's on every metric: closes the gap",
  );
  assertEquals(rows[2]["NDCG@10 Δ"], "+0.0250 (3.1 SE): better");
  assertEquals(rows[2].verdict, "equal to or better than the paper's on every metric");
  assertEquals(rows[3].verdict, "fewer than two seeds on a side: no verdict");
});
