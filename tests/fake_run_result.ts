/**
 * Fake run records for the run layer's tests: a result block of one epoch of 10 s training and
 * 2 s evaluation, a finished run with test HR@10 0.2, and a whole Mamba4Rec record on Beauty.
 *
 * @module
 */
import { trainConfig } from "../models/config.ts";
import type { CodeVersion } from "../run/code_version.ts";
import { RUN_RECORD_FORMAT, type RunRecord } from "../run/run_record.ts";

/** A finished one-epoch run's result, as records hold it. */
export function fakeRunResult(): RunRecord["result"] {
  return {
    history: [{ epoch: 0, loss: 1, valid: {}, trainSeconds: 10, evalSeconds: 2 }],
    bestEpoch: 0,
    bestValid: {},
    test: { "hit@10": 0.2 },
    stoppedEarly: false,
    complete: true,
    secondsPerEpoch: 10,
    epochsThisRun: 1,
  } as unknown as RunRecord["result"];
}

/**
 * A record of Mamba4Rec on Beauty (L 50) with `seed`, made by `code`, its model settings
 * `modelConfig` plus the seed.
 */
export function fakeBeautyRecord(
  seed: number,
  code: CodeVersion,
  modelConfig: Record<string, unknown> = {},
): RunRecord {
  return {
    format: RUN_RECORD_FORMAT,
    code,
    deno: Deno.version.deno,
    model: "mamba4rec",
    dataset: "amazon-beauty",
    users: 1,
    items: 1,
    adapter: "test adapter",
    finishedAt: "2026-01-01T00:00:00.000Z",
    command: `deno task train --dataset amazon-beauty --seed ${seed}`,
    modelConfig: { ...modelConfig, seed },
    trainConfig: trainConfig({ maxLength: 50, seed }),
    parameters: 1,
    result: fakeRunResult(),
  };
}
