/**
 * The models that have a step form, and the step form of each: {@link Mamba4RecStream} for
 * Mamba4Rec, {@link SSD4RecStream} for a one-layer SSD4Rec.
 *
 * @module
 */
import { Mamba4Rec } from "./mamba4rec.ts";
import type { SlotStream } from "./slot_stream.ts";
import { SSD4Rec } from "./ssd4rec.ts";
import { SSD4RecStream } from "./ssd4rec_stream.ts";
import { Mamba4RecStream } from "./streaming.ts";

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
