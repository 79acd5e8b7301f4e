/**
 * Atomic file writes: readers see a complete file or none, never a partial one.
 *
 * @module
 */
import { join } from "node:path";

/** Marks the temporary files of {@link writeFileAtomic}: `<path>.tmp-<pid>-<random>`. */
const TEMPORARY_MARKER = ".tmp-";

/** Temporary files older than this are considered abandoned and removed. */
const STALE_TEMPORARY_MS = 10 * 60 * 1000;

/** Removes abandoned temporary files (from writers that were killed) in `directory`. */
async function removeStaleTemporaries(directory: string): Promise<void> {
  try {
    for await (const entry of Deno.readDir(directory)) {
      if (!entry.isFile || !entry.name.includes(TEMPORARY_MARKER)) continue;
      const path = join(directory, entry.name);
      const info = await Deno.stat(path);
      if (Date.now() - (info.mtime?.getTime() ?? 0) > STALE_TEMPORARY_MS) {
        await Deno.remove(path).catch(() => {});
      }
    }
  } catch {
    // The directory may not exist yet; nothing to clean.
  }
}

/**
 * Writes bytes to `path` atomically: into a temporary file in the same directory, then renamed
 * over `path`. Creates the directory when missing and removes temporaries that killed writers left
 * there more than ten minutes ago. On failure the temporary file is removed and the error
 * rethrown, so readers only ever see a complete file or none.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const directory = path.replace(/[\\/][^\\/]*$/, "") || ".";
  await Deno.mkdir(directory, { recursive: true });
  await removeStaleTemporaries(directory);
  const suffix = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  const temporary = `${path}${TEMPORARY_MARKER}${Deno.pid}-${suffix}`;
  try {
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}
