import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../models/config.ts";
import { mamba4recConfig } from "../models/mamba4rec.ts";
import { createModel } from "../models/registry.ts";
import { mamba4recReference, type RefBatch } from "./mamba4rec_reference.ts";
import { checkPaddedModel } from "./model_gradients.ts";
import { freshSeed, makeRng, paddedItems } from "./util.ts";

/** A model setting of the ablation variants, with the layers it is checked with. */
interface Variant {
  readonly label: string;
  readonly numLayers: number;
  readonly options: { ffn?: boolean; layerNorm?: boolean; positionEmbedding?: boolean };
}

const L = 5;

const VARIANTS: readonly Variant[] = [
  { label: "1 layer", numLayers: 1, options: {} },
  { label: "2 layers", numLayers: 2, options: {} },
  { label: "3 layers", numLayers: 3, options: {} },
  { label: "without FFN, 1 layer", numLayers: 1, options: { ffn: false } },
  { label: "without FFN, 2 layers", numLayers: 2, options: { ffn: false } },
  { label: "without LayerNorm, 2 layers", numLayers: 2, options: { layerNorm: false } },
  { label: "with position embedding", numLayers: 1, options: { positionEmbedding: true } },
];

for (const { label, numLayers, options } of VARIANTS) {
  Deno.test(`mamba4rec (${label}): loss, representation and every parameter's gradient match a float64 reference`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const numItems = 13, B = 3;
    const model = createModel("mamba4rec", numItems, {
      hiddenSize: 8,
      dState: 5,
      expand: 2,
      dConv: 4,
      numLayers,
      dropoutProb: 0,
      seed: seed % 100000,
      ...options,
      ...(options.positionEmbedding ? { maxLength: L + 2 } : {}),
    });
    const lengths = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * L));
    const items = paddedItems(rng, lengths, L, numItems);
    const targets = Int32Array.from({ length: B }, () => 1 + Math.floor(rng() * (numItems - 1)));
    const batch: RefBatch = { items, lengths, targets, size: B, maxLength: L };

    await checkPaddedModel({
      seed,
      rng,
      model,
      batch,
      reference: (params, b) => mamba4recReference(params, b, numLayers, options),
    });
  });
}

Deno.test("mamba4rec: the ablation options add or remove exactly their parameters; the defaults keep every name and its order", () => {
  const base = { numItems: 9, hiddenSize: 8, dState: 4, seed: 7 };
  const names = (o: Record<string, unknown>) =>
    createModel("mamba4rec", 9, { ...base, ...o }).params.entries().map(([n]) => n);
  const defaults = names({});
  assertEquals(names({ ffn: true, layerNorm: true, positionEmbedding: false }), defaults);
  assertEquals(names({ ffn: false }), defaults.filter((n) => !n.includes(".ffn.")));
  assertEquals(names({ layerNorm: false }), defaults.filter((n) => !/(^|\.)LayerNorm\./.test(n)));
  assertEquals(names({ positionEmbedding: true, maxLength: 6 }), [
    defaults[0],
    "position_embedding.weight",
    ...defaults.slice(1),
  ]);
});

Deno.test("mamba4rec config: the default model's configuration holds no ablation switch, even when given", () => {
  const plain = mamba4recConfig({ numItems: 9 });
  assertEquals(
    mamba4recConfig({ numItems: 9, ffn: true, layerNorm: true, positionEmbedding: false }),
    plain,
  );
  assertEquals(
    Object.keys(plain).filter((k) => ["ffn", "layerNorm", "positionEmbedding"].includes(k)),
    [],
  );
  assertEquals(mamba4recConfig({ numItems: 9, ffn: false }).ffn, false);
});

Deno.test("mamba4rec config: a bad ablation setting fails naming its key", () => {
  const bad: [Record<string, unknown>, string][] = [
    [{ ffn: "no" }, "ffn"],
    [{ layerNorm: 0 }, "layerNorm"],
    [{ positionEmbedding: 1 }, "positionEmbedding"],
    [{ positionEmbedding: true }, "maxLength"],
    [{ maxLength: 50 }, "maxLength"],
    [{ positionEmbedding: true, maxLength: 0 }, "maxLength"],
  ];
  for (const [overrides, key] of bad) {
    const error = assertThrows(() => mamba4recConfig({ numItems: 9, ...overrides }), ConfigError);
    assertEquals((error as ConfigError).key, key, JSON.stringify(overrides));
  }
});
