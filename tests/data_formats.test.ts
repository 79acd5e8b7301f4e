import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import {
  DataFormatError,
  detectInteractionFormat,
  type LoadedInteractions,
  parseInteractions,
  readInteractions,
  resolveDatasetSource,
} from "../data/mod.ts";

function column(loaded: LoadedInteractions, name: string): number[] {
  const c = loaded.table.getChild(name);
  assert(c, `missing column ${name}`);
  return Array.from(c!.toArray() as ArrayLike<number>);
}

function tokens(loaded: LoadedInteractions, name: "user" | "item"): string[] {
  const list = name === "user" ? loaded.userTokens : loaded.itemTokens;
  return column(loaded, name).map((id) => list[id]);
}

Deno.test("MovieLens ratings.dat: four fields, ids by first appearance, rating and timestamp", () => {
  const text = "1::1193::5::978300760\n1::661::3::978302109\r\n2::1193::4::978298413\n\n";
  const loaded = parseInteractions(text, "ratings.dat");
  assertEquals(loaded.format, "movielens-dat");
  assertEquals(column(loaded, "user"), [1, 1, 2]);
  assertEquals(column(loaded, "item"), [1, 2, 1]);
  assertEquals(loaded.itemTokens, ["[PAD]", "1193", "661"]);
  assertEquals(column(loaded, "rating"), [5, 3, 4]);
  assertEquals(column(loaded, "timestamp"), [978300760, 978302109, 978298413]);
  assertEquals(loaded.table.getChild("user")!.type.toString(), "Int32");
  assertEquals(loaded.table.getChild("timestamp")!.type.toString(), "Float64");
});

Deno.test("RecBole atomic .inter: typed header, string tokens, extra columns, any column order", () => {
  const text = [
    "item_id:token\trating:float\tuser_id:token\ttimestamp:float\treview:token_seq",
    "B00A\t5.0\tAX1\t1380000000\tgreat stuff",
    "B00B\t3\tAX2\t1380086400\t",
    "B00A\t4\tAX2\t1380172800\tok",
  ].join("\n");
  const loaded = parseInteractions(text, "beauty.inter");
  assertEquals(loaded.format, "atomic-inter");
  assertEquals(tokens(loaded, "user"), ["AX1", "AX2", "AX2"]);
  assertEquals(tokens(loaded, "item"), ["B00A", "B00B", "B00A"]);
  assertEquals(column(loaded, "user"), [1, 2, 2]);
  assertEquals(column(loaded, "rating"), [5, 3, 4]);
  assertEquals(column(loaded, "timestamp"), [1380000000, 1380086400, 1380172800]);
});

Deno.test("RecBole atomic .inter without timestamp or rating has only user and item", () => {
  const loaded = parseInteractions("user_id:token\titem_id:token\nu\ti\n", "x.inter");
  assertEquals(loaded.table.schema.fields.map((f) => f.name), ["user", "item"]);
});

Deno.test("user-item pairs: one interaction per line, string tokens allowed", () => {
  const loaded = parseInteractions("10 a\n10 b\n7 a\n10 c \n", "pairs.txt");
  assertEquals(loaded.format, "user-item-pairs");
  assertEquals(tokens(loaded, "user"), ["10", "10", "7", "10"]);
  assertEquals(tokens(loaded, "item"), ["a", "b", "a", "c"]);
  assertEquals(loaded.table.schema.fields.map((f) => f.name), ["user", "item"]);
});

Deno.test("user sequences: one line per user, items in order", () => {
  const loaded = parseInteractions("1 5 6 7\n2 6\n3 8 5\n", "seq.txt");
  assertEquals(loaded.format, "user-sequences");
  assertEquals(tokens(loaded, "user"), ["1", "1", "1", "2", "3", "3"]);
  assertEquals(tokens(loaded, "item"), ["5", "6", "7", "6", "8", "5"]);
  assertEquals(column(loaded, "item"), [1, 2, 3, 2, 4, 1]);
});

Deno.test("KuaiRand log CSV: user_id, video_id, time_ms picked from a wider header", () => {
  const text = [
    "user_id,video_id,date,hourmin,time_ms,is_click,is_like",
    "0,1001,20220408,1200,1649390000123,1,0",
    "0,1002,20220408,1201,1649390060456,0,0",
    "5,1001,20220409,900,1649466000000,1,1",
  ].join("\n");
  const loaded = parseInteractions(text, "log_standard_4_08_to_4_21_pure.csv");
  assertEquals(loaded.format, "kuairand-csv");
  assertEquals(tokens(loaded, "user"), ["0", "0", "5"]);
  assertEquals(tokens(loaded, "item"), ["1001", "1002", "1001"]);
  assertEquals(column(loaded, "timestamp"), [1649390000123, 1649390060456, 1649466000000]);
});

Deno.test("format detection by extension and first line; explicit format wins", () => {
  assertEquals(detectInteractionFormat("a.dat", "1::2::3::4"), "movielens-dat");
  assertEquals(detectInteractionFormat("a.txt", "1::2::3::4"), "movielens-dat");
  assertEquals(detectInteractionFormat("a", "user_id:token\titem_id:token"), "atomic-inter");
  assertEquals(detectInteractionFormat("a.csv", "user_id,video_id,time_ms"), "kuairand-csv");
  assertEquals(detectInteractionFormat("a.txt", "1 2"), undefined);
  // Two fields per line read as sequences give the same interactions.
  const loaded = parseInteractions("1 2\n1 3\n", "a.txt", { format: "user-sequences" });
  assertEquals(loaded.format, "user-sequences");
  assertEquals(tokens(loaded, "item"), ["2", "3"]);
});

