import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import { modelPreset } from "../models/registry.ts";
import type { TrainResult } from "../models/training/training_observer.ts";
import { type GridCell, gridRunKey, gridRunTraining } from "../run/grid_runs.ts";
import {
  RUN_GRIDS,
  SSD4REC_ABLATION_GRIDS,
  SSD4REC_BETA_GRIDS,
  SSD4REC_MAX_LENGTH_GRIDS,
  SSD4REC_RHO_GRIDS,
} from "../run/paper_grids.ts";
import { type GridVariant, type RunGrid, smokesCell } from "../run/run_grid.ts";
import type { IndexedRecord } from "../run/run_index.ts";
import { recordKey, type RunKey, type RunRecord } from "../run/run_record.ts";
import { planRun } from "../run/setup.ts";
import { studyRuns } from "../run/study_runs.ts";
import { SECONDS_PER_EPOCH, sweepFigure, sweptValue, testMetric } from "../run/sweep_chart.ts";
import { sweepChart } from "../viz/sweep_chart.ts";
import { withTempDir } from "./temp_files.ts";

/** The SSD4Rec study notebooks' grids, by notebook. */
const STUDIES: Readonly<Record<string, readonly RunGrid[]>> = {
  ablation: SSD4REC_ABLATION_GRIDS,
  figure3_beta: SSD4REC_BETA_GRIDS,
  figure4_rho: SSD4REC_RHO_GRIDS,
  figure5_max_length: SSD4REC_MAX_LENGTH_GRIDS,
};

/** Every dataset a grid shows: trained first, then recorded only. */
function shownDatasets(grid: RunGrid): string[] {
  return [...grid.datasets, ...(grid.recordedOnly ?? [])];
}

/** The row of `grid` labelled `label`. */
function row(grid: RunGrid, label: string): GridVariant {
  const found = grid.variants?.find((v) => v.label === label);
  if (!found) throw new Error(`${grid.notebook}: no row '${label}'`);
  return found;
}

/** A datasets directory with small stand-ins for the datasets the grids name. */
async function standInDatasets(dir: string): Promise<void> {
  for (const name of ["ml-1m", "amazon-beauty", "amazon-video-games"]) {
    await Deno.writeTextFile(join(dir, `${name}.txt`), "1 1\n1 2\n2 1\n2 2\n");
  }
}

/**
 * The key of the record that training `variant` as its grid trains it would write: the run
 * planned from the grid's request, its configurations as a record holds them.
 */
function keyOfTrainedRecord(
  key: RunKey,
  variant: GridVariant | undefined,
  datasets: string,
): { recorded: RunKey; command: string } {
  const { request, command } = gridRunTraining(key, variant, "/r/x.json", datasets);
  const plan = planRun(request);
  const record = {
    model: key.model,
    dataset: key.dataset,
    modelConfig: plan.modelConfig,
    trainConfig: plan.config,
  } as unknown as RunRecord;
  return { recorded: recordKey(record), command };
}

Deno.test("SSD4Rec study grids: every grid is planned by reproduce, under its notebook", () => {
  for (const [notebook, grids] of Object.entries(STUDIES)) {
    assert(grids.length > 0, notebook);
    for (const grid of grids) {
      assertEquals(grid.notebook, notebook);
      assertEquals(grid.models, ["ssd4rec"]);
      assert(RUN_GRIDS.includes(grid), `${notebook}: not in RUN_GRIDS`);
      assert(!grid.datasets.includes("ml-1m"), `${notebook}: ML-1M must be recorded-only`);
    }
    // Rows of the same label on every dataset: one table row, one sweep point.
    const labels = grids.map((g) => (g.variants ?? []).map((v) => v.label));
    for (const l of labels) assertEquals(l, labels[0], notebook);
  }
  assertEquals(SSD4REC_ABLATION_GRIDS.flatMap((g) => g.datasets), [
    "amazon-beauty",
    "amazon-video-games",
  ]);
  for (const grids of [SSD4REC_BETA_GRIDS, SSD4REC_RHO_GRIDS, SSD4REC_MAX_LENGTH_GRIDS]) {
    assertEquals(grids.flatMap((g) => g.datasets), ["amazon-beauty"]);
    assertEquals(grids.flatMap((g) => g.recordedOnly ?? []), ["ml-1m"]);
  }
});

