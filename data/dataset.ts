/**
 * The processed dataset handed to trainers: time-ordered user sequences in CSR form and the split.
 *
 * @module
 */
import { type Table, tableFromArrays } from "apache-arrow";
import type { InteractionFormat } from "./formats.ts";
import type { LeaveOneOutSplit } from "./split.ts";
import type { DatasetStatistics } from "./statistics.ts";

/** The parts a {@link SequentialDataset} is made of. */
export interface SequentialDatasetParts {
  /** The dataset name. */
  readonly name: string;
  /** The source file. */
  readonly source: string;
  /** The source format. */
  readonly format: InteractionFormat;
  /** CSR offsets, `numUsers + 1` entries. */
  readonly offsets: Int32Array;
  /** All users' item ids, user by user, each in time order. */
  readonly items: Int32Array;
  /** The source timestamps in the same order, when the source has them. */
  readonly timestamps: Float64Array | undefined;
  /** Raw user tokens by id (`[0]` is `"[PAD]"`). */
  readonly userTokens: readonly string[];
  /** Raw item tokens by id (`[0]` is `"[PAD]"`). */
  readonly itemTokens: readonly string[];
  /** The leave-one-out split. */
  readonly split: LeaveOneOutSplit;
  /** The statistics. */
  readonly statistics: DatasetStatistics;
}

/**
 * A processed sequential dataset, equivalent to what RecBole v1.2.0 builds: ids remapped from 1 in
 * order of first appearance after k-core filtering (0 is PAD), each user's items in stable
 * chronological order, and the leave-one-out split.
 */
export class SequentialDataset {
  /** The dataset name. */
  readonly name: string;
  /** The source file. */
  readonly source: string;
  /** The source format. */
  readonly format: InteractionFormat;
  /** Number of user ids, PAD included (real users + 1), as RecBole's `dataset.num(user_id)`. */
  readonly numUsers: number;
  /** Number of item ids, PAD included (real items + 1): the size of the item embedding table. */
  readonly numItems: number;
  /**
   * CSR offsets with `numUsers + 1` entries: user `u`'s items are `items[offsets[u] … offsets[u+1])`.
   * User 0 (PAD) is empty.
   */
  readonly offsets: Int32Array;
  /** All users' item ids, user by user, each user's in time order. */
  readonly items: Int32Array;
  /** The source timestamps aligned with `items`, when the source has them. */
  readonly timestamps: Float64Array | undefined;
  /** Raw user tokens by id (`userTokens[0]` is `"[PAD]"`). */
  readonly userTokens: readonly string[];
  /** Raw item tokens by id (`itemTokens[0]` is `"[PAD]"`). */
  readonly itemTokens: readonly string[];
  /** The leave-one-out split. */
  readonly split: LeaveOneOutSplit;
  /** Statistics after filtering, with the split counts. */
  readonly statistics: DatasetStatistics;

  /** Assembles a dataset from its parts (normally done by the pipeline or the cache). */
  constructor(parts: SequentialDatasetParts) {
    this.name = parts.name;
    this.source = parts.source;
    this.format = parts.format;
    this.offsets = parts.offsets;
    this.items = parts.items;
    this.timestamps = parts.timestamps;
    this.userTokens = parts.userTokens;
    this.itemTokens = parts.itemTokens;
    this.split = parts.split;
    this.statistics = parts.statistics;
    this.numUsers = parts.offsets.length - 1;
    this.numItems = parts.itemTokens.length;
  }

  /** User `user`'s items in time order (a view, not a copy). */
  sequence(user: number): Int32Array {
    return this.items.subarray(this.offsets[user], this.offsets[user + 1]);
  }

  /** Number of interactions of user `user`. */
  sequenceLength(user: number): number {
    return this.offsets[user + 1] - this.offsets[user];
  }

  /** Sequence lengths of all real users (index `u − 1` for user `u`). */
  sequenceLengths(): Int32Array {
    const lengths = new Int32Array(this.numUsers - 1);
    for (let u = 1; u < this.numUsers; u++) lengths[u - 1] = this.offsets[u + 1] - this.offsets[u];
    return lengths;
  }

  /**
   * The processed interactions as an Arrow table, in sequence order: `user`, `item` (Int32) and
   * `timestamp` (Float64) when present. The item and timestamp columns share memory with this
   * dataset.
   */
  toTable(): Table {
    const users = new Int32Array(this.items.length);
    for (let u = 1; u < this.numUsers; u++) users.fill(u, this.offsets[u], this.offsets[u + 1]);
    const columns: Record<string, Int32Array | Float64Array> = { user: users, item: this.items };
    if (this.timestamps) columns.timestamp = this.timestamps;
    return tableFromArrays(columns);
  }
}
