/**
 * Models in step form, for streaming recommendation: {@link Mamba4RecStream} and, for a
 * one-layer SSD4Rec, {@link SSD4RecStream}, both on {@link SlotStream}'s per-user slots;
 * {@link openStream} picks the one a model has, and {@link fullRepresentations} gives the full
 * forward each must equal.
 *
 * @module
 */
export {
  INIT_TOKENS_PER_PASS,
  Mamba4RecStream,
  type Mamba4RecStreamOptions,
} from "./mamba4rec_stream.ts";
export { SSD4RecStream, type SSD4RecStreamOptions } from "./ssd4rec_stream.ts";
export { type EventRound, SlotStream } from "./slot_stream.ts";
export {
  fullRepresentations,
  openStream,
  STREAMABLE_MODELS,
  type StreamableModel,
} from "./streams.ts";
export { type Recommendations, topKRows } from "./top_k.ts";
