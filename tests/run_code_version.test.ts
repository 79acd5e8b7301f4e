import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import {
  type CodeVersion,
  codeVersion,
  describeCodeVersion,
  sourceHash,
} from "../run/code_version.ts";
import {
  readRunRecord,
  recordStaleness,
  RETRAIN_STALE_COMMAND,
  RUN_RECORD_FORMAT,
  type RunRecord,
  writeRunRecord,
} from "../run/run_record.ts";
import { findStaleRecords, retrainArguments } from "../run/retrain_stale.ts";

/** Writes `files` (path relative to `root` → text) under `root`. */
async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), text);
  }
}

const TREE = {
  "ops/core/a.ts": "export const a = 1;\n",
  "ops/b.wgsl": "fn main() {}\n",
  "models/m.ts": "m",
  "data/empty.ts": "",
};

Deno.test("source hash: the documented digest, whatever order the files were made in", async () => {
  const first = await Deno.makeTempDir();
  const second = await Deno.makeTempDir();
  await writeTree(first, TREE);
  await writeTree(second, Object.fromEntries(Object.entries(TREE).reverse()));
  // SHA-256 over `path \0 length \0 bytes` of each file in path order, computed independently.
  const documented = "sha256:33b420c79417168a76e116b72ce6fc1f9b6b8dfdd5cc483da02e14650d3f55ad";
  assertEquals(await sourceHash(first), documented);
  assertEquals(await sourceHash(second), documented);
  // Hidden files, other folders and missing folders do not count.
  await writeTree(first, { "ops/.a.ts.swp": "x", "run/r.ts": "r", ".git/HEAD": "h" });
  assertEquals(await sourceHash(first), documented);
  await Deno.remove(first, { recursive: true });
  await Deno.remove(second, { recursive: true });
});

Deno.test("source hash: changes when a source file's bytes, name or folder change", async () => {
  const root = await Deno.makeTempDir();
  await writeTree(root, TREE);
  const before = await sourceHash(root);
  await writeTree(root, { "models/m.ts": "n" });
  const edited = await sourceHash(root);
  assertNotEquals(edited, before);
  await writeTree(root, { "models/m.ts": "m" });
  assertEquals(await sourceHash(root), before);
  await Deno.rename(join(root, "models/m.ts"), join(root, "models/n.ts"));
  assertNotEquals(await sourceHash(root), before);
  await Deno.rename(join(root, "models/n.ts"), join(root, "models/m.ts"));
  // Moving bytes from one file to the next keeps the concatenation but not the hash.
  await writeTree(root, { "ops/b.wgsl": "fn main() {}\nm", "models/m.ts": "" });
  assertNotEquals(await sourceHash(root), before);
  await Deno.remove(root, { recursive: true });
});

Deno.test("code version of this checkout: a commit (or none) and a well-formed hash", async () => {
  const code = await codeVersion();
  assertMatch(code.sourceHash, /^sha256:[0-9a-f]{64}$/);
  if (code.commit !== null) {
    assertMatch(code.commit, /^[0-9a-f]{40}$/);
    assert(typeof code.dirty === "boolean");
  }
  assertStringIncludes(describeCodeVersion(code), code.sourceHash.slice(7, 19));
});

/** A record with an empty history, made by `code` (format 1 without it). */
function fakeRecord(code: CodeVersion | undefined): RunRecord {
  return {
    format: code ? RUN_RECORD_FORMAT : "ssmrec-run-1",
    ...(code ? { code, deno: Deno.version.deno } : {}),
    model: "mamba4rec",
    dataset: "rule",
    users: 3,
    items: 4,
    adapter: "test adapter",
    finishedAt: "2026-01-01T00:00:00.000Z",
    command: "deno task train --dataset rule --checkpoint-dir .runs/rule --continue " +
      "--max-seconds 60 --record results/runs/mamba4rec-rule.json",
    modelConfig: {},
    trainConfig: { epochs: 3 } as RunRecord["trainConfig"],
    parameters: 1,
    result: { history: [] } as unknown as RunRecord["result"],
  };
}

