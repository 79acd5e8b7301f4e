/**
 * Loaded before each task's main module (`deno run --preload run/preload_runtime_dir.ts …` in
 * `deno.json`): gives the process a private `$XDG_RUNTIME_DIR` when it has none, before the GPU
 * is touched (see `run/runtime_dir.ts`).
 *
 * @module
 */
import { ensureRuntimeDir } from "./runtime_dir.ts";

ensureRuntimeDir();
