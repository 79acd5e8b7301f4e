import { assertEquals } from "@std/assert";
import { noGrad, readTensors, Tensor, tidy } from "../ops/mod.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { writeSlotRows } from "../ops/sequence/selective_step.ts";
import { FeedForward } from "../models/layers.ts";
import { ParameterSet } from "../models/parameters.ts";
import { freshSeed, makeRng, randn } from "./util.ts";

Deno.test("FeedForward.inference and inferenceInto give forward's values with dropout off, bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [rows, d, inner, poolRows] = [13, 12, 48, 20];
  for (const placement of ["before-residual", "after-norm"] as const) {
    for (const layerNorm of [true, false]) {
      const what = `${placement}, LayerNorm ${layerNorm}, seed ${seed}`;
      const params = new ParameterSet(seed % 1000);
      const ffn = new FeedForward(params, "ffn", d, inner, placement, { layerNorm });
      const ctx = { p: 0.3, rng: new DropoutRng(seed), training: false };
      const x = Float32Array.from(randn(rng, rows * d));
      const pool = Float32Array.from(randn(rng, poolRows * d));
      const slots = Int32Array.from({ length: rows }, (_, i) => (i * 7) % poolRows);
      const [forward, inference, fused, separate] = await readTensors(noGrad(() =>
        tidy(() => {
          const xt = Tensor.from(x, [rows, d]), st = Tensor.from(slots);
          const a = Tensor.from(pool, [poolRows, d]), b = Tensor.from(pool, [poolRows, d]);
          ffn.inferenceInto(xt, a, st);
          writeSlotRows(b, st, ffn.forward(xt, ctx));
          return [ffn.forward(xt, ctx), ffn.inference(xt), a, b];
        })
      ));
      assertEquals([...inference], [...forward], `inference, ${what}`);
      assertEquals([...fused], [...separate], `inferenceInto, ${what}`);
    }
  }
});
