import { assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { efficiencyRows, efficiencyTable } from "../run/efficiency.ts";

/** A `deno task train --json` output with the given per-epoch figures. */
function output(epochs: [number, number, number, number][]): string {
  return JSON.stringify({
    adapter: "Test GPU",
    history: epochs.map(([trainSeconds, tokens, tokensPerSecond, peakLiveBytes], epoch) => ({
      epoch,
      trainSeconds,
      tokens,
      tokensPerSecond,
      peakLiveBytes,
    })),
  });
}

Deno.test("efficiency rows: later epochs averaged, the first left out, peak over all", async () => {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "results", "efficiency"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "results", "efficiency", "packed.json"),
    output([[9, 100, 11, 5e6], [2, 100, 50, 7e6], [4, 100, 25, 6e6]]),
  );
  await Deno.writeTextFile(
    join(root, "results", "efficiency", "padded.json"),
    output([[20, 500, 25, 2e7], [6, 500, 83, 3e7], [6, 500, 83, 3e7]]),
  );
  const runs = [
    { label: "packed", file: "packed.json" },
    { label: "padded", file: "padded.json" },
  ];
  const rows = await efficiencyRows(runs, root);
  assertEquals(rows.map((r) => r.layout), ["packed", "padded"]);
  assertAlmostEquals(rows[0].secondsPerEpoch, 3);
  assertAlmostEquals(rows[0].tokensPerSecond, 37.5);
  assertEquals(rows[0].peakBytes, 7e6);
  assertEquals(rows[1].tokensPerEpoch, 500);
  const table = await efficiencyTable("packed vs padded", runs, root);
  assertEquals(table.rows.map((r) => r["× time"]), [1, 2]);
  assertEquals(table.rows.map((r) => r["× storage"]), [1, 4.29]);
  await Deno.writeTextFile(
    join(root, "results", "efficiency", "short.json"),
    output([[1, 1, 1, 1]]),
  );
  await assertRejects(
    () => efficiencyRows([{ label: "short", file: "short.json" }], root),
    Error,
    "short.json: 1 epochs; an efficiency run needs at least two",
  );
  await Deno.remove(root, { recursive: true });
});
