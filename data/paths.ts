/**
 * Where datasets and the processed-dataset cache live, and how dataset names map to files.
 *
 * @module
 */
import { basename, extname, isAbsolute, join, resolve } from "node:path";
import { env, isFile, projectRoot } from "../host/mod.ts";
import { SYNTHETIC_KUAIRAND_NAME } from "./synthetic_kuairand.ts";

/**
 * The directory datasets are read from: `$SSMREC_DATASETS` if set, else `../shared/datasets` beside
 * the project root (resolved from this module's location, not from the working directory).
 */
export function defaultDatasetsDirectory(): string {
  const fromEnv = env("SSMREC_DATASETS");
  if (fromEnv !== undefined) return resolve(fromEnv);
  const root = projectRoot();
  return root === undefined
    ? resolve("../shared/datasets")
    : join(root, "..", "shared", "datasets");
}

/**
 * The directory of the processed-dataset cache: `$SSMREC_CACHE` if set, else `.cache/datasets` in
 * the project root.
 */
export function defaultCacheDirectory(): string {
  const fromEnv = env("SSMREC_CACHE");
  if (fromEnv !== undefined) return resolve(fromEnv);
  const root = projectRoot();
  return root === undefined ? resolve(".cache/datasets") : join(root, ".cache", "datasets");
}

/** A dataset the project knows by name, with the files it may be found in. */
export interface KnownDataset {
  /** The canonical name, e.g. `ml-1m`. */
  readonly name: string;
  /** Other accepted names. */
  readonly aliases: readonly string[];
  /** Paths relative to the datasets directory, tried in order (after {@link logFolders}). */
  readonly files: readonly string[];
  /**
   * For a dataset read from several log files (KuaiRand-Pure): folders relative to the datasets
   * directory, tried in order before {@link files}; each may hold the logs itself or in `data/`.
   */
  readonly logFolders?: readonly string[];
  /** One line on what the data is. */
  readonly description: string;
  /**
   * True for a dataset generated in memory (`data/load.ts` knows its generator) rather than read:
   * it has no files, is always available, and its source is {@link generatedSourcePath}.
   */
  readonly generated?: boolean;
}

/** The datasets of the two papers and the others in the shared dataset directory. */
export const KNOWN_DATASETS: readonly KnownDataset[] = [
  {
    name: "ml-1m",
    aliases: ["ml1m", "movielens-1m"],
    files: ["ml-1m.txt", "ml-1m.inter", "ml-1m/ml-1m.inter", "ml-1m/ratings.dat"],
    description: "MovieLens-1M ratings",
  },
  {
    name: "amazon-beauty",
    aliases: ["beauty"],
    files: ["amazon-beauty.txt", "amazon-beauty.inter", "amazon-beauty/amazon-beauty.inter"],
    description: "Amazon 2014 Beauty (5-core)",
  },
  {
    name: "amazon-video-games",
    aliases: ["games", "video-games"],
    files: [
      "amazon-video-games.txt",
      "amazon-video-games.inter",
      "amazon-video-games/amazon-video-games.inter",
    ],
    description: "Amazon 2014 Video Games",
  },
  {
    name: "amazon-sports",
    aliases: ["sports"],
    files: ["amazon-sports.txt", "amazon-sports.inter", "amazon-sports/amazon-sports.inter"],
    description: "Amazon 2014 Sports and Outdoors (5-core)",
  },
  {
    name: "amazon-toys",
    aliases: ["toys"],
    files: ["amazon-toys.txt", "amazon-toys.inter", "amazon-toys/amazon-toys.inter"],
    description: "Amazon 2014 Toys and Games (5-core)",
  },
  {
    name: "yelp",
    aliases: [],
    files: ["yelp.txt", "yelp.inter", "yelp/yelp.inter"],
    description: "Yelp (5-core, repeat visits kept)",
  },
  {
    name: "kuairand-pure",
    aliases: ["kuairand"],
    logFolders: ["KuaiRand-Pure", "kuairand-pure", "kuairand", "."],
    files: [
      "kuairand-pure.inter",
      "kuairand-pure/kuairand-pure.inter",
      "kuairand.inter",
      "kuairand/kuairand.inter",
    ],
    description: "KuaiRand-Pure logs (by default the standard logs, 2022-04-08 to 2022-05-08)",
  },
  {
    name: SYNTHETIC_KUAIRAND_NAME,
    aliases: ["synthetic-kuairand"],
    files: [],
    generated: true,
    description: "SYNTHETIC, not KuaiRand: generated interactions of KuaiRand's shape (23,951 " +
      "users, 7,111 items, 1,134,420 interactions) for timing",
  },
];

/** The source path of a generated dataset: `generated:<name>`, never a file. */
export function generatedSourcePath(name: string): string {
  return `generated:${name}`;
}

/** File extensions that mark an argument as a path rather than a dataset name. */
const DATA_EXTENSIONS = new Set([".txt", ".inter", ".dat", ".csv", ".tsv"]);

