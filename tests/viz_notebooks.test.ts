import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { checkExecutedNotebook, type Notebook } from "../run/notebook_check.ts";
import { EXPECTED_STATISTICS, STATISTICS_MIME } from "../run/expected_statistics.ts";
import { listNotebooks } from "../run/reproduce.ts";

const expectTable = { ssmrec: { expect: ["text/html", "text/plain"] } };

function notebook(...cells: Notebook["cells"]): Notebook {
  return { cells };
}

Deno.test("executed-notebook check: a clean notebook passes", () => {
  const nb = notebook(
    { cell_type: "markdown", source: "# t" },
    { cell_type: "code", source: "const a = 1;", execution_count: 1, outputs: [] },
    {
      cell_type: "code",
      source: "await jupyterDisplay(t);",
      execution_count: 2,
      metadata: expectTable,
      outputs: [{ output_type: "display_data", data: { "text/html": "<b/>", "text/plain": "t" } }],
    },
  );
  assertEquals(checkExecutedNotebook(nb), []);
});

Deno.test("executed-notebook check: errors, lost outputs, missing MIME types, unexecuted cells", () => {
  const nb = notebook(
    {
      cell_type: "code",
      source: "throw new Error('x')",
      execution_count: 1,
      outputs: [{ output_type: "error", ename: "\x1b[31mError\x1b[0m", evalue: "x" }],
    },
    {
      cell_type: "code",
      source: ["await jupyterDisplay(t);"],
      execution_count: 2,
      metadata: expectTable,
      outputs: [],
    },
    {
      cell_type: "code",
      source: "await jupyterDisplay(fig);",
      execution_count: 3,
      metadata: { ssmrec: { expect: ["image/svg+xml"], outputs: 2 } },
      outputs: [{ output_type: "display_data", data: { "text/html": "<div/>" } }],
    },
    { cell_type: "code", source: "const b = 2;", execution_count: null, outputs: [] },
  );
  const problems = checkExecutedNotebook(nb);
  assertEquals(problems.length, 5, problems.join("\n"));
  assertEquals(problems[0], "cell 1 (throw new Error('x')) raised Error: x");
  assert(
    problems[1].startsWith(
      "cell 2 (await jupyterDisplay(t);) should show text/html, text/plain but has no rich output",
    ),
  );
  assert(problems[2].includes("should show image/svg+xml but has text/html"));
  assert(problems[3].includes("should show 2 outputs but has 1"));
  assert(problems[4].startsWith("cell 4 (const b = 2;) was not executed"));
});

/** An executed statistics cell whose output carries `values` (by dataset). */
function statisticsCell(values: unknown): Notebook["cells"][number] {
  return {
    cell_type: "code",
    source: "await jupyterDisplay(statisticsComparison(statistics, caption));",
    execution_count: 3,
    metadata: { ssmrec: { expect: ["text/html", STATISTICS_MIME] } },
    outputs: [{
      output_type: "display_data",
      data: { "text/html": "<table/>", "text/plain": "table", [STATISTICS_MIME]: values },
    }],
  };
}

Deno.test("executed-notebook check: expected dataset statistics pass at their printed precision", () => {
  const ml1m = { ...EXPECTED_STATISTICS["ml-1m"] };
  // Ours carry full precision; the expected values are rounded (165.5, 95.16%).
  const values = {
    "ml-1m": { ...ml1m, averageLength: 165.4985, sparsityPercent: 95.1553 },
    "amazon-toys": { ...EXPECTED_STATISTICS["amazon-toys"], averageLength: 8.63 },
    "not-a-known-dataset": { users: 1 },
  };
  assertEquals(checkExecutedNotebook(notebook(statisticsCell(values)), "datasets"), []);
});

