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

/** How long {@link jupyterDisplay} waits after its last output, in milliseconds. */
export const DISPLAY_SETTLE_MS = 30;

/**
 * Displays each value as its own output and then waits {@link DISPLAY_SETTLE_MS} ms.
 *
 * Deno 2.9's kernel can report a cell finished before its last outputs reach the front end, and
 * headless runners then drop those outputs; an explicit display followed by a short wait at the
 * end of a cell keeps them. Make `await jupyterDisplay(...)` the last statement of every cell that
 * shows something. Outside a kernel it prints each value's `text/plain` form.
 */
export async function jupyterDisplay(...values: unknown[]): Promise<void> {
  const display = kernelDisplay();
  for (const value of values) {
    const bundle = await mimeBundleOf(value);
    if (display) await display(bundle, { raw: true });
    else console.log(String(bundle["text/plain"] ?? ""));
  }
  if (display) await new Promise((resolve) => setTimeout(resolve, DISPLAY_SETTLE_MS));
}
