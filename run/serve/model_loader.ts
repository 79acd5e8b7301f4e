/**
 * Rebuilds a trained Mamba4Rec from a trainer checkpoint (`model.`-prefixed weights, the model's
 * name and configuration in the metadata) for serving; checkpoints of other models are refused.
 *
 * @module
 */
import { Mamba4Rec, mamba4recConfig } from "../../models/mamba4rec.ts";
import { loadTensors, readCheckpoint } from "../../models/training/checkpoint.ts";
import { initGpu } from "../../ops/core/runtime.ts";

/**
 * The Mamba4Rec stored in the checkpoint at `path`, with its trained weights (starts the GPU when
 * it is not started yet).
 * @throws Error when the checkpoint is of another model or lacks its configuration
 */
export async function loadMamba4RecCheckpoint(path: string): Promise<Mamba4Rec> {
  const ckpt = await readCheckpoint(path);
  const name = ckpt.metadata.model;
  if (name !== "mamba4rec") {
    throw new Error(
      `checkpoint ${path} holds model ${JSON.stringify(name ?? null)}; the recommendation ` +
        "service serves only mamba4rec: pass a checkpoint written by a Mamba4Rec training run",
    );
  }
  if (typeof ckpt.metadata.modelConfig !== "string") {
    throw new Error(
      `checkpoint ${path} stores no modelConfig metadata; pass a checkpoint written by the trainer`,
    );
  }
  let overrides: Record<string, unknown>;
  try {
    overrides = JSON.parse(ckpt.metadata.modelConfig);
  } catch (e) {
    throw new Error(`checkpoint ${path}: unreadable modelConfig: ${(e as Error).message}`);
  }
  await initGpu();
  const model = new Mamba4Rec(mamba4recConfig(overrides));
  loadTensors(
    ckpt,
    model.params.entries().map(([n, t]) => [`model.${n}`, t]),
  );
  return model;
}
