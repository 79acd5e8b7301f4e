/**
 * The models that have a step form, and the step form of each: {@link Mamba4RecStream} for
 * Mamba4Rec, {@link SSD4RecStream} for a one-layer SSD4Rec.
 *
 * @module
 */
import { packHistories } from "../../data/packed_batches.ts";
import type { Tensor } from "../../ops/core/tensor.ts";
import { Mamba4Rec } from "../mamba4rec.ts";
import type { SlotStream } from "./slot_stream.ts";
import { packedInputs, SSD4Rec } from "../ssd4rec.ts";
import { uploadSequences } from "../training/layouts.ts";
import { SSD4RecStream } from "./ssd4rec_stream.ts";
import { Mamba4RecStream } from "./mamba4rec_stream.ts";

/** A model with a step form. */
export type StreamableModel = Mamba4Rec | SSD4Rec;

/** The names (as checkpoints record them) of the models with a step form. */
export const STREAMABLE_MODELS: readonly string[] = ["mamba4rec", "ssd4rec"];

/**
 * The step form of `model` with `capacity` user slots, its pools zeroed.
 * @throws RangeError for an SSD4Rec of two or more layers, which has none
 */
export function openStream(model: StreamableModel, options: { capacity: number }): SlotStream {
  if (model instanceof Mamba4Rec) return new Mamba4RecStream(model, options);
  if (model instanceof SSD4Rec) return new SSD4RecStream(model, options);
  throw new TypeError(
    `openStream: no step form for ${(model as { name?: string }).name ?? "this model"}; ` +
      `streamable models: ${STREAMABLE_MODELS.join(", ")}`,
  );
}

/**
 * The full model's representation at each history's last item, `[histories, d]` (dropout off):
 * what a recommender without state computes on every event, and what a stream must equal. Call
 * it inside `tidy` and `noGrad`.
 * @param histories non-empty histories of item ids, oldest first
 */
export function fullRepresentations(
  model: StreamableModel,
  histories: readonly Int32Array[],
): Tensor {
  if (model instanceof SSD4Rec) {
    const inputs = packedInputs(packHistories(histories), model.config.chunkSize);
    const h = model.forward(inputs, false);
    inputs.dispose();
    return h;
  }
  const length = Math.max(...histories.map((h) => h.length));
  const items = new Int32Array(histories.length * length);
  histories.forEach((h, b) => items.set(h, b * length));
  const lengths = Int32Array.from(histories, (h) => h.length);
  return model.forward(uploadSequences(items, lengths, histories.length, length), false);
}
