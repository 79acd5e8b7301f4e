/**
 * A run's model variant: the model settings in which it differs from its model's preset for its
 * dataset (the paper's settings), as a short tag (`ffn-false`, `numLayers-2`) that a run's key
 * and record file name carry, so that two runs that differ only in model settings (an ablation's
 * rows) are told apart. The settings sized by the data or the window (`numItems`, `numUsers`,
 * `maxLength`) and the seed (the run's own) are no part of a variant.
 *
 * @module
 */
import { datasetSizes, findModel } from "../models/registry.ts";

/** The model settings a variant never holds: sized by the data or the window, or the run's seed. */
const NOT_VARIANT_KEYS: ReadonlySet<string> = new Set([
  "numItems",
  "numUsers",
  "maxLength",
  "seed",
]);

/**
 * The tag of a set of model settings: `key-value` for each setting (settings a variant never
 * holds left out), sorted by key and joined by `_`; `undefined` when none is left.
 */
export function variantTag(settings: Readonly<Record<string, unknown>>): string | undefined {
  const parts = Object.keys(settings)
    .filter((key) => !NOT_VARIANT_KEYS.has(key) && settings[key] !== undefined)
    .sort()
    .map((key) => `${key}-${JSON.stringify(settings[key]).replace(/^"|"$/g, "")}`);
  return parts.length > 0 ? parts.join("_") : undefined;
}

/**
 * The variant of a run of `model` on `dataset` built with `modelConfig` (a record's): the tag
 * ({@link variantTag}) of its settings that differ from the preset's (or the model's default
 * where the preset does not set them); `undefined` for the paper's settings, an unknown model,
 * or settings the model's configuration refuses.
 */
export function modelVariant(
  model: string,
  dataset: string,
  modelConfig: Readonly<Record<string, unknown>>,
): string | undefined {
  let expected: Record<string, unknown>;
  try {
    const entry = findModel(model);
    const preset = Object.hasOwn(entry.presets, dataset) ? entry.presets[dataset] : undefined;
    // The sizes are no part of a variant: stand-ins do.
    const sized = datasetSizes(entry, { numItems: 2, numUsers: 2 });
    expected = entry.config({ ...sized, ...preset?.model }) as unknown as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const differing = Object.fromEntries(
    Object.entries(modelConfig).filter(([key, value]) =>
      JSON.stringify(value ?? null) !== JSON.stringify(expected[key] ?? null)
    ),
  );
  return variantTag(differing);
}
