import { gatherPositions } from "../ops/pointwise/gather.ts";
import { Tensor } from "../ops/core/tensor.ts";
import { freshSeed, gradCheck, makeRng, randn } from "./util.ts";

Deno.test("gatherPositions: forward and gradient on awkward shapes", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [B, L, D] of [[1, 1, 1], [3, 7, 5], [17, 1, 64], [5, 200, 3]]) {
    const pos = Int32Array.from({ length: B }, () => Math.floor(rng() * L));
    const ref = (x: Float64Array) => {
      const out = new Float64Array(B * D);
      for (let b = 0; b < B; b++) {
        for (let d = 0; d < D; d++) out[b * D + d] = x[(b * L + pos[b]) * D + d];
      }
      return out;
    };
    await gradCheck({
      what: `gatherPositions [${B}, ${L}, ${D}] seed ${seed}`,
      inputs: [{ data: randn(rng, B * L * D), shape: [B, L, D] }],
      gpu: ([x]) => gatherPositions(x, Tensor.from(pos)),
      ref: ([x]) => ref(x),
      refGrad: (_x, g) => {
        const dx = new Float64Array(B * L * D);
        for (let b = 0; b < B; b++) {
          for (let d = 0; d < D; d++) dx[(b * L + pos[b]) * D + d] = g[b * D + d];
        }
        return [dx];
      },
      rng,
    });
  }
});
