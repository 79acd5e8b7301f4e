import { assertEquals, assertThrows } from "@std/assert";
import { join } from "node:path";
import { resolveDatasetSource } from "../data/paths.ts";
import { firstUsersCsv, loadFirstUsers } from "../run/dataset_slice.ts";
import { withTempDir } from "./temp_files.ts";

const HEADER = "user_id,video_id,date,time_ms,is_click";

/** A KuaiRand-style log: rows `user,video,…` in the order given. */
function log(rows: [number, number][], t0: number): string {
  return [HEADER, ...rows.map(([u, v], i) => `${u},${v},20220408,${t0 + i},1`)].join("\n") + "\n";
}

Deno.test("firstUsersCsv keeps each log's header and the rows of the first users across the logs", () => {
  const early = { source: "early.csv", text: log([[7, 1], [3, 2], [7, 3], [9, 4]], 0) };
  const late = { source: "late.csv", text: log([[9, 5], [3, 6], [5, 7]], 100) };
  const [a, b] = firstUsersCsv([early, late], 2);
  assertEquals(a.text.split("\n"), [
    HEADER,
    "7,1,20220408,0,1",
    "3,2,20220408,1,1",
    "7,3,20220408,2,1",
  ]);
  assertEquals(b.text.split("\n"), [HEADER, "3,6,20220408,101,1"]);
  assertThrows(
    () => firstUsersCsv([{ source: "x.csv", text: "uid,vid\n1,2\n" }], 1),
    RangeError,
    "x.csv: the header has no user_id column",
  );
});

Deno.test("loadFirstUsers slices KuaiRand logs, one file or a folder of several", async () => {
  await withTempDir("ssmrec_slice_", async (dir) => {
    const early = join(dir, "log_standard_4_08_to_4_21_pure.csv");
    const late = join(dir, "log_standard_4_22_to_5_08_pure.csv");
    const rows = (u: number, n: number, v0: number) =>
      Array.from({ length: n }, (_, i) => [u, v0 + i] as [number, number]);
    // Users 1–6 rate items 10–15 in the early log; the late log adds user 1 again and user 7.
    const users = (from: number, to: number, n: number) =>
      Array.from({ length: to - from + 1 }, (_, k) => rows(from + k, n, 10)).flat();
    await Deno.writeTextFile(early, log(users(1, 6, 6), 0));
    await Deno.writeTextFile(late, log([...rows(1, 3, 10), ...rows(7, 6, 10)], 1000));
    const one = await loadFirstUsers({ name: "kuairand-pure", path: early, files: [early] }, 5);
    assertEquals(one.statistics.users, 5);
    assertEquals(one.statistics.interactions, 30);
    const both = await loadFirstUsers(
      { name: "kuairand-pure", path: dir, files: [early, late] },
      5,
    );
    assertEquals(both.statistics.users, 5);
    assertEquals(both.statistics.interactions, 33);
    assertEquals(both.name, "kuairand-pure (first 5 users)");
  });
});

Deno.test("loadFirstUsers generates only the first users of a generated dataset", async () => {
  const source = resolveDatasetSource("kuairand-synthetic");
  const slice = await loadFirstUsers(source, 40);
  assertEquals(slice.name, "kuairand-synthetic (first 40 users)");
  assertEquals(slice.statistics.rawUsers, 40);
});
