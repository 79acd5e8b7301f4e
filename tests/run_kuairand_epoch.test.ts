/**
 * The KuaiRand-sized epoch's table: our measurement from its file (with and without a floor, within
 * and over the bar) beside the official code's third-party timing, the row that says it is not
 * measured yet, and the smoke row with its floor at the example rate.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { SYNTHETIC_KUAIRAND_NAME } from "../data/synthetic_kuairand.ts";
import { type EfficiencyMeasurement, writeEfficiencyMeasurement } from "../run/efficiency_file.ts";
import { EPOCH_FLOOR_BAR } from "../run/epoch_floors.ts";
import {
  EXAMPLE_MATMUL_TFLOPS,
  KUAIRAND_EPOCH_COMMAND,
  kuairandEpochRuns,
  kuairandEpochTable,
} from "../run/kuairand_epoch.ts";
import { SSD4REC_OFFICIAL_KUAIRAND_EPOCH } from "../run/paper_values.ts";
import type { RichTable } from "../viz/mod.ts";
import { FAKE_MEASUREMENT_PROVENANCE } from "./fake_efficiency.ts";
import { withTempDir } from "./temp_files.ts";

/** Projection operations of the fake epoch as this code computes them: 0.6 PFLOP, 20 s at 30 TFLOP/s. */
const FLOPS = 6e14;

/** SSD4Rec's KuaiRand sizes: d 256, d_inner 512, 32 heads of 16, N 64, two layers, β 0.1. */
const KUAIRAND_MODEL = {
  hiddenSize: 256,
  numLayers: 2,
  dState: 64,
  headDim: 16,
  expand: 2,
  beta: 0.1,
};

/**
 * The same epoch's products as the model defines them, by hand: per token and layer, each
 * direction's in_proj 2·256·1184 and out_proj 2·512·256, the feed-forward 2·2·256·1024; two
 * layers, forward and backward (×3), over 48 M tokens: 802.16 TFLOP, 26.74 s at 30 TFLOP/s.
 */
const DEFINED_FLOPS = 3 * 2 * (2 * (2 * 256 * 1184 + 2 * 512 * 256) + 2 * 2 * 256 * 1024) *
  48_000_000;

/**
 * A measurement of SSD4Rec on the whole synthetic KuaiRand (or its first `maxUsers` users) taking
 * `seconds` per epoch at a peak of `peakBytes`, its floor at `matmulTflops` when given.
 */
function measurement(
  seconds: number,
  peakBytes: number,
  options: { matmulTflops?: number; maxUsers?: number; withoutModel?: boolean } = {},
): EfficiencyMeasurement {
  const { matmulTflops, maxUsers } = options;
  const floorSeconds = matmulTflops === undefined ? undefined : FLOPS / (matmulTflops * 1e12);
  return {
    ...FAKE_MEASUREMENT_PROVENANCE,
    model: "ssd4rec",
    dataset: SYNTHETIC_KUAIRAND_NAME,
    ...(maxUsers !== undefined
      ? { slice: { maxUsers, contents: { users: 13, items: 16, interactions: 160 } } }
      : {}),
    parameters: 1,
    trainConfig: {
      batchSize: maxUsers === undefined ? 1024 : 16,
      evalBatchSize: maxUsers === undefined ? 2048 : 16,
    } as EfficiencyMeasurement["trainConfig"],
    modelConfig: options.withoutModel ? {} : KUAIRAND_MODEL,
    histories: { kind: "whole" },
    training: {
      stepsPerEpoch: 1040,
      stepsTimed: 1040,
      epochsTimed: 1,
      warmupSteps: 2,
      projected: false,
      seconds,
      secondsPerEpoch: seconds,
      samples: 1_062_567,
      tokens: 48_000_000,
      tokensPerSecond: 48_000_000 / seconds,
      meanLoss: 7,
      peakLiveBytes: peakBytes,
      peakByPurpose: { parameters: peakBytes / 2, activations: peakBytes / 2 },
    },
    inference: {
      split: "test",
      users: 2048,
      secondsPerBatch: 0.05,
      repeats: [0.05],
      peakLiveBytes: 1e9,
      peakByPurpose: { parameters: 5e8, activations: 5e8 },
    },
    projections: {
      tokens: 48_000_000,
      samples: 1_062_567,
      forwardFlops: { inProjection: FLOPS / 6, outProjection: FLOPS / 12, feedForward: FLOPS / 12 },
      flops: FLOPS,
      ...(floorSeconds !== undefined
        ? {
          floor: {
            matmulTflops: matmulTflops!,
            seconds: floorSeconds,
            epochRatio: seconds / floorSeconds,
          },
        }
        : {}),
    },
  };
}

