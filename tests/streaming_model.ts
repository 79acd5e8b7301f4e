/**
 * Helpers of the streaming tests: a small Mamba4Rec with redrawn weights, its full forward's
 * scores at each history's last item, a stream's scores, random histories and a shuffled
 * event-by-event feed.
 */
import { noGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { writeAt } from "../ops/core/unrecorded.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { Mamba4Rec, mamba4recConfig } from "../models/mamba4rec.ts";
import type { SlotStream } from "../models/streaming/slot_stream.ts";
import { fullRepresentations, type StreamableModel } from "../models/streaming/streams.ts";
import { assertClose, randint, randn } from "./util.ts";

/** Item ids of the small model, PAD included. */
export const NUM_ITEMS = 23;
/** Its convolution width. */
export const D_CONV = 4;

/**
 * Spread of the redrawn test weights: large enough that every part of the Mamba block moves the
 * scores far above the tolerance, small enough that the model stays well conditioned.
 */
const WEIGHT_STD = 0.25;

/**
 * A small Mamba4Rec with dropout off and weights redrawn from N(0, WEIGHT_STD²) (LayerNorm
 * scales and D around 1; A_log kept).
 */
export function smallModel(numLayers: number, rng: () => number, seed: number): Mamba4Rec {
  const model = new Mamba4Rec(mamba4recConfig({
    numItems: NUM_ITEMS,
    hiddenSize: 8,
    dState: 5,
    dConv: D_CONV,
    expand: 2,
    numLayers,
    dropoutProb: 0,
    seed: seed % 100000,
  }));
  for (const [name, t] of model.params.entries()) {
    if (name.endsWith("A_log")) continue;
    const around = name.endsWith("LayerNorm.weight") || name.endsWith(".D") ? 1 : 0;
    const v = Float32Array.from(randn(rng, t.size, WEIGHT_STD), (x) => around + x);
    tidy(() => writeAt(t, Tensor.from(v, t.shape), 0));
  }
  return model;
}

/** The full model's scores `[users, numItems]` at each history's last item. */
export async function fullScores(
  model: StreamableModel,
  histories: Int32Array[],
): Promise<Float32Array> {
  const scores = tidy(() =>
    noGrad(() => matmul(fullRepresentations(model, histories), model.itemTable, { transB: true }))
  );
  const host = (await readTensors([scores]))[0] as Float32Array;
  scores.dispose();
  return host;
}

/** The stream's scores `[users, numItems]`. */
export async function streamScores(
  stream: SlotStream,
  users: Int32Array,
): Promise<Float32Array> {
  const t = stream.scores(users);
  const host = (await readTensors([t]))[0] as Float32Array;
  t.dispose();
  return host;
}

/** A random history of `n` item ids. */
export const history = (rng: () => number, n: number): Int32Array =>
  Int32Array.from(randint(rng, n, NUM_ITEMS - 1), (v) => v + 1);

/**
 * Feeds each user's history event by event: every call lists the users with events left in a
 * shuffled order, and some users get their next two events in one call (listed twice).
 */
export function feed(
  stream: SlotStream,
  slots: number[],
  histories: Int32Array[],
  rng: () => number,
): void {
  const next = histories.map(() => 0);
  for (;;) {
    const users: number[] = [], items: number[] = [];
    const order = slots.map((_, i) => i).sort(() => rng() - 0.5);
    for (const i of order) {
      const take = rng() < 0.25 ? 2 : 1;
      for (let k = 0; k < take && next[i] < histories[i].length; k++) {
        users.push(slots[i]);
        items.push(histories[i][next[i]++]);
      }
    }
    if (users.length === 0) return;
    stream.observe(Int32Array.from(users), Int32Array.from(items));
  }
}

/** Asserts two `[users, numItems]` score tables equal row by row to `tolerance` relative. */
export function assertRowsClose(
  got: Float32Array,
  want: Float32Array,
  users: number,
  what: string,
  tolerance = 1e-5,
  numItems = NUM_ITEMS,
): void {
  for (let u = 0; u < users; u++) {
    const row = (a: Float32Array) => a.subarray(u * numItems, (u + 1) * numItems);
    assertClose(row(got), row(want), tolerance, `${what}, user ${u}`);
  }
}
