import { assert, assertEquals, assertThrows } from "@std/assert";
import { initGpu, noGrad, tidy } from "../ops/mod.ts";
import { ConfigError } from "../models/config.ts";
import { layoutOf, type PaddedModel } from "../models/model.ts";
import { datasetSizes, MODELS } from "../models/registry.ts";
import { uploadSequences } from "../models/training/layouts.ts";

await initGpu();

/** The dataset sizes the models are built for. */
const SIZES = { numItems: 11, numUsers: 5 };
/** The model window of models whose tables are sized by it (BERT4Rec masks one item of 6). */
const MAX_LENGTH = 6;

/** A model built by `entry` with its defaults, and a window of `MAX_LENGTH` where it has one. */
function build(name: string) {
  const entry = MODELS[name];
  const sizes = datasetSizes(entry, SIZES);
  const defaults = entry.config(sizes) as { maxLength?: number };
  const overrides = defaults.maxLength === undefined ? {} : { maxLength: MAX_LENGTH };
  return { entry, model: entry.create(entry.config({ ...sizes, ...overrides })) };
}

Deno.test("registry: each entry's lastItemOnly and ownTrainingLoss say what the model it builds does", () => {
  for (const name of Object.keys(MODELS)) {
    const { entry, model } = build(name);
    assertEquals(layoutOf(model), entry.layout, name);
    const padded = model as Partial<PaddedModel>;
    assertEquals(padded.lastItemOnly === true, entry.lastItemOnly === true, `${name} lastItemOnly`);
    assertEquals(
      typeof padded.trainingLoss === "function",
      entry.ownTrainingLoss === true,
      `${name} trainingLoss against the entry's ownTrainingLoss`,
    );
    assert(entry.exactWindow !== true || entry.layout === "padded", `${name} exactWindow`);
  }
});

Deno.test("registry: a padded model refuses a window shorter than its maxLength exactly when its entry says exactWindow", () => {
  for (const name of Object.keys(MODELS)) {
    const { entry, model } = build(name);
    if (entry.layout !== "padded") continue;
    const L = MAX_LENGTH - 1;
    const forward = () =>
      tidy(() =>
        noGrad(() => {
          const items = Int32Array.from({ length: L }, (_, t) => (t < 2 ? 3 - t : 0));
          const inputs = uploadSequences(items, Int32Array.of(2), 1, L, Int32Array.of(2));
          return (model as PaddedModel).forward(inputs, false).shape;
        })
      );
    if (entry.exactWindow) {
      const refused = assertThrows(forward, ConfigError, `maxLength ${MAX_LENGTH}`);
      assertEquals(refused.key, "maxLength", name);
    } else {
      assertEquals(forward().length, 2, `${name} gives one representation per window`);
    }
  }
});
