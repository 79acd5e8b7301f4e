/**
 * `deno task reproduce`: executes the notebooks in `notebooks/` and its folders
 * (`notebooks/mamba4rec/`, `notebooks/ssd4rec/`; see {@link listNotebooks}) headless through
 * Jupyter with Deno's kernel, saves the executed copies (in the same folders) and a summary under
 * `results/`, and fails when a cell errors, a cell that should show a table or chart does not, or
 * a checked value differs from its expected one (see `run/notebook_check.ts`).
 *
 * It first prints the plan of the selected notebooks' runs (`run/reproduction_plan.ts`): how many
 * are recorded, stale and missing, and the missing ones' GPU time. In full mode the run scheduler
 * then trains the missing runs (with `retrainStale`, the stale ones too) of the selected notebooks
 * and datasets on worker processes spread over the GPUs (`run/scheduled_training.ts`), before any
 * notebook runs; stale records outside the selection are left as they are, and the plan says how
 * many.
 *
 * @module
 */
import { basename, join, relative } from "node:path";
import { isCpuAdapterDescription } from "../ops/mod.ts";
import { codeVersion, requireProjectRoot } from "./code_version.ts";
import {
  ensurePlotlyBundle,
  executeNotebook,
  installKernel,
  JUPYTER_PACKAGE,
  jupyterVersion,
  type NotebookResult,
} from "./jupyter_runner.ts";
import { exportNotebookHtml } from "./outputs.ts";
import { gridsOfNotebooks } from "./paper_grids.ts";
import { planLines, planReproduction } from "./reproduction_plan.ts";
import { readRunIndex } from "./run_index.ts";
import { scheduledRuns, staleRecordsLeftOut } from "./scheduled_runs.ts";
import {
  type ScheduledTrainingOptions,
  trainCommands,
  trainScheduled,
} from "./scheduled_training.ts";
import { ensureRuntimeDir } from "../host/mod.ts";

/** How notebooks are run: `quick` slices that run on a CPU adapter, or the `full` protocol. */
export type ReproduceMode = "quick" | "full";

/** Options of {@link reproduce}. */
export interface ReproduceOptions {
  /**
   * The notebooks to run (empty: all): a path below `notebooks/` (`ssd4rec/ablation`) names one
   * notebook, a file name stem (`ablation`) every notebook of that stem; `.ipynb` may follow.
   */
  readonly only?: readonly string[];
  /** The mode; by default {@link detectMode} chooses. */
  readonly mode?: ReproduceMode;
  /**
   * Full mode: train again the selected notebooks' runs recorded by other code, on the selected
   * datasets (other stale records are left as they are).
   */
  readonly retrainStale?: boolean;
  /** Full mode: how the scheduler trains the missing runs (GPUs, workers, budget, datasets). */
  readonly training?: Omit<ScheduledTrainingOptions, "retrainStale" | "log" | "root">;
  /**
   * The project folder whose `notebooks/` are listed and whose `results/runs/` is planned from and
   * trained into (default: this checkout). The notebooks themselves read this checkout's records,
   * and the code version that tells stale records is always this checkout's.
   */
  readonly root?: string;
  /** Full mode: stop once the runs are trained, without running the notebooks. */
  readonly trainOnly?: boolean;
  /** Print the train commands of the runs the scheduler would train, and nothing else. */
  readonly printCommands?: boolean;
}

/** Chooses the mode from the WebGPU adapter: full on a real GPU, quick on a CPU one or none. */
export async function detectMode(): Promise<{ mode: ReproduceMode; reason: string }> {
  ensureRuntimeDir();
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
  const cpu = fields.some((f) => isCpuAdapterDescription(f ?? "")) ||
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const name = info.description || info.device || info.vendor || "unnamed adapter";
  return cpu
    ? { mode: "quick", reason: `CPU adapter "${name}"` }
    : { mode: "full", reason: `GPU adapter "${name}"` };
}

/** Folders below `notebooks/` that discovery skips: Jupyter's autosaves. */
const SKIPPED_FOLDERS = new Set([".ipynb_checkpoints"]);

/** A notebook found by {@link listNotebooks}. */
export interface FoundNotebook {
  /** The file. */
  readonly path: string;
  /** Its file name stem (`table2_overall`), which `--only` matches. */
  readonly name: string;
  /** Its folder relative to `notebooks/` (`mamba4rec`; empty at the top level). */
  readonly folder: string;
}

/**
 * A notebook's path below `notebooks/` without `.ipynb` (`ssd4rec/ablation`; `datasets` at the
 * top level): what names it in the plan, in the summary and in the grids (`RunGrid.folder`).
 */
export function notebookPath(notebook: FoundNotebook): string {
  return notebook.folder ? `${notebook.folder}/${notebook.name}` : notebook.name;
}

