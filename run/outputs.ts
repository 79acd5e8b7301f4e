/**
 * What runs and reproductions write: checks of a run's output paths before any training, so that
 * a bad path fails at once rather than after the first epoch, and the HTML export of executed
 * notebooks, whose Plotly figures share one Plotly.js file under `results/`.
 *
 * @module
 */
import { basename, dirname, join, relative, resolve } from "node:path";
import { writeFileAtomic } from "../host/mod.ts";
import {
  PLOTLY_MIME,
  plotlyFigureHtml,
  type PlotlyFigureSpec,
  plotlyScriptSource,
} from "../viz/mod.ts";
import { requireProjectRoot } from "./code_version.ts";
import { ensurePlotlyBundle, runCaptured } from "./jupyter_runner.ts";
import type { Notebook } from "./notebook_check.ts";

/** An output path that cannot be written; the message names the path and what to do. */
export class OutputPathError extends Error {
  /**
   * An error about one output path.
   * @param what how the user named the path (e.g. `--checkpoint-dir`)
   * @param path the path
   * @param problem what is wrong and what to do
   */
  constructor(readonly what: string, readonly path: string, problem: string) {
    super(`${what} ${path}: ${problem}`);
    this.name = "OutputPathError";
  }
}

/** `Deno.stat`, or `null` when `path` cannot be looked at (the writes that follow say why). */
async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/**
 * Makes sure `dir` is a directory this process can write files in, creating it when missing;
 * `what` names it in the error.
 */
export async function checkOutputDirectory(what: string, dir: string): Promise<void> {
  const info = await statOrNull(dir);
  if (info && !info.isDirectory) {
    throw new OutputPathError(what, dir, "exists and is not a directory; name a directory");
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = `${dir}/.write-check-${Deno.pid}-${crypto.randomUUID()}`;
    await Deno.writeFile(probe, new Uint8Array());
    await Deno.remove(probe);
  } catch (error) {
    throw new OutputPathError(
      what,
      dir,
      `cannot create or write files in it (${(error as Error).message}); name a writable directory`,
    );
  }
}

/**
 * Makes sure a file can be written at `path`: it is not a directory, and its directory is
 * writable (created when missing); `what` names it in the error.
 */
export async function checkOutputFile(what: string, path: string): Promise<void> {
  const info = await statOrNull(path);
  if (info?.isDirectory) {
    throw new OutputPathError(what, path, "is a directory; name a file");
  }
  await checkOutputDirectory(`${what} directory`, dirname(path) || ".");
}

/** The file name of the one Plotly.js copy that the HTML exports under `results/` share. */
export const SHARED_PLOTLY_FILE = "plotly.min.js";

const sharedPlotlyWrites = new Map<string, Promise<boolean>>();

/**
 * Makes sure `path` holds the Plotly.js bundle (`npm:plotly.js-dist`, minified), writing it only
 * when it is missing or differs; checked once per path and process. Returns `false` when no
 * bundle can be found (pages then show each figure's static image).
 */
export function writeSharedPlotly(path: string): Promise<boolean> {
  let written = sharedPlotlyWrites.get(path);
  if (!written) {
    written = (async () => {
      await ensurePlotlyBundle();
      const source = await plotlyScriptSource();
      if (source === undefined) return false;
      const bytes = new TextEncoder().encode(source);
      const existing = await Deno.readFile(path).catch(() => undefined);
      const same = existing?.length === bytes.length && existing.every((b, i) => b === bytes[i]);
      if (!same) await writeFileAtomic(path, bytes);
      return true;
    })();
    sharedPlotlyWrites.set(path, written);
  }
  return written;
}

/** A MIME bundle value as text (nbformat stores text as a string or as a list of lines). */
function mimeText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((line) => typeof line === "string")) {
    return value.join("");
  }
  return undefined;
}

/**
 * A copy of an executed notebook whose Plotly figures (outputs with {@link PLOTLY_MIME}) are
 * drawn by Plotly.js in HTML: each one's `text/html` becomes {@link plotlyFigureHtml} around its
 * static SVG, the first one loading Plotly.js from `scriptSrc`. Other outputs are left as they
 * are; so is `notebook`. Returns the copy and how many figures it draws.
 */
