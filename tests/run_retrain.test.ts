import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join, relative } from "node:path";
import { requireProjectRoot } from "../run/code_version.ts";
import {
  readRunRecord,
  recordStaleness,
  type RunRecord,
  writeRunRecord,
} from "../run/run_record.ts";
import { retrainRecord, type StaleRecord } from "../run/retrain_stale.ts";

/** A format-1 record (no code version) of a run trained with `command`. */
function oldRecord(command: string): RunRecord {
  return {
    format: "ssmrec-run-1",
    model: "mamba4rec",
    dataset: "tiny",
    users: 30,
    items: 11,
    adapter: "an earlier adapter",
    finishedAt: "2020-01-01T00:00:00.000Z",
    command,
    modelConfig: {},
    trainConfig: { epochs: 3 } as RunRecord["trainConfig"],
    parameters: 0,
    result: { history: [] } as unknown as RunRecord["result"],
  };
}

/** A stale record written under a fresh folder. */
async function staleRecord(command: string): Promise<{ dir: string; stale: StaleRecord }> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "runs", "mamba4rec-tiny.json");
  const record = oldRecord(command);
  await writeRunRecord(path, record);
  return { dir, stale: { path, record, staleness: await recordStaleness(record) } };
}

Deno.test("retraining a stale record: from scratch, then --continue until the record is rewritten", async () => {
  const { dir, stale } = await staleRecord(
    "deno task train --dataset tiny --checkpoint-dir .runs/tiny --max-seconds 60 --continue " +
      "--record results/runs/elsewhere.json",
  );
  const calls: string[][] = [];
  // A stand-in for `deno task train` that needs three calls to finish, as --max-seconds would.
  await retrainRecord(stale, async (args) => {
    calls.push([...args]);
    if (calls.length === 3) {
      await writeRunRecord(stale.path, {
        ...stale.record,
        format: "ssmrec-run-2",
        finishedAt: new Date().toISOString(),
        command: `deno task train ${args.join(" ")}`,
      });
    }
    return 0;
  });
  const recordArg = relative(requireProjectRoot(), stale.path);
  const first = [
    "--dataset",
    "tiny",
    "--checkpoint-dir",
    ".runs/tiny",
    "--max-seconds",
    "60",
    "--record",
    recordArg,
  ];
  assertEquals(calls, [first, [...first, "--continue"], [...first, "--continue"]]);
  const record = await readRunRecord(stale.path);
  assertEquals((await recordStaleness(record!, record!.code)).stale, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("retraining a stale record: a failing command or one that cannot continue fails by path", async () => {
  const { dir, stale } = await staleRecord("deno task train --dataset tiny --epochs-this-run 1");
  const failing = await assertRejects(() => retrainRecord(stale, () => Promise.resolve(3)));
  assertStringIncludes((failing as Error).message, `${stale.path}: deno task train exited with 3`);
  // Without --checkpoint-dir, a run that pauses cannot be continued.
  const stuck = await assertRejects(() => retrainRecord(stale, () => Promise.resolve(0)));
  assertStringIncludes((stuck as Error).message, "has no --checkpoint-dir");
  await Deno.remove(dir, { recursive: true });
});