/** The notebooks {@link selectNotebooks} selects, and the names that matched none. */
export interface NotebookSelection {
  /** The notebooks, in the order of `all`. */
  readonly selected: FoundNotebook[];
  /** The names that match no notebook. */
  readonly unknown: string[];
}

/**
 * The notebooks of `all` that `only` names (every one when `only` is empty): a name with a folder
 * (`ssd4rec/ablation`, also `notebooks/ssd4rec/ablation.ipynb`) is that notebook's path below
 * `notebooks/`, a name without one (`ablation`) matches every notebook of that file name stem.
 */
export function selectNotebooks(
  all: readonly FoundNotebook[],
  only: readonly string[],
): NotebookSelection {
  if (only.length === 0) return { selected: [...all], unknown: [] };
  const wanted = only.map((o) => o.replace(/^(\.\/)?(notebooks\/)?/, "").replace(/\.ipynb$/, ""));
  const matches = (n: FoundNotebook, name: string) =>
    name.includes("/") ? notebookPath(n) === name : n.name === name;
  return {
    selected: all.filter((n) => wanted.some((w) => matches(n, w))),
    unknown: wanted.filter((w) => !all.some((n) => matches(n, w))),
  };
}

/**
 * The notebooks in `notebooks/` and in its folders one level down (`notebooks/mamba4rec/`,
 * `notebooks/ssd4rec/`, …; hidden folders and Jupyter's autosaves left out), sorted by path
 * relative to `notebooks/`.
 */
export async function listNotebooks(root: string): Promise<FoundNotebook[]> {
  const dir = join(root, "notebooks");
  const found: FoundNotebook[] = [];
  const scan = async (folder: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(dir, folder)));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".") || SKIPPED_FOLDERS.has(entry.name)) continue;
      if (entry.isFile && entry.name.endsWith(".ipynb")) {
        const path = join(dir, folder, entry.name);
        found.push({ path, name: basename(entry.name, ".ipynb"), folder });
      } else if (entry.isDirectory && depth === 0) {
        await scan(entry.name, 1);
      }
    }
  };
  await scan("", 0);
  const order = notebookPath;
  return found.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

