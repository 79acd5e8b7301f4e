/**
 * The result block of a fake run record for the run layer's tests: one epoch of 10 s training and
 * 2 s evaluation, a finished run with test HR@10 0.2.
 *
 * @module
 */
import type { RunRecord } from "../run/run_record.ts";

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