Deno.test("SSD4Rec study grids: each run's key is the key of the record its training writes", async () => {
  await withTempDir("ssd4rec-grids-", async (dir) => {
    await standInDatasets(dir);
    for (const grids of Object.values(STUDIES)) {
      for (const grid of grids) {
        for (const dataset of shownDatasets(grid)) {
          for (const variant of grid.variants ?? []) {
            const key = gridRunKey("ssd4rec", dataset, 2021, variant);
            const { recorded } = keyOfTrainedRecord(key, variant, dir);
            assertEquals(recorded, key, `${grid.notebook} ${dataset} ${variant.label}`);
          }
        }
      }
    }
  });
});

Deno.test("SSD4Rec study grids: the preset's β and ρ are the paper's runs; no L row is", () => {
  const paperKey = (dataset: string): RunKey => ({ model: "ssd4rec", dataset, seed: 2020 });
  const key = (grid: RunGrid, label: string, dataset: string) =>
    gridRunKey("ssd4rec", dataset, 2020, row(grid, label));
  const [betaBeauty, betaMl] = SSD4REC_BETA_GRIDS;
  assertEquals(key(betaBeauty, "β = 0.1", "amazon-beauty"), paperKey("amazon-beauty"));
  assertEquals(key(betaMl, "β = 0.1", "ml-1m"), paperKey("ml-1m"));
  assertEquals(key(betaBeauty, "β = 0", "amazon-beauty").variant, "beta-0");
  const [rhoBeauty, rhoMl] = SSD4REC_RHO_GRIDS;
  assertEquals(key(rhoBeauty, "ρ = 0.2", "amazon-beauty"), paperKey("amazon-beauty"));
  assertEquals(key(rhoMl, "ρ = 0.1", "ml-1m"), paperKey("ml-1m"));
  assertEquals(key(rhoBeauty, "ρ = 0.1", "amazon-beauty").variant, "maskRatio-0.1");
  assertEquals(key(rhoMl, "ρ = 0.2", "ml-1m").variant, "maskRatio-0.2");
  const [lBeauty, lMl] = SSD4REC_MAX_LENGTH_GRIDS;
  // Every L row cuts histories (the paper's runs keep them whole); the preset's L is no setting.
  assertEquals(key(lBeauty, "L = 50", "amazon-beauty").variant, "varLen-false");
  assertEquals(key(lBeauty, "L = 200", "amazon-beauty").variant, "maxLength-200_varLen-false");
  assertEquals(key(lMl, "L = 200", "ml-1m").variant, "varLen-false");
  assertEquals(key(lMl, "L = 25", "ml-1m").variant, "maxLength-25_varLen-false");
  // The ablation's rows share the sweeps' records where they are the same runs.
  const [ablation, ablationMl] = SSD4REC_ABLATION_GRIDS;
  assertEquals(key(ablation, "SSD4Rec (full)", "amazon-beauty"), paperKey("amazon-beauty"));
  assertEquals(
    key(ablation, "forward direction only (β = 0)", "amazon-beauty"),
    key(betaBeauty, "β = 0", "amazon-beauty"),
  );
  assertEquals(
    key(ablation, "− masking (ρ = 0)", "amazon-beauty"),
    key(rhoBeauty, "ρ = 0", "amazon-beauty"),
  );
  // The padded windows are each dataset's own L.
  for (const grid of SSD4REC_ABLATION_GRIDS) {
    for (const dataset of shownDatasets(grid)) {
      assertEquals(
        row(grid, "padded windows of L").train?.padTo,
        modelPreset("ssd4rec", dataset)?.train.maxLength,
        dataset,
      );
    }
  }
  assertEquals(key(ablation, "padded windows of L", "amazon-video-games").variant, "padTo-50");
  assertEquals(key(ablationMl, "padded windows of L", "ml-1m").variant, "padTo-200");
});

