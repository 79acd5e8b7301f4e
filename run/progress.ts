/**
 * Training progress for people, as a {@link TrainingObserver} the run layer passes to the trainer.
 * Within an epoch: steps, samples (and, for packed-batch models, history tokens) per second and
 * the time left, on a line that updates in place in a terminal, a line now and then when the
 * output is not a terminal, and a status line under the table in a Jupyter notebook. After each epoch (with its peak live GPU storage in MiB): one
 * line in a terminal, a table row that updates in place in a notebook. Epochs are numbered from 1.
 *
 * @module
 */
import { type JupyterApi, jupyterApi } from "../host/mod.ts";
import type {
  EpochRecord,
  StepProgress,
  TrainingObserver,
  TrainResult,
} from "../models/training/trainer.ts";
import type { Metrics } from "../models/training/evaluator.ts";

/** Seconds between in-place updates of the step line in a terminal. */
const TERMINAL_UPDATE_SECONDS = 0.25;
/** Seconds between in-place updates of the notebook's status line. */
const NOTEBOOK_UPDATE_SECONDS = 1;
/** Seconds between step lines when the output is not a terminal (a log file, a pipe). */
const LOG_LINE_SECONDS = 30;
/** Table rows a notebook shows (the latest epochs). */
const NOTEBOOK_ROWS = 15;

const fmt = (v: number | undefined) => (v === undefined ? "—" : v.toFixed(4));

/** A duration as `1h 02m`, `3m 07s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  const two = (n: number) => String(n).padStart(2, "0");
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${two(Math.floor((s % 3600) / 60))}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  return `${s}s`;
}

/** Bytes per mebibyte, the unit of the peak memory shown. */
const MIB = 1024 * 1024;

/** A count per second, rounded, with thousands separators: `12,345`. */
const perSecond = (count: number, seconds: number) =>
  Math.round(seconds > 0 ? count / seconds : 0).toLocaleString("en-US");

/**
 * The step line: `epoch 3  step 120/488 (25%)  1,234 samples/s  ETA 2m 10s`, with the history
 * tokens per second after the samples for packed-batch models (`…  56,789 tokens/s  …`).
 */
export function stepProgressText(p: StepProgress): string {
  const left = p.step > 0 ? (p.seconds / p.step) * (p.steps - p.step) : NaN;
  const percent = p.steps > 0 ? Math.floor((100 * p.step) / p.steps) : 0;
  const tokens = p.tokens === undefined ? "" : `  ${perSecond(p.tokens, p.seconds)} tokens/s`;
  return `epoch ${p.epoch + 1}  step ${p.step}/${p.steps} (${percent}%)  ` +
    `${perSecond(p.samples, p.seconds)} samples/s${tokens}  ETA ${formatDuration(left)}`;
}

/** An epoch's peak live storage in MiB with one decimal (`412.3`), or `—` when not measured. */
export function peakMemoryText(r: EpochRecord): string {
  return r.peakLiveBytes === undefined ? "—" : (r.peakLiveBytes / MIB).toFixed(1);
}

/** Where {@link TrainingProgress} writes; the defaults are the process's stdout and clock. */
export interface ProgressOutput {
  /** Writes text as it is (no newline added). */
  write(text: string): void;
  /** Whether the output is a terminal (in-place updates) rather than a file or a pipe. */
  readonly terminal: boolean;
  /** The notebook kernel's display API, when running in one. */
  readonly jupyter?: JupyterApi;
  /** Seconds on a monotonic clock. */
  now(): number;
}

/** The process's stdout, terminal or not, and Deno's Jupyter kernel when running in one. */
function standardOutput(): ProgressOutput {
  const encoder = new TextEncoder();
  let terminal = false;
  try {
    terminal = Deno.stdout.isTerminal();
  } catch {
    terminal = false;
  }
  return {
    write: (text) => {
      Deno.stdout.writeSync(encoder.encode(text));
    },
    terminal,
    jupyter: jupyterApi(),
    now: () => performance.now() / 1000,
  };
}

/** Reports steps and epochs as training goes; see the module documentation. */
export class TrainingProgress implements TrainingObserver {
  readonly #verbose: boolean;
  readonly #metric: string;
  readonly #out: ProgressOutput;
  readonly #rows: string[] = [];
  readonly #displayId = `ssmrec-train-${crypto.randomUUID()}`;
  #head = "";
  #shown = false;
  #lastUpdate = -Infinity;
  #stepLineOpen = false;

