/**
 * Host helpers every layer may import: environment variables, the project root, file checks,
 * atomic file writes and access to Deno's Jupyter kernel. Imports nothing from the project.
 *
 * @module
 */
export { env } from "./env.ts";
export { isFile, projectRoot } from "./paths.ts";
export { writeFileAtomic } from "./files.ts";
export {
  inJupyterKernel,
  JUPYTER_DISPLAY,
  type JupyterApi,
  jupyterApi,
  type JupyterDisplayOptions,
  type MimeBundle,
} from "./jupyter.ts";
