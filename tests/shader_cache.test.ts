import { assertEquals, assertThrows } from "@std/assert";
import { cachedShader, SHADER_CACHE_ENTRIES, shaderGenerator } from "../ops/wgsl/cache.ts";

Deno.test("shaderGenerator: one generation per key, JSON of the arguments by default", () => {
  const made: string[] = [];
  const gen = shaderGenerator("test", (spec: { n: number; flag: boolean }, role: string) => {
    const src = `// ${role} ${spec.n} ${spec.flag}`;
    made.push(src);
    return src;
  });
  const a = gen({ n: 3, flag: true }, "forward");
  assertEquals(gen({ n: 3, flag: true }, "forward"), a);
  assertEquals(made.length, 1 + (checking() ? 1 : 0));
  const b = gen({ n: 3, flag: false }, "forward");
  const c = gen({ n: 3, flag: true }, "backward");
  assertEquals([b, c], ["// forward 3 false", "// backward 3 true"]);
});

Deno.test("shaderGenerator: keeps at most SHADER_CACHE_ENTRIES sources, dropping the oldest", () => {
  let calls = 0;
  const gen = shaderGenerator("test", (n: number) => {
    calls++;
    return `// ${n}`;
  });
  for (let n = 0; n <= SHADER_CACHE_ENTRIES; n++) gen(n); // one more than fits: 0 is dropped
  const before = calls;
  assertEquals(gen(SHADER_CACHE_ENTRIES), `// ${SHADER_CACHE_ENTRIES}`);
  assertEquals(calls - before, checking() ? 1 : 0); // still cached
  assertEquals(gen(0), "// 0");
  assertEquals(calls - before, checking() ? 2 : 1); // made again
});

Deno.test("shaderGenerator: a key that leaves out what the source reads is caught when checking", () => {
  const gen = shaderGenerator("test", (n: number) => `// ${n}`, () => "one key for all");
  gen(1);
  if (checking()) {
    assertThrows(() => gen(2), Error, "differs from a fresh generation");
  } else {
    assertEquals(gen(2), "// 1"); // the cost of a bad key without the check
  }
});

Deno.test("cachedShader: the source of a key is made once", () => {
  let calls = 0;
  const make = () => {
    calls++;
    return "// shared";
  };
  const key = `cache test ${crypto.randomUUID()}`;
  assertEquals(cachedShader(key, make), "// shared");
  assertEquals(cachedShader(key, make), "// shared");
  assertEquals(calls, checking() ? 2 : 1);
});

/** Whether this process checks cache hits (the test task sets SSMREC_CHECK_SHADER_CACHE=1). */
function checking(): boolean {
  return Deno.env.get("SSMREC_CHECK_SHADER_CACHE") === "1";
}
