import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  env,
  inJupyterKernel,
  isFile,
  JUPYTER_DISPLAY,
  jupyterApi,
  projectRoot,
  writeFileAtomic,
} from "../host/mod.ts";
import { entryNames, withTempDir } from "./temp_files.ts";

const PREFIX = "ssmrec-host-test-";

Deno.test("atomic write: a failed rename leaves no partial file; stale temporaries are swept", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const target = join(dir, "entry.arrow");
    await Deno.mkdir(target); // renaming a file over a directory fails
    await assertRejects(() => writeFileAtomic(target, new Uint8Array([1, 2, 3])));
    assertEquals(await entryNames(dir), ["entry.arrow"]);
    const stale = join(dir, "old.arrow.tmp-1-abc");
    await Deno.writeTextFile(stale, "half");
    const hourAgo = new Date(Date.now() - 3600_000);
    await Deno.utime(stale, hourAgo, hourAgo);
    await writeFileAtomic(join(dir, "new.arrow"), new Uint8Array([4]));
    assertEquals(await entryNames(dir), ["entry.arrow", "new.arrow"]);
    assertEquals(Array.from(await Deno.readFile(join(dir, "new.arrow"))), [4]);
  });
});

Deno.test("atomic write: creates missing directories and replaces an existing file", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const target = join(dir, "a", "b", "record.json");
    await writeFileAtomic(target, new TextEncoder().encode("first"));
    await writeFileAtomic(target, new TextEncoder().encode("second"));
    assertEquals(await Deno.readTextFile(target), "second");
    assertEquals(await entryNames(join(dir, "a", "b")), ["record.json"]);
  });
});

Deno.test("projectRoot is the directory holding deno.json; isFile tells files from the rest", () => {
  const root = projectRoot();
  if (root === undefined) throw new Error("projectRoot() is undefined for a file module");
  assert(isFile(join(root, "deno.json")), `no deno.json in ${root}`);
  assert(isFile(join(root, "host", "mod.ts")));
  assertEquals(isFile(join(root, "host")), false);
  assertEquals(isFile(join(root, "no-such-file")), false);
});

Deno.test("env treats unset and empty variables alike", () => {
  const name = "SSMREC_HOST_TEST_VARIABLE";
  Deno.env.delete(name);
  assertEquals(env(name), undefined);
  Deno.env.set(name, "");
  assertEquals(env(name), undefined);
  Deno.env.set(name, "x");
  assertEquals(env(name), "x");
  Deno.env.delete(name);
});

Deno.test("outside a kernel there is no Jupyter API; the display symbol is the kernel's", () => {
  assertEquals(jupyterApi(), undefined);
  assertEquals(inJupyterKernel(), false);
  assertEquals(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
});
