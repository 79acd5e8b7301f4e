/**
 * Executes notebooks headless through `jupyter nbconvert` with Deno's kernel and checks the
 * executed copies (see `run/notebook_check.ts`).
 *
 * @module
 */
import { basename, join } from "node:path";
import { findPlotlyBundle, plotlyVersion } from "../viz/mod.ts";
import { requireProjectRoot } from "./code_version.ts";
import { checkExecutedNotebook, type Notebook } from "./notebook_check.ts";

/** The Debian package that provides `jupyter nbconvert` (with nbclient and jupyter-client). */
export const JUPYTER_PACKAGE = "jupyter-nbconvert";

/** Runs a command in the project root, capturing its output. */
export async function runCaptured(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(command, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    cwd: requireProjectRoot(),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

/** The version of `jupyter nbconvert`, or `undefined` when it cannot be run. */
export async function jupyterVersion(): Promise<string | undefined> {
  try {
    const { code, output } = await runCaptured("jupyter", ["nbconvert", "--version"]);
    return code === 0 ? output.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Installs Deno's kernelspec into a project-local Jupyter data directory with
 * `deno jupyter --install`, using the running Deno binary, and adds `NO_COLOR=1` to its
 * environment. Returns the directory to put in `JUPYTER_PATH`.
 */
export async function installKernel(dataHome: string): Promise<string> {
  const jupyterDir = join(dataHome, "jupyter");
  const kernelDir = join(jupyterDir, "kernels", "deno");
  const install = await runCaptured(Deno.execPath(), ["jupyter", "--install", "--force"], {
    XDG_DATA_HOME: dataHome,
    NO_COLOR: "1",
  });
  const kernelFile = join(kernelDir, "kernel.json");
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(await Deno.readTextFile(kernelFile));
  } catch {
    // Where `deno jupyter --install` ignores XDG_DATA_HOME (macOS, Windows), write the same spec.
    if (install.code !== 0) throw new Error(`deno jupyter --install failed:\n${install.output}`);
    spec = { display_name: "Deno", language: "typescript" };
  }
  spec.argv = [Deno.execPath(), "jupyter", "--kernel", "--conn", "{connection_file}"];
  spec.env = { ...(spec.env as Record<string, string> | undefined), NO_COLOR: "1" };
  await Deno.mkdir(kernelDir, { recursive: true });
  await Deno.writeTextFile(kernelFile, JSON.stringify(spec, null, 2) + "\n");
  return jupyterDir;
}

/**
 * Makes sure the Plotly.js bundle is in Deno's npm cache (nothing imports it, so a fresh checkout
 * has not downloaded it), so that charts get their interactive HTML. Returns its path, or
 * `undefined` (charts then fall back to the static SVG inside their HTML).
 */
export async function ensurePlotlyBundle(): Promise<string | undefined> {
  const found = findPlotlyBundle();
  if (found) return found;
  const version = plotlyVersion();
  const specifier = version ? `npm:plotly.js-dist@${version}` : "npm:plotly.js-dist";
  await runCaptured(Deno.execPath(), ["cache", specifier]).catch(() => undefined);
  return findPlotlyBundle();
}

/** The result of one notebook. */
export interface NotebookResult {
  /** The notebook name (file name without `.ipynb`). */
  name: string;
  /** Whether it ran and passed every check. */
  ok: boolean;
  /** Wall time of the execution, in seconds. */
  seconds: number;
  /** Number of code cells. */
  codeCells: number;
  /** Number of rich outputs in the executed copy. */
  richOutputs: number;
  /** The executed copy, relative to the project root. */
  executed: string;
  /** What went wrong. */
  problems: string[];
}

/**
 * Executes the notebook at `path` into `outDir` with the kernel environment `env` and checks the
 * executed copy.
 */
export async function executeNotebook(
  path: string,
  outDir: string,
  env: Record<string, string>,
): Promise<NotebookResult> {
  const root = requireProjectRoot();
  const name = basename(path, ".ipynb");
  const executed = join(outDir, `${name}.ipynb`);
  await Deno.remove(executed).catch(() => {});
  const start = performance.now();
  const result = await runCaptured("jupyter", [
    "nbconvert",
    "--to",
    "notebook",
    "--execute",
    "--allow-errors",
    "--ExecutePreprocessor.kernel_name=deno",
    "--ExecutePreprocessor.timeout=-1",
    "--ExecutePreprocessor.startup_timeout=300",
    "--output-dir",
    outDir,
    "--output",
    name,
    path,
  ], env);
  const seconds = (performance.now() - start) / 1000;
  const relative = executed.startsWith(root) ? executed.slice(root.length) : executed;
  const base = { name, seconds, executed: relative };
  let notebook: Notebook;
  try {
    notebook = JSON.parse(await Deno.readTextFile(executed));
  } catch {
    const tail = result.output.trim().split("\n").slice(-25).join("\n");
    return {
      ...base,
      ok: false,
      codeCells: 0,
      richOutputs: 0,
      problems: [`jupyter nbconvert exited with ${result.code} and wrote no notebook:\n${tail}`],
    };
  }
  const problems = checkExecutedNotebook(notebook, name);
  if (result.code !== 0) problems.unshift(`jupyter nbconvert exited with ${result.code}`);
  const code = notebook.cells.filter((c) => c.cell_type === "code");
  const richOutputs = code.flatMap((c) => c.outputs ?? [])
    .filter((o) => o.output_type === "display_data" || o.output_type === "execute_result").length;
  return { ...base, ok: problems.length === 0, codeCells: code.length, richOutputs, problems };
}
