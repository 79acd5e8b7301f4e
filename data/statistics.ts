/**
 * Dataset statistics as the papers tabulate them, as plain values and as an Arrow table.
 *
 * @module
 */
import { type Table, tableFromArrays } from "apache-arrow";
import type { InteractionFormat } from "./formats.ts";
import type { LeaveOneOutSplit } from "./split.ts";

/**
 * Statistics of a processed dataset. Counts exclude the PAD id (RecBole's printout adds one to the
 * user and item counts and uses those in its sparsity; the papers' tables do not).
 */
export interface DatasetStatistics {
  /** The dataset name. */
  readonly name: string;
  /** The file it was built from. */
  readonly source: string;
  /** The format the file was read as. */
  readonly format: InteractionFormat;
  /** Users after filtering. */
  readonly users: number;
  /** Items after filtering. */
  readonly items: number;
  /** Interactions after filtering (duplicates kept). */
  readonly interactions: number;
  /** Mean interactions per user after filtering. */
  readonly averageLength: number;
  /** Longest user sequence after filtering. */
  readonly maxLength: number;
  /** Shortest user sequence after filtering. */
  readonly minLength: number;
  /** `1 − interactions / (users · items)`, as a fraction. */
  readonly sparsity: number;
  /** Users in the file. */
  readonly rawUsers: number;
  /** Items in the file. */
  readonly rawItems: number;
  /** Interactions in the file. */
  readonly rawInteractions: number;
  /** Rounds the k-core filter took to reach its fixed point. */
  readonly filterRounds: number;
  /** The user bound of the k-core filter. */
  readonly minUserInteractions: number;
  /** The item bound of the k-core filter. */
  readonly minItemInteractions: number;
  /** Training samples (prefixes) of the leave-one-out split. */
  readonly trainSamples: number;
  /** Validation samples. */
  readonly validSamples: number;
  /** Test samples. */
  readonly testSamples: number;
  /** Users too short for a validation sample (three interactions), as RecBole leaves them. */
  readonly usersWithoutValid: number;
  /** Users too short for a test sample (one or two interactions), as RecBole leaves them. */
  readonly usersWithoutTest: number;
}

/** What {@link computeStatistics} needs. */
export interface StatisticsInput {
  /** The dataset name. */
  readonly name: string;
  /** The source file. */
  readonly source: string;
  /** The source format. */
  readonly format: InteractionFormat;
  /** CSR offsets of the user sequences (`numUsers + 1` entries, user 0 empty). */
  readonly offsets: Int32Array;
  /** Number of item ids, PAD included. */
  readonly numItems: number;
  /** The split. */
  readonly split: LeaveOneOutSplit;
  /** Counts in the file before filtering. */
  readonly raw: { readonly users: number; readonly items: number; readonly interactions: number };
  /** Rounds of the k-core filter. */
  readonly filterRounds: number;
  /** User bound of the filter. */
  readonly minUserInteractions: number;
  /** Item bound of the filter. */
  readonly minItemInteractions: number;
}

/** Computes {@link DatasetStatistics} from the processed sequences and split. */
export function computeStatistics(input: StatisticsInput): DatasetStatistics {
  const { offsets } = input;
  const users = offsets.length - 2;
  const items = input.numItems - 1;
  const interactions = offsets[offsets.length - 1];
  let maxLength = 0;
  let minLength = Infinity;
  for (let u = 1; u < offsets.length - 1; u++) {
    const n = offsets[u + 1] - offsets[u];
    if (n > maxLength) maxLength = n;
    if (n < minLength) minLength = n;
  }
  return {
    name: input.name,
    source: input.source,
    format: input.format,
    users,
    items,
    interactions,
    averageLength: users > 0 ? interactions / users : 0,
    maxLength,
    minLength: users > 0 ? minLength : 0,
    sparsity: users > 0 && items > 0 ? 1 - interactions / users / items : 0,
    rawUsers: input.raw.users,
    rawItems: input.raw.items,
    rawInteractions: input.raw.interactions,
    filterRounds: input.filterRounds,
    minUserInteractions: input.minUserInteractions,
    minItemInteractions: input.minItemInteractions,
    trainSamples: input.split.train.users.length,
    validSamples: input.split.valid.users.length,
    testSamples: input.split.test.users.length,
    usersWithoutValid: input.split.usersWithoutValid,
    usersWithoutTest: input.split.usersWithoutTest,
  };
}

/** The numeric fields of {@link DatasetStatistics}, in table column order. */
const NUMERIC_FIELDS = [
  "users",
  "items",
  "interactions",
  "averageLength",
  "maxLength",
  "minLength",
  "sparsity",
  "rawUsers",
  "rawItems",
  "rawInteractions",
  "filterRounds",
  "trainSamples",
  "validSamples",
  "testSamples",
  "usersWithoutValid",
  "usersWithoutTest",
] as const;

/** Fields with fractional values (stored as Float64; the rest as Int32). */
const FLOAT_FIELDS = new Set<string>(["averageLength", "sparsity"]);

/**
 * The statistics of one or more datasets as an Arrow table: one row per dataset, with `name`,
 * `format` and every numeric field of {@link DatasetStatistics} (Float64 for the average length and
 * the sparsity, Int32 for the counts).
 */
export function statisticsToTable(
  statistics: DatasetStatistics | readonly DatasetStatistics[],
): Table {
  const list = Array.isArray(statistics) ? statistics : [statistics as DatasetStatistics];
  const columns: Record<string, string[] | Int32Array | Float64Array> = {
    name: list.map((s) => s.name),
    format: list.map((s) => s.format),
  };
  for (const field of NUMERIC_FIELDS) {
    columns[field] = FLOAT_FIELDS.has(field)
      ? Float64Array.from(list, (s) => s[field])
      : Int32Array.from(list, (s) => s[field]);
  }
  return tableFromArrays(columns as Parameters<typeof tableFromArrays>[0]);
}
