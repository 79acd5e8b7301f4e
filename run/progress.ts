/**
 * Training progress: one line per epoch in a terminal, a single table that updates in place in a
 * Jupyter notebook.
 *
 * @module
 */
import type { EpochRecord } from "../models/training/trainer.ts";
import type { Metrics } from "../models/training/evaluator.ts";

/** The part of `Deno.jupyter` the progress display uses. */
export interface JupyterApi {
  /** Sends or updates a display. */
  display(bundle: Record<string, string>, options: Record<string, unknown>): Promise<void>;
}

/** Deno's Jupyter API when running inside the kernel, else null. */
export function jupyterKernel(): JupyterApi | null {
  try {
    const j = (Deno as unknown as { jupyter?: JupyterApi }).jupyter;
    return j && typeof j.display === "function" ? j : null;
  } catch {
    return null;
  }
}

const fmt = (v: number | undefined) => (v === undefined ? "—" : v.toFixed(4));

/** Reports epochs as they finish. */
export class TrainingProgress {
  readonly #verbose: boolean;
  readonly #metric: string;
  readonly #rows: string[] = [];
  readonly #jupyter = jupyterKernel();
  readonly #displayId = `ssmrec-train-${crypto.randomUUID()}`;
  #shown = false;

  /**
   * A reporter for one training run.
   * @param verbose print or display progress at all
   * @param metric the validation metric that selects the best epoch
   */
  constructor(verbose: boolean, metric: string) {
    this.#verbose = verbose;
    this.#metric = metric.toLowerCase();
  }

  /** Reports a finished epoch. */
  epoch(r: EpochRecord, improved: boolean, best: number): void {
    if (!this.#verbose) return;
    const metrics = Object.entries(r.valid).filter(([k]) =>
      !k.startsWith("recall") &&
      !k.startsWith("precision")
    );
    const text = `epoch ${String(r.epoch + 1).padStart(3)}  loss ${r.loss.toFixed(4)}  valid ` +
      metrics.map(([k, v]) => `${k} ${fmt(v)}`).join("  ") +
      `  ${improved ? "*" : " "} best ${this.#metric} ${fmt(best)}` +
      `  (train ${r.trainSeconds.toFixed(1)} s, eval ${r.evalSeconds.toFixed(1)} s)`;
    if (!this.#jupyter) {
      console.log(text);
      return;
    }
    this.#rows.push(
      `<tr><td>${r.epoch + 1}</td><td>${r.loss.toFixed(4)}</td>` +
        metrics.map(([, v]) => `<td>${fmt(v)}</td>`).join("") +
        `<td>${improved ? "★" : ""}</td><td>${r.trainSeconds.toFixed(1)}</td>` +
        `<td>${r.evalSeconds.toFixed(1)}</td></tr>`,
    );
    const head = `<tr><th>epoch</th><th>loss</th>${
      metrics.map(([k]) => `<th>valid ${k}</th>`).join("")
    }<th>best</th><th>train s</th><th>eval s</th></tr>`;
    const html = `<table>${head}${this.#rows.slice(-15).join("")}</table>`;
    void this.#jupyter.display({ "text/html": html, "text/plain": text }, {
      raw: true,
      display_id: this.#displayId,
      update: this.#shown,
    });
    this.#shown = true;
  }

  /** Reports the final result. */
  finish(bestEpoch: number, bestValid: Metrics, test: Metrics): void {
    if (!this.#verbose || this.#jupyter) return;
    const line = (m: Metrics) => Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`).join("  ");
    console.log(`best epoch ${bestEpoch}: valid ${line(bestValid)}`);
    console.log(`test (best epoch's weights): ${line(test)}`);
  }
}
