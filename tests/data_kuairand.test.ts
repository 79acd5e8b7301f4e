import { assert, assertEquals, assertInstanceOf, assertMatch, assertThrows } from "@std/assert";
import { assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  DataFormatError,
  KUAIRAND_PURE_LOGS,
  listDatasets,
  loadDatasetWithInfo,
  type LoadedInteractions,
  parseKuaiRandLogs,
  resolveDatasetSource,
} from "../data/mod.ts";

/** The header of the official KuaiRand-Pure log files. */
const HEADER = "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment," +
  "is_forward,is_hate,long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time," +
  "is_profile_enter,is_rand,tab";

const EARLY = "log_standard_4_08_to_4_21_pure.csv";
const LATE = "log_standard_4_22_to_5_08_pure.csv";
const RANDOM = "log_random_4_22_to_5_08_pure.csv";

/** 2022-04-08 00:00 UTC+8 in milliseconds; rows are spaced far beyond float32 time steps. */
const APRIL_8 = 1649347200000;
const STEP = 3_600_000;

/** One log row in the official column layout: user, video, hours after April 8, is_click. */
type Row = readonly [user: number, video: number, hour: number, click: 0 | 1];

function logText(rows: readonly Row[], rand = 0): string {
  const lines = rows.map(([user, video, hour, click]) => {
    const time = APRIL_8 + hour * STEP;
    return `${user},${video},20220408,1200,${time},${click},0,0,0,0,0,${click},500,9000,0,0,0,` +
      `${rand},1`;
  });
  return [HEADER, ...lines].join("\n") + "\n";
}

/** Standard early period: users 1 and 2; user 1 also watches in the later periods. */
const EARLY_ROWS: Row[] = [[1, 10, 0, 1], [2, 20, 1, 0], [1, 11, 2, 0], [2, 21, 3, 1]];
const LATE_ROWS: Row[] = [[2, 22, 340, 0], [1, 12, 341, 1], [3, 30, 342, 1], [3, 31, 343, 0]];
const RANDOM_ROWS: Row[] = [[1, 99, 339, 0], [3, 98, 344, 0]];

/** Writes the official layout (`KuaiRand-Pure/data/…`) under `root` with the given logs. */
async function writeFolder(
  root: string,
  logs: Partial<Record<string, string>>,
  layout = "KuaiRand-Pure/data",
): Promise<string> {
  const data = join(root, layout);
  await Deno.mkdir(data, { recursive: true });
  for (const [file, text] of Object.entries(logs)) {
    await Deno.writeTextFile(join(data, file), text!);
  }
  return data;
}

function fullLogs(): Record<string, string> {
  return {
    [EARLY]: logText(EARLY_ROWS),
    [LATE]: logText(LATE_ROWS),
    [RANDOM]: logText(RANDOM_ROWS, 1),
  };
}

function tokens(loaded: LoadedInteractions, name: "user" | "item"): string[] {
  const ids = loaded.table.getChild(name)!.toArray() as Int32Array;
  const list = name === "user" ? loaded.userTokens : loaded.itemTokens;
  return Array.from(ids, (id) => list[id]);
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kuairand_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseKuaiRandLogs: logs one after another, ids by first appearance, no filter", () => {
  const loaded = parseKuaiRandLogs(
    [{ source: EARLY, text: "\ufeff" + logText(EARLY_ROWS) }, {
      source: LATE,
      text: logText(LATE_ROWS),
    }],
    "folder",
  );
  assertEquals(loaded.format, "kuairand-csv");
  assertEquals(loaded.source, "folder");
  const rows = [...EARLY_ROWS, ...LATE_ROWS];
  assertEquals(tokens(loaded, "user"), rows.map(([u]) => String(u)));
  assertEquals(tokens(loaded, "item"), rows.map(([, v]) => String(v)));
  assertEquals(
    Array.from(loaded.table.getChild("timestamp")!.toArray() as Float64Array),
    rows.map(([, , h]) => APRIL_8 + h * STEP),
  );
  assertEquals(loaded.userTokens, ["[PAD]", "1", "2", "3"]);
  assertEquals(loaded.table.schema.fields.map((f) => f.name), ["user", "item", "timestamp"]);
});

