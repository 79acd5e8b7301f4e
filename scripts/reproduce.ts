/**
 * Executes every notebook in `notebooks/` headless through Jupyter with Deno's kernel, saves the
 * executed copies and a summary under `results/`, and fails when a cell errors or a cell that
 * should show a table or chart does not.
 *
 *     deno task reproduce [--only <name>] [--quick | --full]
 *
 * Without `--quick` or `--full` the mode is `full` on a real GPU adapter and `quick` on a CPU one
 * (lavapipe, llvmpipe, SwiftShader) or without any; notebooks read it from `$SSMREC_MODE`.
 *
 * A code cell declares what it must show in its metadata:
 * `{"ssmrec": {"expect": ["text/html", "image/svg+xml"], "outputs": 2}}` — every listed MIME type
 * must be among its outputs, and it must have at least `outputs` rich outputs.
 *
 * @module
 */
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findPlotlyBundle, plotlyVersion } from "../viz/mod.ts";

/** The project root. */
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The Debian package that provides `jupyter nbconvert` (with nbclient and jupyter-client). */
export const JUPYTER_PACKAGE = "jupyter-nbconvert";

/** One output of a notebook code cell, as nbformat 4 stores it. */
export interface NotebookOutput {
  /** `stream`, `display_data`, `execute_result` or `error`. */
  output_type: string;
  /** MIME bundle of display outputs. */
  data?: Record<string, unknown>;
  /** Error name. */
  ename?: string;
  /** Error value. */
  evalue?: string;
  /** Stream name. */
  name?: string;
  /** Stream text. */
  text?: string | string[];
}

/** One notebook cell, as nbformat 4 stores it. */
export interface NotebookCell {
  /** `code`, `markdown` or `raw`. */
  cell_type: string;
  /** The cell source. */
  source: string | string[];
  /** The cell metadata. */
  metadata?: { ssmrec?: { expect?: string[]; outputs?: number }; [key: string]: unknown };
  /** Code cells: the outputs. */
  outputs?: NotebookOutput[];
  /** Code cells: the execution count, `null` when not executed. */
  execution_count?: number | null;
}

/** A notebook, as nbformat 4 stores it. */
export interface Notebook {
  /** The cells. */
  cells: NotebookCell[];
  /** Notebook metadata. */
  metadata?: Record<string, unknown>;
}

/** The first line of a cell's source, for messages. */
function firstLine(cell: NotebookCell): string {
  const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
  const line = source.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 70 ? `${line.slice(0, 70)}…` : line;
}

/** Strips terminal colour codes from kernel tracebacks. */
function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * Checks an executed notebook: every code cell ran, none raised, and every cell with
 * `metadata.ssmrec.expect` / `outputs` shows those MIME types and at least that many rich outputs.
 * Returns the problems found (empty when all is well), each naming the cell.
 */
export function checkExecutedNotebook(notebook: Notebook): string[] {
  const problems: string[] = [];
  notebook.cells.forEach((cell, index) => {
    if (cell.cell_type !== "code") return;
    const where = `cell ${index + 1} (${firstLine(cell)})`;
    const outputs = cell.outputs ?? [];
    for (const o of outputs) {
      if (o.output_type === "error") {
        problems.push(`${where} raised ${plain(o.ename ?? "an error")}: ${plain(o.evalue ?? "")}`);
      }
    }
    const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
    if (
      source.trim() !== "" && (cell.execution_count === null || cell.execution_count === undefined)
    ) {
      problems.push(`${where} was not executed`);
    }
    const expected = cell.metadata?.ssmrec;
    if (!expected) return;
    const rich = outputs.filter((o) =>
      o.output_type === "display_data" || o.output_type === "execute_result"
    );
    const present = new Set(rich.flatMap((o) => Object.keys(o.data ?? {})));
    const missing = (expected.expect ?? []).filter((mime) => !present.has(mime));
    if (missing.length > 0) {
      const found = present.size > 0 ? [...present].join(", ") : "no rich output";
      problems.push(`${where} should show ${missing.join(", ")} but has ${found}`);
    }
    if (expected.outputs !== undefined && rich.length < expected.outputs) {
      problems.push(`${where} should show ${expected.outputs} outputs but has ${rich.length}`);
    }
  });
  return problems;
}