const NOW: CodeVersion = {
  commit: "a".repeat(40),
  dirty: false,
  sourceHash: `sha256:${"1".repeat(64)}`,
};
const OTHER: CodeVersion = {
  commit: "b".repeat(40),
  dirty: true,
  sourceHash: `sha256:${"2".repeat(64)}`,
};

Deno.test("stale records: other source hash or no code version is stale, the same hash is not", async () => {
  const same = await recordStaleness(fakeRecord({ ...NOW, commit: "c".repeat(40) }), NOW);
  assertEquals(same.stale, false, "another commit with the same sources is the same code");
  const other = await recordStaleness(fakeRecord(OTHER), NOW);
  assertEquals(other.stale, true);
  assertStringIncludes(
    other.message,
    "recorded by commit bbbbbbbbbb+changes, source hash 222222222222",
  );
  assertStringIncludes(other.message, "current code commit aaaaaaaaaa, source hash 111111111111");
  assertStringIncludes(other.message, "numbers may differ");
  assertStringIncludes(other.message, RETRAIN_STALE_COMMAND);
  const unknown = await recordStaleness(fakeRecord(undefined), NOW);
  assertEquals(unknown.stale, true);
  assertStringIncludes(unknown.message, "recorded by unknown code");
});

Deno.test("stale records: found in a runs folder; the repository's format-1 records read as stale", async () => {
  const dir = await Deno.makeTempDir();
  await writeRunRecord(join(dir, "a-old.json"), fakeRecord(undefined));
  await writeRunRecord(join(dir, "b-current.json"), fakeRecord(NOW));
  await writeRunRecord(join(dir, "c-other.json"), fakeRecord(OTHER));
  const stale = await findStaleRecords(dir, NOW);
  assertEquals(stale.map((s) => s.path), [join(dir, "a-old.json"), join(dir, "c-other.json")]);
  assertEquals((await readRunRecord(join(dir, "a-old.json")))?.code, undefined);
  await Deno.remove(dir, { recursive: true });

  // The records kept in the repository all read, and those without a code version are stale.
  const repository = new URL("../results/runs/", import.meta.url).pathname;
  const staleThere = new Set((await findStaleRecords(repository, NOW)).map((s) => s.path));
  for await (const entry of Deno.readDir(repository)) {
    const path = join(repository, entry.name);
    const record = await readRunRecord(path);
    assert(record !== null && record.result.history.length > 0, `${path}: no history`);
    if (!record?.code) assert(staleThere.has(path), `${path}: no code version but not stale`);
  }
});

Deno.test("run records: the current format gets this checkout's code version and Deno version", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "r.json");
  const { code: _code, deno: _deno, ...unstamped } = fakeRecord(NOW);
  await writeRunRecord(path, unstamped);
  const read = await readRunRecord(path);
  assertEquals(read?.format, RUN_RECORD_FORMAT);
  assertMatch(read?.code?.sourceHash ?? "", /^sha256:[0-9a-f]{64}$/);
  assertEquals(read?.deno, Deno.version.deno);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("retraining: the stored command starts afresh, then continues from its checkpoints", () => {
  const args = retrainArguments(fakeRecord(NOW).command, "results/runs/x.json");
  assertEquals(args.first, [
    "--dataset",
    "rule",
    "--checkpoint-dir",
    ".runs/rule",
    "--max-seconds",
    "60",
    "--record",
    "results/runs/x.json",
  ]);
  assertEquals(args.next, [...args.first, "--continue"]);
  const single = retrainArguments("deno task train --dataset rule --resume=a.st --json", "r.json");
  assertEquals(single, { first: ["--dataset", "rule", "--record", "r.json"], next: null });
  let error: unknown;
  try {
    retrainArguments("deno run -A scripts/train.ts --dataset rule", "r.json");
  } catch (e) {
    error = e;
  }
  assertStringIncludes(String(error), "does not start with 'deno task train'");
});
