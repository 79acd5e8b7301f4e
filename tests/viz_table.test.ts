import { assert, assertEquals, assertMatch } from "@std/assert";
import { tableFromArrays } from "apache-arrow";
import { buildSequentialDataset, parseInteractions } from "../data/mod.ts";
import { statisticsTable, withDatasetDisplay } from "../run/dataset_display.ts";
import { formatCell, formatPercent, JUPYTER_DISPLAY, richTable } from "../viz/mod.ts";

Deno.test("rich table from rows: caption, labels, escaping, numbers right-aligned", () => {
  const t = richTable([{ name: "a<b", n: 1234567, x: 0.123456 }, { name: "c", n: 5, x: null }], {
    caption: "Caption",
    labels: { n: "Count" },
    note: "a note",
  });
  const bundle = t[JUPYTER_DISPLAY]() as Record<string, string>;
  const html = bundle["text/html"];
  assert(html.includes(">Caption</caption>"));
  assert(html.includes(">Count</th>"));
  assert(html.includes(">a&lt;b</td>"));
  assertMatch(html, /text-align:right">1,234,567<\/td>/);
  assertEquals(
    bundle["text/plain"],
    [
      "Caption",
      "name      Count       x",
      "----  ---------  ------",
      "a<b   1,234,567  0.1235",
      "c             5",
      "a note",
    ]
      .join("\n"),
  );
  assertEquals([formatCell(undefined), formatCell(NaN), formatCell(10n ** 6n)], [
    "",
    "",
    "1,000,000",
  ]);
});

Deno.test("rich table from an Arrow table keeps the schema's column order", () => {
  const table = tableFromArrays({ b: Int32Array.from([1, 2]), a: Float64Array.from([0.5, 1.5]) });
  const t = richTable(table);
  assertEquals(t.columns, ["b", "a"]);
  assertEquals(t.rows, [{ b: 1, a: 0.5 }, { b: 2, a: 1.5 }]);
});

Deno.test("statistics table: an Arrow table that displays the papers' columns", () => {
  const d = buildSequentialDataset(parseInteractions("1 a\n1 b\n1 c\n2 a\n2 b\n", "s.txt"), {
    minUserInteractions: 1,
    minItemInteractions: 1,
  });
  const table = statisticsTable(d.statistics);
  assertEquals(table.numRows, 1);
  assertEquals(table.getChild("users")!.get(0), 2);
  assertEquals(table.getChild("name")!.get(0), "s");
  const bundle = table[JUPYTER_DISPLAY]() as Record<string, string>;
  assert(bundle["text/html"].includes(">Sparsity</th>"));
  assert(bundle["text/plain"].includes("16.67%"));
  // A dataset given a display shows the same table, and stays the same object.
  const shown = withDatasetDisplay(d);
  assert(shown === d);
  assertEquals(
    (shown[JUPYTER_DISPLAY]() as Record<string, string>)["text/plain"],
    bundle["text/plain"],
  );
  assertEquals(Object.keys(shown).includes("statistics"), true);
  // Two datasets give two rows.
  assertEquals(statisticsTable([d.statistics, d.statistics]).numRows, 2);
});

Deno.test("formatPercent: two decimals for finite numbers, empty for anything else", () => {
  assertEquals(formatPercent(0.9516), "95.16%");
  assertEquals(formatPercent(1), "100.00%");
  assertEquals(formatPercent(Number.NaN), "");
  assertEquals(formatPercent("0.5"), "");
  assertEquals(formatPercent(null), "");
});