/** The rows of `table` whose `run` cell includes `text`. */
function rowsOf(table: RichTable, text: string) {
  return table.rows.filter((r) => String(r.run).includes(text));
}

/** The official code's row, checked: third-party, its card, 66 s, 3.83 GB, its source. */
function assertOfficialRow(table: RichTable): void {
  const [official] = rowsOf(table, "official");
  assert(official, "the official code's row is missing");
  assertStringIncludes(String(official.run), "third-party");
  assertStringIncludes(String(official.run), "not a figure of the paper");
  assertEquals(official.card, "NVIDIA H200 NVL");
  assertEquals(official["s / epoch"], 66);
  assertEquals(official["peak memory (GB)"], 3.83);
  assertStringIncludes(String(official.source), "berdov/diplom");
  assertEquals(table.rows[table.rows.length - 1], official);
}

const BAR = `bar (≤ ${EPOCH_FLOOR_BAR}× the model's floor)`;

/** A number to three significant digits, as the table shows it. */
const significant = (value: number) => Number(value.toPrecision(3));

Deno.test("KuaiRand epoch: read from its file, within the bar, beside the official code", async () => {
  await withTempDir("kuairand-epoch-", async (dir) => {
    await writeEfficiencyMeasurement(dir, measurement(35, 2.5e9, { matmulTflops: 30 }));
    const runs = await kuairandEpochRuns({ mode: "quick", directory: dir });
    assertEquals(runs.missing, []);
    assertEquals(runs.smoke, []);
    const table = kuairandEpochTable(runs);
    const [ours] = rowsOf(table, "ours");
    assertEquals(ours["s / epoch"], 35);
    assertEquals(ours.card, "Test GPU");
    assertEquals(ours["peak memory (GB)"], 2.5);
    assertEquals(ours["tokens / epoch"], 48_000_000);
    assertEquals(ours["projection TFLOP / epoch"], 600);
    assertEquals(ours["floor (s)"], 20);
    assertStringIncludes(String(ours["at (TFLOP/s)"]), "30, measured");
    assertEquals(ours["÷ floor"], 1.75);
    // The bar is taken against the model's floor: 35 s is 1.31× its 26.7 s.
    assertEquals(ours["the model's TFLOP / epoch"], 802);
    assertEquals(ours["the model's floor (s)"], significant(DEFINED_FLOPS / 30e12));
    assertEquals(
      ours["÷ the model's floor"],
      Math.round((35 / (DEFINED_FLOPS / 30e12)) * 100) / 100,
    );
    assertEquals(ours[BAR], "met");
    assertEquals(ours["s ÷ official"], Math.round((35 / 66) * 100) / 100);
    assertEquals(ours["memory ÷ official"], Math.round((2.5 / 3.83) * 100) / 100);
    assertEquals(ours.source, "results/efficiency/ssd4rec-kuairand-synthetic-whole.json");
    assertOfficialRow(table);
    assertEquals(table.rows.length, 2);
    assertStringIncludes(table.toHTML(), "Ours ran on Test GPU, theirs on an NVIDIA H200 NVL");
  });
});

