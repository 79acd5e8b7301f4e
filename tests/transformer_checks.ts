/**
 * Expectations shared by the transformer recommenders' tests (SASRec and BERT4Rec): the
 * parameter names of one encoder layer, RecBole's initial values, the presets both take from
 * the Mamba4Rec paper, and the agreement of two computations' losses and gradients.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { readTensors, type Tensor } from "../ops/core/tensor.ts";
import type { ParameterSet } from "../models/parameters.ts";
import { assertClose } from "./util.ts";
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
 * Asserts RecBole's initialisation: every LayerNorm weight (and each name in `ones`) all 1,
 * every bias (and each name in `zeros`) all 0, every other weight drawn from N(0, 0.02) (its
 * sample RMS within 5% of 0.02, which ≥ 4,096 draws give).
 * @param entries the parameters by name, in order
 * @param values their values read back, in the same order
 * @param ones further names that start at 1
 * @param zeros further names that start at 0
 */
export function assertRecBoleInit(
  entries: [string, Tensor][],
  values: Float32Array[],
  ones: string[] = [],
  zeros: string[] = [],
): void {
  entries.forEach(([name, t], i) => {
    const v = values[i];
    if (name.endsWith("LayerNorm.weight") || ones.includes(name)) {
      assert(v.every((x) => x === 1), `${name}: not all 1`);
    } else if (name.endsWith(".bias") || zeros.includes(name)) {
      assert(v.every((x) => x === 0), `${name}: not all 0`);
    } else {
      assert(Math.abs(rms(v) - 0.02) < 0.001, `${name} ${t.shape}: RMS ${rms(v)}, want 0.02`);
    }
  });
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

/**
 * Reads back two computations of one model (two instances of the same seed) and asserts that
 * their losses agree to 1e-6 and every parameter's gradient to 1e-5, each gradient's error taken
 * against its RMS floored at 1% of the largest (some gradients are rounding noise around zero:
 * the key bias moves every score of a row alike, which softmax ignores).
 * @param what label for messages (include the seed)
 * @param losses the two losses, their backward already run
 * @param params the two instances' parameters, in the same order
 */
export async function assertSameLossAndGradients(
  what: string,
  losses: [Tensor, Tensor],
  params: [ParameterSet, ParameterSet],
): Promise<void> {
  const grads = params.map((p) => p.entries().map(([, t]) => t.grad!));
  const host = await readTensors([...losses, ...grads[0], ...grads[1]]);
  const n = grads[0].length;
  assertClose(host[0], host[1], 1e-6, `${what}: loss`);
  const floor = 0.01 * Math.max(...host.slice(2 + n).map(rms));
  params[0].entries().forEach(([name], i) => {
    const got = host[2 + i], want = host[2 + n + i];
    const error = rms(got.map((x, j) => x - want[j])) / Math.max(rms(want), floor);
    assert(error < 1e-5, `${what}: gradient of ${name}: relative error ${error}`);
  });
}

/**
 * The small model settings of the tests that compare the rows-only last layer with the
 * computation at every position: attention dropout on (it draws by (query position, key), the
 * same mask in both), hidden dropout off (it draws by element of its input, whose shape differs).
 */
export function rowPathSettings(
  numLayers: number,
  maxLength: number,
  seed: number,
): Record<string, number> {
  return {
    hiddenSize: 8,
    innerSize: 12,
    numLayers,
    numHeads: 2,
    hiddenDropoutProb: 0,
    attnDropoutProb: 0.4,
    maxLength,
    seed: seed % 100000,
  };
}
