/**
 * Rich display in Deno's Jupyter kernel: the display symbol, MIME bundles, and a display helper
 * that keeps outputs from being lost.
 *
 * @module
 */

/** The symbol under which Deno's Jupyter kernel looks for an object's rich display method. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display");

/** A Jupyter MIME bundle: MIME type to text (or JSON object for `application/*+json` types). */
export type MimeBundle = Record<string, string | object>;

/** An object that renders itself in Deno's Jupyter kernel. */
export interface RichDisplay {
  /** Returns the MIME bundle to show. */
  [JUPYTER_DISPLAY](): MimeBundle | Promise<MimeBundle>;
}

/** Whether `value` has a rich display method. */
export function isRichDisplay(value: unknown): value is RichDisplay {
  return typeof value === "object" && value !== null &&
    typeof (value as Record<symbol, unknown>)[JUPYTER_DISPLAY] === "function";
}

/**
 * Attaches a rich display method to an existing object (non-enumerable, so it does not show in
 * inspection or serialisation) and returns the same object.
 */
export function withRichDisplay<T extends object>(
  target: T,
  bundle: () => MimeBundle | Promise<MimeBundle>,
): T & RichDisplay {
  Object.defineProperty(target, JUPYTER_DISPLAY, {
    value: bundle,
    enumerable: false,
    configurable: true,
  });
  return target as T & RichDisplay;
}

/** The display function of Deno's kernel, or `undefined` outside a kernel. */
function kernelDisplay():
  | ((bundle: unknown, options: { raw: boolean }) => Promise<void>)
  | undefined {
  try {
    const jupyter = (Deno as unknown as {
      jupyter?: { display?: (obj: unknown, options: { raw: boolean }) => Promise<void> };
    }).jupyter;
    return typeof jupyter?.display === "function" ? jupyter.display.bind(jupyter) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this code runs inside Deno's Jupyter kernel. */
export function inJupyterKernel(): boolean {
  return kernelDisplay() !== undefined;
}

/** The MIME bundle of any value: its rich display, or its inspection as `text/plain`. */
export async function mimeBundleOf(value: unknown): Promise<MimeBundle> {
  if (isRichDisplay(value)) return await value[JUPYTER_DISPLAY]();
  if (typeof value === "string") return { "text/plain": value };
  return { "text/plain": Deno.inspect(value, { colors: false, depth: 6 }) };
}

/** How long {@link jupyterDisplay} waits after its last output, at least, in milliseconds. */
export const DISPLAY_SETTLE_MS = 30;

/** Extra wait per byte of output: large outputs take the kernel longer to send. */
const SETTLE_MS_PER_BYTE = 1 / 10_000;

/** Approximate size in bytes of a bundle as the kernel sends it. */
function bundleSize(bundle: MimeBundle): number {
  let size = 0;
  for (const value of Object.values(bundle)) {
    size += typeof value === "string" ? value.length : JSON.stringify(value).length;
  }
  return size;
}

/**
 * Displays each value as its own output and then waits until the kernel has had time to send
 * them: {@link DISPLAY_SETTLE_MS} ms plus 1 ms per 10 kB of output.
 *
 * Deno 2.9's kernel can report a cell finished before its last outputs reach the front end, and
 * headless runners then drop those outputs; the larger the output, the later it goes out. An
 * explicit display followed by such a wait at the end of a cell keeps them. Make
 * `await jupyterDisplay(...)` the last statement of every cell that shows something. Outside a
 * kernel it prints each value's `text/plain` form.
 */
export async function jupyterDisplay(...values: unknown[]): Promise<void> {
  const display = kernelDisplay();
  let bytes = 0;
  for (const value of values) {
    const bundle = await mimeBundleOf(value);
    if (display) {
      await display(bundle, { raw: true });
      bytes += bundleSize(bundle);
    } else {
      console.log(String(bundle["text/plain"] ?? ""));
    }
  }
  if (display) {
    const wait = DISPLAY_SETTLE_MS + Math.ceil(bytes * SETTLE_MS_PER_BYTE);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