Deno.test("parseKuaiRandLogs: a bad or empty log is named in the error", () => {
  const good = { source: EARLY, text: logText(EARLY_ROWS) };
  const noTime = { source: "late.csv", text: "user_id,video_id\n1,2\n" };
  const e = assertThrows(() => parseKuaiRandLogs([good, noTime], "folder"), DataFormatError);
  assertEquals(e.file, "late.csv");
  assertMatch(e.message, /no time_ms column/);
  const empty = assertThrows(
    () => parseKuaiRandLogs([good, { source: "empty.csv", text: " \n" }], "folder"),
    DataFormatError,
  );
  assertEquals(empty.file, "empty.csv");
  const badRow = {
    source: "row.csv",
    text: logText(LATE_ROWS).replace(`,${APRIL_8 + 340 * STEP},`, ",x,"),
  };
  assertMatch(
    assertThrows(() => parseKuaiRandLogs([good, badRow], "folder"), DataFormatError).message,
    /row\.csv:2/,
  );
  assertThrows(() => parseKuaiRandLogs([], "folder"), DataFormatError, "no KuaiRand log");
});

Deno.test("a KuaiRand-Pure folder resolves to the chosen logs in time order", async () => {
  await withTempDir(async (dir) => {
    const data = await writeFolder(dir, fullLogs());
    const root = join(dir, "KuaiRand-Pure");
    // By default the first standard log alone: SSD4Rec's KuaiRand.
    assertEquals(resolveDatasetSource(root).files, [join(data, EARLY)]);
    for (const arg of [root, data]) {
      const source = resolveDatasetSource(arg, { kuaiRandLogs: "standard" });
      assertEquals(source, {
        name: "kuairand-pure",
        path: data,
        files: [join(data, EARLY), join(data, LATE)],
      });
    }
    assertEquals(resolveDatasetSource(root, { kuaiRandLogs: "standard-early" }).files, [
      join(data, EARLY),
    ]);
    assertEquals(
      resolveDatasetSource(root, { kuaiRandLogs: "all" }).files,
      KUAIRAND_PURE_LOGS.all.map((f) => join(data, f)),
    );
    for (const name of ["kuairand", "KuaiRand-Pure"]) {
      assertEquals(resolveDatasetSource(name, { datasetsDirectory: dir }).path, data);
    }
    const listed = listDatasets({ datasetsDirectory: dir }).find((d) => d.name === "kuairand-pure");
    assertEquals(listed?.path, data);
    // A single log file still loads alone, under the dataset's name.
    const one = resolveDatasetSource(join(data, LATE));
    assertEquals(one, { name: "kuairand-pure", path: join(data, LATE), files: [join(data, LATE)] });
  });
});

Deno.test("logs directly in a named folder are found too (kuairand/ with no data/)", async () => {
  await withTempDir(async (dir) => {
    const folder = await writeFolder(dir, fullLogs(), "kuairand");
    assertEquals(
      resolveDatasetSource("kuairand", { datasetsDirectory: dir, kuaiRandLogs: "standard" }).files,
      [join(folder, EARLY), join(folder, LATE)],
    );
  });
});

