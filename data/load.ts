/**
 * One call from a dataset name or file to a processed, cached dataset.
 *
 * @module
 */
import { SequentialDataset } from "./dataset.ts";
import {
  type InteractionParseOptions,
  type LoadedInteractions,
  parseInteractions,
  parseKuaiRandLogs,
} from "./formats.ts";
import { DataFormatError } from "./errors.ts";
import {
  buildSequentialDataset,
  DEFAULT_MIN_INTERACTIONS,
  type PipelineOptions,
} from "./pipeline.ts";
import { datasetCacheKey, datasetCachePath, datasetToIPC, readDatasetCache } from "./cache.ts";
import { writeFileAtomic } from "../host/mod.ts";
import { basename } from "node:path";
import { generateSyntheticKuaiRand, SYNTHETIC_KUAIRAND_NAME } from "./synthetic_kuairand.ts";
import {
  type DatasetLocationOptions,
  type DatasetSource,
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
  /**
   * The file the data came from, the folder of a dataset read from several logs, or a generated
   * dataset's `generated:<name>`.
   */
  readonly sourcePath: string;
  /** Every file read, in reading order (`[sourcePath]` for a single file, none if generated). */
  readonly sourceFiles: readonly string[];
  /** The cache entry read or written, or `undefined` with caching off or a generated dataset. */
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

/** Options of {@link generatedInteractions}. */
export interface GeneratedInteractionOptions {
  /** Keep only the first this many users of the generated data (default: every user). */
  readonly firstUsers?: number;
}

/** The generator of each generated dataset (`KnownDataset.generated`), by canonical name. */
const GENERATORS: Readonly<
  Record<string, (options: GeneratedInteractionOptions) => LoadedInteractions>
> = {
  [SYNTHETIC_KUAIRAND_NAME]: generateSyntheticKuaiRand,
};

/**
 * The interactions of the generated dataset `name` (a canonical name whose `KnownDataset` is
 * `generated`), made in memory with its fixed seed. Throws a `RangeError` naming the generated
 * datasets for any other name.
 */
export function generatedInteractions(
  name: string,
  options: GeneratedInteractionOptions = {},
): LoadedInteractions {
  const generate = Object.hasOwn(GENERATORS, name) ? GENERATORS[name] : undefined;
  if (generate === undefined) {
    throw new RangeError(
      `no generator for dataset "${name}"; generated datasets: ${
        Object.keys(GENERATORS).join(", ")
      }`,
    );
  }
  return generate(options);
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
  if (source.generated) {
    // Generated in about a second from its seed: nothing to read, nothing worth caching.
    const name = options.name ?? source.name;
    const dataset = buildSequentialDataset(generatedInteractions(source.name), {
      ...options,
      name,
    });
    const seconds = (performance.now() - start) / 1000;
    return {
      dataset,
      sourcePath: source.path,
      sourceFiles: [],
      cachePath: undefined,
      fromCache: false,
      seconds,
    };
  }
  const contents = await Promise.all(source.files.map((f) => Deno.readFile(f)));
  const bytes = contents.length === 1 ? contents[0] : concatenate(contents);
  const mode = options.cache ?? "use";
  const name = options.name ?? source.name;
  const sourceFiles = source.files;
  let cachePath: string | undefined;
  if (mode !== "off") {
    const files = sourceFiles.length === 1 ? {} : { files: sourceFiles.map((f) => basename(f)) };
    const key = await datasetCacheKey(bytes, { ...keyOptions(options), ...files });
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
        return {
          dataset,
          sourcePath: source.path,
          sourceFiles,
          cachePath,
          fromCache: true,
          seconds,
        };
      }
    }
  }
  const loaded = parseSource(source, contents, options);
  const dataset = buildSequentialDataset(loaded, { ...options, name });
  if (cachePath !== undefined) await writeFileAtomic(cachePath, datasetToIPC(dataset));
  const seconds = (performance.now() - start) / 1000;
  return { dataset, sourcePath: source.path, sourceFiles, cachePath, fromCache: false, seconds };
}

/** The bytes of several files one after another. */
function concatenate(parts: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** Parses one file by its format, or the logs of a KuaiRand-Pure folder as one table. */
function parseSource(
  source: DatasetSource,
  contents: readonly Uint8Array[],
  options: InteractionParseOptions,
): LoadedInteractions {
  const decoder = new TextDecoder();
  if (contents.length === 1) {
    return parseInteractions(decoder.decode(contents[0]), source.path, options);
  }
  if (options.format !== undefined && options.format !== "kuairand-csv") {
    throw new DataFormatError(
      source.path,
      `a folder of KuaiRand logs is read as kuairand-csv, not ${options.format}; ` +
        "leave the format out or pass a single file",
    );
  }
  const logs = source.files.map((file, i) => ({ source: file, text: decoder.decode(contents[i]) }));
  return parseKuaiRandLogs(logs, source.path);
}

/**
 * Loads a dataset by name (`ml-1m`, `amazon-beauty`, `kuairand`, …, looked up in the datasets
 * directory; `kuairand-synthetic` generated in memory, never cached), by file path or by
 * KuaiRand-Pure folder (its `kuaiRandLogs` read one after another), and runs the RecBole-equivalent pipeline on it ({@link DEFAULT_MIN_INTERACTIONS}-core by
 * default), reading and writing the processed-dataset cache keyed by the files' content and the
 * options.
 */
export async function loadDataset(
  nameOrPath: string,
  options: LoadDatasetOptions = {},
): Promise<SequentialDataset> {
  return (await loadDatasetWithInfo(nameOrPath, options)).dataset;
}
