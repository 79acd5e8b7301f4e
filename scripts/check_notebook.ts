/**
 * Checks notebooks that Jupyter executed, e.g. from JupyterLab or
 * `jupyter nbconvert --to notebook --execute`:
 *
 *     deno run -A scripts/check_notebook.ts <executed.ipynb> [...]
 *
 * Each must pass `checkExecutedNotebook` (every code cell ran, none raised, every declared rich
 * output and dataset statistic is there). Prints one line per notebook; exit status 1 when any
 * has a problem, each problem on its own line.
 *
 * @module
 */
import { basename } from "node:path";
import { checkExecutedNotebook, type Notebook } from "../run/mod.ts";

const USAGE = "Usage: deno run -A scripts/check_notebook.ts <executed.ipynb> [...]";

/** Reads and checks one executed notebook; returns its problems (a read error is one). */
async function problemsOf(path: string): Promise<string[]> {
  let notebook: Notebook;
  try {
    notebook = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    return [`${path}: cannot be read as a notebook: ${e instanceof Error ? e.message : e}`];
  }
  if (!Array.isArray(notebook.cells)) return [`${path}: not an nbformat 4 notebook (no cells)`];
  return checkExecutedNotebook(notebook, basename(path));
}

if (import.meta.main) {
  const paths = Deno.args;
  if (paths.length === 0 || paths.includes("--help") || paths.includes("-h")) {
    console.log(USAGE);
    Deno.exit(paths.length === 0 ? 1 : 0);
  }
  let failed = false;
  for (const path of paths) {
    const problems = await problemsOf(path);
    if (problems.length === 0) {
      console.log(`ok    ${path}`);
    } else {
      failed = true;
      console.log(`FAIL  ${path}`);
      for (const p of problems) console.log(`      ${p}`);
    }
  }
  if (failed) Deno.exit(1);
}