/** Finds a known dataset by its name or an alias (case-insensitive). */
export function findKnownDataset(name: string): KnownDataset | undefined {
  const key = name.toLowerCase();
  return KNOWN_DATASETS.find((d) => d.name === key || d.aliases.includes(key));
}

/** A dataset argument resolved to the files to read. */
export interface DatasetSource {
  /** The dataset name: the canonical name of a known dataset, else the file name without extension. */
  readonly name: string;
  /**
   * The absolute path of the file to read, or of the folder that holds the files of a dataset
   * read from several logs (KuaiRand-Pure); for a generated dataset {@link generatedSourcePath}.
   */
  readonly path: string;
  /**
   * The absolute paths of every file to read, in reading order (`[path]` for a single file;
   * none for a generated dataset).
   */
  readonly files: readonly string[];
  /** True for a dataset generated in memory ({@link KnownDataset.generated}), not read. */
  readonly generated?: boolean;
}

/**
 * Which KuaiRand-Pure logs make up the dataset: `"standard-early"` (the default) only the standard
 * log of 2022-04-08 to 04-21, the one SSD4Rec's KuaiRand (23,951 users / 7,111 items / 1,134,420
 * interactions after 5-core filtering) was built from; `"standard"` the standard logs of both
 * periods; `"all"` the standard logs and the random-exposure log.
 */
export type KuaiRandLogSet = "standard" | "standard-early" | "all";

/** The KuaiRand-Pure log files of each {@link KuaiRandLogSet}, in reading (time) order. */
export const KUAIRAND_PURE_LOGS: Readonly<Record<KuaiRandLogSet, readonly string[]>> = {
  standard: ["log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv"],
  "standard-early": ["log_standard_4_08_to_4_21_pure.csv"],
  all: [
    "log_standard_4_08_to_4_21_pure.csv",
    "log_standard_4_22_to_5_08_pure.csv",
    "log_random_4_22_to_5_08_pure.csv",
  ],
};

/** The log set read when none is chosen. */
export const DEFAULT_KUAIRAND_LOGS: KuaiRandLogSet = "standard-early";

/** Options for {@link resolveDatasetSource} and {@link listDatasets}. */
export interface DatasetLocationOptions {
  /** The directory to look in for dataset names; defaults to {@link defaultDatasetsDirectory}. */
  readonly datasetsDirectory?: string;
  /** The KuaiRand-Pure logs to read from a log folder; defaults to {@link DEFAULT_KUAIRAND_LOGS}. */
  readonly kuaiRandLogs?: KuaiRandLogSet;
}

/** Whether `path` is an existing directory. */
function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The KuaiRand-Pure logs found in a folder, with the folder that holds them. */
export interface KuaiRandLogLocation {
  /** The folder holding the logs: the folder given, or its `data/` subfolder. */
  readonly directory: string;
  /** The absolute paths of the chosen logs, in reading order. */
  readonly files: readonly string[];
}

/**
 * Finds the logs of `logs` in `folder` or `folder/data` (the unpacked official `KuaiRand-Pure`
 * layout). Returns `undefined` when neither holds any KuaiRand-Pure log, and throws
 * `Deno.errors.NotFound` naming the folder, the missing files and the expected ones when a folder
 * holds some logs but not all of the chosen set.
 */
export function locateKuaiRandLogs(
  folder: string,
  logs: KuaiRandLogSet = DEFAULT_KUAIRAND_LOGS,
): KuaiRandLogLocation | undefined {
  const expected = KUAIRAND_PURE_LOGS[logs];
  if (expected === undefined) {
    throw new RangeError(
      `unknown KuaiRand log set ${JSON.stringify(logs)}; one of ${
        Object.keys(KUAIRAND_PURE_LOGS).join(", ")
      }`,
    );
  }
  const allLogs = KUAIRAND_PURE_LOGS.all;
  for (const directory of [resolve(folder), resolve(folder, "data")]) {
    if (!allLogs.some((f) => isFile(join(directory, f)))) continue;
    const missing = expected.filter((f) => !isFile(join(directory, f)));
    if (missing.length > 0) {
      throw new Deno.errors.NotFound(
        `KuaiRand-Pure folder ${directory} lacks ${missing.join(", ")}; the "${logs}" log set ` +
          `reads ${expected.join(", ")} (sets: ${describeLogSets()})`,
      );
    }
    return { directory, files: expected.map((f) => join(directory, f)) };
  }
  return undefined;
}

/** Each log set with its files, for messages. */
function describeLogSets(): string {
  return Object.entries(KUAIRAND_PURE_LOGS).map(([set, files]) => `${set}: ${files.join(" + ")}`)
    .join("; ");
}

