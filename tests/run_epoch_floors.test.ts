/**
 * SSD4Rec's epochs against their floors, one row per dataset: the model's floor from its settings
 * and tokens, the bar met or missed with what the epoch needs, and a row with the command for each
 * dataset not measured yet.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import type { EfficiencyMeasurement } from "../run/efficiency_file.ts";
import {
  BAR_COLUMN,
  DATASET_FLOOR_REQUESTS,
  datasetFloorsTable,
  EPOCH_FLOOR_BAR,
  LATER_EPOCHS_COLUMN,
} from "../run/epoch_floors.ts";
import { FAKE_MEASUREMENT_PROVENANCE } from "./fake_efficiency.ts";

/** Tokens of the fake epochs. */
const TOKENS = 1_200_000;

/**
 * The model's products of one epoch of Beauty's one-layer SSD4Rec (d 256, d_inner 512, 32 heads
 * of 16, N 64, β 0.1) by hand: per token each direction's in_proj 2·256·1184 and out_proj
 * 2·512·256, the feed-forward 2·2·256·1024, forward and backward (×3).
 */
const DEFINED_FLOPS = 3 * (2 * (2 * 256 * 1184 + 2 * 512 * 256) + 2 * 2 * 256 * 1024) * TOKENS;

/** A whole-epoch measurement of SSD4Rec on `dataset` taking `seconds`, its floors at 25 TFLOP/s. */
function measurement(dataset: string, seconds: number): EfficiencyMeasurement {
  const flops = DEFINED_FLOPS / 2;
  return {
    ...FAKE_MEASUREMENT_PROVENANCE,
    model: "ssd4rec",
    dataset,
    parameters: 1,
    trainConfig: { batchSize: 1024 } as EfficiencyMeasurement["trainConfig"],
    modelConfig: { hiddenSize: 256, numLayers: 1, dState: 64, headDim: 16, expand: 2, beta: 0.1 },
    histories: { kind: "whole" },
    training: {
      stepsPerEpoch: 22,
      stepsTimed: 22,
      epochsTimed: 1,
      warmupSteps: 2,
      projected: false,
      seconds,
      secondsPerEpoch: seconds,
      samples: 22_000,
      tokens: TOKENS,
      tokensPerSecond: TOKENS / seconds,
      meanLoss: 7,
      peakLiveBytes: 1e9,
      peakByPurpose: {},
    },
    inference: {
      split: "test",
      users: 2048,
      secondsPerBatch: 0.01,
      repeats: [0.01],
      peakLiveBytes: 1e8,
      peakByPurpose: {},
    },
    projections: {
      tokens: TOKENS,
      samples: 22_000,
      forwardFlops: { inProjection: flops / 6, outProjection: flops / 12, feedForward: flops / 12 },
      flops,
      floor: { matmulTflops: 25, seconds: flops / 25e12, epochRatio: seconds / (flops / 25e12) },
    },
  };
}

Deno.test("epoch floors: a row per dataset, the bar held against the model's floor", () => {
  const floorSeconds = DEFINED_FLOPS / 25e12;
  const table = datasetFloorsTable(
    [measurement("amazon-beauty", 0.5), measurement("amazon-video-games", 1)],
    [DATASET_FLOOR_REQUESTS[2]],
  );
  assertEquals(table.rows.length, 3);
  const [beauty, games, ml1m] = table.rows;
  assertEquals(beauty.dataset, "Beauty");
  assertEquals(beauty["the model's floor (s)"], Number(floorSeconds.toPrecision(3)));
  assertEquals(beauty["÷ the model's floor"], Math.round((0.5 / floorSeconds) * 100) / 100);
  // This code's floor is half the model's here: the same epoch is twice as far from it.
  assertEquals(beauty["÷ floor"], Math.round((0.5 / (floorSeconds / 2)) * 100) / 100);
  assertEquals(beauty[BAR_COLUMN], "met");
  assertEquals(
    games[BAR_COLUMN],
    `missed (needs ≤ ${Math.round(EPOCH_FLOOR_BAR * floorSeconds * 10) / 10} s)`,
  );
  assertEquals(ml1m["s / epoch"], "not measured yet");
  assertStringIncludes(
    String(ml1m.source),
    "deno task efficiency --models ssd4rec --dataset ml-1m --max-steps 40 --matmul-tflops R",
  );
});

Deno.test("epoch floors: with several epochs timed, the bar is held against those after the first", () => {
  const floorSeconds = DEFINED_FLOPS / 25e12;
  // The first epoch pays one-time costs; the others' median is 1.4× the model's floor, their
  // mean with the first over 1.5×.
  const epochs = [2.5 * floorSeconds, 1.38 * floorSeconds, 1.45 * floorSeconds, 1.4 * floorSeconds];
  const mean = epochs.reduce((a, b) => a + b) / epochs.length;
  const several = measurement("amazon-beauty", mean);
  const training = { ...several.training, epochsTimed: 4, epochSeconds: epochs };
  const one = measurement("amazon-video-games", 1.45 * floorSeconds);
  const [row, single] = datasetFloorsTable([{ ...several, training }, one]).rows;
  assertEquals(row["÷ the model's floor"], Math.round((mean / floorSeconds) * 100) / 100);
  assertEquals(row[LATER_EPOCHS_COLUMN], 1.4);
  assertEquals(row[BAR_COLUMN], "met");
  assertStringIncludes(String(row.timing), "4 epochs timed: ");
  assertEquals(String(row.timing).split(",").length, 4, "each epoch's seconds");
  assertEquals(single[LATER_EPOCHS_COLUMN], "— (one epoch timed)");
  assertEquals(single[BAR_COLUMN], "met", "by the mean epoch, the only one");
  // Later epochs over the bar miss it whatever the first.
  const slow = {
    ...training,
    epochSeconds: [floorSeconds, 1.6 * floorSeconds, 1.7 * floorSeconds],
  };
  const [missed] = datasetFloorsTable([{ ...several, training: slow }]).rows;
  assertEquals(missed[LATER_EPOCHS_COLUMN], 1.65);
  assertStringIncludes(String(missed[BAR_COLUMN]), "missed");
});

Deno.test("epoch floors: the requests are SSD4Rec's whole histories on the papers' datasets", () => {
  assertEquals(
    DATASET_FLOOR_REQUESTS.map((r) => [r.model, r.dataset, r.varLen, r.padTo]),
    [
      ["ssd4rec", "amazon-beauty", undefined, undefined],
      ["ssd4rec", "amazon-video-games", undefined, undefined],
      ["ssd4rec", "ml-1m", undefined, undefined],
    ],
  );
});