Deno.test("SSD4Rec study grids: the commands that record the rows", async () => {
  await withTempDir("ssd4rec-commands-", async (dir) => {
    await standInDatasets(dir);
    const command = (grid: RunGrid, label: string, dataset: string) =>
      keyOfTrainedRecord(
        gridRunKey("ssd4rec", dataset, 2022, row(grid, label)),
        row(grid, label),
        dir,
      ).command;
    const start = (dataset: string) =>
      `deno task train --model ssd4rec --dataset ${dataset} --seed 2022`;
    const [ablation, ablationMl] = SSD4REC_ABLATION_GRIDS;
    assertEquals(
      command(ablation, "SSD4Rec (full)", "amazon-beauty"),
      `${start("amazon-beauty")} --record /r/x.json`,
    );
    assertEquals(
      command(ablation, "forward direction only (β = 0)", "amazon-video-games"),
      `${start("amazon-video-games")} --beta 0 --record /r/x.json`,
    );
    assertEquals(
      command(ablation, "− masking (ρ = 0)", "amazon-beauty"),
      `${start("amazon-beauty")} --mask-ratio 0 --record /r/x.json`,
    );
    assertEquals(
      command(ablationMl, "padded windows of L", "ml-1m"),
      `${start("ml-1m")} --pad-to 200 --record /r/x.json`,
    );
    assertEquals(
      command(SSD4REC_BETA_GRIDS[0], "β = 0.5", "amazon-beauty"),
      `${start("amazon-beauty")} --beta 0.5 --record /r/x.json`,
    );
    assertEquals(
      command(SSD4REC_RHO_GRIDS[0], "ρ = 0.3", "amazon-beauty"),
      `${start("amazon-beauty")} --mask-ratio 0.3 --record /r/x.json`,
    );
    assertEquals(
      command(SSD4REC_MAX_LENGTH_GRIDS[0], "L = 25", "amazon-beauty"),
      `${start("amazon-beauty")} --var-len false --max-len 25 --record /r/x.json`,
    );
    assertEquals(
      command(SSD4REC_MAX_LENGTH_GRIDS[1], "L = 200", "ml-1m"),
      `${start("ml-1m")} --var-len false --record /r/x.json`,
    );
  });
});

/** A recorded run of SSD4Rec with `ndcg` at the test and `seconds` per training epoch. */
function recorded(dataset: string, seed: number, ndcg: number, seconds: number): IndexedRecord {
  const result = {
    history: [{ epoch: 0, loss: 1, valid: {}, trainSeconds: seconds, evalSeconds: 1 }],
    bestEpoch: 0,
    bestValid: {},
    test: { "ndcg@10": ndcg },
  } as unknown as TrainResult;
  return {
    key: { model: "ssd4rec", dataset, seed },
    record: { result } as RunRecord,
  } as IndexedRecord;
}

/** A cell of `variant` on `dataset` with `runs`. */
function cell(dataset: string, variant: GridVariant | undefined, runs: IndexedRecord[]): GridCell {
  return {
    model: "ssd4rec",
    dataset,
    variant,
    runs,
    missingSeeds: [],
    smoke: undefined,
    orderLimit: undefined,
  };
}

