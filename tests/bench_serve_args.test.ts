import { assertEquals, assertThrows } from "@std/assert";
import { describeStepTuning, stepTuningsOf, tailTuningsOf, usersOf } from "../bench/serve.ts";

Deno.test("serve benchmark: --state-batch, --prefetch-states, --streams and --weight-loads name the tunings timed", () => {
  assertEquals(stepTuningsOf([]), [{}]);
  assertEquals(stepTuningsOf(["--quick", "--state-batch", "2,4"]), [
    { stateBatch: 2 },
    { stateBatch: 4 },
  ]);
  assertEquals(stepTuningsOf(["--prefetch-states", "32", "--state-batch", "8"]), [
    { stateBatch: 8 },
    { stateBatch: 8, prefetchStates: 32 },
  ]);
  assertEquals(stepTuningsOf(["--prefetch-states", "8,32"]), [
    {},
    { prefetchStates: 8 },
    { prefetchStates: 32 },
  ]);
  for (const bad of [["--state-batch"], ["--state-batch", "0"], ["--state-batch", "2,x"]]) {
    assertThrows(() => stepTuningsOf(bad), RangeError, "--state-batch");
  }
  assertThrows(() => stepTuningsOf(["--prefetch-states", "0"]), RangeError, "--prefetch-states");
  assertEquals(describeStepTuning({}), "default step");
  assertEquals(
    describeStepTuning({ stateBatch: 4, prefetchStates: 8 }),
    "stateBatch 4, prefetch 8",
  );
  assertEquals(stepTuningsOf(["--streams", "1,4", "--prefetch-states", "8"]), [
    { streamsPerWorkgroup: 1 },
    { streamsPerWorkgroup: 4 },
    { prefetchStates: 8, streamsPerWorkgroup: 1 },
    { prefetchStates: 8, streamsPerWorkgroup: 4 },
  ]);
  assertThrows(() => stepTuningsOf(["--streams", "2,0"]), RangeError, "--streams");
  assertEquals(stepTuningsOf(["--weight-loads", "8,32", "--streams", "2"]), [
    { streamsPerWorkgroup: 2, weightLoads: 8 },
    { streamsPerWorkgroup: 2, weightLoads: 32 },
  ]);
  assertThrows(() => stepTuningsOf(["--weight-loads", "x"]), RangeError, "--weight-loads");
  assertEquals(describeStepTuning({ weightLoads: 16 }), "16 weight loads");
  assertEquals(tailTuningsOf([]), [{}]);
  assertEquals(tailTuningsOf(["--tail-rows", "1,4"]), [
    { rowsPerInvocation: 1 },
    { rowsPerInvocation: 4 },
  ]);
  assertThrows(() => tailTuningsOf(["--tail-rows", "0"]), RangeError, "--tail-rows");
  assertEquals(
    describeStepTuning({ stateBatch: 8, streamsPerWorkgroup: 2 }),
    "stateBatch 8, 2 streams/workgroup",
  );
});

Deno.test("serve benchmark: --users sets the users of both rows", () => {
  assertEquals(usersOf([]), undefined);
  assertEquals(usersOf(["--quick", "--users", "50000"]), 50000);
  for (const bad of [["--users"], ["--users", "0"], ["--users", "1.5"]]) {
    assertThrows(() => usersOf(bad), RangeError, "--users");
  }
});
