/**
 * Command-line access to the data pipeline.
 *
 *     deno task data stats <file-or-dataset-name> [--format F] [--json] [--k N] [--no-cache]
 *     deno task data order <a> <b> [--format-a F] [--format-b F] [--json] [--k N] [--no-cache]
 *     deno task data list
 *
 * `stats` prints the statistics after iterative k-core filtering (the pipeline's default bound,
 * `DEFAULT_MIN_INTERACTIONS`, unless `--k`, `--min-user` or `--min-item` say otherwise). `order` compares how two copies of the same
 * interactions order each user's sequence (e.g. a time-ordered text file against `ratings.dat`).
 * Exit status 1 with a one-line message on bad input.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  compareSequenceOrder,
  type DatasetStatistics,
  DEFAULT_MIN_INTERACTIONS,
  INTERACTION_FORMATS,
  type InteractionFormat,
  listDatasets,
  loadDatasetWithInfo,
  type OrderComparison,
} from "../data/mod.ts";
import { formatPercent } from "../viz/mod.ts";

const USAGE = `Usage:
  deno task data stats <file-or-dataset-name> [options]   statistics after k-core filtering
  deno task data order <a> <b> [options]                  how two copies of the same interactions
                                                           order each user's sequence
  deno task data list                                      known datasets and where they are

Options of stats (and order):
  --format <format>      ${Object.keys(INTERACTION_FORMATS).join(" | ")}
                         (detected from the file when left out; order: --format-a, --format-b)
  --json                 print the statistics as JSON
  --k <n>                k-core bound for users and items (default ${DEFAULT_MIN_INTERACTIONS})
  --min-user <n>         user bound (default: --k)
  --min-item <n>         item bound (default: --k)
  --no-cache             neither read nor write the processed-dataset cache
  --datasets-dir <dir>   where dataset names are looked up (default $SSMREC_DATASETS or ../shared/datasets)
  --cache-dir <dir>      the cache directory (default $SSMREC_CACHE or .cache/datasets)

Formats:
${Object.entries(INTERACTION_FORMATS).map(([k, v]) => `  ${k.padEnd(18)} ${v}`).join("\n")}`;

/** Formats an integer with thousands separators. */
function int(n: number): string {
  return n.toLocaleString("en-US");
}

/** The statistics as aligned text. */
export function statisticsText(s: DatasetStatistics): string {
  const rows: [string, string, string][] = [
    ["users", int(s.users), `raw ${int(s.rawUsers)}`],
    ["items", int(s.items), `raw ${int(s.rawItems)}`],
    ["interactions", int(s.interactions), `raw ${int(s.rawInteractions)}`],
    ["average length", s.averageLength.toFixed(2), ""],
    ["max length", int(s.maxLength), ""],
    ["min length", int(s.minLength), ""],
    ["sparsity", formatPercent(s.sparsity), ""],
    ["train samples", int(s.trainSamples), ""],
    ["valid samples", int(s.validSamples), `${int(s.usersWithoutValid)} users without one`],
    ["test samples", int(s.testSamples), `${int(s.usersWithoutTest)} users without one`],
  ];
  const width = Math.max(...rows.map((r) => r[1].length));
  const core = s.minUserInteractions === s.minItemInteractions
    ? `${s.minUserInteractions}-core`
    : `users >= ${s.minUserInteractions}, items >= ${s.minItemInteractions}`;
  const rounds = `${s.filterRounds} round${s.filterRounds === 1 ? "" : "s"}`;
  return [
    `${s.name} (${s.format}, ${s.source})`,
    `after iterative ${core} filtering (${rounds})`,
    ...rows.map(([k, v, note]) =>
      `  ${k.padEnd(15)} ${v.padStart(width)}${note ? `   (${note})` : ""}`
    ),
  ].join("\n");
}

/** An order comparison as aligned text. */
export function orderText(a: string, b: string, c: OrderComparison): string {
  const part = (n: number, of: number) =>
    `${int(n)} of ${int(of)} (${of > 0 ? (100 * n / of).toFixed(1) : "0.0"}%)`;
  const lines = [
    `${a}\n  vs ${b}: ${int(c.usersCompared)} users compared`,
    `  positions differing          ${part(c.positionsDiffering, c.interactions)}`,
    `  validation targets differing ${part(c.validTargetsDiffering, c.validTargets)}`,
    `  test targets differing       ${part(c.testTargetsDiffering, c.testTargets)}`,
  ];
  if (c.usersInOneOnly > 0) lines.push(`  ${int(c.usersInOneOnly)} users are in one file only`);
  if (c.usersWithOtherItems > 0) {
    lines.push(`  ${int(c.usersWithOtherItems)} users have other items in the two files (skipped)`);
  }
  return lines.join("\n");
}

/** Parses a non-negative integer option. */
function integerOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new TypeError(`--${name} must be a non-negative integer, got ${value}`);
  }
  return n;
}

/** Runs the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      "format-a": { type: "string" },
      "format-b": { type: "string" },
      json: { type: "boolean", default: false },
      k: { type: "string" },
      "min-user": { type: "string" },
      "min-item": { type: "string" },
      "no-cache": { type: "boolean", default: false },
      "datasets-dir": { type: "string" },
      "cache-dir": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command === "list") {
    for (const d of listDatasets({ datasetsDirectory: values["datasets-dir"] })) {
      const where = d.path ?? `not available (put it at ${d.expectedPath})`;
      console.log(`${d.name.padEnd(20)} ${d.description}\n${"".padEnd(20)} ${where}`);
    }
    return 0;
  }
  if (command !== "stats" && command !== "order") {
    console.error(`error: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  const wanted = command === "stats" ? 1 : 2;
  if (rest.length !== wanted) {
    console.error(
      `error: ${command} takes ${wanted} file(s) or dataset name(s), got ${rest.length}\n\n${USAGE}`,
    );
    return 2;
  }
  const formats = command === "stats"
    ? [values.format]
    : [values["format-a"] ?? values.format, values["format-b"] ?? values.format];
  for (const format of formats) {
    if (format !== undefined && !(format in INTERACTION_FORMATS)) {
      console.error(
        `error: unknown format ${JSON.stringify(format)}; one of ${
          Object.keys(INTERACTION_FORMATS).join(", ")
        }`,
      );
      return 2;
    }
  }
  const k = integerOption("k", values.k) ?? DEFAULT_MIN_INTERACTIONS;
  const load = (source: string, format: string | undefined) =>
    loadDatasetWithInfo(source, {
      format: format as InteractionFormat | undefined,
      minUserInteractions: integerOption("min-user", values["min-user"]) ?? k,
      minItemInteractions: integerOption("min-item", values["min-item"]) ?? k,
      cache: values["no-cache"] ? "off" : "use",
      datasetsDirectory: values["datasets-dir"],
      cacheDirectory: values["cache-dir"],
    });
  if (command === "order") {
    const [a, b] = [await load(rest[0], formats[0]), await load(rest[1], formats[1])];
    const c = compareSequenceOrder(a.dataset, b.dataset);
    if (values.json) console.log(JSON.stringify(c, null, 2));
    else console.log(orderText(a.dataset.source, b.dataset.source, c));
    return 0;
  }
  const info = await load(rest[0], formats[0]);
  const stats = info.dataset.statistics;
  if (values.json) {
    console.log(
      JSON.stringify({ ...stats, seconds: info.seconds, fromCache: info.fromCache }, null, 2),
    );
  } else {
    console.log(statisticsText(stats));
    console.log(
      `${info.fromCache ? "read from the cache" : "processed"} in ${info.seconds.toFixed(2)} s`,
    );
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
