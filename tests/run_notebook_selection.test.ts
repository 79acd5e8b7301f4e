import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { requireProjectRoot } from "../run/code_version.ts";
import {
  gridsOfNotebooks,
  MAMBA4REC_ABLATION,
  MAMBA4REC_OVERALL,
  RUN_GRIDS,
  SSD4REC_ABLATION_GRIDS,
  SSD4REC_BETA_GRIDS,
  SSD4REC_MAX_LENGTH_GRIDS,
  SSD4REC_OVERALL,
  SSD4REC_RHO_GRIDS,
} from "../run/paper_grids.ts";
import { DATASET_LABELS } from "../run/paper_values.ts";
import { gridNotebookPath, type RunGrid, smokesCell } from "../run/run_grid.ts";
import { type FoundNotebook, notebookPath, selectNotebooks } from "../run/reproduce.ts";
import { planLines, planReproduction } from "../run/reproduction_plan.ts";
import { readRunIndex } from "../run/run_index.ts";
import { studyRuns } from "../run/study_runs.ts";
import { withTempDir } from "./temp_files.ts";

/** Notebooks as discovery finds them, two of them sharing the stem `ablation`. */
const FOUND: readonly FoundNotebook[] = [
  ["", "datasets"],
  ["mamba4rec", "ablation"],
  ["mamba4rec", "table2_overall"],
  ["ssd4rec", "ablation"],
  ["ssd4rec", "table4_overall"],
].map(([folder, name]) => ({ path: `/p/notebooks/${folder}/${name}.ipynb`, name, folder }));

/** The notebook paths {@link selectNotebooks} selects for `only`. */
const selected = (only: string[]) => selectNotebooks(FOUND, only).selected.map(notebookPath);

/** The SSD4Rec study notebooks' grids, by notebook path. */
const STUDIES: Readonly<Record<string, readonly RunGrid[]>> = {
  "ssd4rec/ablation": SSD4REC_ABLATION_GRIDS,
  "ssd4rec/figure3_beta": SSD4REC_BETA_GRIDS,
  "ssd4rec/figure4_rho": SSD4REC_RHO_GRIDS,
  "ssd4rec/figure5_max_length": SSD4REC_MAX_LENGTH_GRIDS,
};

Deno.test("--only: a folder names one notebook, a bare stem every notebook of that stem", () => {
  assertEquals(selected([]), FOUND.map(notebookPath));
  assertEquals(selected(["ablation"]), ["mamba4rec/ablation", "ssd4rec/ablation"]);
  assertEquals(selected(["mamba4rec/ablation"]), ["mamba4rec/ablation"]);
  assertEquals(selected(["notebooks/ssd4rec/ablation.ipynb"]), ["ssd4rec/ablation"]);
  assertEquals(selected(["datasets", "ssd4rec/table4_overall"]), [
    "datasets",
    "ssd4rec/table4_overall",
  ]);
  assertEquals(selectNotebooks(FOUND, ["ssd4rec/table2_overall", "ablation", "nope"]).unknown, [
    "ssd4rec/table2_overall",
    "nope",
  ]);
});

Deno.test("grids: each belongs to one notebook that exists, and a folder tells the ablations apart", async () => {
  const root = requireProjectRoot();
  for (const grid of RUN_GRIDS) {
    const path = join(root, "notebooks", `${gridNotebookPath(grid)}.ipynb`);
    assert((await Deno.stat(path)).isFile, `${grid.title}: no notebook ${path}`);
  }
  assertEquals(gridsOfNotebooks(["mamba4rec/ablation"]), [MAMBA4REC_ABLATION]);
  assertEquals(gridsOfNotebooks(["ssd4rec/ablation"]), [...SSD4REC_ABLATION_GRIDS]);
  assertEquals(gridsOfNotebooks(["ablation"]), [], "no ablation notebook at the top level");
  assertEquals(gridsOfNotebooks(["mamba4rec/table2_overall", "ssd4rec/table4_overall"]), [
    MAMBA4REC_OVERALL,
    SSD4REC_OVERALL,
  ]);
});

