/**
 * `deno task efficiency`'s measurement on a small dataset: the training figures (projected from
 * the first steps, or whole epochs), the peak memory by purpose, the inference batch, the file's
 * name and round trip, and the memory given back afterwards.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import { embedding } from "../ops/dense/embedding.ts";
import { memoryStats } from "../ops/core/runtime.ts";
import { Tensor, tidy } from "../ops/core/tensor.ts";
import {
  efficiencyFileName,
  type EfficiencyMeasurement,
  readEfficiencyMeasurements,
  writeEfficiencyMeasurement,
} from "../run/efficiency_file.ts";
import { measureEfficiency } from "../run/efficiency_measure.ts";
import { efficiencyMeasurements } from "../run/efficiency_runs.ts";
import { main } from "../scripts/efficiency.ts";
import { withTempDir } from "./temp_files.ts";
import { freshSeed } from "./util.ts";

/** A datasets folder with an `ml-1m.txt` of 40 users × 9 interactions over 15 items. */
async function datasets(dir: string, seed: number): Promise<string> {
  const lines: string[] = [];
  for (let u = 1; u <= 40; u++) {
    for (let t = 0; t < 9; t++) lines.push(`${u} ${((u * 7 + 3 * t + seed) % 15) + 1}`);
  }
  const folder = join(dir, "datasets");
  await Deno.mkdir(folder);
  await Deno.writeTextFile(join(folder, "ml-1m.txt"), lines.join("\n") + "\n");
  return folder;
}

/** The peak's parts (the free pool left out) add up to the peak. */
function assertPeakParts(peak: number, parts: Readonly<Record<string, number>>, at: string) {
  const sum = Object.entries(parts).filter(([p]) => p !== "pool").reduce((s, [, b]) => s + b, 0);
  assertEquals(sum, peak, `${at}: parts ${JSON.stringify(parts)}`);
  assert(peak > 0 && parts.parameters > 0 && parts.activations > 0, `${at}: ${peak}`);
}

Deno.test("efficiency: projected epoch from the first steps, inference batch, file round trip", async () => {
  const seed = freshSeed() % 1000;
  await withTempDir("efficiency-", async (dir) => {
    const datasetsDirectory = await datasets(dir, seed);
    // The embedding's id check keeps one small buffer for the process, made on first use.
    tidy(() => embedding(Tensor.from([0], [1], "i32"), Tensor.from([0, 0], [1, 2])));
    const liveBefore = memoryStats().liveBytes;
    const m = await measureEfficiency({
      model: "mamba4rec",
      dataset: "ml-1m",
      datasetsDirectory,
      maxUsers: 40,
      maxLength: 5,
      train: { batchSize: 64, evalBatchSize: 16, seed },
      maxSteps: 2,
      warmupSteps: 1,
      inferenceRepeats: 3,
    });
    const at = `seed ${seed}`;
    assertEquals(memoryStats().liveBytes, liveBefore, `${at}: memory not given back`);
    const t = m.training;
    assert(t.stepsPerEpoch > 2, `${at}: ${t.stepsPerEpoch} steps per epoch`);
    assertEquals([t.stepsTimed, t.epochsTimed, t.projected, t.warmupSteps], [2, 0, true, 1], at);
    assertAlmostEquals(t.secondsPerEpoch, (t.seconds / 2) * t.stepsPerEpoch, 1e-9, at);
    assertEquals(t.samples, 128, at);
    assertEquals(t.tokens, 128 * 5, at);
    assert(Number.isFinite(t.meanLoss) && t.meanLoss > 0, `${at}: loss ${t.meanLoss}`);
    assertPeakParts(t.peakLiveBytes, t.peakByPurpose, `${at}, training`);
    assert(t.peakByPurpose.optimizer > 0, `${at}: Adam's moments not counted`);
    const inf = m.inference;
    assertEquals([inf.users, inf.repeats.length], [16, 3], at);
    assertEquals(inf.secondsPerBatch, [...inf.repeats].sort((a, b) => a - b)[1], at);
    assertPeakParts(inf.peakLiveBytes, inf.peakByPurpose, `${at}, inference`);
    assertEquals([m.dataset, m.histories.kind, m.histories.length], ["ml-1m", "window", 5], at);
    assertEquals(m.slice?.contents.users, 40, at);
    assertEquals(efficiencyFileName(m), "mamba4rec-ml-1m-L5-first40users.json");
    const out = join(dir, "efficiency");
    const path = await writeEfficiencyMeasurement(out, m);
    await Deno.writeTextFile(join(out, "train-output.json"), JSON.stringify({ history: [] }));
    const read = await readEfficiencyMeasurements(out);
    assertEquals(read.length, 1, "a train --json output is no efficiency file");
    assertEquals(read[0], JSON.parse(await Deno.readTextFile(path)) as EfficiencyMeasurement);
    assertEquals(read[0].training, t);
  });
});

