/**
 * Notebook display of datasets: the statistics of one or more datasets as a table of the papers'
 * columns (users, items, interactions, average and maximum length, sparsity) and the split, and a
 * dataset that shows that table when a cell evaluates it.
 *
 * @module
 */
import type { Table } from "apache-arrow";
import { JUPYTER_DISPLAY } from "../host/mod.ts";
import type { SequentialDataset } from "../data/dataset.ts";
import { type DatasetStatistics, statisticsToTable } from "../data/statistics.ts";
import { type RichDisplay, withRichDisplay } from "../viz/display.ts";
import { formatPercent, type RichTable, richTable } from "../viz/table.ts";

/** The statistics as a table of the papers' columns and the split, one row per dataset. */
function statisticsView(statistics: readonly DatasetStatistics[]): RichTable {
  return richTable(
    statistics.map((s) => ({
      name: s.name,
      users: s.users,
      items: s.items,
      interactions: s.interactions,
      averageLength: Math.round(s.averageLength * 100) / 100,
      maxLength: s.maxLength,
      sparsity: s.sparsity,
      trainSamples: s.trainSamples,
      validSamples: s.validSamples,
      testSamples: s.testSamples,
      usersWithoutTest: s.usersWithoutTest,
    })),
    {
      caption: "Dataset statistics after filtering",
      labels: {
        name: "Dataset",
        users: "Users",
        items: "Items",
        interactions: "Interactions",
        averageLength: "Avg. length",
        maxLength: "Max length",
        sparsity: "Sparsity",
        trainSamples: "Train samples",
        validSamples: "Valid",
        testSamples: "Test",
        usersWithoutTest: "Users without test",
      },
      format: { sparsity: formatPercent },
    },
  );
}

/**
 * The statistics of one or more datasets as an Arrow table (see `statisticsToTable` in `data/`)
 * that shows itself in a notebook as a table of the papers' columns and the split.
 */
export function statisticsTable(
  statistics: DatasetStatistics | readonly DatasetStatistics[],
): Table & RichDisplay {
  const list = Array.isArray(statistics) ? statistics : [statistics as DatasetStatistics];
  return withRichDisplay(statisticsToTable(list), () => statisticsView(list)[JUPYTER_DISPLAY]());
}

/**
 * Gives a dataset a notebook display, its statistics table, and returns the same object: evaluated
 * as a cell's last expression (or passed to `jupyterDisplay`) it shows that table.
 */
export function withDatasetDisplay(dataset: SequentialDataset): SequentialDataset & RichDisplay {
  return withRichDisplay(dataset, () => statisticsView([dataset.statistics])[JUPYTER_DISPLAY]());
}