Deno.test("executed-notebook check: one wrong statistic fails, naming notebook, cell and values", () => {
  const values = {
    "ml-1m": { ...EXPECTED_STATISTICS["ml-1m"], items: 3417 },
    "yelp": { ...EXPECTED_STATISTICS["yelp"] },
  };
  const problems = checkExecutedNotebook(
    notebook({ cell_type: "markdown", source: "# t" }, statisticsCell(values)),
    "datasets",
  );
  assertEquals(problems, [
    "datasets cell 2 (await jupyterDisplay(statisticsComparison(statistics, caption));): " +
    "ml-1m items expected 3,416, got 3,417",
  ]);
  // A rounding that no longer matches fails too, and so does a missing value.
  const rounded = checkExecutedNotebook(
    notebook(
      statisticsCell({ "ml-1m": { ...EXPECTED_STATISTICS["ml-1m"], sparsityPercent: 95.165 } }),
    ),
  );
  assertEquals(rounded.length, 1, rounded.join("\n"));
  assert(rounded[0].endsWith("ml-1m sparsityPercent expected 95.16, got 95.165"), rounded[0]);
  const { users: _, ...noUsers } = EXPECTED_STATISTICS["yelp"];
  const missing = checkExecutedNotebook(notebook(statisticsCell({ yelp: noUsers })));
  assertEquals(missing.length, 1);
  assert(missing[0].endsWith("yelp users expected 30,431, got nothing"), missing[0]);
  // A cell that declares the values but lost them fails on the declaration.
  const lost = statisticsCell({});
  lost.outputs = [{ output_type: "display_data", data: { "text/html": "<table/>" } }];
  const lostProblems = checkExecutedNotebook(notebook(lost));
  assertEquals(lostProblems.length, 1);
  assertStringIncludes(lostProblems[0], `should show ${STATISTICS_MIME}`);
});

/** The notebooks in the repository, as `deno task reproduce` finds them. */
async function repositoryNotebooks(): Promise<[string, Notebook][]> {
  const root = new URL("..", import.meta.url).pathname;
  const out: [string, Notebook][] = [];
  for (const found of await listNotebooks(root)) {
    out.push([found.name, JSON.parse(await Deno.readTextFile(found.path))]);
  }
  assert(out.length > 0, `no notebooks found under ${root}notebooks`);
  return out;
}

Deno.test("notebooks: every cell that shows something ends with an awaited jupyterDisplay and declares it", async () => {
  for (const [name, nb] of await repositoryNotebooks()) {
    nb.cells.forEach((cell, i) => {
      if (cell.cell_type !== "code") return;
      const source = (Array.isArray(cell.source) ? cell.source.join("") : cell.source).trim();
      const where = `${name} cell ${i + 1}`;
      assert(
        !/console\.(log|table)\(/.test(source),
        `${where}: use jupyterDisplay, not console output`,
      );
      assertEquals(cell.outputs ?? [], [], `${where}: commit notebooks without outputs`);
      const shows = source.includes("jupyterDisplay(");
      // The last top-level statement: the last line at column 0 that does not close a bracket.
      const starts = source.split("\n").filter((l) => /^[^\s})\]]/.test(l));
      const last = starts[starts.length - 1] ?? "";
      if (shows) {
        assert(
          last.startsWith("await jupyterDisplay("),
          `${where}: must end with await jupyterDisplay(...)`,
        );
        assert(cell.metadata?.ssmrec?.expect?.length, `${where}: declare metadata.ssmrec.expect`);
      } else {
        assert(!cell.metadata?.ssmrec, `${where}: declares outputs but shows nothing`);
      }
    });
  }
});

Deno.test("notebooks: every cell has an id, unique in its notebook, as nbformat 4.5 requires", async () => {
  for (const [name, nb] of await repositoryNotebooks()) {
    const seen = new Set<string>();
    nb.cells.forEach((cell, i) => {
      const id = cell.id ?? "";
      const where = `${name} cell ${i + 1}`;
      assert(
        /^[A-Za-z0-9_-]{1,64}$/.test(id),
        `${where}: needs an id of 1 to 64 letters, digits, '-' or '_' (got ${
          JSON.stringify(cell.id)
        })`,
      );
      assert(!seen.has(id), `${where}: id ${id} is used by an earlier cell`);
      seen.add(id);
    });
  }
});
