/**
 * Shared ground of the SSD4Rec tests: a tiny model and its parameters moved off their initial
 * values, histories packed into one row as `packedBatches` lays them out, the float64 reference's
 * parameters and settings, and the representations of an evaluation forward.
 */
import { type PackedBatch, packHistories } from "../data/mod.ts";
import type { ParameterSet } from "../models/parameters.ts";
import { packedInputs, SSD4Rec, type SSD4RecConfig, ssd4recConfig } from "../models/ssd4rec.ts";
import { noGrad, readTensors, runtime, tidy } from "../ops/mod.ts";
import type { RefParams } from "./mamba4rec_reference.ts";
import type { Ssd4recRefOptions } from "./ssd4rec_reference.ts";
import { randn } from "./util.ts";

/** Items in the tiny models' catalogue (id 0 included). */
export const NUM_ITEMS = 41;
/** Tiny sizes: d 8, N 4, P 2, d_inner 16, 8 heads; chunks of 4 cut the longer segments. */
export const TINY = {
  numItems: NUM_ITEMS,
  hiddenSize: 8,
  dState: 4,
  headDim: 2,
  expand: 2,
  dConv: 4,
  dropoutProb: 0,
  chunkSize: 4,
};

/** A tiny SSD4Rec seeded from `seed`, with `overrides` on its configuration. */
export function tinyModel(seed: number, overrides: Record<string, unknown> = {}): SSD4Rec {
  return new SSD4Rec(ssd4recConfig({ ...TINY, seed: seed % 100000, ...overrides }));
}

/**
 * Moves every parameter by N(0, std) noise so that every path (the backward direction included)
 * moves the output well past the comparison tolerance.
 */
export function perturb(model: SSD4Rec, rng: () => number, std = 0.2): Promise<void> {
  const entries = model.params.list();
  return readTensors(entries).then((host) =>
    entries.forEach((t, i) => {
      const noise = randn(rng, t.size, std);
      const v = Float32Array.from(host[i], (x, j) => x + noise[j]);
      runtime().write(t.storage, v);
    })
  );
}

/** The histories packed into one row, as `packedBatches` lays them out. */
export function packedBatch(histories: number[][], targets: number[]): PackedBatch {
  return packHistories(histories, targets);
}

/**
 * Histories whose ids are all distinct (from 0: a masked token is id 0), so that reading any
 * tokens in another order, or other tokens, changes what a segment sees.
 */
export function randomHistories(rng: () => number, lengths: number[]): number[][] {
  const ids = Array.from({ length: NUM_ITEMS }, (_, i) => i);
  let at = 0;
  return lengths.map((n) => {
    for (let i = at; i < at + n; i++) {
      const j = i + Math.floor(rng() * (NUM_ITEMS - i));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    at += n;
    return ids.slice(at - n, at);
  });
}

/** `count` random target items, never id 0. */
export function randomTargets(rng: () => number, count: number): number[] {
  return Array.from({ length: count }, () => 1 + Math.floor(rng() * (NUM_ITEMS - 1)));
}

/** Parameters as float64 reference parameters. */
export async function refParams(params: ParameterSet): Promise<RefParams> {
  const entries = params.entries();
  const host = await readTensors(entries.map(([, t]) => t));
  const ref: RefParams = new Map();
  entries.forEach(([name, t], i) =>
    ref.set(name, { data: Float64Array.from(host[i]), shape: t.shape })
  );
  return ref;
}

/** The reference's settings of a model configuration. */
export function refOptions(c: SSD4RecConfig): Ssd4recRefOptions {
  return { numLayers: c.numLayers, beta: c.beta, normEmbedding: c.normEmbedding };
}

/** The representations `[B, d]` of an evaluation forward. */
export async function represent(
  model: SSD4Rec,
  batch: PackedBatch,
  training = false,
): Promise<Float64Array> {
  const inputs = packedInputs(batch, model.config.chunkSize);
  const h = noGrad(() => tidy(() => model.forward(inputs, training)));
  const [host] = await readTensors([h]);
  h.dispose();
  inputs.dispose();
  return Float64Array.from(host);
}

/** Row `r` of a row-major array with `d` columns. */
export function row(x: ArrayLike<number>, r: number, d: number): number[] {
  return Array.from({ length: d }, (_, i) => x[r * d + i]);
}
