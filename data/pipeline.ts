/**
 * The RecBole v1.2.0 sequential preprocessing: iterative k-core filtering, id remapping in order of
 * first appearance, stable chronological ordering on float32 timestamps, then the leave-one-out
 * split (`split.ts`) and the statistics, assembled into a {@link SequentialDataset}.
 *
 * @module
 */
import type { LoadedInteractions } from "./formats.ts";
import { SequentialDataset } from "./dataset.ts";
import { leaveOneOutSplit } from "./split.ts";
import { computeStatistics } from "./statistics.ts";

/**
 * The default k-core bound for users and items: RecBole's `user_inter_num_interval` and
 * `item_inter_num_interval` of `"[5,inf)"` in the papers' configurations (5-core filtering).
 */
export const DEFAULT_MIN_INTERACTIONS = 5;

/**
 * Interaction-count bounds for {@link kCoreFilter}, inclusive, as RecBole's
 * `user_inter_num_interval` / `item_inter_num_interval` (`"[5,inf)"` is `min…: 5`).
 */
export interface KCoreOptions {
  /** Fewest interactions a user must keep (default {@link DEFAULT_MIN_INTERACTIONS}). */
  readonly minUserInteractions?: number;
  /** Fewest interactions an item must keep (default {@link DEFAULT_MIN_INTERACTIONS}). */
  readonly minItemInteractions?: number;
  /** Most interactions a user may have (default unbounded). */
  readonly maxUserInteractions?: number;
  /** Most interactions an item may have (default unbounded). */
  readonly maxItemInteractions?: number;
}

/** What {@link kCoreFilter} kept. */
export interface KCoreResult {
  /** Indices of the kept rows, in their original order. */
  readonly rows: Int32Array;
  /** Number of dropping rounds until the fixed point (0 when nothing was dropped). */
  readonly rounds: number;
}

/** Largest id in `ids`, plus one (0 for an empty array). */
function idBound(ids: Int32Array): number {
  let max = -1;
  for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
  return max + 1;
}

/**
 * Iterative k-core filtering on users and items together, to a fixed point, as RecBole's
 * `_filter_by_inter_num`: each round computes the users and the items whose current interaction
 * counts (duplicates included) fall outside the bounds, both from the same counts, drops every row
 * whose user or item is banned, and repeats until a round bans nothing. Row order is preserved.
 */
export function kCoreFilter(
  users: Int32Array,
  items: Int32Array,
  options: KCoreOptions = {},
): KCoreResult {
  if (users.length !== items.length) {
    throw new RangeError(`kCoreFilter: ${users.length} users but ${items.length} items`);
  }
  const minUser = options.minUserInteractions ?? DEFAULT_MIN_INTERACTIONS;
  const minItem = options.minItemInteractions ?? DEFAULT_MIN_INTERACTIONS;
  const maxUser = options.maxUserInteractions ?? Infinity;
  const maxItem = options.maxItemInteractions ?? Infinity;
  const userCount = new Int32Array(idBound(users));
  const itemCount = new Int32Array(idBound(items));
  for (let i = 0; i < users.length; i++) {
    userCount[users[i]]++;
    itemCount[items[i]]++;
  }
  const bannedUser = new Uint8Array(userCount.length);
  const bannedItem = new Uint8Array(itemCount.length);
  const outside = (count: number, min: number, max: number) =>
    count > 0 && (count < min || count > max);
  let rows = new Int32Array(users.length);
  for (let i = 0; i < rows.length; i++) rows[i] = i;
  let rounds = 0;
  for (;;) {
    let anyBan = false;
    for (let u = 0; u < userCount.length; u++) {
      bannedUser[u] = outside(userCount[u], minUser, maxUser) ? 1 : 0;
      anyBan ||= bannedUser[u] === 1;
    }
    for (let v = 0; v < itemCount.length; v++) {
      bannedItem[v] = outside(itemCount[v], minItem, maxItem) ? 1 : 0;
      anyBan ||= bannedItem[v] === 1;
    }
    if (!anyBan) break;
    rounds++;
    let kept = 0;
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k];
      const u = users[r];
      const v = items[r];
      if (bannedUser[u] === 1 || bannedItem[v] === 1) {
        userCount[u]--;
        itemCount[v]--;
      } else {
        rows[kept++] = r;
      }
    }
    rows = rows.subarray(0, kept);
  }
  return { rows: rows.slice(), rounds };
}

/**
 * Remaps the ids of the given rows to `1, 2, …` in order of first appearance (RecBole's `_remap`,
 * `pd.factorize` + 1). Returns the new id of every row and, for each new id, the old id
 * (`oldIds[0]` is 0, the PAD id).
 */
export function remapFirstAppearance(
  ids: Int32Array,
  rows: Int32Array,
): { ids: Int32Array; oldIds: Int32Array } {
  const newOf = new Int32Array(idBound(ids));
  const remapped = new Int32Array(rows.length);
  const oldIds: number[] = [0];
  for (let k = 0; k < rows.length; k++) {
    const old = ids[rows[k]];
    let id = newOf[old];
    if (id === 0) {
      id = oldIds.length;
      newOf[old] = id;
      oldIds.push(old);
    }
    remapped[k] = id;
  }
  return { ids: remapped, oldIds: Int32Array.from(oldIds) };
}

