import { assertEquals, assertThrows } from "@std/assert";
import { concatColumns, padMask } from "../ops/mod.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { freshSeed, gradCheck, makeRng, randint, randn } from "./util.ts";

Deno.test("concatColumns: forward and both gradients on awkward shapes", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [N, Da, Db] of [[1, 1, 1], [3, 5, 1], [17, 8, 3], [300, 2, 65]]) {
    const ref = (a: Float64Array, b: Float64Array) => {
      const out = new Float64Array(N * (Da + Db));
      for (let r = 0; r < N; r++) {
        out.set(a.subarray(r * Da, (r + 1) * Da), r * (Da + Db));
        out.set(b.subarray(r * Db, (r + 1) * Db), r * (Da + Db) + Da);
      }
      return out;
    };
    await gradCheck({
      what: `concatColumns [${N}, ${Da}] | [${N}, ${Db}] seed ${seed}`,
      inputs: [
        { data: randn(rng, N * Da), shape: [N, Da] },
        { data: randn(rng, N * Db), shape: [N, Db] },
      ],
      gpu: ([a, b]) => concatColumns(a, b),
      ref: ([a, b]) => ref(a, b),
      refGrad: (_x, g) => {
        const da = new Float64Array(N * Da), db = new Float64Array(N * Db);
        for (let r = 0; r < N; r++) {
          da.set(g.subarray(r * (Da + Db), r * (Da + Db) + Da), r * Da);
          db.set(g.subarray(r * (Da + Db) + Da, (r + 1) * (Da + Db)), r * Db);
        }
        return [da, db];
      },
      rng,
      tol: 1e-7,
    });
  }
  tidy(() => {
    for (const [a, b] of [[[2, 3], [3, 1]], [[2, 3], [6]], [[0, 3], [0, 1]]]) {
      assertThrows(
        () => concatColumns(Tensor.from(new Float32Array(a[0] * a[1]), a), Tensor.empty(b)),
        RangeError,
      );
    }
  });
});

Deno.test("padMask: 1 exactly where an id is 0", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const ids = randint(rng, 3 * 77, 4);
  const [got] = await readTensors(tidy(() => [padMask(Tensor.from(ids, [3, 77], "i32"))]));
  assertEquals(Array.from(got), Array.from(ids, (id) => (id === 0 ? 1 : 0)), `seed ${seed}`);
});
