/** Runs `scripts/train.ts` as a separate process, with a small dataset and error-line checks. */
import { assertEquals, assertMatch } from "@std/assert";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../scripts/train.ts", import.meta.url));

/** Runs the training command with `args`, its processed-dataset cache in `cacheDir`. */
export async function cli(
  cacheDir: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    env: { NO_COLOR: "1", SSMREC_CACHE: cacheDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** `user item` pairs: 30 users with 8 interactions each over 12 items (all kept by 5-core). */
export function pairs(): string {
  const lines: string[] = [];
  for (let u = 1; u <= 30; u++) {
    for (let t = 0; t < 8; t++) lines.push(`${u} ${((u + 3 * t) % 12) + 1}`);
  }
  return lines.join("\n") + "\n";
}

/** Asserts one `error: …` line on stderr (no stack trace) that matches `pattern`. */
export function assertOneErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, stderr);
  assertMatch(lines[0], /^error: /);
  assertMatch(lines[0], pattern);
}
