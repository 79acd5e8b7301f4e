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

Deno.test("LossChecks: an epoch ending at a check reads its losses back once", async () => {
  const values = Float32Array.of(0.5, 1.5, 2.5, 3.5);
  const losses = Tensor.from(values, [4]);
  const seen: [number, number][] = [];
  const checks = new LossChecks(losses, 2, (_, from, upTo) => void seen.push([from, upTo]));
  let reads = 0;
  const toArray = losses.toArray.bind(losses);
  losses.toArray = () => (reads++, toArray());
  for (let steps = 1; steps <= 4; steps++) await checks.afterStep(steps);
  const host = await checks.finish(4);
  // Two readbacks (after steps 2 and 4), the second also the epoch's: no empty third look.
  assertEquals([reads, seen], [2, [[0, 2], [2, 4]]]);
  assertEquals([...host], [...values]);
  losses.dispose();
});
