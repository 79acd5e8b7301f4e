/**
 * Access to Deno's Jupyter kernel: the `Deno.jupyter` API when running inside it, the symbol under
 * which the kernel looks for an object's rich display, and the MIME bundle type.
 *
 * @module
 */

/** The symbol under which Deno's Jupyter kernel looks for an object's rich display method. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display");

/** A Jupyter MIME bundle: MIME type to text (or JSON object for `application/*+json` types). */
export type MimeBundle = Record<string, string | object>;

/** Options of {@link JupyterApi.display}. */
export interface JupyterDisplayOptions {
  /** Send the bundle as it is instead of rendering the value first. */
  readonly raw?: boolean;
  /** Names the output so that later calls with `update` replace it in place. */
  readonly display_id?: string;
  /** Replace the output named by `display_id` instead of adding a new one. */
  readonly update?: boolean;
}

/** The part of `Deno.jupyter` this project uses. */
export interface JupyterApi {
  /** Sends a MIME bundle (with `raw: true`) or a value to the front end as an output. */
  display(value: unknown, options?: JupyterDisplayOptions): Promise<void>;
}

/** Deno's Jupyter API (`Deno.jupyter`) when running inside the kernel, else `undefined`. */
export function jupyterApi(): JupyterApi | undefined {
  try {
    const jupyter = (Deno as unknown as { jupyter?: Partial<JupyterApi> }).jupyter;
    return typeof jupyter?.display === "function" ? jupyter as JupyterApi : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this code runs inside Deno's Jupyter kernel. */
export function inJupyterKernel(): boolean {
  return jupyterApi() !== undefined;
}
