/**
 * Interactions as the loaders give them: the formats understood, the loaded table with its
 * token lists, and the builder every loader fills, which keeps rows in file order and maps the
 * raw user and item tokens (strings, as RecBole reads them) to Int32 ids in order of first
 * appearance, starting at 1; id 0 is `[PAD]`.
 *
 * @module
 */
import { type Table, tableFromArrays } from "apache-arrow";
import { DataFormatError } from "./errors.ts";

/** The interaction file formats understood by `parseInteractions` (`./formats.ts`). */
export type InteractionFormat =
  | "movielens-dat"
  | "atomic-inter"
  | "user-item-pairs"
  | "user-sequences"
  | "kuairand-csv";

/** Each format with a one-line description, for help texts. */
export const INTERACTION_FORMATS: Readonly<Record<InteractionFormat, string>> = {
  "movielens-dat": "MovieLens ratings.dat: UserID::MovieID::Rating::Timestamp",
  "atomic-inter": "RecBole atomic .inter: tab-separated, typed header (user_id:token ...)",
  "user-item-pairs": "one `user item` pair per line, lines in time order",
  "user-sequences": "one `user item1 item2 ...` line per user, items in time order",
  "kuairand-csv": "KuaiRand log CSV with header (user_id, video_id, time_ms, ...)",
};

/** Interactions as loaded from one file, before any filtering. */
export interface LoadedInteractions {
  /** The file the rows came from (or the name given to in-memory text). */
  readonly source: string;
  /** The format the file was read as. */
  readonly format: InteractionFormat;
  /**
   * One row per interaction, in file order: `user` and `item` (Int32 ids, first appearance from 1),
   * `timestamp` (Float64, as in the file) when the source has one, `rating` (Float32) when it has one.
   */
  readonly table: Table;
  /** Raw user tokens by id; `userTokens[0]` is `"[PAD]"`. */
  readonly userTokens: readonly string[];
  /** Raw item tokens by id; `itemTokens[0]` is `"[PAD]"`. */
  readonly itemTokens: readonly string[];
}

/** Options for `parseInteractions` and `readInteractions` (`./formats.ts`). */
export interface InteractionParseOptions {
  /** The format; detected from the file name and first line when left out. */
  readonly format?: InteractionFormat;
  /** For `.inter` files: the user field name (RecBole's `USER_ID_FIELD`), default `user_id`. */
  readonly userField?: string;
  /** For `.inter` files: the item field name (`ITEM_ID_FIELD`), default `item_id`. */
  readonly itemField?: string;
  /** For `.inter` files: the time field name (`TIME_FIELD`), default `timestamp`. */
  readonly timeField?: string;
  /** For `.inter` files: the rating field name (`RATING_FIELD`), default `rating`. */
  readonly ratingField?: string;
}

/** Accumulates interactions, mapping tokens to ids in order of first appearance. */
export class InteractionBuilder {
  #users = new Int32Array(1 << 16);
  #items = new Int32Array(1 << 16);
  #timestamps: Float64Array | undefined;
  #ratings: Float32Array | undefined;
  #length = 0;
  readonly #userIds = new Map<string, number>();
  readonly #itemIds = new Map<string, number>();
  readonly #userTokens: string[] = ["[PAD]"];
  readonly #itemTokens: string[] = ["[PAD]"];

  /**
   * An empty builder.
   * @param withTimestamps whether rows carry a timestamp column
   * @param withRatings whether rows carry a rating column
   */
  constructor(withTimestamps: boolean, withRatings: boolean) {
    if (withTimestamps) this.#timestamps = new Float64Array(this.#users.length);
    if (withRatings) this.#ratings = new Float32Array(this.#users.length);
  }

  #grow(): void {
    const size = this.#users.length * 2;
    const grow = <T extends Int32Array | Float64Array | Float32Array>(
      a: T,
      make: (n: number) => T,
    ) => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.#users = grow(this.#users, (n) => new Int32Array(n));
    this.#items = grow(this.#items, (n) => new Int32Array(n));
    if (this.#timestamps) this.#timestamps = grow(this.#timestamps, (n) => new Float64Array(n));
    if (this.#ratings) this.#ratings = grow(this.#ratings, (n) => new Float32Array(n));
  }

  /** The id of a user token, a new one (the next free) at its first appearance. */
  userId(token: string): number {
    let id = this.#userIds.get(token);
    if (id === undefined) {
      id = this.#userTokens.length;
      this.#userIds.set(token, id);
      this.#userTokens.push(token);
    }
    return id;
  }

  /** The id of an item token, a new one (the next free) at its first appearance. */
  itemId(token: string): number {
    let id = this.#itemIds.get(token);
    if (id === undefined) {
      id = this.#itemTokens.length;
      this.#itemIds.set(token, id);
      this.#itemTokens.push(token);
    }
    return id;
  }

  /** Appends one interaction; `timestamp` and `rating` are kept where the builder has them. */
  add(user: number, item: number, timestamp = NaN, rating = NaN): void {
    if (this.#length === this.#users.length) this.#grow();
    const i = this.#length++;
    this.#users[i] = user;
    this.#items[i] = item;
    if (this.#timestamps) this.#timestamps[i] = timestamp;
    if (this.#ratings) this.#ratings[i] = rating;
  }

  /** Interactions added so far. */
  get length(): number {
    return this.#length;
  }

  /**
   * The loaded interactions of `source` read as `format`. Throws {@link DataFormatError} when no
   * interaction was added.
   */
  finish(source: string, format: InteractionFormat): LoadedInteractions {
    if (this.#length === 0) throw new DataFormatError(source, "the file holds no interactions");
    const n = this.#length;
    const columns: Record<string, Int32Array | Float64Array | Float32Array> = {
      user: this.#users.slice(0, n),
      item: this.#items.slice(0, n),
    };
    if (this.#timestamps) columns.timestamp = this.#timestamps.slice(0, n);
    if (this.#ratings) columns.rating = this.#ratings.slice(0, n);
    return {
      source,
      format,
      table: tableFromArrays(columns),
      userTokens: this.#userTokens,
      itemTokens: this.#itemTokens,
    };
  }
}
