/**
 * Loaded before each task's main module (`deno run --preload run/preload_runtime_dir.ts …` in
 * `deno.json`): gives the process a private `$XDG_RUNTIME_DIR` when it has none, before the GPU
 * is touched (see `host/runtime_dir.ts`), including processes whose GPU stack starts
 * outside `initGpu`.
 *
 * @module
 */
import { ensureRuntimeDir } from "../host/mod.ts";

ensureRuntimeDir();