Deno.test("byte-order mark and CRLF line endings are tolerated", () => {
  const loaded = parseInteractions("\ufeffuser_id:token\titem_id:token\r\nu1\ti1\r\n", "bom.inter");
  assertEquals(tokens(loaded, "user"), ["u1"]);
  assertEquals(tokens(loaded, "item"), ["i1"]);
});

function formatError(fn: () => unknown): DataFormatError {
  const error = assertThrows(fn);
  assertInstanceOf(error, DataFormatError);
  return error as DataFormatError;
}

Deno.test("bad input: a malformed ratings.dat line names file, line and text", () => {
  const e = formatError(() => parseInteractions("1::2::5::100\n\n1::3::4\n", "ratings.dat"));
  assertEquals(e.file, "ratings.dat");
  assertEquals(e.line, 3);
  assertEquals(e.text, "1::3::4");
  assertMatch(e.message, /^ratings\.dat:3: expected 4 fields .*got 3: "1::3::4"$/);
  const bad = formatError(() => parseInteractions("1::2::5::yesterday\n", "ratings.dat"));
  assertMatch(bad.message, /ratings\.dat:1: Timestamp is not a number/);
});

Deno.test("bad input: pair file with a one-field line, counted past blank lines", () => {
  const e = formatError(() =>
    parseInteractions("1 2\n\n1 3\n4\n", "pairs.txt", { format: "user-item-pairs" })
  );
  assertEquals([e.line, e.text], [4, "4"]);
  const auto = formatError(() => parseInteractions("1 2\n1 3\n\n9\n", "auto.txt"));
  assertEquals([auto.line, auto.text], [4, "9"]);
  assertMatch(auto.message, /at least one item/);
  const three = formatError(() =>
    parseInteractions("1 2 3\n", "p.txt", { format: "user-item-pairs" })
  );
  assertMatch(three.message, /p\.txt:1: expected 2 fields/);
});

Deno.test("bad input: .inter rows, header and types", () => {
  const header = "user_id:token\titem_id:token\ttimestamp:float";
  let e = formatError(() => parseInteractions(`${header}\nu\ti\t10\nu\ti\n`, "x.inter"));
  assertEquals([e.line, e.text], [3, "u\ti"]);
  assertMatch(e.message, /expected 3 tab-separated fields/);
  e = formatError(() => parseInteractions(`${header}\nu\ti\tnoon\n`, "x.inter"));
  assertMatch(e.message, /x\.inter:2: timestamp is not a number/);
  e = formatError(() => parseInteractions("user_id:token\tthing:token\nu\ti\n", "x.inter"));
  assertMatch(e.message, /x\.inter:1: the header has no item_id field/);
  e = formatError(() => parseInteractions("user_id\titem_id\nu\ti\n", "x.inter"));
  assertMatch(e.message, /has no type/);
  e = formatError(() => parseInteractions("user_id:token\titem_id:token\n", "x.inter"));
  assertMatch(e.message, /holds no interactions/);
  e = formatError(() => parseInteractions(`${header}\n\ti\t1\n`, "x.inter"));
  assertMatch(e.message, /empty user or item token/);
});

Deno.test("bad input: CSV syntax errors from @std/csv keep the line", () => {
  const text = 'user_id,video_id,time_ms\n1,2,3\n1,"2,3\n';
  const e = formatError(() => parseInteractions(text, "k.csv"));
  assertEquals(e.file, "k.csv");
  assertMatch(e.message, /not valid delimited text/);
  const missing = formatError(() => parseInteractions("user_id,video_id\n1,2\n", "k.csv"));
  assertMatch(missing.message, /no time_ms column/);
  const unknown = formatError(() => parseInteractions("a,b\n1,2\n", "other.csv"));
  assertMatch(unknown.message, /unknown CSV layout/);
});

Deno.test("bad input: empty and whitespace-only files say so", () => {
  assertMatch(
    formatError(() => parseInteractions("", "e.txt")).message,
    /^e\.txt: the file is empty$/,
  );
  assertMatch(
    formatError(() => parseInteractions("\n  \n", "e.inter")).message,
    /the file is empty/,
  );
});

Deno.test("unknown files and dataset names say what was looked for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => readInteractions(join(dir, "missing.txt")),
      Deno.errors.NotFound,
      "missing.txt",
    );
    const e = assertThrows(
      () => resolveDatasetSource("no-such-set", { datasetsDirectory: dir }),
      Deno.errors.NotFound,
    );
    assertMatch(e.message, /no-such-set\.txt/);
    assertMatch(e.message, /known datasets: ml-1m/);
    assertThrows(() => resolveDatasetSource(join(dir, "x.txt")), Deno.errors.NotFound, "x.txt");
    await Deno.writeTextFile(join(dir, "ml-1m.txt"), "1 2\n");
    const found = resolveDatasetSource("ML1M", { datasetsDirectory: dir });
    const mlPath = join(dir, "ml-1m.txt");
    assertEquals(found, { name: "ml-1m", path: mlPath, files: [mlPath] });
    const kuai = join(dir, "kuairand");
    await Deno.mkdir(kuai);
    await Deno.writeTextFile(
      join(kuai, "log_standard_4_08_to_4_21_pure.csv"),
      "user_id,video_id,time_ms\n",
    );
    assertEquals(
      resolveDatasetSource("kuairand", { datasetsDirectory: dir, kuaiRandLogs: "standard-early" })
        .name,
      "kuairand-pure",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