Deno.test("KuaiRand epoch: over the bar it says what the epoch needs", () => {
  const table = kuairandEpochTable({
    measured: [measurement(70, 3e9, { matmulTflops: 30 })],
    smoke: [],
  });
  const [ours] = rowsOf(table, "ours");
  assertEquals(ours["÷ floor"], 3.5);
  assertEquals(ours["÷ the model's floor"], 2.62);
  const needs = Math.round(EPOCH_FLOOR_BAR * (DEFINED_FLOPS / 30e12) * 10) / 10;
  assertEquals(needs, 40.1);
  assertEquals(ours[BAR], `missed (needs ≤ ${needs} s)`);
  assertOfficialRow(table);
});

Deno.test("KuaiRand epoch: a file without a rate shows the work but no floor", () => {
  const table = kuairandEpochTable({ measured: [measurement(50, 2.5e9)], smoke: [] });
  const [ours] = rowsOf(table, "ours");
  assertEquals(ours["projection TFLOP / epoch"], 600);
  assertEquals(ours["floor (s)"], "no rate given");
  assertEquals(ours["the model's floor (s)"], "no rate given");
  assertEquals(ours["at (TFLOP/s)"], "add --matmul-tflops R");
  assertEquals(ours["÷ floor"], "—");
  assertEquals(ours[BAR], "—");
  assertEquals(ours["s ÷ official"], Math.round((50 / 66) * 100) / 100);
});

Deno.test("KuaiRand epoch: a file without model settings cannot be held to the bar", () => {
  const table = kuairandEpochTable({
    measured: [measurement(35, 2.5e9, { matmulTflops: 30, withoutModel: true })],
    smoke: [],
  });
  const [ours] = rowsOf(table, "ours");
  assertEquals(ours["÷ floor"], 1.75);
  assertEquals(ours["the model's TFLOP / epoch"], "— (no model settings)");
  assertEquals(ours[BAR], "—");
});

Deno.test("KuaiRand epoch: without its file, a row says so with the command", () => {
  const table = kuairandEpochTable({ measured: [], smoke: [] });
  assertEquals(table.rows.length, 2);
  const [ours] = rowsOf(table, "ours");
  assertEquals(ours["s / epoch"], "not measured yet");
  assertStringIncludes(String(ours.source), KUAIRAND_EPOCH_COMMAND);
  assertEquals(
    KUAIRAND_EPOCH_COMMAND,
    "deno task efficiency --models ssd4rec --dataset kuairand-synthetic --matmul-tflops R",
  );
  for (const column of ["÷ floor", BAR, "s ÷ official", "memory ÷ official"]) {
    assertEquals(ours[column], undefined, column);
  }
  assertOfficialRow(table);
  assertStringIncludes(table.toHTML(), "nothing is compared");
});

Deno.test("KuaiRand epoch: the smoke row is labelled, its floor at the example rate", () => {
  const smoke = measurement(900, 4e7, { maxUsers: 20 });
  const table = kuairandEpochTable({ measured: [], smoke: [smoke] });
  assertEquals(table.rows.length, 3);
  const [row] = rowsOf(table, "smoke");
  assertStringIncludes(String(row.run), "first 20 users");
  assertStringIncludes(String(row.run), "13 users, 16 items, 160 interactions");
  assertStringIncludes(String(row.run), "batches of 16");
  assertEquals(row["floor (s)"], Number((FLOPS / (EXAMPLE_MATMUL_TFLOPS * 1e12)).toPrecision(3)));
  assertEquals(
    row["the model's floor (s)"],
    significant(DEFINED_FLOPS / (EXAMPLE_MATMUL_TFLOPS * 1e12)),
  );
  assertStringIncludes(String(row["at (TFLOP/s)"]), `${EXAMPLE_MATMUL_TFLOPS}, an example rate`);
  for (
    const column of ["÷ floor", "÷ the model's floor", BAR, "s ÷ official", "memory ÷ official"]
  ) {
    assertEquals(row[column], "— (smoke)", column);
  }
  assertEquals(rowsOf(table, "ours")[0]["s / epoch"], "not measured yet");
  assertOfficialRow(table);
  assertEquals(SSD4REC_OFFICIAL_KUAIRAND_EPOCH.secondsPerEpoch, 66);
});
