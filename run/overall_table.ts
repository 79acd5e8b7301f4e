/**
 * How a notebook shows a grid's cells (`run/grid_runs.ts`): the overall table (ours as the mean ±
 * standard deviation over the recorded seeds beside the paper's value where verified, with the
 * relative difference), each seed's values behind a collapsible detail, the smoke runs of a quick
 * run apart from them, and a bar chart of the means with standard-deviation error bars.
 *
 * @module
 */
import {
  escapeHtml,
  type PlotlyFigure,
  plotlyFigure,
  type RichDisplay,
  type RichTable,
  richTable,
  withRichDisplay,
} from "../viz/mod.ts";
import { describePinnedGpu } from "./gpu_pinning.ts";
import { describeSlice, type GridCell } from "./grid_runs.ts";
import { datasetLabel, modelLabel, type PaperValues } from "./paper_values.ts";
import { codeLabel, meanEpochSeconds, RETRAIN_STALE_COMMAND } from "./run_record.ts";
import { formatSeedSummary, relativeDifference, summarizeSeeds } from "./seed_summary.ts";

/** The metrics of the overall table, with their printed names. */
export const OVERALL_METRICS: readonly { key: string; label: string }[] = Object.freeze([
  { key: "hit@10", label: "HR@10" },
  { key: "ndcg@10", label: "NDCG@10" },
  { key: "mrr@10", label: "MRR@10" },
]);

/** The printed name of a cell's row: its ablation row's, else its model's. */
export function rowLabel(cell: GridCell): string {
  return cell.variant?.label ?? modelLabel(cell.model);
}

/** The paper's values of a cell, if verified. */
function paperOf(
  paper: readonly PaperValues[],
  cell: GridCell,
): Readonly<Record<string, number>> | undefined {
  if (cell.variant && Object.keys(cell.variant.model).length > 0) return undefined;
  return paper.find((p) => p.model === cell.model && p.dataset === cell.dataset)?.metrics;
}

/** The seeds column: `3 seeds`, `1 seed (2021, 2022 not recorded yet)`, or why there is none. */
function seedsText(cell: GridCell): string {
  const n = cell.runs.length;
  if (n === 0) return "not recorded yet";
  const missing = cell.missingSeeds.length === 0
    ? ""
    : ` (${cell.missingSeeds.join(", ")} not recorded yet)`;
  return `${n} seed${n === 1 ? "" : "s"}${missing}`;
}

/** The notes of a cell: stale runs and order limits. */
function notesText(cell: GridCell): string {
  const notes: string[] = [];
  const stale = cell.runs.filter((r) => r.staleness.stale).map((r) => r.key.seed);
  if (stale.length > 0) notes.push(`stale: seed ${stale.join(", ")} recorded by other code`);
  if (cell.orderLimit) notes.push("order-limited (ml-1m.txt), see below");
  return notes.join("; ");
}

/**
 * The overall table: a row per model and dataset (datasets outer, as the paper's columns), each
 * metric ours (mean ± std over the recorded seeds), the paper's where verified and the relative
 * difference of the mean; cells without records say "not recorded yet".
 */
export function overallTable(
  title: string,
  cells: readonly GridCell[],
  paper: readonly PaperValues[],
): RichTable {
  const datasets = [...new Set(cells.map((c) => c.dataset))];
  const rows = datasets.flatMap((dataset) =>
    cells.filter((c) => c.dataset === dataset).map((cell) => {
      const row: Record<string, string> = {
        dataset: datasetLabel(cell.dataset),
        model: rowLabel(cell),
        seeds: seedsText(cell),
      };
      const verified = paperOf(paper, cell);
      for (const { key, label: name } of OVERALL_METRICS) {
        const summary = summarizeSeeds(cell.runs.map((r) => r.record.result.test[key]));
        row[`${name} ours`] = cell.runs.length === 0
          ? "not recorded yet"
          : formatSeedSummary(summary);
        row[`${name} paper`] = verified?.[key]?.toFixed(4) ?? "—";
        row[`${name} Δ`] = relativeDifference(summary?.mean, verified?.[key]);
      }
      row.notes = notesText(cell);
      return row;
    })
  );
  const stale = cells.some((c) => c.runs.some((r) => r.staleness.stale))
    ? " Stale: recorded by other code than the checked-out one, so the numbers may differ; " +
      `\`${RETRAIN_STALE_COMMAND}\` trains them again.`
    : "";
  return richTable(rows, {
    caption: title,
    note:
      "Ours: test metrics of the best validation epoch, mean ± sample standard deviation over " +
      "the recorded seeds of the paper's settings. Paper: — where no readable source confirms the " +
      `value. Δ: relative difference of our mean from the paper's value.${stale}`,
  });
}

/**
 * What a grid's cells hold, one row: the runs of the grid, those recorded (and of them, those
 * made by other code), those not recorded yet, and the smoke runs trained now.
 */
