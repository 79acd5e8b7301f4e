/**
 * The processed-dataset cache: one Arrow IPC file per (source content, options), written atomically.
 *
 * The file holds the processed interactions in sequence order (`user`, `item`, and `timestamp` when
 * present) and, in its schema metadata, the id-to-token maps and the statistics. The split is
 * recomputed on reading; it is a cheap pass over the offsets.
 *
 * @module
 */
import { tableFromIPC, tableToIPC } from "apache-arrow";
import { join } from "node:path";
import { SequentialDataset } from "./dataset.ts";
import type { InteractionFormat } from "./formats.ts";
import { leaveOneOutSplit } from "./split.ts";
import type { DatasetStatistics } from "./statistics.ts";

/** Bumped whenever the processing or the file layout changes, so that old entries are not used. */
export const CACHE_LAYOUT_VERSION = 1;

/** Metadata key prefix in the Arrow schema. */
const META = "ssmrec.";

/** Hex SHA-256 of the source bytes and the options that shape the processed dataset. */
export async function datasetCacheKey(source: Uint8Array, options: unknown): Promise<string> {
  const header = new TextEncoder().encode(
    JSON.stringify({ layout: CACHE_LAYOUT_VERSION, options }) + "\n",
  );
  const contentDigest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", source as Uint8Array<ArrayBuffer>),
  );
  const all = new Uint8Array(header.length + contentDigest.length);
  all.set(header);
  all.set(contentDigest, header.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cache file for a dataset name and key. */
export function datasetCachePath(directory: string, name: string, key: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "_");
  return join(directory, `${safe}-${key.slice(0, 20)}.arrow`);
}

/** Serialises a dataset to Arrow IPC file bytes. */
export function datasetToIPC(dataset: SequentialDataset): Uint8Array {
  const table = dataset.toTable();
  const meta = table.schema.metadata;
  meta.set(`${META}layout`, String(CACHE_LAYOUT_VERSION));
  meta.set(`${META}name`, dataset.name);
  meta.set(`${META}source`, dataset.source);
  meta.set(`${META}format`, dataset.format);
  meta.set(`${META}numUsers`, String(dataset.numUsers));
  meta.set(`${META}userTokens`, JSON.stringify(dataset.userTokens));
  meta.set(`${META}itemTokens`, JSON.stringify(dataset.itemTokens));
  meta.set(`${META}statistics`, JSON.stringify(dataset.statistics));
  return tableToIPC(table, "file");
}

/**
 * Rebuilds a dataset from Arrow IPC file bytes written by {@link datasetToIPC}. Throws a
 * `TypeError` naming `file` when the bytes are not such a file or are inconsistent.
 */
export function datasetFromIPC(bytes: Uint8Array, file = "<bytes>"): SequentialDataset {
  const table = tableFromIPC(bytes);
  const meta = table.schema.metadata;
  const get = (key: string): string => {
    const value = meta.get(`${META}${key}`);
    if (value === undefined) throw new TypeError(`${file}: not a dataset cache file (no ${key})`);
    return value;
  };
  if (get("layout") !== String(CACHE_LAYOUT_VERSION)) {
    throw new TypeError(`${file}: cache layout ${get("layout")}, expected ${CACHE_LAYOUT_VERSION}`);
  }
  const numUsers = Number(get("numUsers"));
  const userColumn = table.getChild("user");
  const itemColumn = table.getChild("item");
  if (!userColumn || !itemColumn) throw new TypeError(`${file}: missing user or item column`);
  const users = userColumn.toArray() as Int32Array;
  const items = itemColumn.toArray() as Int32Array;
  const timeColumn = table.getChild("timestamp");
  const timestamps = timeColumn ? timeColumn.toArray() as Float64Array : undefined;
  const offsets = new Int32Array(numUsers + 1);
  for (let i = 0; i < users.length; i++) {
    const u = users[i];
    if (u < 1 || u >= numUsers || (i > 0 && u < users[i - 1])) {
      throw new TypeError(`${file}: user column is not grouped by user at row ${i}`);
    }
    offsets[u + 1]++;
  }
  for (let u = 0; u < numUsers; u++) offsets[u + 1] += offsets[u];
  const statistics = JSON.parse(get("statistics")) as DatasetStatistics;
  if (statistics.interactions !== items.length) {
    throw new TypeError(
      `${file}: ${items.length} rows but statistics say ${statistics.interactions}`,
    );
  }
  return new SequentialDataset({
    name: get("name"),
    source: get("source"),
    format: get("format") as InteractionFormat,
    offsets,
    items,
    timestamps,
    userTokens: JSON.parse(get("userTokens")) as string[],
    itemTokens: JSON.parse(get("itemTokens")) as string[],
    split: leaveOneOutSplit(offsets),
    statistics,
  });
}

/** Reads a cached dataset, or returns `undefined` when the file is absent or unreadable. */
export async function readDatasetCache(path: string): Promise<SequentialDataset | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    return datasetFromIPC(bytes, path);
  } catch {
    return undefined;
  }
}
