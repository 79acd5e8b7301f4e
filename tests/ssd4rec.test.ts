/**
 * SSD4Rec against the float64 reference on packed batches: loss, representations and every
 * parameter's gradient of the whole model, and the Mamba-2 block alone, whose run on segments
 * reversed in place equals each segment reversed and run alone.
 */
import { assertEquals } from "@std/assert";
import { type PackedBatch, SeededRandom } from "../data/mod.ts";
import { Mamba2Block } from "../models/mamba2_block.ts";
import { ParameterSet } from "../models/parameters.ts";
import { packedInputs } from "../models/ssd4rec.ts";
import {
  backward,
  itemCrossEntropy,
  noGrad,
  readTensors,
  reverseSegments,
  Tensor,
  tidy,
  zeroGrad,
} from "../ops/mod.ts";
import {
  packedBatch,
  perturb,
  randomHistories,
  randomTargets,
  refOptions,
  refParams,
  tinyModel,
} from "./ssd4rec_cases.ts";
import { checkParameterGradients } from "./model_gradients.ts";
import { mamba2BlockReference, ssd4recReference } from "./ssd4rec_reference.ts";
import { assertClose, freshSeed, makeRng, randn } from "./util.ts";

for (const numLayers of [1, 2]) {
  Deno.test(`ssd4rec (${numLayers} layer${numLayers > 1 ? "s" : ""}): loss, representation and every parameter's gradient match a float64 reference`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const model = tinyModel(seed, { numLayers });
    await perturb(model, rng);
    const lengths = [1, 5, 3, 2, 1];
    const batch = packedBatch(randomHistories(rng, lengths), randomTargets(rng, lengths.length));
    const B = batch.size;
    const inputs = packedInputs(batch, model.config.chunkSize);
    const { loss, h } = tidy(() => {
      const h = model.forward(inputs, true);
      const loss = itemCrossEntropy(h, model.itemTable, Tensor.from(batch.targets, [B], "i32"));
      backward(loss);
      return { loss, h };
    });
    inputs.dispose();
    const entries = model.params.entries();
    const missing = entries.filter(([, t]) => !t.grad).map(([name]) => name);
    assertEquals(missing, [], `seed ${seed}: parameters without a gradient`);
    const host = await readTensors([loss, h, ...entries.map(([, t]) => t.grad!)]);
    const ref = await refParams(model.params);
    const options = refOptions(model.config);
    const want = ssd4recReference(ref, batch, options);
    assertClose([host[0][0]], [want.loss], 1e-5, `seed ${seed}: loss`);
    assertClose(host[1], want.h, 1e-4, `seed ${seed}: last-token representation`);

    checkParameterGradients({
      seed,
      rng,
      names: entries.map(([name]) => name),
      grads: host.slice(2, 2 + entries.length),
      refData: (name) => ref.get(name)!.data,
      lossOf: () => ssd4recReference(ref, batch, options).loss,
    });
    zeroGrad(model.params.list());
  });
}

Deno.test("Mamba2Block: matches the float64 block; its reversed run is each segment run reversed alone, and equals the forward projection reversed bit for bit; read at the last tokens it gives those rows", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const params = new ParameterSet(seed % 100000);
  const config = { dModel: 8, dState: 4, headDim: 2, dConv: 4, expand: 2, groups: 1 };
  const block = new Mamba2Block(params, "m", config, new SeededRandom(seed));
  const lengths = [1, 6, 2, 5];
  const T = lengths.reduce((a, b) => a + b, 0);
  const batch = packedBatch(lengths.map((n) => Array(n).fill(1)), lengths.map(() => 1));
  const u = randn(rng, T * config.dModel);
  // Every token's output, or with `last` each segment's last token's only.
  const run = async (b: PackedBatch, values: Float64Array, last = false) => {
    const inputs = packedInputs(b, 4);
    const x = Tensor.from(Float32Array.from(values), [1, b.tokens, config.dModel]);
    const rows = last ? inputs.lastIndex : undefined;
    const [fwd, bwd] = noGrad(() =>
      tidy(
        () => [
          block.forward(x, inputs, rows),
          block.forward(reverseSegments(x, inputs.reversal), inputs, rows),
        ],
      )
    );
    const host = await readTensors([fwd, bwd]);
    for (const t of [x, fwd, bwd]) t.dispose();
    inputs.dispose();
    return host.map((h) => Float64Array.from(h));
  };
  const [fwd, bwd] = await run(batch, u);
  const ref = await refParams(params);
  assertClose(fwd, mamba2BlockReference(ref, "m", u, batch.seqIdx), 1e-4, `seed ${seed}: block`);
  const d = config.dModel;
  // The reversed direction from the forward one's projection, rows reversed, equals the block on
  // the reversed input bit for bit, at every token and at the last tokens.
  for (const last of [false, true]) {
    const inputs = packedInputs(batch, 4);
    const x = Tensor.from(Float32Array.from(u), [1, T, config.dModel]);
    const rows = last ? inputs.lastIndex : undefined;
    const pair = noGrad(() =>
      tidy(() => [
        block.mix(block.projectBothWays(x, inputs.reversal, rows)[1], inputs, rows),
        block.forward(reverseSegments(x, inputs.reversal), inputs, rows),
      ])
    );
    const [shared, own] = await readTensors(pair);
    for (const t of [x, ...pair]) t.dispose();
    inputs.dispose();
    assertEquals(
      shared,
      own,
      `seed ${seed}: the reversed projection${last ? " at the last tokens" : ""}`,
    );
  }
  // Read at the last tokens (the last layer's path), both directions give those rows alone.
  const [fwdLast, bwdLast] = await run(batch, u, true);
  batch.lastIndex.forEach((t, k) => {
    for (const [got, all, what] of [[fwdLast, fwd, "block"], [bwdLast, bwd, "reversed"]] as const) {
      assertClose(
        got.subarray(k * d, (k + 1) * d),
        all.subarray(t * d, (t + 1) * d),
        1e-5,
        `seed ${seed}: ${what} read at segment ${k}'s last token`,
      );
    }
  });
  let start = 0;
  for (const n of lengths) {
    // The segment reversed, run as a batch of its own.
    const alone = new Float64Array(n * d);
    for (let k = 0; k < n; k++) {
      alone.set(u.subarray((start + n - 1 - k) * d, (start + n - k) * d), k * d);
    }
    const [own] = await run(packedBatch([Array(n).fill(1)], [1]), alone);
    assertClose(
      bwd.subarray(start * d, (start + n) * d),
      own,
      1e-5,
      `seed ${seed}: segment of length ${n} at ${start}, reversed in place vs alone`,
    );
    if (n === 1) {
      assertClose(
        bwd.subarray(start * d, (start + 1) * d),
        fwd.subarray(start * d, (start + 1) * d),
        1e-6,
        `seed ${seed}: one-token segment`,
      );
    }
    start += n;
  }
});
