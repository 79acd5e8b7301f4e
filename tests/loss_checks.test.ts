import { assertEquals } from "@std/assert";
import { Tensor } from "../ops/core/tensor.ts";
import { LossChecks } from "../models/training/loss_checks.ts";
import { freshSeed, makeRng } from "./util.ts";

Deno.test("LossChecks: each readback is looked at one check later, and the rest at the end", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const values = Float32Array.from({ length: 7 }, () => rng());
  const losses = Tensor.from(values, [7]);
  const seen: [number, number, number[]][] = [];
  const checks = new LossChecks(losses, 2, (host, from, upTo) => {
    seen.push([from, upTo, [...host.subarray(from, upTo)]]);
  });
  for (let steps = 1; steps <= 5; steps++) {
    await checks.afterStep(steps);
    // The check after step 2 only starts its readback; the one after step 4 looks at it.
    assertEquals(seen.length, steps < 4 ? 0 : 1, `seed ${seed}: after step ${steps}`);
  }
  const host = await checks.finish(5);
  const entries = (from: number, upTo: number) => [...values.subarray(from, upTo)];
  assertEquals(seen, [[0, 2, entries(0, 2)], [2, 4, entries(2, 4)], [4, 5, entries(4, 5)]]);
  assertEquals([...host], [...values]);
  losses.dispose();
});
