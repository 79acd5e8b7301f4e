/**
 * Host helpers every layer may import: environment variables, the project root, file checks,
 * atomic file writes, a private runtime directory for the GPU stack, and access to Deno's Jupyter kernel. Imports nothing from the project.
 *
 * @module
 */
export { env } from "./env.ts";
export { isFile, pathExists, projectRoot } from "./paths.ts";
export { writeFileAtomic } from "./files.ts";
export { ensureRuntimeDir, privateRuntimeDir } from "./runtime_dir.ts";
export {
  inJupyterKernel,
  JUPYTER_DISPLAY,
  type JupyterApi,
  jupyterApi,
  type JupyterDisplayOptions,
  type MimeBundle,
} from "./jupyter.ts";