Deno.test("loading a folder: both standard logs, each user's rows in time order", async () => {
  await withTempDir(async (dir) => {
    const data = await writeFolder(dir, fullLogs());
    const cacheDirectory = join(dir, "cache");
    const options = {
      minUserInteractions: 1,
      minItemInteractions: 1,
      cacheDirectory,
      kuaiRandLogs: "standard" as const,
    };
    const info = await loadDatasetWithInfo(join(dir, "KuaiRand-Pure"), options);
    assert(!info.fromCache);
    assertEquals(info.sourcePath, data);
    assertEquals(info.sourceFiles, [join(data, EARLY), join(data, LATE)]);
    const { dataset } = info;
    assertEquals(dataset.name, "kuairand-pure");
    assertEquals(dataset.format, "kuairand-csv");
    const sequences = new Map<string, string[]>();
    for (let u = 1; u < dataset.numUsers; u++) {
      const items = Array.from(dataset.sequence(u), (i) => dataset.itemTokens[i]);
      sequences.set(dataset.userTokens[u], items);
    }
    assertEquals(
      sequences,
      new Map([["1", ["10", "11", "12"]], ["2", ["20", "21", "22"]], ["3", ["30", "31"]]]),
    );
    assertEquals(dataset.statistics.interactions, 8);
    // The random log joins only when asked for, and gets its own cache entry.
    const all = await loadDatasetWithInfo(join(dir, "KuaiRand-Pure"), {
      ...options,
      kuaiRandLogs: "all",
    });
    assert(!all.fromCache);
    assertEquals(all.dataset.statistics.interactions, 10);
    const user1 = all.dataset.userTokens.indexOf("1");
    assertEquals(
      Array.from(all.dataset.sequence(user1), (i) => all.dataset.itemTokens[i]),
      ["10", "11", "99", "12"],
    );
    const again = await loadDatasetWithInfo("kuairand", { ...options, datasetsDirectory: dir });
    assert(again.fromCache);
    assertEquals(again.dataset.statistics.interactions, 8);
    await assertRejects(
      () => loadDatasetWithInfo(data, { ...options, format: "atomic-inter", cache: "off" }),
      DataFormatError,
      "read as kuairand-csv",
    );
  });
});

Deno.test("missing logs: the error names the folder, the missing file and the expected files", async () => {
  await withTempDir(async (dir) => {
    const data = await writeFolder(dir, { [EARLY]: logText(EARLY_ROWS) });
    const standard = { kuaiRandLogs: "standard" as const };
    const e = assertThrows(
      () => resolveDatasetSource(join(dir, "KuaiRand-Pure"), standard),
      Deno.errors.NotFound,
    );
    assertMatch(e.message, new RegExp(`folder ${data} lacks ${LATE}`));
    assertMatch(e.message, new RegExp(`reads ${EARLY}, ${LATE}`));
    assertMatch(e.message, /standard-early/);
    // By name the same folder gives the same message; the early log alone is a valid choice.
    assertThrows(
      () => resolveDatasetSource("kuairand", { datasetsDirectory: dir, ...standard }),
      Deno.errors.NotFound,
      LATE,
    );
    assertEquals(
      resolveDatasetSource("kuairand", { datasetsDirectory: dir, kuaiRandLogs: "standard-early" })
        .files,
      [join(data, EARLY)],
    );
    // The default (the early log alone) is complete, so the listing finds the folder.
    const listed = listDatasets({ datasetsDirectory: dir }).find((d) => d.name === "kuairand-pure");
    assertEquals(listed?.path, data);
    const all = assertThrows(
      () => resolveDatasetSource(data, { kuaiRandLogs: "all" }),
      Deno.errors.NotFound,
    );
    assertMatch(all.message, new RegExp(`lacks ${LATE}, ${RANDOM}`));
  });
});

Deno.test("folders without logs and absent datasets say where they looked", async () => {
  await withTempDir(async (dir) => {
    const empty = join(dir, "empty");
    await Deno.mkdir(join(empty, "data"), { recursive: true });
    await Deno.writeTextFile(join(empty, "data", "user_features_pure.csv"), "user_id\n1\n");
    const e = assertThrows(() => resolveDatasetSource(empty), Deno.errors.NotFound);
    assertMatch(e.message, new RegExp(`folder ${empty} holds no KuaiRand-Pure logs`));
    assertMatch(e.message, new RegExp(`for ${EARLY}\\)`));
    const byName = assertThrows(
      () => resolveDatasetSource("kuairand", { datasetsDirectory: dir }),
      Deno.errors.NotFound,
    );
    assertMatch(byName.message, /the folders KuaiRand-Pure, kuairand-pure, kuairand/);
    assertMatch(byName.message, /kuairand\.inter/);
    assertInstanceOf(byName, Deno.errors.NotFound);
  });
});
