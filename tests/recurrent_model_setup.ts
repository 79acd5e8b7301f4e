/**
 * Setup shared by the GRU-based models' tests (GRU4Rec, NARM): the check of loss,
 * representation and every gradient against a float64 reference at one and two GRU layers, and
 * a small model with right-padded windows for the padding checks.
 *
 * @module
 */
import { createModel, type ModelTypes } from "../models/registry.ts";
import type { RefBatch, RefParams } from "./mamba4rec_reference.ts";
import { checkPaddedModel, randomPaddedBatch } from "./model_gradients.ts";
import { freshSeed, makeRng, paddedItems } from "./util.ts";

/** The registry names of the GRU-based models. */
export type RecurrentModelName = "gru4rec" | "narm";

/** A model's float64 reference: its loss and last-position representation for a batch. */
export type RecurrentReference = (
  params: RefParams,
  batch: RefBatch,
  numLayers: number,
) => { loss: number; h: Float64Array };

/**
 * Registers one test per GRU depth (1 and 2 layers) checking `name`'s loss, representation and
 * every parameter's gradient against `reference`, dropout switched off by `noDropout` (the
 * model's own dropout keys).
 */
export function defineReferenceTests(
  name: RecurrentModelName,
  noDropout: Record<string, unknown>,
  reference: RecurrentReference,
): void {
  for (const numLayers of [1, 2]) {
    Deno.test(`${name} (${numLayers} layer${numLayers > 1 ? "s" : ""}): loss, representation and every parameter's gradient match a float64 reference`, async () => {
      const seed = freshSeed();
      const rng = makeRng(seed);
      const numItems = 13, L = 5;
      const model = createModel(name, numItems, {
        embeddingSize: 6,
        hiddenSize: 5,
        numLayers,
        ...noDropout,
        seed: seed % 100000,
      });
      const batch = randomPaddedBatch(rng, L, numItems);

      await checkPaddedModel({
        seed,
        rng,
        model,
        batch,
        reference: (params, b) => reference(params, b, numLayers),
      });
    });
  }
}

/** A small model and a batch of right-padded windows, from {@link paddedSetup}. */
export interface PaddedSetup<N extends RecurrentModelName> {
  /** The seed of `rng` and of the model's weights (printed on failure). */
  readonly seed: number;
  /** The test's random stream, after drawing `lengths` and `items`. */
  readonly rng: () => number;
  /** Items in the model, PAD included. */
  readonly numItems: number;
  /** Embedding size. */
  readonly E: number;
  /** Windows in the batch. */
  readonly B: number;
  /** Window length. */
  readonly L: number;
  /** The model (embedding size `E`, hidden size 7). */
  readonly model: ModelTypes[N];
  /** Real items per window: one full, one of 2, one random in `1 … L − 1`. */
  readonly lengths: Int32Array;
  /** `[B, L]` random items, right-padded with 0 past each window's length. */
  readonly items: Int32Array;
}

/** A fresh seed, a small `name` model seeded by it, and 3 right-padded windows of length 6. */
export function paddedSetup<N extends RecurrentModelName>(name: N): PaddedSetup<N> {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const numItems = 17, E = 8, B = 3, L = 6;
  const model = createModel(name, numItems, {
    embeddingSize: E,
    hiddenSize: 7,
    seed: seed % 100000,
  });
  const lengths = Int32Array.of(L, 2, 1 + Math.floor(rng() * (L - 1)));
  const items = paddedItems(rng, lengths, L, numItems);
  return { seed, rng, numItems, E, B, L, model, lengths, items };
}
