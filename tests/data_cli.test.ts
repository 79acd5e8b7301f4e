import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../scripts/data.ts", import.meta.url));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("data stats: text and JSON statistics after k-core filtering", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines: string[] = [];
    for (let u = 1; u <= 6; u++) {
      for (let i = 1; i <= 5; i++) lines.push(`${u}::${i}::4::${1000 * u + i}`);
    }
    lines.push("7::1::3::5");
    const file = join(dir, "ratings.dat");
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const json = await cli("stats", file, "--json", "--no-cache");
    assertEquals(json.code, 0, json.stderr);
    const stats = JSON.parse(json.stdout);
    assertEquals(stats.format, "movielens-dat");
    assertEquals([stats.users, stats.items, stats.interactions, stats.maxLength], [6, 5, 30, 5]);
    assertEquals([stats.rawUsers, stats.rawInteractions], [7, 31]);
    const text = await cli("stats", file, "--k", "1", "--cache-dir", join(dir, "cache"));
    assertEquals(text.code, 0, text.stderr);
    assertMatch(text.stdout, /after iterative 1-core filtering/);
    assertMatch(text.stdout, /users\s+7\s+\(raw 7\)/);
    assertMatch(text.stdout, /sparsity\s+/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data stats: bad input fails with the file, line and text", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "bad.dat");
    await Deno.writeTextFile(file, "1::2::3::4\n1::2::3\n");
    const bad = await cli("stats", file, "--no-cache");
    assertEquals(bad.code, 1);
    assertMatch(bad.stderr, /bad\.dat:2: expected 4 fields.*"1::2::3"/);
    const empty = join(dir, "empty.txt");
    await Deno.writeTextFile(empty, "");
    assertMatch((await cli("stats", empty, "--no-cache")).stderr, /empty\.txt: the file is empty/);
    const unknown = await cli("stats", "no-such-dataset", "--datasets-dir", dir);
    assertEquals(unknown.code, 1);
    assertMatch(unknown.stderr, /dataset "no-such-dataset" not found/);
    const format = await cli("stats", file, "--format", "xml");
    assertEquals(format.code, 2);
    assertMatch(format.stderr, /unknown format "xml"/);
    const list = await cli("list", "--datasets-dir", dir);
    assertEquals(list.code, 0);
    assert(list.stdout.includes("kuairand-pure") && list.stdout.includes("not available"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
