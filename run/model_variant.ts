/**
 * A run's variant: the model settings, and the training settings of
 * {@link VARIANT_TRAIN_KEYS}, in which it differs from its model's preset for its dataset (the
 * paper's settings), as a short tag (`ffn-false`, `numLayers-2`, `trainingMode-all-positions`)
 * that a run's key and record file name carry, so that two runs that differ only in those
 * settings (an ablation's or a sweep's rows) are told apart. The model settings sized by the data
 * or the window (`numItems`, `numUsers`, `maxLength`) and the seed (the run's own) are no part of
 * a variant.
 *
 * @module
 */
import { trainConfig } from "../models/config.ts";
import { datasetSizes, findModel } from "../models/registry.ts";

/**
 * The training settings that make a variant of their own, with the `deno task train` option that
 * sets each: the training objective and its step size in targets, the packed models' masking and
 * padding, and the window length (as a training setting, `--max-len`).
 */
export const VARIANT_TRAIN_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  trainingMode: "--training-mode",
  targetsPerStep: "--targets-per-step",
  maskRatio: "--mask-ratio",
  varLen: "--var-len",
  padTo: "--pad-to",
  maxLength: "--max-len",
});

/** The training settings that make a variant of their own ({@link VARIANT_TRAIN_OPTIONS}). */
export const VARIANT_TRAIN_KEYS: readonly string[] = Object.freeze(
  Object.keys(VARIANT_TRAIN_OPTIONS),
);

/** The model settings a variant never holds: sized by the data or the window, or the run's seed. */
const NOT_VARIANT_KEYS: ReadonlySet<string> = new Set([
  "numItems",
  "numUsers",
  "maxLength",
  "seed",
]);

/**
 * The tag of a set of model settings and training settings: `key-value` for each setting (model
 * settings a variant never holds and training settings outside {@link VARIANT_TRAIN_KEYS} left
 * out), sorted by key and joined by `_`; `undefined` when none is left.
 */
export function variantTag(
  settings: Readonly<Record<string, unknown>>,
  train: Readonly<Record<string, unknown>> = {},
): string | undefined {
  const entries = [
    ...Object.entries(settings).filter(([key]) => !NOT_VARIANT_KEYS.has(key)),
    ...Object.entries(train).filter(([key]) => VARIANT_TRAIN_KEYS.includes(key)),
  ].filter(([, value]) => value !== undefined);
  const parts = entries
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}-${JSON.stringify(value).replace(/^"|"$/g, "")}`);
  return parts.length > 0 ? parts.join("_") : undefined;
}

/**
 * The training settings of {@link VARIANT_TRAIN_KEYS} in which `trainSettings` (a record's) differ
 * from those the preset of `model` on `dataset` gives (settings a record does not hold count as
 * the preset's); empty for an unknown model or settings the configuration refuses.
 */
export function variantTrainSettings(
  model: string,
  dataset: string,
  trainSettings: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  let expected: Record<string, unknown>;
  try {
    const entry = findModel(model);
    const preset = Object.hasOwn(entry.presets, dataset) ? entry.presets[dataset] : undefined;
    expected = trainConfig({ ...entry.trainDefaults, ...preset?.train }) as unknown as Record<
      string,
      unknown
    >;
  } catch {
    return {};
  }
  return Object.fromEntries(
    VARIANT_TRAIN_KEYS.filter((key) =>
      trainSettings[key] !== undefined &&
      JSON.stringify(trainSettings[key]) !== JSON.stringify(expected[key] ?? null)
    ).map((key) => [key, trainSettings[key]]),
  );
}

/**
 * The variant of a run of `model` on `dataset` built with `modelConfig` and trained with
 * `trainSettings` (a record's): the tag ({@link variantTag}) of its model settings that differ
 * from the preset's (or the model's default where the preset does not set them) and of its
 * {@link variantTrainSettings}; `undefined` for the paper's settings. An unknown model or model
 * settings the configuration refuses give the training settings' tag alone.
 */
export function modelVariant(
  model: string,
  dataset: string,
  modelConfig: Readonly<Record<string, unknown>>,
  trainSettings: Readonly<Record<string, unknown>> = {},
): string | undefined {
  const train = variantTrainSettings(model, dataset, trainSettings);
  let expected: Record<string, unknown>;
  try {
    const entry = findModel(model);
    const preset = Object.hasOwn(entry.presets, dataset) ? entry.presets[dataset] : undefined;
    // The sizes are no part of a variant: stand-ins do.
    const sized = datasetSizes(entry, { numItems: 2, numUsers: 2 });
    expected = entry.config({ ...sized, ...preset?.model }) as unknown as Record<string, unknown>;
  } catch {
    return variantTag({}, train);
  }
  const differing = Object.fromEntries(
    Object.entries(modelConfig).filter(([key, value]) =>
      JSON.stringify(value ?? null) !== JSON.stringify(expected[key] ?? null)
    ),
  );
  return variantTag(differing, train);
}
