/**
 * `deno task train --model ssd4rec`: the packed-batch settings reach the run and its checkpoint,
 * every epoch of `--json` has its efficiency figures, and resuming with another ρ, var-len or
 * `--pad-to` is refused by flag.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { assertOneErrorLine, cli, pairs } from "./train_cli_util.ts";

Deno.test("train --model ssd4rec: --mask-ratio, --var-len false and --max-len reach the run; resuming refuses others", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "tiny.txt");
    await Deno.writeTextFile(data, pairs());
    const cache = join(dir, "cache"), ckpt = join(dir, "ckpt");
    const base = ["--model", "ssd4rec", "--dataset", data, "--max-users", "20", "--layers", "1"];
    const packed = ["--mask-ratio", "0.2", "--var-len", "false", "--max-len", "50"];
    const common = [...base, "--epochs", "2", "--checkpoint-dir", ckpt];
    const first = await cli(cache, ...common, ...packed, "--epochs-this-run", "1", "--json");
    assertEquals(first.code, 0, first.stderr);
    const out = JSON.parse(first.stdout);
    assertEquals([out.model, out.complete, out.history.length], ["ssd4rec", false, 1]);
    const { peakLiveBytes, tokens, tokensPerSecond } = out.history[0];
    assert(peakLiveBytes > 0 && tokens > 0 && tokensPerSecond > 0, JSON.stringify(out.history));
    const { maskRatio, varLen, maxLength, batchSize, evalBatchSize, topk } = out.config;
    assertEquals(
      { maskRatio, varLen, maxLength, batchSize, evalBatchSize, topk },
      {
        maskRatio: 0.2,
        varLen: false,
        maxLength: 50,
        batchSize: 1024,
        evalBatchSize: 2048,
        topk: [10, 20],
      },
    );
    const resumed = (...args: string[]) => cli(cache, ...common, "--continue", ...args);
    const otherRatio = await resumed(
      "--mask-ratio",
      "0.3",
      "--var-len",
      "false",
      "--max-len",
      "50",
    );
    assertEquals(otherRatio.code, 2, otherRatio.stderr);
    assertOneErrorLine(
      otherRatio.stderr,
      /train\.maskRatio \(--mask-ratio\) is 0\.2 there, 0\.3 now/,
    );
    // Leaving --var-len out means whole histories: not the checkpoint's.
    const whole = await resumed("--mask-ratio", "0.2", "--max-len", "50");
    assertEquals(whole.code, 2, whole.stderr);
    assertOneErrorLine(whole.stderr, /train\.varLen \(--var-len\) is false there, true now/);
    // Padded windows train another thing: a resume with --pad-to is refused.
    const padded = await resumed(
      "--mask-ratio",
      "0.2",
      "--var-len",
      "false",
      "--max-len",
      "50",
      "--pad-to",
      "50",
    );
    assertEquals(padded.code, 2, padded.stderr);
    assertOneErrorLine(padded.stderr, /train\.padTo \(--pad-to\) is .* there, 50 now/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
