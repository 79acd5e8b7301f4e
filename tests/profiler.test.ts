import { assert, assertEquals } from "@std/assert";
import { runtime, startProfile, stopProfile, sync } from "../ops/core/runtime.ts";
import { Tensor, tidy } from "../ops/core/tensor.ts";
import { scale } from "../ops/pointwise/elementwise.ts";
import "./util.ts";

// A profile over several submissions whose dispatch counts are not multiples of 16 (the
// resolve buffer's 256-byte alignment): every dispatch is still timed.
Deno.test("profile: dispatches over several submissions of odd sizes are all recorded", async () => {
  if (!runtime().info.timestamps) {
    console.log(`skipped: ${runtime().info.description} has no timestamp queries`);
    return;
  }
  startProfile();
  const counts = [5, 19, 1, 33];
  for (const count of counts) {
    tidy(() => {
      let x = Tensor.from(new Float32Array(64).fill(1), [64]);
      for (let i = 0; i < count; i++) x = scale(x, 1.5);
    });
    await sync();
  }
  const dispatches = await stopProfile();
  const total = counts.reduce((a, b) => a + b, 0);
  assertEquals(dispatches.filter((d) => d.kernel.startsWith("scale")).length, total);
  assert(dispatches.every((d) => Number.isFinite(d.ms) && d.ms >= 0), "every duration is a time");
});
