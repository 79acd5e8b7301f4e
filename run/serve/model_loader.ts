/**
 * Rebuilds a trained model that has a step form (Mamba4Rec, or a one-layer SSD4Rec) from a
 * trainer checkpoint (`model.`-prefixed weights, the model's name and configuration in the
 * metadata) for serving; checkpoints of other models are refused.
 *
 * @module
 */
import { Mamba4Rec, mamba4recConfig } from "../../models/mamba4rec.ts";
import { SSD4Rec, ssd4recConfig } from "../../models/ssd4rec.ts";
import { STREAMABLE_MODELS, type StreamableModel } from "../../models/streaming/streams.ts";
import { loadTensors, readCheckpoint } from "../../models/training/checkpoint.ts";
import { initGpu } from "../../ops/core/runtime.ts";

/**
 * The model stored in the checkpoint at `path`, with its trained weights (starts the GPU when it
 * is not started yet).
 * @throws Error when the checkpoint is of a model without a step form, is an SSD4Rec of two or
 *   more layers, or lacks its configuration
 */
export async function loadStreamableCheckpoint(path: string): Promise<StreamableModel> {
  const ckpt = await readCheckpoint(path);
  const name = ckpt.metadata.model;
  if (typeof name !== "string" || !STREAMABLE_MODELS.includes(name)) {
    throw new Error(
      `checkpoint ${path} holds model ${JSON.stringify(name ?? null)}; the recommendation ` +
        `service serves ${STREAMABLE_MODELS.join(" and ")}: pass a checkpoint written by one ` +
        "of their training runs",
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
  if (name === "ssd4rec" && overrides.numLayers !== 1) {
    throw new Error(
      `checkpoint ${path} holds an SSD4Rec of ${overrides.numLayers ?? "the default"} Bi-SSD ` +
        "layers; only a one-layer SSD4Rec has a step form (from the second layer on, every " +
        "position's input changes with each event): train one with numLayers 1 to serve it",
    );
  }
  await initGpu();
  const model = name === "ssd4rec"
    ? new SSD4Rec(ssd4recConfig(overrides))
    : new Mamba4Rec(mamba4recConfig(overrides));
  loadTensors(
    ckpt,
    model.params.entries().map(([n, t]) => [`model.${n}`, t]),
  );
  return model;
}

/**
 * {@link loadStreamableCheckpoint} for the tools that measure Mamba4Rec alone (its window
 * recomputation, its streaming notebook).
 * @throws Error when the checkpoint holds another model
 */
export async function loadMamba4RecCheckpoint(path: string): Promise<Mamba4Rec> {
  const model = await loadStreamableCheckpoint(path);
  if (!(model instanceof Mamba4Rec)) {
    throw new Error(
      `checkpoint ${path} holds ${model.name}; this measures Mamba4Rec only: pass a checkpoint ` +
        "written by a Mamba4Rec training run (`deno task serve` serves the other)",
    );
  }
  return model;
}
