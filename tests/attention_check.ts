/**
 * Test data and the gradient check shared by the attention tests (fused and unfused forms):
 * float32-rounded inputs, random pad masks, and {@link attentionGradCheck}, which checks the op
 * against the float64 reference and its analytic backward.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import type { Tensor } from "../ops/core/tensor.ts";
import { attention, type AttentionOptions } from "../ops/dense/attention.ts";
import {
  type AttentionProblem,
  attentionReference,
  attentionReferenceBackward,
  attentionReferenceProbabilities,
} from "../ops/dense/attention_reference.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { dropoutMaskRef } from "./dropout_reference.ts";
import { freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/** `v` rounded to float32, so the op and the reference see the same inputs. */
export function f32(v: Float64Array): Float64Array {
  return v.map(Math.fround);
}

/**
 * A [B, L] pad mask of random pads, with sequence 0 entirely pads (every row of it masked in
 * both modes) when B > 1, and key 0 padded in the last sequence (its first causal row masked).
 */
export function padMask(rng: () => number, batch: number, length: number): Int32Array {
  const pad = Int32Array.from({ length: batch * length }, () => (rng() < 0.3 ? 1 : 0));
  if (batch > 1) pad.fill(1, 0, length);
  pad[(batch - 1) * length] = 1;
  return pad;
}

/** Options of {@link attentionGradCheck}. */
export interface AttentionGradCheck {
  /** Label for messages (include the seed). */
  what: string;
  /** The problem the reference solves; its batch, heads, length and dim give the inputs' size. */
  problem: AttentionProblem;
  /** The shape of k and v, and of q unless `queryShape`. */
  shape: number[];
  /** The shape of q when it holds selected queries (`[B, H, Lq, d]`). */
  queryShape?: number[];
  /** The op under test, given q, k and v. */
  gpu: (q: Tensor, k: Tensor, v: Tensor) => Tensor;
  /** Seeded generator for the inputs, the output weights and the probed coordinates. */
  rng: () => number;
  /** Coordinates probed by finite differences per input. */
  probes: number;
}

/**
 * Draws random float32 q, k and v from `rng` and checks the output and the gradients of all
 * three against the float64 reference and its analytic backward.
 */
export async function attentionGradCheck(c: AttentionGradCheck): Promise<void> {
  const { problem, shape } = c;
  const shapes = [c.queryShape ?? shape, shape, shape];
  await gradCheck({
    what: c.what,
    inputs: shapes.map((s) => ({
      data: f32(randn(c.rng, s.reduce((a, b) => a * b, 1))),
      shape: s,
    })),
    gpu: ([q, k, v]) => c.gpu(q, k, v),
    ref: ([q, k, v]) => attentionReference(q, k, v, problem),
    refGrad: ([q, k, v], g) => {
      const r = attentionReferenceBackward(q, k, v, problem, g);
      return [r.dq, r.dk, r.dv];
    },
    rng: c.rng,
    probes: c.probes,
  });
}

/**
 * The {@link AttentionProblem} of q, k, v of `shape` (`[B, H, L, d]`) under `masks`, with the
 * default scale 1/√d and dropout p: the keep mask the dropout hash draws at (`seed`, `counter`)
 * over the full B·H·L·L probabilities, and its scale.
 */
export function dropoutProblem(
  shape: readonly number[],
  masks: Pick<AttentionProblem, "causal" | "keyPadding" | "queryPositions">,
  seed: number,
  counter: number,
  p: number,
): AttentionProblem {
  const [batch, heads, length, dim] = shape;
  return {
    batch,
    heads,
    length,
    dim,
    ...masks,
    scale: 1 / Math.sqrt(dim),
    keep: dropoutMaskRef(seed, counter, p, batch * heads * length * length),
    keepScale: Math.fround(1 / (1 - p)),
  };
}

/**
 * Causal attention with pad keys and dropout p 0.3 and 0.5 against the reference fed the keep
 * mask the dropout hash draws for the generator's counter: forward and gradients, and one
 * counter taken per call.
 * @param what the form checked, to begin messages (`"fused attention"`)
 * @param extra options of the op besides the mask, pad keys and dropout
 * @param probes coordinates probed by finite differences per input
 */
export async function attentionDropoutCheck(
  what: string,
  extra: Partial<AttentionOptions>,
  probes: number,
): Promise<void> {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [shape, p] of [[[2, 3, 7, 5], 0.3], [[1, 1, 70, 3], 0.5]] as const) {
    const [batch, , length] = shape;
    const pad = padMask(rng, batch, length);
    const gen = new DropoutRng(seed, 5);
    const counter = gen.state().counter;
    const problem = dropoutProblem(shape, { causal: true, keyPadding: pad }, seed, counter, p);
    await attentionGradCheck({
      what: `${what} dropout ${p} [${shape}] seed ${seed}`,
      problem,
      shape: [...shape],
      gpu: (q, k, v) =>
        attention(q, k, v, { mask: "causal", keyPadding: pad, ...extra, dropout: { p, rng: gen } }),
      rng,
      probes,
    });
    assertEquals(gen.state().counter, counter + 1, `one counter per call, seed ${seed}`);
  }
}

/**
 * The sums of absolute terms behind attention's output and its gradients of Σ out ⊙ `gOut`
 * (`[output, dq, dk, dv]`): each entry replaces every term of the reference's sums by its
 * magnitude, and the difference `dP − t` of the softmax backward by `|dP| + |t|`. Float32
 * rounding in any order of summation stays within a small multiple of these, so they bound how
 * far two correct forms may differ even where the exact value cancels to nothing (a query with
 * one unmasked key has dq = 0 up to rounding). Queries are all L positions (no
 * `queryPositions`).
 */
export function attentionTermMagnitudes(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  p: AttentionProblem,
  gOut: Float64Array,
): Float64Array[] {
  if (p.queryPositions !== undefined) {
    throw new RangeError("attentionTermMagnitudes: queries must be all positions");
  }
  const { batch, heads, length: L, dim: d } = p;
  const { probs, dropped } = attentionReferenceProbabilities(q, k, p);
  const out = new Float64Array(q.length), dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  const dP = new Float64Array(L);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < L; i++) {
      const row = (bh * L + i) * L;
      let t = 0;
      for (let j = 0; j < L; j++) {
        let dy = 0;
        for (let c = 0; c < d; c++) {
          const g = Math.abs(gOut[(bh * L + i) * d + c]), x = Math.abs(v[(bh * L + j) * d + c]);
          dy += g * x;
          out[(bh * L + i) * d + c] += dropped[row + j] * x;
          dv[(bh * L + j) * d + c] += dropped[row + j] * g;
        }
        dP[j] = dy * (p.keep === undefined ? 1 : p.keep[row + j] * (p.keepScale ?? 1));
        t += dP[j] * probs[row + j];
      }
      for (let j = 0; j < L; j++) {
        const ds = p.scale * probs[row + j] * (dP[j] + t);
        for (let c = 0; c < d; c++) {
          dq[(bh * L + i) * d + c] += ds * Math.abs(k[(bh * L + j) * d + c]);
          dk[(bh * L + j) * d + c] += ds * Math.abs(q[(bh * L + i) * d + c]);
        }
      }
    }
  }
  return [out, dq, dk, dv];
}