/** How notebooks are run. */
export type ReproduceMode = "quick" | "full";

/** Chooses the mode from the WebGPU adapter: full on a real GPU, quick on a CPU one or none. */
export async function detectMode(): Promise<{ mode: ReproduceMode; reason: string }> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return { mode: "quick", reason: "no WebGPU in this runtime" };
  let adapter: GPUAdapter | null = null;
  try {
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), 15000));
    adapter = await Promise.race([
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      timeout,
    ]);
  } catch (error) {
    return {
      mode: "quick",
      reason: `no WebGPU adapter (${error instanceof Error ? error.message : error})`,
    };
  }
  if (!adapter) return { mode: "quick", reason: "no WebGPU adapter" };
  const info = adapter.info;
  const fields = [info.vendor, info.architecture, info.device, info.description];
  const cpu = fields.some((f) => /llvmpipe|lavapipe|swiftshader|software|\bcpu\b/i.test(f ?? "")) ||
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const name = info.description || info.device || info.vendor || "unnamed adapter";
  return cpu
    ? { mode: "quick", reason: `CPU adapter "${name}"` }
    : { mode: "full", reason: `GPU adapter "${name}"` };
}

/** Runs a command, capturing its output. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(command, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  })
    .output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

/** Whether `jupyter nbconvert` can be run. */
async function jupyterVersion(): Promise<string | undefined> {
  try {
    const { code, output } = await run("jupyter", ["nbconvert", "--version"]);
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
  const install = await run(Deno.execPath(), ["jupyter", "--install", "--force"], {
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
async function ensurePlotlyBundle(): Promise<string | undefined> {
  const found = findPlotlyBundle();
  if (found) return found;
  const version = plotlyVersion();
  const specifier = version ? `npm:plotly.js-dist@${version}` : "npm:plotly.js-dist";
  await run(Deno.execPath(), ["cache", specifier]).catch(() => undefined);
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

/** Executes one notebook and checks the executed copy. */
async function executeNotebook(
  path: string,
  outDir: string,
  env: Record<string, string>,
): Promise<NotebookResult> {
  const name = basename(path, ".ipynb");
  const executed = join(outDir, `${name}.ipynb`);
  await Deno.remove(executed).catch(() => {});
  const start = performance.now();
  const result = await run("jupyter", [
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
  const relative = executed.startsWith(ROOT) ? executed.slice(ROOT.length) : executed;
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
  const problems = checkExecutedNotebook(notebook);
  if (result.code !== 0) problems.unshift(`jupyter nbconvert exited with ${result.code}`);
  const code = notebook.cells.filter((c) => c.cell_type === "code");
  const richOutputs = code.flatMap((c) => c.outputs ?? [])
    .filter((o) => o.output_type === "display_data" || o.output_type === "execute_result").length;
  return { ...base, ok: problems.length === 0, codeCells: code.length, richOutputs, problems };
}

/** The markdown summary. */
function summaryMarkdown(
  mode: ReproduceMode,
  reason: string,
  results: NotebookResult[],
): string {
  const lines = [
    "# Reproduction summary",
    "",
    `Mode: **${mode}** (${reason}). Deno ${Deno.version.deno}. ${new Date().toISOString()}.`,
    "",
    "| notebook | result | seconds | code cells | rich outputs | executed copy |",
    "|---|---|---|---|---|---|",
    ...results.map((r) =>
      `| ${r.name} | ${r.ok ? "ok" : "FAILED"} | ${
        r.seconds.toFixed(1)
      } | ${r.codeCells} | ${r.richOutputs} | ${r.executed} |`
    ),
  ];
  for (const r of results.filter((r) => !r.ok)) {
    lines.push(
      "",
      `## ${r.name}: problems`,
      "",
      ...r.problems.map((p) => `- ${p.replace(/\n/g, "\n  ")}`),
    );
  }
  return lines.join("\n") + "\n";
}

/** Runs the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string", multiple: true },
      quick: { type: "boolean", default: false },
      full: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("Usage: deno task reproduce [--only <notebook>]... [--quick | --full]");
    return 0;
  }
  if (values.quick && values.full) {
    console.error("error: --quick and --full exclude each other");
    return 2;
  }
  const notebookDir = join(ROOT, "notebooks");
  const all: string[] = [];
  try {
    for await (const entry of Deno.readDir(notebookDir)) {
      if (entry.isFile && entry.name.endsWith(".ipynb")) all.push(join(notebookDir, entry.name));
    }
  } catch {
    // No notebooks directory: nothing to run.
  }
  all.sort();
  if (all.length === 0) {
    console.log("nothing to reproduce yet");
    return 0;
  }
  const only = (values.only ?? []).flatMap((o) => o.split(",")).map((o) =>
    o.replace(/\.ipynb$/, "")
  );
  const unknown = only.filter((o) => !all.some((p) => basename(p, ".ipynb") === o));
  if (unknown.length > 0) {
    const names = all.map((p) => basename(p, ".ipynb")).join(", ");
    console.error(
      `error: no notebook named ${unknown.join(", ")} in notebooks/ (there are: ${names})`,
    );
    return 2;
  }
  const selected = only.length > 0 ? all.filter((p) => only.includes(basename(p, ".ipynb"))) : all;

  let mode: ReproduceMode;
  let reason: string;
  if (values.quick || values.full) {
    mode = values.quick ? "quick" : "full";
    reason = `--${mode} given`;
  } else {
    ({ mode, reason } = await detectMode());
  }
  console.log(`reproduce: mode ${mode} (${reason})`);

  const version = await jupyterVersion();
  if (version === undefined) {
    console.error(
      "error: `jupyter nbconvert` is not available. On Debian or Ubuntu install it with\n" +
        `  apt-get install -y ${JUPYTER_PACKAGE}\n` +
        "(it brings nbclient and jupyter-client; the Deno kernel itself needs nothing else).",
    );
    return 1;
  }
  const cacheDir = join(ROOT, ".cache");
  const jupyterPath = await installKernel(join(cacheDir, "jupyter-data"));
  const runtimeDir = join(cacheDir, "jupyter-runtime");
  await Deno.mkdir(runtimeDir, { recursive: true });
  console.log(
    `reproduce: nbconvert ${version}, Deno kernel ${Deno.execPath()} (kernelspec in ${jupyterPath})`,
  );

  const plotly = await ensurePlotlyBundle();
  if (!plotly) {
    console.warn(
      "reproduce: warning: no Plotly.js bundle found; charts show their static SVG in HTML",
    );
  }

  const outDir = join(ROOT, "results", "notebooks");
  await Deno.mkdir(outDir, { recursive: true });
  const env = {
    JUPYTER_PATH: jupyterPath,
    JUPYTER_RUNTIME_DIR: runtimeDir,
    SSMREC_MODE: mode,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  const results: NotebookResult[] = [];
  for (const path of selected) {
    const name = basename(path, ".ipynb");
    console.log(`reproduce: running ${name} ...`);
    const result = await executeNotebook(path, outDir, env);
    results.push(result);
    const status = result.ok ? "ok" : "FAILED";
    console.log(
      `reproduce: ${name} ${status} in ${result.seconds.toFixed(1)} s ` +
        `(${result.codeCells} code cells, ${result.richOutputs} rich outputs) -> ${result.executed}`,
    );
    for (const p of result.problems) console.error(`  ${name}: ${p.replace(/\n/g, "\n    ")}`);
  }
  const summary = {
    mode,
    modeReason: reason,
    deno: Deno.version.deno,
    nbconvert: version,
    finished: new Date().toISOString(),
    ok: results.every((r) => r.ok),
    notebooks: results,
  };
  await Deno.writeTextFile(
    join(ROOT, "results", "summary.json"),
    JSON.stringify(summary, null, 2) + "\n",
  );
  await Deno.writeTextFile(
    join(ROOT, "results", "summary.md"),
    summaryMarkdown(mode, reason, results),
  );
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    console.error(
      `reproduce: FAILED: ${
        failed.map((r) => r.name).join(", ")
      } (see results/summary.md and the executed copies)`,
    );
    return 1;
  }
  console.log(`reproduce: all ${results.length} notebook(s) ok; summary in results/summary.md`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`reproduce: error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
