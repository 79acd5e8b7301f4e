/**
 * Expectations shared by the transformer recommenders' tests (SASRec and BERT4Rec): the
 * parameter names of one encoder layer, the sample RMS of initial weights, and the presets both
 * take from the Mamba4Rec paper.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { MAMBA4REC_PRESETS, modelPreset } from "../models/registry.ts";

/** The parameter names of encoder layer `i`, in registration order (RecBole's names). */
export function transformerLayerNames(i: number): string[] {
  const attn = `trm_encoder.layer.${i}.multi_head_attention`;
  const ffn = `trm_encoder.layer.${i}.feed_forward`;
  return [
    ...["query", "key", "value", "dense"].flatMap((
      n,
    ) => [`${attn}.${n}.weight`, `${attn}.${n}.bias`]),
    `${attn}.LayerNorm.weight`,
    `${attn}.LayerNorm.bias`,
    `${ffn}.dense_1.weight`,
    `${ffn}.dense_1.bias`,
    `${ffn}.dense_2.weight`,
    `${ffn}.dense_2.bias`,
    `${ffn}.LayerNorm.weight`,
    `${ffn}.LayerNorm.bias`,
  ];
}

/** The root mean square of `a`. */
export function rms(a: ArrayLike<number>): number {
  return Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);
}

/**
 * Asserts that `model`'s presets are the Mamba4Rec paper's datasets with hidden size 64 and
 * its window lengths (Mamba4Rec's config sets hidden_size 64; its dropout_prob and num_layers
 * are not a transformer's keys).
 */
export function assertPaperPresets(model: string, presets: Record<string, unknown>): void {
  assertEquals(modelPreset(model, "ml-1m"), {
    train: { maxLength: 200 },
    model: { hiddenSize: 64, maxLength: 200 },
  });
  for (const dataset of ["amazon-beauty", "amazon-video-games"]) {
    assertEquals(modelPreset(model, dataset), {
      train: { maxLength: 50 },
      model: { hiddenSize: 64, maxLength: 50 },
    }, dataset);
  }
  assertEquals(Object.keys(presets).sort(), Object.keys(MAMBA4REC_PRESETS).sort());
}
