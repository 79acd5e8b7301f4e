import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { MODEL_NAMES } from "../models/mod.ts";
import { assertOneErrorLine, cli, pairs } from "./train_cli_util.ts";

Deno.test("train: usage, setting and path errors print one line and stop before any GPU or data work", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, pairs());
    const cache = join(dir, "cache");
    const run = (...args: string[]) => cli(cache, "--dataset", data, ...args);
    const cases: [string[], number, RegExp][] = [
      [["--lr-rate", "0.1"], 2, /lr-rate.*see --help/],
      [
        ["--batch-size", "0"],
        2,
        /^error: --batch-size: .*'batchSize' must be a positive integer, got 0/,
      ],
      [
        ["--max-len", "-5"],
        2,
        /^error: --max-len: .*'maxLength' must be a positive integer, got -5/,
      ],
      [["--epochs", "many"], 2, /--epochs: expected a number, got 'many'/],
      [
        ["--targets-per-step", "2048"],
        2,
        /^error: --targets-per-step: .*'targetsPerStep' is 2048, but 'trainingMode' is "prefix"/,
      ],
      [
        ["--model", "sasrec9"],
        2,
        new RegExp(
          `^error: --model: unknown model 'sasrec9' \\(known: ${MODEL_NAMES.join(", ")}\\)`,
        ),
      ],
      [
        ["--model", "ssd4rec", "--mask-ratio", "1.5"],
        2,
        /^error: --mask-ratio: .*'maskRatio' must be a probability in \[0, 1\), got 1\.5/,
      ],
      [
        ["--model", "ssd4rec", "--mask-ratio", "-0.1"],
        2,
        /^error: --mask-ratio: .*'maskRatio' must be a probability in \[0, 1\), got -0\.1/,
      ],
      [
        ["--model", "ssd4rec", "--var-len", "maybe"],
        2,
        /--var-len: expected true or false, got 'maybe'/,
      ],
      [
        ["--mask-ratio", "0.2"],
        2,
        /^error: --mask-ratio: .*'maskRatio' is 0\.2, but mamba4rec takes padded batches/,
      ],
      [
        ["--pad-to", "50"],
        2,
        /^error: --pad-to: .*'padTo' is 50, but mamba4rec takes padded batches.*padded to maxLength already/,
      ],
      [
        ["--model", "ssd4rec", "--pad-to", "0"],
        2,
        /^error: --pad-to: .*'padTo' must be a positive integer, got 0/,
      ],
      [
        ["--var-len", "false"],
        2,
        /^error: --var-len: .*'varLen' is false, but mamba4rec takes padded batches/,
      ],
      [
        ["--model", "ssd4rec", "--training-mode", "all-positions"],
        2,
        /^error: --training-mode: .*"all-positions", but ssd4rec takes packed batches/,
      ],
      [["--max-users", "0"], 2, /^error: --max-users: 'maxUsers' must be a positive integer/],
      [["--continue"], 2, /continuing needs a checkpoint directory/],
      [["--format", "xml"], 2, /--format: unknown format "xml"; one of /],
      [
        ["--checkpoint-dir", data],
        1,
        /\(--checkpoint-dir\) .*tiny\.txt: exists and is not a directory/,
      ],
      [["--record", dir], 1, /\(--record\) .*: is a directory; name a file/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = await run(...args);
      assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assertOneErrorLine(r.stderr, pattern);
      // Nothing was set up: no summary line (GPU, data, model) was printed.
      assertEquals(r.stdout, "", args.join(" "));
    }
    const missing = await cli(cache, "--epochs", "1");
    assertEquals(missing.code, 2);
    assertOneErrorLine(missing.stderr, /--dataset is required/);
    const nowhere = await cli(cache, "--dataset", join(dir, "absent.txt"));
    assertEquals(nowhere.code, 1);
    assertOneErrorLine(nowhere.stderr, /dataset file not found: .*absent\.txt/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: a data error names the file and line in one error line, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = join(dir, "bad.dat");
    await Deno.writeTextFile(bad, "1::2::3::4\n1::2::3\n");
    const r = await cli(join(dir, "cache"), "--dataset", bad);
    assertEquals(r.code, 1, r.stderr);
    assertOneErrorLine(r.stderr, /bad\.dat:2: expected 4 fields.*"1::2::3"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: a slice trains with epochs from 1; resuming refuses other settings by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, pairs());
    const cache = join(dir, "cache"), ckpt = join(dir, "ckpt");
    const base = ["--dataset", data, "--max-users", "20", "--batch-size", "32", "--max-len", "6"];
    const first = await cli(cache, ...base, "--epochs", "2", "--checkpoint-dir", ckpt, "--json");
    assertEquals(first.code, 0, first.stderr);
    const out = JSON.parse(first.stdout);
    assertEquals(out.dataset, "tiny (first 20 users)");
    assertEquals(out.history.map((h: { epoch: number }) => h.epoch), [1, 2]);
    assert([1, 2].includes(out.bestEpoch), `best epoch ${out.bestEpoch}`);
    // Fewer layers than stored: refused before the optimizer sees the checkpoint, naming layers.
    const deeper = await cli(
      cache,
      ...base,
      "--epochs",
      "2",
      "--checkpoint-dir",
      ckpt,
      "--continue",
      "--layers",
      "2",
    );
    assertEquals(deeper.code, 2, deeper.stderr);
    assertOneErrorLine(deeper.stderr, /model\.numLayers \(--layers\) is 1 there, 2 now/);
    // The epoch limit may change only when given: here it falls back to the default 300.
    const implicit = await cli(cache, ...base, "--checkpoint-dir", ckpt, "--continue");
    assertEquals(implicit.code, 2, implicit.stderr);
    assertOneErrorLine(
      implicit.stderr,
      /train\.epochs \(--epochs\) \(set it explicitly to change it\) is 2 there, 300 now/,
    );
    // A longer run, ranking 7 users at a time: the evaluation batch may change on resume.
    const longer = await cli(
      cache,
      ...base,
      "--epochs",
      "3",
      "--eval-batch-size",
      "7",
      "--checkpoint-dir",
      ckpt,
      "--continue",
    );
    assertEquals(longer.code, 0, longer.stderr);
    assertStringIncludes(longer.stdout, `continuing from ${join(ckpt, "last.safetensors")}`);
    assertMatch(longer.stdout, /^epoch {3}3 {2}loss /m);
    assertMatch(longer.stdout, /^best epoch [123]: valid /m);
    assertMatch(longer.stdout, /^3 epochs, /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
