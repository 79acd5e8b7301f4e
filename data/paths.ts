/**
 * Where datasets and the processed-dataset cache live, and how dataset names map to files.
 *
 * @module
 */
import { basename, extname, isAbsolute, join, resolve } from "node:path";
import { env, isFile, projectRoot } from "../host/mod.ts";

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
  /** Paths relative to the datasets directory, tried in order. */
  readonly files: readonly string[];
  /** One line on what the data is. */
  readonly description: string;
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
    files: [
      "kuairand/log_standard_4_08_to_4_21_pure.csv",
      "KuaiRand-Pure/data/log_standard_4_08_to_4_21_pure.csv",
      "log_standard_4_08_to_4_21_pure.csv",
      "kuairand-pure.inter",
      "kuairand-pure/kuairand-pure.inter",
    ],
    description: "KuaiRand-Pure standard log, 2022-04-08 to 2022-04-21",
  },
];

/** File extensions that mark an argument as a path rather than a dataset name. */
const DATA_EXTENSIONS = new Set([".txt", ".inter", ".dat", ".csv", ".tsv"]);

/** Finds a known dataset by its name or an alias (case-insensitive). */
export function findKnownDataset(name: string): KnownDataset | undefined {
  const key = name.toLowerCase();
  return KNOWN_DATASETS.find((d) => d.name === key || d.aliases.includes(key));
}

/** A dataset argument resolved to a file. */
export interface DatasetSource {
  /** The dataset name: the canonical name of a known dataset, else the file name without extension. */
  readonly name: string;
  /** The absolute path of the file to read. */
  readonly path: string;
}

/** Options for {@link resolveDatasetSource} and {@link listDatasets}. */
export interface DatasetLocationOptions {
  /** The directory to look in for dataset names; defaults to {@link defaultDatasetsDirectory}. */
  readonly datasetsDirectory?: string;
}

/**
 * Resolves a dataset name (`ml-1m`, `amazon-beauty`, `kuairand`, …) or a file path to a file.
 *
 * An argument that is an existing file, contains a path separator, or ends in a data extension is a
 * path; anything else is looked up by name in the datasets directory. Throws `Deno.errors.NotFound`
 * with the places it looked when nothing is there.
 */
export function resolveDatasetSource(
  nameOrPath: string,
  options: DatasetLocationOptions = {},
): DatasetSource {
  const looksLikePath = nameOrPath.includes("/") || nameOrPath.includes("\\") ||
    DATA_EXTENSIONS.has(extname(nameOrPath).toLowerCase()) || isAbsolute(nameOrPath);
  if (isFile(nameOrPath) || looksLikePath) {
    const path = resolve(nameOrPath);
    if (!isFile(path)) throw new Deno.errors.NotFound(`dataset file not found: ${path}`);
    const known = KNOWN_DATASETS.find((d) => d.files.some((f) => path.endsWith(`/${f}`)));
    const stem = basename(path, extname(path));
    return { name: known?.name ?? stem, path };
  }
  const directory = options.datasetsDirectory ?? defaultDatasetsDirectory();
  const known = findKnownDataset(nameOrPath);
  const candidates = known?.files ?? [
    `${nameOrPath}.txt`,
    `${nameOrPath}.inter`,
    `${nameOrPath}/${nameOrPath}.inter`,
    `${nameOrPath}.csv`,
    `${nameOrPath}.dat`,
  ];
  for (const file of candidates) {
    const path = join(directory, file);
    if (isFile(path)) return { name: known?.name ?? nameOrPath, path };
  }
  const names = KNOWN_DATASETS.map((d) => d.name).join(", ");
  throw new Deno.errors.NotFound(
    `dataset "${nameOrPath}" not found in ${directory} (looked for ${candidates.join(", ")}); ` +
      `known datasets: ${names}; or pass a file path`,
  );
}

/** One known dataset and whether its file is present. */
export interface DatasetAvailability {
  /** The canonical name. */
  readonly name: string;
  /** One line on what the data is. */
  readonly description: string;
  /** The file found, or `undefined` when absent. */
  readonly path: string | undefined;
  /** Where to put the file when it is absent (the first candidate location). */
  readonly expectedPath: string;
}

/** Lists the known datasets and whether each is present in the datasets directory. */
export function listDatasets(options: DatasetLocationOptions = {}): DatasetAvailability[] {
  const directory = options.datasetsDirectory ?? defaultDatasetsDirectory();
  return KNOWN_DATASETS.map((d) => {
    const found = d.files.map((f) => join(directory, f)).find(isFile);
    return {
      name: d.name,
      description: d.description,
      path: found,
      expectedPath: join(directory, d.files[0]),
    };
  });
}
