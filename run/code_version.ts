/**
 * Which code a run was made by: the git commit (and whether the working tree had changes) and a
 * hash of the sources that decide the numbers, those under `ops/`, `models/` and `data/`.
 *
 * The source hash is SHA-256 over every regular file below those folders, hidden files and
 * folders (names starting with `.`) left out, taken in the order of their paths relative to the
 * project root with `/` separators, sorted by code unit. For each file it hashes the path, a NUL
 * byte, the file's length in bytes as decimal digits, a NUL byte and the file's bytes, so that
 * moving bytes between files or renaming a file changes the hash. The hash depends on nothing
 * else: not on git, the clock, file dates or the operating system.
 *
 * @module
 */
import { join } from "node:path";
import { projectRoot } from "../host/mod.ts";

/** The folders, relative to the project root, whose files make up the source hash. */
export const HASHED_SOURCE_FOLDERS: readonly string[] = ["ops", "models", "data"];

/** The code a run was made by. */
export interface CodeVersion {
  /** The git commit checked out, or `null` outside a git checkout (or without git). */
  readonly commit: string | null;
  /** Whether tracked or untracked files differed from that commit; `null` without a commit. */
  readonly dirty: boolean | null;
  /** `sha256:` and the hex digest of the sources, as the module documentation describes. */
  readonly sourceHash: string;
}

/** The project root, or an error saying the code must run from a file checkout. */
export function requireProjectRoot(): string {
  const root = projectRoot();
  if (root === undefined) {
    throw new Error(
      "the project was loaded from a non-file URL, so its sources cannot be read; run it from a " +
        "local checkout",
    );
  }
  return root;
}

/** Every regular file below `folder` (relative paths with `/`), hidden entries left out. */
async function listFiles(root: string, folder: string): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(join(root, folder)));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return out;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory) out.push(...await listFiles(root, path));
    else if (entry.isFile) out.push(path);
  }
  return out;
}

/**
 * The source hash of `folders` under `root` (default: {@link HASHED_SOURCE_FOLDERS} of this
 * project), as the module documentation describes.
 */
export async function sourceHash(
  root: string = requireProjectRoot(),
  folders: readonly string[] = HASHED_SOURCE_FOLDERS,
): Promise<string> {
  const paths = (await Promise.all(folders.map((f) => listFiles(root, f)))).flat();
  paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const path of paths) {
    const bytes = await Deno.readFile(join(root, path));
    parts.push(encoder.encode(`${path}\0${bytes.length}\0`), bytes);
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    all.set(p, offset);
    offset += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Runs git in `root`; its trimmed output, or `undefined` when git is missing or fails. */
async function git(root: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", root, ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The commit checked out at `root` and whether the tree differs from it. */
export async function gitState(
  root: string = requireProjectRoot(),
): Promise<{ commit: string | null; dirty: boolean | null }> {
  const commit = await git(root, ["rev-parse", "--verify", "HEAD"]);
  if (!commit) return { commit: null, dirty: null };
  const status = await git(root, ["status", "--porcelain", "--untracked-files=normal"]);
  return { commit, dirty: status === undefined ? null : status !== "" };
}

/** The code version of the project at `root` (default: this checkout). */
export async function codeVersion(root: string = requireProjectRoot()): Promise<CodeVersion> {
  const [state, hash] = await Promise.all([gitState(root), sourceHash(root)]);
  return { ...state, sourceHash: hash };
}

/** A short name of a code version: the commit's first 10 digits (`+changes` when dirty) and hash. */
export function describeCodeVersion(code: CodeVersion): string {
  const hash = code.sourceHash.replace(/^sha256:/, "").slice(0, 12);
  if (code.commit === null) return `source hash ${hash}`;
  return `commit ${code.commit.slice(0, 10)}${code.dirty ? "+changes" : ""}, source hash ${hash}`;
}
