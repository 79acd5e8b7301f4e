/**
 * One call from a dataset name or file to a processed, cached dataset.
 *
 * @module
 */
import { SequentialDataset } from "./dataset.ts";
import { type InteractionParseOptions, parseInteractions } from "./formats.ts";
import {
  buildSequentialDataset,
  DEFAULT_MIN_INTERACTIONS,
  type PipelineOptions,
} from "./pipeline.ts";
import { datasetCacheKey, datasetCachePath, datasetToIPC, readDatasetCache } from "./cache.ts";
import { writeFileAtomic } from "../host/mod.ts";
import {
  type DatasetLocationOptions,
  defaultCacheDirectory,
  resolveDatasetSource,
} from "./paths.ts";

/** How {@link loadDataset} uses the processed-dataset cache. */
export type CacheMode = "use" | "refresh" | "off";

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions
  extends PipelineOptions, InteractionParseOptions, DatasetLocationOptions {
  /**
   * `"use"` (default) reads the cache when it has the entry and writes it when not; `"refresh"`
   * always processes the source and rewrites the entry; `"off"` neither reads nor writes.
   */
  readonly cache?: CacheMode;
  /** The cache directory; defaults to {@link defaultCacheDirectory}. */
  readonly cacheDirectory?: string;
}

/** How a dataset was obtained by {@link loadDatasetWithInfo}. */
export interface DatasetLoadInfo {
  /** The processed dataset. */
  readonly dataset: SequentialDataset;
  /** The file the data came from. */
  readonly sourcePath: string;
  /** The cache entry read or written, or `undefined` with caching off. */
  readonly cachePath: string | undefined;
  /** Whether the dataset came from the cache. */
  readonly fromCache: boolean;
  /** Wall time of the whole load, in seconds. */
  readonly seconds: number;
}

/** The options that change the processed result, normalised for the cache key. */
function keyOptions(options: LoadDatasetOptions): Record<string, unknown> {
  return {
    format: options.format ?? null,
    userField: options.userField ?? "user_id",
    itemField: options.itemField ?? "item_id",
    timeField: options.timeField ?? "timestamp",
    ratingField: options.ratingField ?? "rating",
    minUserInteractions: options.minUserInteractions ?? DEFAULT_MIN_INTERACTIONS,
    minItemInteractions: options.minItemInteractions ?? DEFAULT_MIN_INTERACTIONS,
    maxUserInteractions: options.maxUserInteractions ?? null,
    maxItemInteractions: options.maxItemInteractions ?? null,
  };
}

/**
 * Like {@link loadDataset}, and also says where the data came from and how long it took.
 */
export async function loadDatasetWithInfo(
  nameOrPath: string,
  options: LoadDatasetOptions = {},
): Promise<DatasetLoadInfo> {
  const start = performance.now();
  const source = resolveDatasetSource(nameOrPath, options);
  const bytes = await Deno.readFile(source.path);
  const mode = options.cache ?? "use";
  const name = options.name ?? source.name;
  let cachePath: string | undefined;
  if (mode !== "off") {
    const key = await datasetCacheKey(bytes, keyOptions(options));
    cachePath = datasetCachePath(options.cacheDirectory ?? defaultCacheDirectory(), name, key);
    if (mode === "use") {
      const cached = await readDatasetCache(cachePath);
      if (cached) {
        const dataset = new SequentialDataset({
          ...cached,
          name,
          source: source.path,
          statistics: { ...cached.statistics, name, source: source.path },
        });
        const seconds = (performance.now() - start) / 1000;
        return { dataset, sourcePath: source.path, cachePath, fromCache: true, seconds };
      }
    }
  }
  const text = new TextDecoder().decode(bytes);
  const loaded = parseInteractions(text, source.path, options);
  const dataset = buildSequentialDataset(loaded, { ...options, name });
  if (cachePath !== undefined) await writeFileAtomic(cachePath, datasetToIPC(dataset));
  const seconds = (performance.now() - start) / 1000;
  return { dataset, sourcePath: source.path, cachePath, fromCache: false, seconds };
}

/**
 * Loads a dataset by name (`ml-1m`, `amazon-beauty`, …, looked up in the datasets directory) or by
 * file path, and runs the RecBole-equivalent pipeline on it ({@link DEFAULT_MIN_INTERACTIONS}-core by default), reading and
 * writing the processed-dataset cache keyed by the file's content and the options.
 */
export async function loadDataset(
  nameOrPath: string,
  options: LoadDatasetOptions = {},
): Promise<SequentialDataset> {
  return (await loadDatasetWithInfo(nameOrPath, options)).dataset;
}