/** The markdown summary. */
function summaryMarkdown(mode: ReproduceMode, reason: string, results: NotebookResult[]): string {
  const lines = [
    "# Reproduction summary",
    "",
    `Mode: **${mode}** (${reason}). Deno ${Deno.version.deno}. ${new Date().toISOString()}.`,
    "",
    "| notebook | result | seconds | code cells | rich outputs | executed copy |",
    "|---|---|---|---|---|---|",
    ...results.map((r) =>
      `| ${r.name} | ${r.ok ? "ok" : "FAILED"} | ${r.seconds.toFixed(1)} | ${r.codeCells} | ` +
      `${r.richOutputs} | ${r.executed} |`
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

/** Installs the kernel and returns the environment notebooks run with, or `undefined`. */
async function prepareJupyter(
  root: string,
  mode: ReproduceMode,
): Promise<{ env: Record<string, string>; nbconvert: string } | undefined> {
  const nbconvert = await jupyterVersion();
  if (nbconvert === undefined) {
    console.error(
      "error: `jupyter nbconvert` is not available. On Debian or Ubuntu install it with\n" +
        `  apt-get install -y ${JUPYTER_PACKAGE}\n` +
        "(it brings nbclient and jupyter-client; the Deno kernel itself needs nothing else).",
    );
    return undefined;
  }
  const cacheDir = join(root, ".cache");
  const jupyterPath = await installKernel(join(cacheDir, "jupyter-data"));
  const runtimeDir = join(cacheDir, "jupyter-runtime");
  await Deno.mkdir(runtimeDir, { recursive: true });
  console.log(
    `reproduce: nbconvert ${nbconvert}, Deno kernel ${Deno.execPath()} ` +
      `(kernelspec in ${jupyterPath})`,
  );
  if (!await ensurePlotlyBundle()) {
    console.warn(
      "reproduce: warning: no Plotly.js bundle found; charts show their static SVG in HTML",
    );
  }
  const gpuRuntimeDir = ensureRuntimeDir();
  const env: Record<string, string> = {
    JUPYTER_PATH: jupyterPath,
    JUPYTER_RUNTIME_DIR: runtimeDir,
    SSMREC_MODE: mode,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    ...(gpuRuntimeDir ? { XDG_RUNTIME_DIR: gpuRuntimeDir } : {}),
  };
  return { env, nbconvert };
}

/**
 * Runs the notebooks as the module documentation describes, printing progress; returns the exit
 * status (0 when every notebook passed, 1 when one failed or could not run or a run failed to
 * train, 2 for bad options, 3 when the training's time budget ran out before every run was
 * trained: run it again to go on).
 */
export async function reproduce(options: ReproduceOptions = {}): Promise<number> {
  const root = options.root ?? requireProjectRoot();
  const all = await listNotebooks(root);
  if (all.length === 0) {
    console.log("nothing to reproduce yet");
    return 0;
  }
  const { selected, unknown } = selectNotebooks(all, options.only ?? []);
  if (unknown.length > 0) {
    console.error(
      `error: no notebook named ${unknown.join(", ")} in notebooks/ or its folders (there are: ${
        all.map(notebookPath).join(", ")
      }; a name without a folder matches every notebook of that name)`,
    );
    return 2;
  }
  const grids = gridsOfNotebooks(selected.map(notebookPath));
  const index = await readRunIndex(join(root, "results", "runs"));
  const plan = planReproduction(grids, index);
  const training: ScheduledTrainingOptions = {
    ...options.training,
    retrainStale: options.retrainStale,
    root,
  };
  const gridDatasets = new Set(grids.flatMap((g) => g.datasets));
  const strange = (options.training?.datasets ?? []).filter((d) => !gridDatasets.has(d));
  if (strange.length > 0) {
    console.error(
      `error: --datasets ${strange.join(", ")}: no selected notebook trains on it (they train ` +
        `on ${[...gridDatasets].join(", ")})`,
    );
    return 2;
  }
  if (options.printCommands) {
    for (const command of trainCommands(plan, grids, training)) console.log(command);
    return 0;
  }
  const { mode, reason } = options.mode
    ? { mode: options.mode, reason: `--${options.mode} given` }
    : await detectMode();
  console.log(`reproduce: mode ${mode} (${reason})`);
  const staleLeftOut = options.retrainStale
    ? staleRecordsLeftOut(index, scheduledRuns(plan, grids, training)).length
    : undefined;
  for (const line of planLines(plan, mode, { staleLeftOut })) console.log(`reproduce: ${line}`);
  if ((options.retrainStale || options.trainOnly) && mode !== "full") {
    const flag = options.retrainStale ? "--retrain-stale" : "--train-only";
    console.error(`error: ${flag} needs full mode (give --full, or run on a GPU)`);
    return 2;
  }
  if (mode === "full") {
    const status = await trainScheduled(plan, grids, training);
    if (status !== 0) return status;
  }
  if (options.trainOnly) {
    console.log("reproduce: runs trained; notebooks not run (--train-only)");
    return 0;
  }
  const jupyter = await prepareJupyter(root, mode);
  if (!jupyter) return 1;
  const results: NotebookResult[] = [];
  for (const notebook of selected) {
    const name = notebookPath(notebook);
    const outDir = join(root, "results", "notebooks", notebook.folder);
    await Deno.mkdir(outDir, { recursive: true });
    console.log(`reproduce: running ${name} ...`);
    const result = { ...await executeNotebook(notebook.path, outDir, jupyter.env), name };
    if (result.ok) {
      try {
        const page = await exportNotebookHtml(join(root, result.executed));
        console.log(`reproduce: ${name} exported to ${relative(root, page.html)}`);
      } catch (error) {
        result.ok = false;
        result.problems.push((error as Error).message);
      }
    }
    results.push(result);
    console.log(
      `reproduce: ${name} ${result.ok ? "ok" : "FAILED"} in ${result.seconds.toFixed(1)} s ` +
        `(${result.codeCells} code cells, ${result.richOutputs} rich outputs) -> ${result.executed}`,
    );
    for (const p of result.problems) console.error(`  ${p.replace(/\n/g, "\n    ")}`);
  }
  await writeSummary(root, mode, reason, jupyter.nbconvert, results);
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    console.error(
      `reproduce: FAILED: ${failed.map((r) => r.name).join(", ")} ` +
        "(see results/summary.md and the executed copies)",
    );
    return 1;
  }
  console.log(`reproduce: all ${results.length} notebook(s) ok; summary in results/summary.md`);
  return 0;
}

/** Writes `results/summary.json` and `results/summary.md`. */
async function writeSummary(
  root: string,
  mode: ReproduceMode,
  reason: string,
  nbconvert: string,
  results: NotebookResult[],
): Promise<void> {
  const summary = {
    mode,
    modeReason: reason,
    deno: Deno.version.deno,
    nbconvert,
    code: await codeVersion(),
    finished: new Date().toISOString(),
    ok: results.every((r) => r.ok),
    notebooks: results,
  };
  await Deno.writeTextFile(
    join(root, "results", "summary.json"),
    JSON.stringify(summary, null, 2) + "\n",
  );
  await Deno.writeTextFile(
    join(root, "results", "summary.md"),
    summaryMarkdown(mode, reason, results),
  );
}
