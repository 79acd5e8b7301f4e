/**
 * The leave-one-out split of RecBole v1.2.0 (`LS: valid_and_test`, `order: TO`) over time-ordered
 * user sequences in CSR form.
 *
 * @module
 */

/**
 * Samples of one split. Sample `k` predicts `items[targetPositions[k]]` for user `users[k]` from
 * the history `items[offsets[users[k]] … targetPositions[k])` (the caller keeps the last L).
 */
export interface SampleSet {
  /** The user of each sample. */
  readonly users: Int32Array;
  /** The position of each sample's target item in the dataset's flat `items` array. */
  readonly targetPositions: Int32Array;
}

/** The leave-one-out split of RecBole's `LS: valid_and_test` with `order: TO`. */
export interface LeaveOneOutSplit {
  /** Every earlier prefix: targets `i_2 … i_{n−2}`, user by user, in time order. */
  readonly train: SampleSet;
  /** Target `i_{n−1}` with history `i_1 … i_{n−2}`, one per user (in user id order). */
  readonly valid: SampleSet;
  /** Target `i_n` with history `i_1 … i_{n−1}` (which includes the validation item). */
  readonly test: SampleSet;
  /** Users with three interactions: a test sample but no validation sample. */
  readonly usersWithoutValid: number;
  /** Users with one or two interactions: no test sample (two give one training sample). */
  readonly usersWithoutTest: number;
}

/**
 * How many of a user's last interactions the leave-one-out split holds out for evaluation: 2 (the
 * validation and the test target) from four interactions on, 1 (test only) with three, else 0.
 */
export function heldOutCount(interactions: number): 0 | 1 | 2 {
  return interactions <= 2 ? 0 : interactions === 3 ? 1 : 2;
}

/**
 * The leave-one-out split over time-ordered user sequences given by CSR `offsets` (see
 * `chronologicalOrder` in `pipeline.ts`). A user with `n` interactions has `m = n − 1` samples (every prefix
 * of at least one item); as in RecBole's `_split_index_by_leave_one_out`, the last `k = min(2, m − 1)`
 * go to evaluation: with `k = 2` the second-to-last to valid and the last to test, with `k = 1` the
 * last to test, with `k = 0` (n = 2) all to train; a user with one interaction has no sample.
 */
export function leaveOneOutSplit(offsets: Int32Array): LeaveOneOutSplit {
  const numUsers = offsets.length - 1;
  let trainCount = 0;
  let validCount = 0;
  let testCount = 0;
  let usersWithoutValid = 0;
  let usersWithoutTest = 0;
  for (let u = 1; u < numUsers; u++) {
    const n = offsets[u + 1] - offsets[u];
    if (n === 0) continue;
    const k = heldOutCount(n);
    trainCount += Math.max(0, n - 1 - k);
    if (k === 2) validCount++;
    else if (k === 1) usersWithoutValid++;
    else usersWithoutTest++;
    if (k >= 1) testCount++;
  }
  const make = (size: number) => ({
    users: new Int32Array(size),
    targetPositions: new Int32Array(size),
  });
  const train = make(trainCount);
  const valid = make(validCount);
  const test = make(testCount);
  let t = 0;
  let v = 0;
  let s = 0;
  for (let u = 1; u < numUsers; u++) {
    const start = offsets[u];
    const end = offsets[u + 1];
    const n = end - start;
    if (n === 0) continue;
    const k = heldOutCount(n);
    for (let p = start + 1; p < end - k; p++) {
      train.users[t] = u;
      train.targetPositions[t++] = p;
    }
    if (k === 2) {
      valid.users[v] = u;
      valid.targetPositions[v++] = end - 2;
    }
    if (k >= 1) {
      test.users[s] = u;
      test.targetPositions[s++] = end - 1;
    }
  }
  return { train, valid, test, usersWithoutValid, usersWithoutTest };
}