Deno.test("efficiency: a whole epoch of a packed model on cut histories; the CLI writes its file", async () => {
  const seed = freshSeed() % 1000;
  await withTempDir("efficiency-", async (dir) => {
    const datasetsDirectory = await datasets(dir, seed);
    const m = await measureEfficiency({
      model: "ssd4rec",
      dataset: "ml-1m",
      datasetsDirectory,
      maxUsers: 40,
      maxLength: 4,
      varLen: false,
      train: { batchSize: 512, evalBatchSize: 64, seed },
      warmupSteps: 1,
      epochs: 2,
      inferenceRepeats: 1,
    });
    const at = `seed ${seed}`;
    const t = m.training;
    assertEquals([t.stepsPerEpoch, t.stepsTimed, t.epochsTimed, t.projected], [1, 2, 2, false], at);
    // The warm-up made Adam's moments, which the timed step's peak holds.
    assert(t.peakByPurpose.optimizer > 0, `${at}: Adam's moments not in the peak`);
    assertEquals(t.secondsPerEpoch, t.seconds / 2, at);
    // Each epoch's own time, the two within the whole.
    assertEquals(t.epochSeconds?.length, 2, at);
    const [first, second] = t.epochSeconds!;
    assert(first > 0 && second > 0 && first + second <= t.seconds, `${at}: ${t.epochSeconds}`);
    assert(t.tokens > 0 && t.tokens <= t.samples * 4, `${at}: ${t.tokens} tokens`);
    assertEquals(efficiencyFileName(m), "ssd4rec-ml-1m-cut4-first40users.json");
    assertEquals(
      efficiencyFileName({ ...m, histories: { kind: "whole" }, slice: undefined }),
      "ssd4rec-ml-1m-whole.json",
    );
    // --var-len applies to packed models only: SASRec in the same command measures its windows.
    const out = join(dir, "out");
    const args = ["--models", "sasrec", "--dataset", join(datasetsDirectory, "ml-1m.txt")];
    const options = ["--max-users", "40", "--max-len", "4", "--var-len", "false", "--out", out];
    const quick = ["--max-steps", "1", "--warmup-steps", "1", "--repeats", "1"];
    assertEquals(await main([...args, ...options, ...quick]), 0, at);
    const [written] = await readEfficiencyMeasurements(out);
    assertEquals(efficiencyFileName(written), "sasrec-ml-1m-L4-first40users.json", at);
    assertEquals(
      written.command,
      `deno task efficiency ${args.join(" ")} --max-len 4 ${quick.join(" ")} --max-users 40 ` +
        `--out ${out}`,
      at,
    );
  });
  await assertRejects(
    () => measureEfficiency({ model: "mamba4rec", dataset: "ml-1m", maxSteps: 0 }),
    RangeError,
    "'maxSteps' must be a positive integer, got 0",
  );
  await assertRejects(
    () => measureEfficiency({ model: "mamba4rec", dataset: "ml-1m", warmupSteps: 0 }),
    RangeError,
    "'warmupSteps' must be a positive integer, got 0",
  );
  assertEquals(await main(["--models", "nonesuch", "--dataset", "ml-1m"]), 2);
  assertEquals(await main(["--models", "sasrec", "--dataset", "ml-1m", "--var-len", "x"]), 2);
});

Deno.test("efficiency runs: full mode measures a missing request and writes it; then it is read back", async () => {
  const seed = freshSeed() % 1000;
  await withTempDir("efficiency-full-", async (dir) => {
    const datasetsDirectory = await datasets(dir, seed);
    const cacheBefore = Deno.env.get("SSMREC_CACHE");
    Deno.env.set("SSMREC_CACHE", join(dir, "cache"));
    try {
      const out = join(dir, "efficiency");
      const request = {
        model: "mamba4rec",
        dataset: "ml-1m",
        maxLength: 5,
        train: { batchSize: 128, evalBatchSize: 16, seed },
        maxSteps: 1,
        warmupSteps: 1,
        inferenceRepeats: 1,
      };
      const options = { smoke: [], directory: out, datasetsDirectory };
      const full = await efficiencyMeasurements([request], { ...options, mode: "full" });
      const at = `seed ${seed}`;
      assertEquals([full.measured.length, full.missing.length, full.smoke.length], [1, 0, 0], at);
      assertEquals(full.measured[0].slice, undefined, at);
      assertStringIncludes(full.measured[0].command, "deno task efficiency --models mamba4rec");
      const [file] = await readEfficiencyMeasurements(out);
      assertEquals(efficiencyFileName(file), "mamba4rec-ml-1m-L5.json", at);
      const again = await efficiencyMeasurements([request], { ...options, mode: "quick" });
      assertEquals(again.measured, [file], `${at}: the file was not read back`);
    } finally {
      if (cacheBefore === undefined) Deno.env.delete("SSMREC_CACHE");
      else Deno.env.set("SSMREC_CACHE", cacheBefore);
    }
  });
});