Deno.test("sweep chart: a point per recorded row at its swept value, a band of ± std, references", () => {
  const [beauty] = SSD4REC_RHO_GRIDS;
  const setting = { scope: "train", key: "maskRatio", title: "ρ" } as const;
  const cells = [
    cell("amazon-beauty", row(beauty, "ρ = 0.4"), [
      recorded("amazon-beauty", 2020, 0.04, 2),
      recorded("amazon-beauty", 2021, 0.06, 4),
    ]),
    // The preset's row sets no ρ: its value is the preset's.
    cell("amazon-beauty", row(beauty, "ρ = 0.2"), [recorded("amazon-beauty", 2020, 0.05, 3)]),
    cell("amazon-beauty", row(beauty, "ρ = 0"), []),
  ];
  assertEquals(cells.map((c) => sweptValue(c, setting)), [0.4, 0.2, 0]);
  const figure = sweepFigure(
    "SSD4Rec",
    cells,
    setting,
    testMetric({
      key: "ndcg@10",
      label: "NDCG@10",
    }),
    {
      references: [cell("amazon-beauty", undefined, [recorded("amazon-beauty", 2020, 0.07, 5)])],
      referenceLabel: "whole histories",
    },
  );
  const [upper, lower, mean, reference] = figure.data;
  assertEquals(figure.data.length, 4);
  assertEquals(mean.name, "Beauty");
  assertEquals(mean.x, [0.2, 0.4], "sorted by ρ; the row without records has no point");
  assertEquals(mean.y, [0.05, 0.05]);
  const std = Math.sqrt(2 * 0.01 ** 2);
  assertEquals(upper.y?.map((v) => Number(v!.toFixed(6))), [0.05, Number((0.05 + std).toFixed(6))]);
  assertEquals(lower.y?.map((v) => Number(v!.toFixed(6))), [0.05, Number((0.05 - std).toFixed(6))]);
  assertEquals([upper.fill, lower.fill, upper.showlegend], [undefined, "tonexty", false]);
  assertEquals(reference.name, "Beauty: whole histories");
  // The reference spans every swept value, the row without records included.
  assertEquals([reference.x, reference.y, reference.line?.dash], [
    [0, 0.4],
    [0.07, 0.07],
    "dash",
  ]);
  // References span every swept value, recorded or not; a line without points draws none.
  const onlyReference = sweepFigure("SSD4Rec", cells.slice(2), setting, SECONDS_PER_EPOCH, {
    references: [cell("amazon-beauty", undefined, [recorded("amazon-beauty", 2020, 0.07, 5)])],
  });
  assertEquals(
    onlyReference.data.map((t) => [t.name, t.x, t.y]),
    [["Beauty: reference", [0, 0], [5, 5]]],
  );
  const seconds = sweepFigure("SSD4Rec", cells, setting, SECONDS_PER_EPOCH);
  assertEquals(seconds.data.find((t) => t.name === "Beauty")?.y, [3, 3]);
  assertStringIncludes(figure.toSVG(), "<svg");
});

Deno.test("sweep chart: a series with single values has no band; an empty one draws nothing", () => {
  const figure = sweepChart([
    { name: "a", points: [{ x: 2, mean: 1 }, { x: 1, mean: 3 }] },
    { name: "b", points: [] },
  ], { title: "t", xTitle: "x", yTitle: "y", xType: "log" });
  assertEquals(figure.data.map((t) => t.name), ["a"]);
  assertEquals([figure.data[0].x, figure.data[0].y], [[1, 2], [3, 1]]);
  assertEquals(figure.layout.xaxis?.type, "log");
  assertStringIncludes(sweepChart([], { title: "t", xTitle: "x", yTitle: "y" }).toSVG(), "<svg");
});

Deno.test("swept value: a setting that neither the row nor the preset gives is refused", () => {
  const error = assertThrows(() =>
    sweptValue(cell("some-dataset", undefined, []), {
      scope: "model",
      key: "beta",
      title: "β",
    })
  );
  assertStringIncludes(String(error), "ssd4rec on some-dataset: neither the row nor the preset");
});

Deno.test("study runs: the grid's smoke cells name rows and datasets; naming none trains nothing", async () => {
  const [beauty, ml] = SSD4REC_BETA_GRIDS;
  const rows = beauty.variants!;
  const two: RunGrid = {
    ...beauty,
    smokeCells: ["β = 0", "β = 1"].map((label) => ({ label, dataset: "amazon-beauty" })),
  };
  assertEquals(
    rows.filter((v) => smokesCell(two, v, "amazon-beauty")).map((v) => v.label),
    ["β = 0", "β = 1"],
  );
  assertEquals(rows.filter((v) => smokesCell(two, v, "amazon-video-games")), []);
  assertEquals(smokesCell(two, undefined, "amazon-beauty"), false, "a cell without a row");
  await withTempDir("ssd4rec-study-", async (dir) => {
    const cells = await studyRuns([{ ...beauty, smokeCells: [] }, ml], {
      mode: "quick",
      directory: join(dir, "runs"),
    });
    assertEquals(
      cells.map((c) => [c.dataset, c.variant?.label, c.runs.length, c.missingSeeds.length]),
      [
        ...rows.map((v) => ["amazon-beauty", v.label, 0, 3]),
        ...ml.variants!.map((v) => ["ml-1m", v.label, 0, 3]),
      ],
    );
    assert(cells.every((c) => c.smoke === undefined), "no smoke run was chosen");
  });
});
