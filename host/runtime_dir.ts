/**
 * A private runtime directory for the GPU stack. Vulkan's window-system code asks for
 * `$XDG_RUNTIME_DIR` when the WebGPU adapter starts and prints
 * `error: XDG_RUNTIME_DIR is invalid or not set` when it is missing; nothing here needs a window,
 * so any private directory of the user's silences it. `initGpu` calls {@link ensureRuntimeDir}
 * before it first touches WebGPU, so every program, notebook and test gets it.
 *
 * @module
 */
import { join } from "node:path";
import { env } from "./env.ts";

/** The directory {@link ensureRuntimeDir} uses: `ssmrec-runtime-<uid>` in the temporary folder. */
export function privateRuntimeDir(): string {
  const uid = Deno.uid();
  const tmp = env("TMPDIR") ?? (Deno.build.os === "windows" ? env("TEMP") ?? "." : "/tmp");
  return join(tmp, `ssmrec-runtime-${uid ?? "user"}`);
}

/**
 * Sets `$XDG_RUNTIME_DIR` of this process (and so of the processes it starts) to
 * {@link privateRuntimeDir}, created with mode 0700 (a fresh temporary one where that name is
 * taken by another user), when it is unset or names no directory;
 * call it before the GPU is first touched. Returns the directory in effect, or `undefined` where
 * the environment cannot be changed (no permission) or the directory cannot be made.
 */
export function ensureRuntimeDir(): string | undefined {
  const current = env("XDG_RUNTIME_DIR");
  if (current !== undefined) {
    try {
      if (Deno.statSync(current).isDirectory) return current;
    } catch {
      // Not a directory: replaced below.
    }
  }
  try {
    let dir = privateRuntimeDir();
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const info = Deno.lstatSync(dir);
    // Someone else's directory (or a link) under that name: take a fresh one instead.
    if (!info.isDirectory || (info.uid !== null && info.uid !== Deno.uid())) {
      dir = Deno.makeTempDirSync({ prefix: "ssmrec-runtime-" });
    }
    Deno.env.set("XDG_RUNTIME_DIR", dir);
    return dir;
  } catch {
    return undefined;
  }
}
