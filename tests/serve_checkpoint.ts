/** A tiny trained-model stand-in for the service tests: a seeded Mamba4Rec saved as a checkpoint. */
import { Mamba4Rec, mamba4recConfig } from "../models/mamba4rec.ts";
import { writeCheckpoint } from "../models/training/checkpoint.ts";

/** Writes a tiny Mamba4Rec of `numItems` items (seeded) as a trainer-style checkpoint. */
export async function tinyCheckpoint(
  path: string,
  numItems: number,
  seed: number,
): Promise<Mamba4Rec> {
  const model = new Mamba4Rec(mamba4recConfig({
    numItems,
    hiddenSize: 8,
    dState: 4,
    dConv: 4,
    expand: 2,
    numLayers: 2,
    dropoutProb: 0,
    seed,
  }));
  await writeCheckpoint(
    path,
    model.params.entries().map(([n, t]) => [`model.${n}`, t]),
    { model: model.name, modelConfig: JSON.stringify(model.config) },
  );
  return model;
}
