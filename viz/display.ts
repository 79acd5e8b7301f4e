/**
 * Rich display in Deno's Jupyter kernel: objects that render themselves, the MIME bundle of any
 * value, and a display helper that keeps outputs from being lost.
 *
 * @module
 */
import { JUPYTER_DISPLAY, jupyterApi, type MimeBundle } from "../host/mod.ts";

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
  const kernel = jupyterApi();
  let bytes = 0;
  for (const value of values) {
    const bundle = await mimeBundleOf(value);
    if (kernel) {
      await kernel.display(bundle, { raw: true });
      bytes += bundleSize(bundle);
    } else {
      console.log(String(bundle["text/plain"] ?? ""));
    }
  }
  if (kernel) {
    const wait = DISPLAY_SETTLE_MS + Math.ceil(bytes * SETTLE_MS_PER_BYTE);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