Deno.test("smoke cells: the plan counts only the cells a grid smoke-tests", async () => {
  await withTempDir("ssmrec-smoke-plan-", async (dir) => {
    const index = await readRunIndex(join(dir, "none"));
    const [beauty] = SSD4REC_BETA_GRIDS;
    assertEquals(beauty.smokeCells, [{ label: "β = 1", dataset: "amazon-beauty" }]);
    const rows = beauty.variants!;
    assertEquals(rows.filter((v) => smokesCell(beauty, v, "amazon-beauty")).map((v) => v.label), [
      "β = 1",
    ]);
    assertEquals(smokesCell(beauty, rows.at(-1), "ml-1m"), false, "ML-1M is not trained");

    const plan = planReproduction(SSD4REC_BETA_GRIDS, index);
    assertEquals(plan.cellsWithoutRecord.length, rows.length);
    assertEquals(plan.smokeCells, [{ model: "ssd4rec", dataset: "amazon-beauty", row: "β = 1" }]);
    assertStringIncludes(
      planLines(plan, "quick").join("\n"),
      `1 of the ${rows.length} cell(s) without any record get a smoke run`,
    );

    // Each study smoke-tests one cell; each overall table each model on Beauty alone.
    for (const [notebook, grids] of Object.entries(STUDIES)) {
      assertEquals(planReproduction(grids, index).smokeCells.length, 1, notebook);
    }
    const table2 = planReproduction([MAMBA4REC_OVERALL], index);
    assertEquals(table2.cellsWithoutRecord.length, 18);
    assertEquals(
      table2.smokeCells.map((c) => `${c.model} ${c.dataset}`),
      MAMBA4REC_OVERALL.models.map((m) => `${m} amazon-beauty`),
    );
    assertStringIncludes(
      planLines(table2, "quick").join("\n"),
      "plan: quick mode trains no missing run; 6 of the 18 cell(s) without any record",
    );
    const table4 = planReproduction([SSD4REC_OVERALL], index);
    assertEquals(table4.smokeCells.map((c) => c.dataset), ["amazon-beauty"]);

    // A cell in two grids is smoke-tested when either chooses it: β = 0.1 is Table 4's run.
    const both = planReproduction([...SSD4REC_BETA_GRIDS, SSD4REC_OVERALL], index);
    assertEquals(
      both.smokeCells.map((c) => `${c.dataset} ${c.row ?? ""}`),
      ["amazon-beauty β = 0.1", "amazon-beauty β = 1"],
    );
  });
});

Deno.test("smoke cells: study runs smoke-test only the grid's cells", async () => {
  const [beauty, ml] = SSD4REC_BETA_GRIDS;
  await withTempDir("ssmrec-smoke-study-", async (dir) => {
    // No cell named: nothing is smoke-tested (every cell would be without the grid's choice).
    const cells = await studyRuns([{ ...beauty, smokeCells: [] }, ml], {
      mode: "quick",
      directory: join(dir, "runs"),
    });
    assertEquals(cells.length, beauty.variants!.length + ml.variants!.length);
    assert(cells.every((c) => c.smoke === undefined), "no smoke run was chosen");
  });
});

Deno.test("smoke cells: each names a row and a trained dataset of its grid", () => {
  for (const grid of RUN_GRIDS) {
    const where = gridNotebookPath(grid);
    for (const cell of grid.smokeCells ?? []) {
      assert(grid.datasets.includes(cell.dataset), `${where}: ${cell.dataset} is not trained`);
      if (grid.variants) {
        assert(grid.variants.some((v) => v.label === cell.label), `${where}: no row ${cell.label}`);
      } else {
        assertEquals(cell.label, undefined, `${where}: a row label in a grid without rows`);
      }
    }
  }
});

Deno.test("smoke cells: the notebooks choose none of their own and name the grids' in their text", async () => {
  const root = requireProjectRoot();
  for (const grid of RUN_GRIDS.filter((g) => g.smokeCells !== undefined)) {
    const path = join(root, "notebooks", `${gridNotebookPath(grid)}.ipynb`);
    const cells = JSON.parse(await Deno.readTextFile(path)).cells as {
      cell_type: string;
      source: string[] | string;
    }[];
    const text = (type: string) =>
      cells.filter((c) => c.cell_type === type)
        .map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source)).join("\n");
    assert(!/\bsmoke\s*:/.test(text("code")), `${path}: the grid alone chooses the smoke cells`);
    for (const cell of grid.smokeCells ?? []) {
      const named = [cell.label, DATASET_LABELS[cell.dataset]].filter((n) => n !== undefined);
      for (const name of named) {
        assertStringIncludes(text("markdown"), name!, `${path}: its text does not name ${name}`);
      }
    }
  }
});
