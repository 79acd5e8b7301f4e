import { assertEquals, assertThrows } from "@std/assert";
import { describeStepTuning, stepTuningsOf } from "../bench/serve.ts";

Deno.test("serve benchmark: --state-batch and --prefetch-state name the tunings timed", () => {
  assertEquals(stepTuningsOf([]), [{}]);
  assertEquals(stepTuningsOf(["--quick", "--state-batch", "2,4"]), [
    { stateBatch: 2 },
    { stateBatch: 4 },
  ]);
  assertEquals(stepTuningsOf(["--prefetch-state", "--state-batch", "8"]), [
    { stateBatch: 8 },
    { stateBatch: 8, prefetchState: true },
  ]);
  assertEquals(stepTuningsOf(["--prefetch-state"]), [{}, { prefetchState: true }]);
  for (const bad of [["--state-batch"], ["--state-batch", "0"], ["--state-batch", "2,x"]]) {
    assertThrows(() => stepTuningsOf(bad), RangeError, "--state-batch");
  }
  assertEquals(describeStepTuning({}), "default step");
  assertEquals(
    describeStepTuning({ stateBatch: 4, prefetchState: true }),
    "stateBatch 4, prefetch",
  );
});
