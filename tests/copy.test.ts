import { assertEquals, assertThrows } from "@std/assert";
import { readTensors, Tensor } from "../ops/mod.ts";
import { type CopyConfig, copyTensor, DEFAULT_COPY_CONFIG } from "../ops/pointwise/copy.ts";
import { freshSeed, makeRng, randint, randn } from "./util.ts";

const CONFIGS: CopyConfig[] = [
  DEFAULT_COPY_CONFIG,
  { workgroup: 64, vec4PerThread: 1 },
  { workgroup: 128, vec4PerThread: 8 },
];

Deno.test("copyTensor: exact copies of awkward sizes in f32 and i32, source untouched", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const config of CONFIGS) {
    for (const n of [1, 3, 5, 1023, 1_000_003]) {
      const values = Float32Array.from(randn(rng, n, 100));
      const ids = Int32Array.from(randint(rng, n, 2 ** 31), (v, i) => (i % 2 ? -v : v));
      const src = Tensor.from(values, [n]);
      const srcIds = Tensor.from(ids, [n]);
      const copy = copyTensor(src, config), copyIds = copyTensor(srcIds, config);
      const [got, gotIds, after] = await readTensors([copy, copyIds, src]);
      const what = `n = ${n}, ${JSON.stringify(config)}, seed ${seed}`;
      assertEquals(copy.shape, [n]);
      assertEquals(copyIds.dtype, "i32");
      assertEquals(got, values, `f32 copy ${what}`);
      assertEquals(gotIds, ids, `i32 copy ${what}`);
      assertEquals(after, values, `source changed ${what}`);
      for (const t of [src, srcIds, copy, copyIds]) t.dispose();
    }
  }
});

Deno.test("copyTensor: keeps the shape, copies empty tensors, rejects bad configurations", async () => {
  const src = Tensor.from(Float32Array.from([1.5, -2, 3, 4, 5, 6.25]), [2, 1, 3]);
  const copy = copyTensor(src);
  assertEquals(copy.shape, [2, 1, 3]);
  assertEquals([...(await copy.toArray())], [1.5, -2, 3, 4, 5, 6.25]);
  assertEquals(copyTensor(Tensor.empty([0, 4])).size, 0);
  assertThrows(
    () => copyTensor(src, { workgroup: 0, vec4PerThread: 2 }),
    RangeError,
    "copyTensor: invalid configuration",
  );
});
