/**
 * The dataset statistics every reproduction must get, and the table that puts ours beside them.
 *
 * {@link EXPECTED_STATISTICS} is the one place these figures live. They are the 5-core figures of
 * the datasets README (`../shared/datasets/README.md`, beside the project), which equal those of
 * the RecBole pipeline Mamba4Rec and SSD4Rec used. {@link statisticsComparison} shows them beside
 * the statistics our pipeline computes and carries ours, machine-readable, under
 * {@link STATISTICS_MIME} in the same output, where the notebook check
 * (`run/notebook_check.ts`) compares them with the expected ones.
 *
 * @module
 */
import type { DatasetStatistics } from "../data/mod.ts";
import { mimeBundleOf, type RichDisplay, richTable, withRichDisplay } from "../viz/mod.ts";

/** The statistics compared, with their column labels. */
export const CHECKED_STATISTICS = [
  ["users", "Users"],
  ["items", "Items"],
  ["interactions", "Interactions"],
  ["averageLength", "Avg. length"],
  ["maxLength", "Max length"],
  ["sparsityPercent", "Sparsity"],
] as const;

/** The name of a compared statistic. */
export type CheckedStatistic = (typeof CHECKED_STATISTICS)[number][0];

/** Values of the compared statistics; an expected row leaves out what its source does not give. */
export type StatisticValues = Partial<Record<CheckedStatistic, number>>;

/** Where {@link EXPECTED_STATISTICS} come from, for captions and messages. */
export const EXPECTED_STATISTICS_SOURCE =
  "the datasets README (../shared/datasets/README.md), after iterative 5-core filtering";

/**
 * The expected statistics after iterative 5-core filtering, by dataset name, each printed with
 * the precision its source gives (a value matches when ours, rounded to that many decimals,
 * equals it). KuaiRand-Pure is not distributed with the datasets; its row is there for a user
 * who supplies its log.
 */
export const EXPECTED_STATISTICS: Readonly<Record<string, Readonly<StatisticValues>>> = {
  "ml-1m": {
    users: 6040,
    items: 3416,
    interactions: 999611,
    averageLength: 165.5,
    maxLength: 2277,
    sparsityPercent: 95.16,
  },
  "amazon-video-games": {
    users: 24303,
    items: 10672,
    interactions: 231780,
    averageLength: 9.54,
    maxLength: 773,
  },
  "amazon-beauty": { users: 22363, items: 12101, interactions: 198502 },
  "amazon-sports": { users: 35598, items: 18357, interactions: 296337 },
  "amazon-toys": { users: 19412, items: 11924, interactions: 167597 },
  "yelp": { users: 30431, items: 20033, interactions: 316354 },
  "kuairand-pure": { users: 23951, items: 7111, interactions: 1134420 },
};

/** The MIME type under which {@link statisticsComparison} carries our values, by dataset. */
export const STATISTICS_MIME = "application/vnd.ssmrec.statistics+json";

/** Our values of the compared statistics. */
export function observedStatistics(s: DatasetStatistics): Record<CheckedStatistic, number> {
  return {
    users: s.users,
    items: s.items,
    interactions: s.interactions,
    averageLength: s.averageLength,
    maxLength: s.maxLength,
    sparsityPercent: s.sparsity * 100,
  };
}

/** Decimal places `x` is printed with. */
function decimalsOf(x: number): number {
  const text = String(x);
  return text.includes(".") ? text.length - text.indexOf(".") - 1 : 0;
}

/** Whether `got`, rounded to the decimals `expected` is printed with, equals it. */
export function matchesExpected(expected: number, got: number): boolean {
  return Number.isFinite(got) && Number(got.toFixed(decimalsOf(expected))) === expected;
}

/** One statistic that differs from its expected value. */
export interface StatisticMismatch {
  /** The dataset name. */
  readonly dataset: string;
  /** The statistic. */
  readonly statistic: CheckedStatistic;
  /** The expected value. */
  readonly expected: number;
  /** Ours (`undefined` when missing). */
  readonly got: number | undefined;
}

/**
 * Every statistic of `observed` (by dataset name) that differs from {@link EXPECTED_STATISTICS};
 * datasets without an expected row are not compared.
 */
export function statisticMismatches(
  observed: Readonly<Record<string, StatisticValues>>,
): StatisticMismatch[] {
  const out: StatisticMismatch[] = [];
  for (const [dataset, values] of Object.entries(observed)) {
    const expected = EXPECTED_STATISTICS[dataset];
    if (!expected) continue;
    for (const [statistic] of CHECKED_STATISTICS) {
      const want = expected[statistic];
      if (want === undefined) continue;
      const got = values[statistic];
      if (typeof got !== "number" || !matchesExpected(want, got)) {
        out.push({
          dataset,
          statistic,
          expected: want,
          got: typeof got === "number" ? got : undefined,
        });
      }
    }
  }
  return out;
}

/** A statistic for a table cell. */
function show(key: CheckedStatistic, value: number | undefined, decimals?: number): string {
  if (value === undefined) return "—";
  const d = decimals ?? (key === "averageLength" || key === "sparsityPercent" ? 2 : 0);
  const text = value.toLocaleString("en-US", {
    minimumFractionDigits: d,
    maximumFractionDigits: d,
  });
  return key === "sparsityPercent" ? `${text}%` : text;
}

/**
 * Two rows per dataset, ours and the expected one, with a verdict on ours; datasets are those of
 * `statistics` (by name). Its output also carries our values under {@link STATISTICS_MIME}.
 */
export function statisticsComparison(
  statistics: ReadonlyMap<string, DatasetStatistics>,
  caption: string,
): RichDisplay {
  const rows: Record<string, string>[] = [];
  const observed: Record<string, StatisticValues> = {};
  for (const [name, s] of statistics) {
    const ours = observedStatistics(s);
    observed[name] = ours;
    const expected = EXPECTED_STATISTICS[name] ?? {};
    const row: Record<string, string> = { dataset: name, row: "ours" };
    const expectedRow: Record<string, string> = { dataset: "", row: "expected", verdict: "" };
    for (const [key] of CHECKED_STATISTICS) {
      row[key] = show(key, ours[key]);
      const want = expected[key];
      expectedRow[key] = want === undefined ? "—" : show(key, want, decimalsOf(want));
    }
    const compared = CHECKED_STATISTICS.filter(([k]) => expected[k] !== undefined).length;
    const differing = statisticMismatches({ [name]: ours }).map((m) => m.statistic);
    row.verdict = compared === 0
      ? "no reference"
      : differing.length === 0
      ? `all ${compared} match`
      : `differs: ${differing.join(", ")}`;
    rows.push(row, expectedRow);
  }
  const table = richTable(rows, {
    caption,
    columns: ["dataset", "row", ...CHECKED_STATISTICS.map(([k]) => k), "verdict"],
    labels: {
      dataset: "Dataset",
      row: "",
      verdict: "Match",
      ...Object.fromEntries(CHECKED_STATISTICS),
    },
    note: `Expected: ${EXPECTED_STATISTICS_SOURCE}.`,
  });
  return withRichDisplay({}, async () => ({
    ...await mimeBundleOf(table),
    [STATISTICS_MIME]: observed,
  }));
}
