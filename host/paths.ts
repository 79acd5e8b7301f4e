/**
 * The project's own location on disk and existence checks.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/**
 * The repository root (the directory above `host/`, resolved from this module's own location, not
 * from the working directory), or `undefined` when the module was loaded from a non-file URL.
 * The path ends with a separator.
 */
export function projectRoot(): string | undefined {
  const url = new URL("../", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : undefined;
}

/** Whether `path` names an existing regular file (`false` also when it cannot be checked). */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Whether anything (file, directory, link target) exists at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
