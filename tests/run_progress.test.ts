import { assertEquals, assertStringIncludes } from "@std/assert";
import type { EpochRecord, StepProgress, TrainResult } from "../models/training/trainer.ts";
import {
  formatDuration,
  type ProgressOutput,
  stepProgressText,
  TrainingProgress,
} from "../run/progress.ts";

/** An output that records what is written and shown, with a clock the test sets. */
function fakeOutput(terminal: boolean, jupyter = false) {
  const state = { text: "", clock: 0, shown: [] as { html: string; update: boolean }[] };
  const output: ProgressOutput = {
    write: (t) => {
      state.text += t;
    },
    terminal,
    jupyter: jupyter
      ? {
        display: (value, options) => {
          const bundle = value as Record<string, string>;
          state.shown.push({ html: bundle["text/html"], update: Boolean(options?.update) });
          return Promise.resolve();
        },
      }
      : undefined,
    now: () => state.clock,
  };
  return { state, output };
}

const step = (s: number, seconds: number): StepProgress => ({
  epoch: 2,
  step: s,
  steps: 100,
  samples: 64 * s,
  seconds,
});

const record: EpochRecord = {
  epoch: 2,
  loss: 1.5,
  valid: { "hit@10": 0.5, "ndcg@10": 0.25, "recall@10": 0.5 },
  trainSeconds: 10,
  evalSeconds: 1,
  peakLiveBytes: 3 * 1024 * 1024 + 512 * 1024,
  tokens: 5000,
  tokensPerSecond: 500,
};

const result: TrainResult = {
  history: [record],
  bestEpoch: 2,
  bestValid: record.valid,
  test: { "hit@10": 0.4 },
  stoppedEarly: false,
  complete: true,
  secondsPerEpoch: 10,
  epochsThisRun: 1,
};

Deno.test("step text: epoch from 1, steps, samples per second and the time left", () => {
  assertEquals(
    stepProgressText(step(25, 10)),
    "epoch 3  step 25/100 (25%)  160 samples/s  ETA 30s",
  );
  assertEquals(
    stepProgressText({ ...step(25, 10), tokens: 123_456, maskedTokens: 0 }),
    "epoch 3  step 25/100 (25%)  160 samples/s  12,346 tokens/s  ETA 30s",
  );
  assertEquals([formatDuration(3725), formatDuration(187), formatDuration(NaN)], [
    "1h 02m",
    "3m 07s",
    "—",
  ]);
});

Deno.test("terminal: the step line updates in place, throttled, and an epoch line replaces it", () => {
  const { state, output } = fakeOutput(true);
  const progress = new TrainingProgress(true, "NDCG@10", output);
  progress.stepsProgressed(step(1, 0.1));
  state.clock = 0.1;
  progress.stepsProgressed(step(2, 0.2)); // too soon after the last update: skipped
  state.clock = 1;
  progress.stepsProgressed(step(10, 1));
  assertEquals(state.text.split("\r\x1b[2K").filter(Boolean).length, 2);
  assertStringIncludes(state.text, "\r\x1b[2Kepoch 3  step 10/100 (10%)");
  progress.epochFinished(record, true, 0.25);
  progress.trainingFinished(result);
  const lines = state.text.split("\r\x1b[2K").at(-1)!.split("\n");
  assertEquals(lines[0].trim().split(/\s+/).slice(0, 4), ["epoch", "3", "loss", "1.5000"]);
  assertStringIncludes(lines[0], "* best ndcg@10 0.2500");
  assertStringIncludes(lines[0], "(train 10.0 s, eval 1.0 s, peak 3.5 MiB)");
  assertEquals(lines[1].split(":")[0], "best epoch 3");
});

Deno.test("not a terminal: a plain step line only every half minute", () => {
  const { state, output } = fakeOutput(false);
  const progress = new TrainingProgress(true, "ndcg@10", output);
  for (let s = 1; s <= 100; s++) {
    state.clock = s;
    progress.stepsProgressed(step(s, s));
  }
  const lines = state.text.trimEnd().split("\n");
  assertEquals(lines.map((l) => l.split("  ")[1]), [
    "step 30/100 (30%)",
    "step 60/100 (60%)",
    "step 90/100 (90%)",
  ]);
  assertEquals(state.text.includes("\r"), false);
});

Deno.test("Jupyter: one display, updated in place with the status line and then the table", () => {
  const { state, output } = fakeOutput(false, true);
  const progress = new TrainingProgress(true, "ndcg@10", output);
  progress.stepsProgressed(step(1, 0.5));
  state.clock = 2;
  progress.stepsProgressed(step(50, 2));
  progress.epochFinished(record, false, 0.3);
  progress.trainingFinished(result);
  assertEquals(state.shown.map((s) => s.update), [false, true, true]);
  assertStringIncludes(state.shown[1].html, "step 50/100");
  assertStringIncludes(state.shown[2].html, "<td>3</td><td>1.5000</td>");
  assertStringIncludes(state.shown[2].html, "<td>10.0</td><td>1.0</td><td>3.5</td></tr>");
  assertEquals(state.text, "");
});

Deno.test("quiet: nothing at all", () => {
  const { state, output } = fakeOutput(true, false);
  const progress = new TrainingProgress(false, "ndcg@10", output);
  progress.stepsProgressed(step(1, 1));
  progress.epochFinished(record, true, 0.3);
  progress.trainingFinished(result);
  assertEquals(state.text, "");
});