/**
 * Groups rows by user and orders each user's rows by time, as RecBole's stable sort on
 * `[user_id, timestamp]` with timestamps rounded to float32: equal rounded times keep their row
 * order, and without timestamps the row order is the time order.
 *
 * `users` are ids in `1 … numUsers−1`. Returns `order` (row indices, user by user in id order, each
 * user's rows in time order) and `offsets` (`numUsers + 1` entries; user `u`'s rows are
 * `order[offsets[u] … offsets[u+1])`, and user 0, PAD, has none).
 */
export function chronologicalOrder(
  users: Int32Array,
  timestamps: Float64Array | undefined,
  numUsers: number,
): { order: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(numUsers + 1);
  for (let i = 0; i < users.length; i++) offsets[users[i] + 1]++;
  for (let u = 0; u < numUsers; u++) offsets[u + 1] += offsets[u];
  const fill = offsets.slice(0, numUsers);
  const order = new Int32Array(users.length);
  for (let i = 0; i < users.length; i++) order[fill[users[i]]++] = i;
  if (timestamps) {
    const key = (row: number) => Math.fround(timestamps[row]);
    for (let u = 1; u < numUsers; u++) {
      const start = offsets[u];
      const end = offsets[u + 1];
      let sorted = true;
      for (let k = start + 1; k < end && sorted; k++) sorted = key(order[k - 1]) <= key(order[k]);
      if (sorted) continue;
      // Row indices ascend within the segment, so breaking ties on them keeps the sort stable.
      const segment = Array.from(order.subarray(start, end));
      segment.sort((a, b) => key(a) - key(b) || a - b);
      order.set(segment, start);
    }
  }
  return { order, offsets };
}

/** Options of {@link buildSequentialDataset}. */
export interface PipelineOptions extends KCoreOptions {
  /** The dataset name shown in statistics (default: the source file name). */
  readonly name?: string;
}

/** Reads an Int32 column of a loaded table as one typed array. */
function int32Column(loaded: LoadedInteractions, name: string): Int32Array {
  const column = loaded.table.getChild(name);
  if (!column) throw new TypeError(`${loaded.source}: the table has no ${name} column`);
  return column.toArray() as Int32Array;
}

/**
 * Runs the whole RecBole-equivalent pipeline on loaded interactions: k-core filtering (default
 * {@link DEFAULT_MIN_INTERACTIONS}-core), id remapping in order of first appearance in the filtered rows, stable chronological
 * ordering, and the leave-one-out split.
 */
export function buildSequentialDataset(
  loaded: LoadedInteractions,
  options: PipelineOptions = {},
): SequentialDataset {
  const users = int32Column(loaded, "user");
  const items = int32Column(loaded, "item");
  const timeColumn = loaded.table.getChild("timestamp");
  const rawTimes = timeColumn ? timeColumn.toArray() as Float64Array : undefined;
  const minUserInteractions = options.minUserInteractions ?? DEFAULT_MIN_INTERACTIONS;
  const minItemInteractions = options.minItemInteractions ?? DEFAULT_MIN_INTERACTIONS;
  const { rows, rounds } = kCoreFilter(users, items, options);
  if (rows.length === 0) {
    throw new RangeError(
      `${loaded.source}: no interactions are left after filtering ` +
        `(users >= ${minUserInteractions}, items >= ${minItemInteractions}); ` +
        `lower minUserInteractions or minItemInteractions`,
    );
  }
  const userMap = remapFirstAppearance(users, rows);
  const itemMap = remapFirstAppearance(items, rows);
  const numUsers = userMap.oldIds.length;
  const numItems = itemMap.oldIds.length;
  let times: Float64Array | undefined;
  if (rawTimes) {
    times = new Float64Array(rows.length);
    for (let k = 0; k < rows.length; k++) times[k] = rawTimes[rows[k]];
  }
  const { order, offsets } = chronologicalOrder(userMap.ids, times, numUsers);
  const orderedItems = new Int32Array(order.length);
  for (let k = 0; k < order.length; k++) orderedItems[k] = itemMap.ids[order[k]];
  let orderedTimes: Float64Array | undefined;
  if (times) {
    orderedTimes = new Float64Array(order.length);
    for (let k = 0; k < order.length; k++) orderedTimes[k] = times[order[k]];
  }
  const userTokens = Array.from(
    userMap.oldIds,
    (old, id) => id === 0 ? "[PAD]" : loaded.userTokens[old],
  );
  const itemTokens = Array.from(
    itemMap.oldIds,
    (old, id) => id === 0 ? "[PAD]" : loaded.itemTokens[old],
  );
  const split = leaveOneOutSplit(offsets);
  const name = options.name ?? loaded.source.replace(/^.*[\\/]/, "").replace(/\.[^.]*$/, "");
  const statistics = computeStatistics({
    name,
    source: loaded.source,
    format: loaded.format,
    offsets,
    numItems,
    split,
    raw: {
      users: loaded.userTokens.length - 1,
      items: loaded.itemTokens.length - 1,
      interactions: users.length,
    },
    filterRounds: rounds,
    minUserInteractions,
    minItemInteractions,
  });
  return new SequentialDataset({
    name,
    source: loaded.source,
    format: loaded.format,
    offsets,
    items: orderedItems,
    timestamps: orderedTimes,
    userTokens,
    itemTokens,
    split,
    statistics,
  });
}
