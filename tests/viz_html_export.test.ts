import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { exportNotebookHtml, withInteractiveFigures } from "../run/outputs.ts";
import type { Notebook } from "../run/notebook_check.ts";
import { jupyterVersion } from "../run/jupyter_runner.ts";
import { JUPYTER_DISPLAY, PLOTLY_MIME, plotlyFigure } from "../viz/mod.ts";

/** A display output as an executed notebook stores it: text as lists of lines. */
async function storedOutput(title: string) {
  const bundle = await plotlyFigure({
    data: [{ mode: "lines", name: title, x: [1, 2, 3], y: [3, 1, 2] }],
    layout: { title },
  })[JUPYTER_DISPLAY]();
  const lines = (text: string) => text.split(/(?<=\n)/);
  return {
    output_type: "display_data",
    data: {
      ...bundle,
      "image/svg+xml": lines(bundle["image/svg+xml"] as string),
      "text/html": lines(bundle["text/html"] as string),
    },
  };
}

/** An executed notebook: two figures in one cell, a table in another, a markdown cell. */
async function executedNotebook(): Promise<Notebook> {
  return {
    metadata: {},
    cells: [
      { cell_type: "markdown", source: "# Figures" },
      {
        cell_type: "code",
        source: "await jupyterDisplay(a, b);",
        execution_count: 1,
        outputs: [await storedOutput("first"), await storedOutput("second")],
      },
      {
        cell_type: "code",
        source: "await jupyterDisplay(t);",
        execution_count: 2,
        outputs: [{ output_type: "display_data", data: { "text/html": "<table></table>" } }],
      },
    ],
  };
}

Deno.test("HTML export: each Plotly figure drawn, the first loading the shared Plotly.js", async () => {
  const notebook = await executedNotebook();
  const before = JSON.stringify(notebook);
  const page = withInteractiveFigures(notebook, "../plotly.min.js");
  assertEquals(JSON.stringify(notebook), before, "the executed notebook is left as it is");
  assertEquals(page.figures, 2);
  const [first, second] = page.notebook.cells[1].outputs!.map((o) =>
    o.data!["text/html"] as string
  );
  assert(first.startsWith(`<script type="text/javascript" src="../plotly.min.js"></script>`));
  assert(!second.includes(" src="), "only the first figure loads Plotly.js");
  const svg = (notebook.cells[1].outputs![0].data!["image/svg+xml"] as string[]).join("");
  assertStringIncludes(first, `<div id="ssmrec-plot-0-static">${svg}</div>`);
  assertStringIncludes(second, `document.getElementById("ssmrec-plot-1")`);
  assertStringIncludes(first, `"title":{"text":"first"}`);
  assertEquals(page.notebook.cells[1].outputs![0].data![PLOTLY_MIME], {
    ...notebook.cells[1].outputs![0].data![PLOTLY_MIME] as object,
  });
  assertEquals(page.notebook.cells[2], notebook.cells[2], "other outputs unchanged");
});

const nbconvert = await jupyterVersion();

Deno.test({
  name: "HTML export: nbconvert's page loads the one Plotly.js file by a relative path",
  ignore: nbconvert === undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    const fakeBundle = join(dir, "bundle", "plotly.min.js");
    await Deno.mkdir(join(dir, "bundle"));
    await Deno.writeTextFile(fakeBundle, "window.Plotly = { newPlot() {} };\n");
    Deno.env.set("SSMREC_PLOTLY_JS", fakeBundle);
    try {
      const executed = join(dir, "results", "notebooks", "ssd4rec", "figures.ipynb");
      await Deno.mkdir(join(dir, "results", "notebooks", "ssd4rec"), { recursive: true });
      // nbformat's schema wants metadata on every cell and display output.
      const cells = (await executedNotebook()).cells.map((cell) => ({
        ...cell,
        metadata: {},
        ...(cell.outputs ? { outputs: cell.outputs.map((o) => ({ ...o, metadata: {} })) } : {}),
      }));
      await Deno.writeTextFile(
        executed,
        JSON.stringify({ cells, metadata: {}, nbformat: 4, nbformat_minor: 4 }),
      );
      const shared = join(dir, "results", "plotly.min.js");
      const result = await exportNotebookHtml(executed, { plotlyFile: shared });
      assertEquals(result.html, join(dir, "results", "notebooks", "ssd4rec", "figures.html"));
      assertEquals(result.figures, 2);
      assertEquals(result.plotly, shared);
      assertEquals(await Deno.readTextFile(shared), await Deno.readTextFile(fakeBundle));
      const page = await Deno.readTextFile(result.html);
      assertEquals(result.bytes, new TextEncoder().encode(page).length);
      assertEquals(page.split(`src="../../plotly.min.js"`).length - 1, 1);
      assertEquals(page.split("window.Plotly.newPlot").length - 1, 2);
      assert(!page.includes("window.Plotly = {"), "Plotly.js is not inlined");
      assertStringIncludes(page, "<table></table>");
      assertStringIncludes(page, "<title>figures</title>");
    } finally {
      Deno.env.delete("SSMREC_PLOTLY_JS");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
