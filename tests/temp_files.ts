/**
 * Test helpers for file system tests: a temporary directory removed afterwards, and a directory's
 * entry names.
 */

/** Runs `fn` in a fresh temporary directory (name starting `prefix`), removed afterwards. */
export async function withTempDir(
  prefix: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The names of a directory's entries, sorted. */
export async function entryNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}