  /**
   * A reporter for one training run.
   * @param verbose report at all
   * @param metric the validation metric that selects the best epoch
   * @param output where to report (default: stdout, or the notebook when in Jupyter)
   */
  constructor(verbose: boolean, metric: string, output: ProgressOutput = standardOutput()) {
    this.#verbose = verbose;
    this.#metric = metric.toLowerCase();
    this.#out = output;
  }

  /** Reports how far the current epoch has got, at most every few seconds. */
  stepsProgressed(p: StepProgress): void {
    if (!this.#verbose) return;
    const now = this.#out.now();
    const every = this.#out.jupyter
      ? NOTEBOOK_UPDATE_SECONDS
      : this.#out.terminal
      ? TERMINAL_UPDATE_SECONDS
      : LOG_LINE_SECONDS;
    const first = !Number.isFinite(this.#lastUpdate);
    // A log gets its first line only once the epoch has run for a while.
    if (first && !this.#out.jupyter && !this.#out.terminal && p.seconds < every) return;
    if (!first && now - this.#lastUpdate < every) return;
    this.#lastUpdate = now;
    const text = stepProgressText(p);
    if (this.#out.jupyter) {
      this.#display(text, `<p><code>${text}</code></p>`);
    } else if (this.#out.terminal) {
      this.#out.write(`\r\x1b[2K${text}`);
      this.#stepLineOpen = true;
    } else {
      this.#out.write(`${text}\n`);
    }
  }

  /** Reports a finished epoch. */
  epochFinished(r: EpochRecord, improved: boolean, best: number): void {
    if (!this.#verbose) return;
    this.#lastUpdate = -Infinity;
    const metrics = Object.entries(r.valid).filter(([k]) =>
      !k.startsWith("recall") &&
      !k.startsWith("precision")
    );
    const text = `epoch ${String(r.epoch + 1).padStart(3)}  loss ${r.loss.toFixed(4)}  valid ` +
      metrics.map(([k, v]) => `${k} ${fmt(v)}`).join("  ") +
      `  ${improved ? "*" : " "} best ${this.#metric} ${fmt(best)}` +
      `  (train ${r.trainSeconds.toFixed(1)} s, eval ${r.evalSeconds.toFixed(1)} s, ` +
      `peak ${peakMemoryText(r)} MiB)`;
    if (!this.#out.jupyter) {
      this.#line(text);
      return;
    }
    this.#rows.push(
      `<tr><td>${r.epoch + 1}</td><td>${r.loss.toFixed(4)}</td>` +
        metrics.map(([, v]) => `<td>${fmt(v)}</td>`).join("") +
        `<td>${improved ? "★" : ""}</td><td>${r.trainSeconds.toFixed(1)}</td>` +
        `<td>${r.evalSeconds.toFixed(1)}</td><td>${peakMemoryText(r)}</td></tr>`,
    );
    this.#head = `<tr><th>epoch</th><th>loss</th>${
      metrics.map(([k]) => `<th>valid ${k}</th>`).join("")
    }<th>best</th><th>train s</th><th>eval s</th><th>peak MiB</th></tr>`;
    this.#display(text, "");
  }

  /** Reports the final result: the best epoch (from 1), its validation and the test metrics. */
  trainingFinished(result: TrainResult): void {
    if (!this.#verbose || this.#out.jupyter) return;
    const line = (m: Metrics) => Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`).join("  ");
    this.#line(`best epoch ${result.bestEpoch + 1}: valid ${line(result.bestValid)}`);
    this.#line(`test (best epoch's weights): ${line(result.test)}`);
  }

  /** A whole line, replacing an open step line in a terminal. */
  #line(text: string): void {
    if (this.#stepLineOpen) this.#out.write("\r\x1b[2K");
    this.#stepLineOpen = false;
    this.#out.write(`${text}\n`);
  }

  /** Shows (then updates in place) the notebook's table with a status line under it. */
  #display(plain: string, status: string): void {
    const table = this.#rows.length > 0
      ? `<table>${this.#head}${this.#rows.slice(-NOTEBOOK_ROWS).join("")}</table>`
      : "";
    void this.#out.jupyter!.display({ "text/html": table + status, "text/plain": plain }, {
      raw: true,
      display_id: this.#displayId,
      update: this.#shown,
    });
    this.#shown = true;
  }
}