export function gridRunsSummary(cells: readonly GridCell[], mode: "quick" | "full"): RichTable {
  const runs = cells.flatMap((c) => c.runs);
  return richTable([{
    mode,
    "runs in the table": runs.length + cells.reduce((n, c) => n + c.missingSeeds.length, 0),
    recorded: runs.length,
    "of them by other code (stale)": runs.filter((r) => r.staleness.stale).length,
    "not recorded yet": cells.reduce((n, c) => n + c.missingSeeds.length, 0),
    "smoke runs trained now": cells.filter((c) => c.smoke !== undefined).length,
  }], { caption: "Runs" });
}

/** Every recorded seed's values, a row each: the detail behind the overall table. */
export function perSeedTable(cells: readonly GridCell[]): RichTable {
  const rows = cells.flatMap((cell) =>
    cell.runs.map((run) => {
      const r = run.record;
      const row: Record<string, string | number> = {
        dataset: datasetLabel(cell.dataset),
        model: rowLabel(cell),
        seed: String(run.key.seed),
      };
      for (const { key, label: name } of OVERALL_METRICS) {
        row[name] = r.result.test[key]?.toFixed(4) ?? "—";
      }
      Object.assign(row, {
        epochs: r.result.history.length,
        "best epoch": r.result.bestEpoch + 1,
        "s / training epoch": Math.round(meanEpochSeconds(r.result) * 100) / 100,
        adapter: r.gpu ? `${r.adapter} (${describePinnedGpu(r.gpu)})` : r.adapter,
        finished: r.finishedAt.slice(0, 10),
        code: codeLabel(run.staleness),
        record: run.path.replace(/^.*\/results\//, "results/"),
      });
      return row;
    })
  );
  return richTable(rows.length > 0 ? rows : [{ record: "no run recorded yet" }], {
    caption: "Each recorded seed",
  });
}

/**
 * `content` behind a collapsible detail whose summary line is `summary` (closed by default); the
 * plain-text form shows both.
 */
export function collapsible(summary: string, content: RichTable): RichDisplay {
  return withRichDisplay({}, () => ({
    "text/plain": `${summary}\n${content.toText()}`,
    "text/html": `<details><summary>${escapeHtml(summary)}</summary>${content.toHTML()}</details>`,
  }));
}

/**
 * The smoke runs of a quick run (the cells without any record that the grid smoke-tests), a row
 * each: what the slice held and the test metrics, labelled as smoke runs and never beside the
 * paper's values.
 */
export function smokeRunTable(cells: readonly GridCell[]): RichTable {
  const rows = cells.filter((c) => c.smoke !== undefined).map((cell) => {
    const smoke = cell.smoke!;
    const row: Record<string, string | number> = {
      dataset: datasetLabel(cell.dataset),
      model: rowLabel(cell),
      slice: describeSlice(smoke.slice),
      epochs: smoke.result.history.length,
    };
    for (const { key, label: name } of OVERALL_METRICS) {
      row[name] = smoke.result.test[key]?.toFixed(4) ?? "—";
    }
    row.seconds = Math.round(smoke.seconds);
    return row;
  });
  const none = [{ "smoke runs": "none: every cell the grid smoke-tests has a record" }];
  return richTable(rows.length > 0 ? rows : none, {
    caption: "Smoke runs (quick mode, the grid's smoke cells without any record): they only show " +
      "that the pipeline runs, and are not comparable with the paper",
  });
}

/**
 * A grouped bar chart of one metric: a bar per row (model, or ablation row) on each dataset at the mean over the
 * recorded seeds, with the sample standard deviation as error bars (none for a single seed);
 * cells without records have no bar.
 */
export function overallChart(
  title: string,
  cells: readonly GridCell[],
  metric: { key: string; label: string },
): PlotlyFigure {
  const datasets = [...new Set(cells.map((c) => c.dataset))];
  const rows = [...new Set(cells.map(rowLabel))];
  const data = rows.map((row) => {
    const summaries = datasets.map((dataset) => {
      const cell = cells.find((c) => rowLabel(c) === row && c.dataset === dataset);
      return summarizeSeeds(cell?.runs.map((r) => r.record.result.test[metric.key]) ?? []);
    });
    return {
      type: "bar" as unknown as "scatter",
      // Where the bars cannot be drawn (the static image), each mean shows as a marker.
      mode: "markers",
      name: row,
      x: datasets.map((d) => datasetLabel(d)),
      y: summaries.map((s) => s?.mean ?? null),
      error_y: { type: "data", array: summaries.map((s) => s?.std ?? 0), visible: true },
      hovertext: summaries.map((s) => (s ? `${s.n} seed${s.n === 1 ? "" : "s"}` : "not recorded")),
    };
  });
  return plotlyFigure({
    data,
    layout: {
      title: `${title}: ${metric.label} (mean over recorded seeds ± std)`,
      barmode: "group",
      xaxis: { title: "dataset" },
      yaxis: { title: metric.label },
    },
  });
}
