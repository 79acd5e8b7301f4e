/**
 * Checks of a run's output paths before any training, so that a bad path fails at once rather
 * than after the first epoch.
 *
 * @module
 */
import { dirname } from "node:path";

/** An output path that cannot be written; the message names the path and what to do. */
export class OutputPathError extends Error {
  /**
   * An error about one output path.
   * @param what how the user named the path (e.g. `--checkpoint-dir`)
   * @param path the path
   * @param problem what is wrong and what to do
   */
  constructor(readonly what: string, readonly path: string, problem: string) {
    super(`${what} ${path}: ${problem}`);
    this.name = "OutputPathError";
  }
}

/** `Deno.stat`, or `null` when `path` cannot be looked at (the writes that follow say why). */
async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/**
 * Makes sure `dir` is a directory this process can write files in, creating it when missing;
 * `what` names it in the error.
 */
export async function checkOutputDirectory(what: string, dir: string): Promise<void> {
  const info = await statOrNull(dir);
  if (info && !info.isDirectory) {
    throw new OutputPathError(what, dir, "exists and is not a directory; name a directory");
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = `${dir}/.write-check-${Deno.pid}-${crypto.randomUUID()}`;
    await Deno.writeFile(probe, new Uint8Array());
    await Deno.remove(probe);
  } catch (error) {
    throw new OutputPathError(
      what,
      dir,
      `cannot create or write files in it (${(error as Error).message}); name a writable directory`,
    );
  }
}

/**
 * Makes sure a file can be written at `path`: it is not a directory, and its directory is
 * writable (created when missing); `what` names it in the error.
 */
export async function checkOutputFile(what: string, path: string): Promise<void> {
  const info = await statOrNull(path);
  if (info?.isDirectory) {
    throw new OutputPathError(what, path, "is a directory; name a file");
  }
  await checkOutputDirectory(`${what} directory`, dirname(path) || ".");
}
