/**
 * Where a training step's GPU time goes: builds a model on a dataset as `deno task train` does
 * (its preset, the first epoch's batches), times a few whole steps (forward, backward, Adam), then
 * profiles one step with timestamp queries and prints every kernel's GPU time, largest first.
 * Beside the step time it prints the host's share (building the batch and encoding the step,
 * which the GPU overlaps unless the host is the bottleneck), the bytes of storage the runtime
 * allocated during the timed steps (nonzero when the buffer pool misses), the dispatches a step
 * and how many of them created a bind group (each one host time; none once steps reuse their
 * buffers) and the share of the
 * timed region that its closing wait for the GPU may take (the step time includes it; nothing is
 * subtracted), with the step count that keeps it under the benchmarks' 2%.
 *
 *     deno run -A bench/train_step.ts --model ssd4rec --dataset ml-1m [--steps 5] [--top 30]
 *
 * `--max-users N` trains on the first N users only (a quick slice, e.g. on a CPU adapter).
 * `--batch-size B` overrides the model's training batch size.
 * `--warmup N` untimed steps first (default 3: models whose steps vary, such as BERT4Rec's two
 * objectives, compile kernels in their first few).
 * `--host-only` drops every command buffer instead of submitting it: the GPU does no work (the
 * losses mean nothing), so the step time is the host's alone (building the batch, the model's
 * host-side tables, encoding), measurable on any machine, a CPU adapter included; no kernel
 * profile follows.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  Adam,
  backward,
  memoryStats,
  runtime,
  startProfile,
  stopProfile,
  sync,
  tidy,
  zeroGrad,
} from "../ops/mod.ts";
import { type TrainingStep, trainingSteps } from "../models/mod.ts";
import { setupRun } from "../run/mod.ts";
import { gpuWaitCost, MAX_WAIT_SHARE, printProfileRows } from "./harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "mamba4rec" },
    dataset: { type: "string", default: "ml-1m" },
    steps: { type: "string", default: "5" },
    top: { type: "string", default: "30" },
    "max-users": { type: "string" },
    "batch-size": { type: "string" },
    warmup: { type: "string", default: "3" },
    "host-only": { type: "boolean", default: false },
  },
});
const count = (name: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`train_step: --${name} must be a positive integer, got '${text}'`);
    Deno.exit(2);
  }
  return n;
};
const steps = count("steps", values.steps);
const top = count("top", values.top);
const warmup = count("warmup", values.warmup);
if (values["host-only"]) {
  // Before the device opens: every submit of the process is dropped.
  GPUQueue.prototype.submit = function () {};
}

const run = await setupRun({
  model: values.model,
  dataset: values.dataset,
  maxUsers: values["max-users"] === undefined ? undefined : count("max-users", values["max-users"]),
  train: values["batch-size"] === undefined
    ? {}
    : { batchSize: count("batch-size", values["batch-size"]) },
});
const { model, dataset, config } = run;
const adam = new Adam(model.params.list(), {
  lr: config.learningRate,
  weightDecay: config.weightDecay,
  maxGradNorm: config.clipGradNorm ?? undefined,
});
const stream = trainingSteps(model, dataset, config, 0)[Symbol.iterator]();

/** Host milliseconds spent in {@link step} (batch, forward, backward and Adam encoded). */
let hostMs = 0;

/** Runs the next training step (or fails when the epoch has no more). */
function step(): TrainingStep {
  const begin = performance.now();
  const next = stream.next();
  if (next.done) throw new Error("train_step: the epoch has fewer batches than asked for");
  const s = next.value;
  try {
    tidy(() => {
      backward(s.loss());
      adam.step();
      zeroGrad(model.params.list());
    });
  } finally {
    s.release();
  }
  hostMs += performance.now() - begin;
  return s;
}

console.log(
  `${model.name} on ${run.plan.datasetName}, batch ${config.batchSize}, on ${run.adapter}`,
);
for (let i = 0; i < warmup; i++) step();
await sync();
let samples = 0, tokens = 0;
hostMs = 0;
const allocatedBefore = memoryStats().allocatedBytes;
const {
  dispatchCount: dispatchesBefore,
  bindGroupsCreated: bindGroupsBefore,
  submitCount: submitsBefore,
  writeCount: writesBefore,
} = runtime();
const start = performance.now();
for (let i = 0; i < steps; i++) {
  const s = step();
  samples += s.size;
  tokens += s.tokens ?? s.size * config.maxLength;
}
await sync();
const region = performance.now() - start;
const ms = region / steps;
console.log(
  `${steps} steps: ${ms.toFixed(1)} ms a step (${(samples / steps).toFixed(0)} samples, ` +
    `${(tokens / steps).toFixed(0)} tokens); host ${(hostMs / steps).toFixed(1)} ms a step; ` +
    `storage allocated meanwhile ${
      ((memoryStats().allocatedBytes - allocatedBefore) / 1e9).toFixed(2)
    } GB (net); ${((runtime().dispatchCount - dispatchesBefore) / steps).toFixed(0)} dispatches ` +
    `a step, ${((runtime().bindGroupsCreated - bindGroupsBefore) / steps).toFixed(1)} of them ` +
    `creating a bind group; ${((runtime().submitCount - submitsBefore) / steps).toFixed(1)} ` +
    `submits and ${((runtime().writeCount - writesBefore) / steps).toFixed(1)} host writes a step`,
);
// The step time includes the one wait for the GPU that ends the timed region; nothing is
// subtracted, so say how much of it that wait may be.
const wait = await gpuWaitCost();
const share = wait / region;
console.log(
  `the final wait for the GPU (${wait.toFixed(1)} ms, measured) is up to ` +
    `${(100 * share).toFixed(1)}% of the ${region.toFixed(0)} ms timed` +
    (share > MAX_WAIT_SHARE
      ? `: over ${100 * MAX_WAIT_SHARE}%, so time at least ${
        Math.ceil(wait / MAX_WAIT_SHARE / ms)
      } steps (--steps) for a step time it does not inflate`
      : ""),
);
if (values["host-only"]) {
  console.log("host only: every command buffer was dropped, so no kernel ran; no profile");
} else {
  startProfile();
  step();
  printProfileRows("profile of one step", await stopProfile(), top);
}