/**
 * Resolves a dataset name (`ml-1m`, `amazon-beauty`, `kuairand`, …), a file path or a KuaiRand-Pure
 * folder to the files to read.
 *
 * An argument that is an existing file or folder, contains a path separator, or ends in a data
 * extension is a path; a folder must hold KuaiRand-Pure logs (itself or in `data/`), of which the
 * `kuaiRandLogs` set is read. Anything else is looked up by name in the datasets directory: for
 * `kuairand` first the log folders, then processed `.inter` files; a generated dataset's name
 * (`kuairand-synthetic`) needs no file. Throws `Deno.errors.NotFound`
 * with the places it looked, or the log files missing, when nothing fits.
 */
export function resolveDatasetSource(
  nameOrPath: string,
  options: DatasetLocationOptions = {},
): DatasetSource {
  const logs = options.kuaiRandLogs ?? DEFAULT_KUAIRAND_LOGS;
  const looksLikePath = nameOrPath.includes("/") || nameOrPath.includes("\\") ||
    DATA_EXTENSIONS.has(extname(nameOrPath).toLowerCase()) || isAbsolute(nameOrPath);
  if (isFile(nameOrPath) || looksLikePath) {
    const path = resolve(nameOrPath);
    if (isDirectory(path)) {
      const found = locateKuaiRandLogs(path, logs);
      if (found === undefined) {
        throw new Deno.errors.NotFound(
          `dataset folder ${path} holds no KuaiRand-Pure logs (looked in ${path} and ` +
            `${join(path, "data")} for ${KUAIRAND_PURE_LOGS[logs].join(", ")}); pass a file ` +
            "or the unpacked KuaiRand-Pure folder",
        );
      }
      return { name: "kuairand-pure", path: found.directory, files: found.files };
    }
    if (!isFile(path)) throw new Deno.errors.NotFound(`dataset file not found: ${path}`);
    const known = KNOWN_DATASETS.find((d) =>
      d.files.some((f) => path.endsWith(`/${f}`)) ||
      (d.logFolders !== undefined && KUAIRAND_PURE_LOGS.all.includes(basename(path)))
    );
    const stem = basename(path, extname(path));
    return { name: known?.name ?? stem, path, files: [path] };
  }
  const directory = options.datasetsDirectory ?? defaultDatasetsDirectory();
  const known = findKnownDataset(nameOrPath);
  if (known?.generated) {
    return { name: known.name, path: generatedSourcePath(known.name), files: [], generated: true };
  }
  for (const folder of known?.logFolders ?? []) {
    const found = locateKuaiRandLogs(join(directory, folder), logs);
    if (found) {
      return { name: known?.name ?? nameOrPath, path: found.directory, files: found.files };
    }
  }
  const candidates = known?.files ?? [
    `${nameOrPath}.txt`,
    `${nameOrPath}.inter`,
    `${nameOrPath}/${nameOrPath}.inter`,
    `${nameOrPath}.csv`,
    `${nameOrPath}.dat`,
  ];
  for (const file of candidates) {
    const path = join(directory, file);
    if (isFile(path)) return { name: known?.name ?? nameOrPath, path, files: [path] };
  }
  const names = KNOWN_DATASETS.map((d) => d.name).join(", ");
  const folders = known?.logFolders === undefined
    ? ""
    : `the folders ${known.logFolders.join(", ")} (or their data/) for ${
      KUAIRAND_PURE_LOGS[logs].join(", ")
    }, then `;
  throw new Deno.errors.NotFound(
    `dataset "${nameOrPath}" not found in ${directory} (looked for ${folders}` +
      `${candidates.join(", ")}); known datasets: ${names}; or pass a file or folder path`,
  );
}

/** One known dataset and whether its file is present. */
export interface DatasetAvailability {
  /** The canonical name. */
  readonly name: string;
  /** One line on what the data is. */
  readonly description: string;
  /**
   * The file (or log folder) found, or `undefined` when absent; a generated dataset's
   * {@link generatedSourcePath}.
   */
  readonly path: string | undefined;
  /** Where to put the file (or log folder) when it is absent (the first candidate location). */
  readonly expectedPath: string;
  /** True for a generated dataset ({@link KnownDataset.generated}): synthetic, not read. */
  readonly generated?: boolean;
}

/** Lists the known datasets and whether each is present in the datasets directory. */
export function listDatasets(options: DatasetLocationOptions = {}): DatasetAvailability[] {
  const directory = options.datasetsDirectory ?? defaultDatasetsDirectory();
  return KNOWN_DATASETS.map((d) => {
    if (d.generated) {
      const path = generatedSourcePath(d.name);
      return {
        name: d.name,
        description: d.description,
        path,
        expectedPath: path,
        generated: true,
      };
    }
    const inFolder = (d.logFolders ?? []).map((f) => {
      try {
        return locateKuaiRandLogs(join(directory, f), options.kuaiRandLogs)?.directory;
      } catch {
        return undefined; // a folder missing some logs is not available
      }
    }).find((found) => found !== undefined);
    const found = inFolder ?? d.files.map((f) => join(directory, f)).find(isFile);
    return {
      name: d.name,
      description: d.description,
      path: found,
      expectedPath: join(directory, d.logFolders?.[0] ?? d.files[0]),
    };
  });
}