export function withInteractiveFigures(
  notebook: Notebook,
  scriptSrc: string,
): { notebook: Notebook; figures: number } {
  let figures = 0;
  const cells = notebook.cells.map((cell) => {
    if (!cell.outputs) return cell;
    const outputs = cell.outputs.map((output) => {
      const figure = output.data?.[PLOTLY_MIME] as PlotlyFigureSpec | undefined;
      if (!figure || typeof figure !== "object" || !Array.isArray(figure.data)) return output;
      const html = plotlyFigureHtml(figure, {
        svg: mimeText(output.data?.["image/svg+xml"]),
        scriptSrc: figures === 0 ? scriptSrc : undefined,
        id: `ssmrec-plot-${figures}`,
      });
      figures++;
      return { ...output, data: { ...output.data, "text/html": html } };
    });
    return { ...cell, outputs };
  });
  return { notebook: { ...notebook, cells }, figures };
}

/** What {@link exportNotebookHtml} wrote. */
export interface NotebookHtmlExport {
  /** The HTML file. */
  readonly html: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Plotly figures drawn by the shared Plotly.js (0 when it could not be found). */
  readonly figures: number;
  /** The shared Plotly.js file the page loads, or `undefined` when there is none. */
  readonly plotly: string | undefined;
}

/** Options of {@link exportNotebookHtml}. */
export interface NotebookHtmlOptions {
  /** The HTML file (default: the executed notebook's path with `.html`). */
  readonly html?: string;
  /**
   * The shared Plotly.js file every export loads (default: `results/plotly.min.js` of the
   * project), written once by {@link writeSharedPlotly}.
   */
  readonly plotlyFile?: string;
}

/**
 * Exports an executed notebook to HTML with `jupyter nbconvert --to html`, its Plotly figures
 * drawn interactively by one shared Plotly.js file that the page loads by a relative path
 * ({@link withInteractiveFigures}); tables and other outputs are exported as nbconvert renders
 * them. Without a Plotly.js bundle the figures keep their static images.
 * @throws Error naming the notebook when it cannot be read, or nbconvert fails (with its output)
 */
export async function exportNotebookHtml(
  executed: string,
  options: NotebookHtmlOptions = {},
): Promise<NotebookHtmlExport> {
  const html = resolve(options.html ?? executed.replace(/\.ipynb$/, "") + ".html");
  const plotlyFile = resolve(
    options.plotlyFile ?? join(requireProjectRoot(), "results", SHARED_PLOTLY_FILE),
  );
  let notebook: Notebook;
  try {
    notebook = JSON.parse(await Deno.readTextFile(executed));
  } catch (error) {
    throw new Error(
      `exportNotebookHtml: cannot read the executed notebook ${executed} ` +
        `(${(error as Error).message}); execute it first`,
    );
  }
  await checkOutputFile("HTML export", html);
  const plotly = await writeSharedPlotly(plotlyFile) ? plotlyFile : undefined;
  const scriptSrc = relative(dirname(html), plotlyFile).replaceAll("\\", "/");
  const page = plotly ? withInteractiveFigures(notebook, scriptSrc) : { notebook, figures: 0 };
  const temporary = await Deno.makeTempDir({ prefix: "ssmrec-html-" });
  try {
    // The copy keeps the notebook's file name, which nbconvert makes the page title.
    const input = join(temporary, basename(executed));
    await Deno.writeTextFile(input, JSON.stringify(page.notebook));
    const result = await runCaptured("jupyter", [
      "nbconvert",
      "--to",
      "html",
      "--output-dir",
      dirname(html),
      "--output",
      basename(html, ".html"),
      input,
    ]);
    if (result.code !== 0) {
      const tail = result.output.trim().split("\n").slice(-15).join("\n");
      throw new Error(
        `exportNotebookHtml: jupyter nbconvert --to html exited with ${result.code} for ` +
          `${executed}:\n${tail}`,
      );
    }
  } finally {
    await Deno.remove(temporary, { recursive: true }).catch(() => {});
  }
  return { html, bytes: (await Deno.stat(html)).size, figures: page.figures, plotly };
}
