import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import {
  coversRun,
  equivalenceChain,
  SOURCE_EQUIVALENCES,
  type SourceEquivalence,
} from "../run/source_equivalence.ts";
import { codeLabel, recordStaleness, type RunRecord } from "../run/run_record.ts";
import type { CodeVersion } from "../run/code_version.ts";

const hash = (digit: string) => `sha256:${digit.repeat(64)}`;
const step = (from: string, to: string): SourceEquivalence => ({
  from: hash(from),
  to: hash(to),
  change: `${from} to ${to}`,
  evidence: "test",
});

Deno.test("source equivalence: chains are followed forward only, and never through a gap", () => {
  const list = [step("1", "2"), step("2", "3"), step("3", "1"), step("5", "6")];
  assertEquals(equivalenceChain(hash("1"), hash("1"), list), []);
  assertEquals(equivalenceChain(hash("1"), hash("3"), list)?.map((s) => s.change), [
    "1 to 2",
    "2 to 3",
  ]);
  assertEquals(equivalenceChain(hash("3"), hash("2"), list)?.length, 2, "through the cycle");
  assertEquals(equivalenceChain(hash("1"), hash("6"), list), null);
  assertEquals(equivalenceChain(hash("6"), hash("5"), list), null, "not backwards");
  assertEquals(equivalenceChain(hash("4"), hash("1"), list), null);
});

Deno.test("source equivalence: the registered entries are well formed and distinct", () => {
  const seen = new Set<string>();
  for (const e of SOURCE_EQUIVALENCES) {
    assertMatch(e.from, /^sha256:[0-9a-f]{64}$/);
    assertMatch(e.to, /^sha256:[0-9a-f]{64}$/);
    assert(e.from !== e.to, `${e.change}: from and to are the same hash`);
    assert(e.change.length > 0 && e.evidence.length > 40, `${e.change}: say what and why`);
    assert(!seen.has(e.from + e.to), `${e.change}: registered twice`);
    for (const [key, value] of Object.entries(e.notFor ?? {})) {
      assert(["string", "number", "boolean"].includes(typeof value), `${e.change}: notFor ${key}`);
    }
    seen.add(e.from + e.to);
  }
});

Deno.test("stale records: a record linked to the current code by equivalences is current", async () => {
  const code = (digit: string): CodeVersion => ({
    commit: digit.repeat(40).replace(/[^0-9a-f]/g, "a"),
    dirty: false,
    sourceHash: hash(digit),
  });
  const record = { code: code("1") } as unknown as RunRecord;
  const list = [step("1", "2"), step("2", "3")];
  const linked = await recordStaleness(record, code("3"), list);
  assertEquals(linked.stale, false);
  assertEquals(linked.equivalentChanges.map((s) => s.change), ["1 to 2", "2 to 3"]);
  assertStringIncludes(linked.message, "compute the same numbers (1 to 2; 2 to 3)");
  assertMatch(codeLabel(linked), /^current \(commit 1+, source hash 1+: same numbers\)$/);
  assertEquals(codeLabel(await recordStaleness(record, code("1"), list)), "current");
  const cut = await recordStaleness(record, code("3"), [step("2", "3")]);
  assertEquals(cut.stale, true);
  assertEquals(cut.equivalentChanges, []);
  assertStringIncludes(cut.message, "numbers may differ");
  assertMatch(codeLabel(cut), /^other code /);
  const none = await recordStaleness({} as RunRecord, code("1"), list);
  assertEquals(none.stale, true, "a record without a code version is stale");
});

Deno.test("stale records: an equivalence that names the settings it alters leaves their records stale", async () => {
  const code = (digit: string): CodeVersion => ({
    commit: null,
    dirty: null,
    sourceHash: hash(digit),
  });
  const scoped = { ...step("1", "2"), notFor: { trainingMode: "all-positions" } };
  const list = [scoped, step("2", "3")];
  const record = (trainingMode?: string) =>
    ({
      code: code("1"),
      trainConfig: trainingMode === undefined ? {} : { trainingMode, maxLength: 50 },
    }) as unknown as RunRecord;
  assertEquals(coversRun(scoped, { trainingMode: "prefix" }), true);
  assertEquals(coversRun(scoped, { trainingMode: "all-positions", batchSize: 8 }), false);
  assertEquals(coversRun(scoped, undefined), true, "a record without settings is not excluded");
  assertEquals((await recordStaleness(record("prefix"), code("3"), list)).stale, false);
  assertEquals((await recordStaleness(record(), code("3"), list)).stale, false, "packed runs");
  const altered = await recordStaleness(record("all-positions"), code("3"), list);
  assertEquals(altered.stale, true, "the scoped step is not taken for its own settings");
  assertEquals(
    (await recordStaleness(record("all-positions"), code("2"), [step("1", "2")])).stale,
    false,
  );
  const byModel = { ...step("1", "2"), notForModels: ["ssd4rec"] };
  assertEquals(coversRun(byModel, { trainingMode: "prefix" }, "mamba4rec"), true);
  assertEquals(coversRun(byModel, { trainingMode: "prefix" }, "ssd4rec"), false);
  const ofModel = (model: string) => ({ ...record("prefix"), model }) as unknown as RunRecord;
  assertEquals((await recordStaleness(ofModel("sasrec"), code("2"), [byModel])).stale, false);
  assertEquals(
    (await recordStaleness(ofModel("ssd4rec"), code("2"), [byModel])).stale,
    true,
    "a model the change alters keeps its records stale",
  );
});
