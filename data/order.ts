/**
 * How two copies of the same interactions order each user's sequence. Copies of one public dataset
 * can disagree on the order of items with equal (or, in RecBole, equal after float32 rounding)
 * timestamps; sequential metrics depend on that order, so this tells whether two copies are the
 * same experiment: e.g. a time-ordered `user item` text file against `ratings.dat` or RecBole's
 * `.inter`, which RecBole orders by 64-second steps for MovieLens timestamps.
 *
 * @module
 */
import type { SequentialDataset } from "./dataset.ts";
import { heldOutCount } from "./split.ts";

/** What {@link compareSequenceOrder} found. */
export interface OrderComparison {
  /** Users present in both datasets with the same items (their sequences are compared). */
  readonly usersCompared: number;
  /** Users present in only one of the datasets. */
  readonly usersInOneOnly: number;
  /** Users present in both whose items differ (not compared). */
  readonly usersWithOtherItems: number;
  /** Interactions of the compared users. */
  readonly interactions: number;
  /** Positions whose item differs between the two orders. */
  readonly positionsDiffering: number;
  /** Compared users with a validation target (four or more interactions). */
  readonly validTargets: number;
  /** Of those, users whose validation target differs. */
  readonly validTargetsDiffering: number;
  /** Compared users with a test target (three or more interactions). */
  readonly testTargets: number;
  /** Of those, users whose test target differs. */
  readonly testTargetsDiffering: number;
}

/** One user's items as tokens, in the dataset's order. */
function sequence(d: SequentialDataset, user: number): string[] {
  const out: string[] = [];
  for (let k = d.offsets[user]; k < d.offsets[user + 1]; k++) out.push(d.itemTokens[d.items[k]]);
  return out;
}

/** Whether two token lists hold the same multiset. */
function sameItems(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort(), y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

/**
 * Compares the per-user order of two datasets built from the same interactions, matching users
 * and items by their original tokens (ids from the files, not the remapped ones).
 */
export function compareSequenceOrder(a: SequentialDataset, b: SequentialDataset): OrderComparison {
  const inB = new Map<string, number>();
  for (let u = 1; u < b.numUsers; u++) inB.set(b.userTokens[u], u);
  let usersCompared = 0, usersInOneOnly = 0, usersWithOtherItems = 0, interactions = 0;
  let positionsDiffering = 0, validTargets = 0, validTargetsDiffering = 0;
  let testTargets = 0, testTargetsDiffering = 0;
  for (let u = 1; u < a.numUsers; u++) {
    const v = inB.get(a.userTokens[u]);
    if (v === undefined) {
      usersInOneOnly++;
      continue;
    }
    inB.delete(a.userTokens[u]);
    const x = sequence(a, u), y = sequence(b, v);
    if (!sameItems(x, y)) {
      usersWithOtherItems++;
      continue;
    }
    usersCompared++;
    interactions += x.length;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) positionsDiffering++;
    const n = x.length, held = heldOutCount(n);
    if (held >= 1) {
      testTargets++;
      if (x[n - 1] !== y[n - 1]) testTargetsDiffering++;
    }
    if (held === 2) {
      validTargets++;
      if (x[n - 2] !== y[n - 2]) validTargetsDiffering++;
    }
  }
  usersInOneOnly += inB.size;
  return {
    usersCompared,
    usersInOneOnly,
    usersWithOtherItems,
    interactions,
    positionsDiffering,
    validTargets,
    validTargetsDiffering,
    testTargets,
    testTargetsDiffering,
  };
}
