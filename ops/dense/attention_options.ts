/**
 * What both forms of {@link attention} share: the options, the checks of q, k, v and the pad
 * keys, the dropout words of a call and the WGSL dropout factor of one attention probability,
 * so the unfused row kernel and the fused kernels draw the same mask from the same generator.
 *
 * @module
 */
import { assertDType } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { DROPOUT_HASH_WGSL, dropoutDraw, type DropoutRng } from "../pointwise/dropout.ts";

/** Dropout on the attention probabilities, as RecBole's `attn_dropout`. */
export interface AttentionDropout {
  /** Drop probability in [0, 1]. */
  readonly p: number;
  /** The generator; a training call with 0 < p takes one counter from it. */
  readonly rng: DropoutRng;
  /** Drop only in training (default true); `false` is the identity, as `model.eval()`. */
  readonly training?: boolean;
}

/** Options of {@link attention}. */
export interface AttentionOptions {
  /** `"causal"`: query i attends keys j ≤ i (SASRec); `"none"`: every key (BERT4Rec). */
  readonly mask: "causal" | "none";
  /**
   * `[B, L]` pad keys, masked for every query of their sequence: nonzero marks a pad. An i32
   * tensor, or host values (uploaded for this call).
   */
  readonly keyPadding?: Tensor | ArrayLike<number>;
  /** The factor applied to Q·Kᵀ (default 1/√d, RecBole's `/ sqrt(head_size)`). */
  readonly scale?: number;
  /** Dropout on the probabilities (default none). */
  readonly dropout?: AttentionDropout;
  /**
   * `[B, Lq]`: the position among the L keys of each of q's Lq queries (an i32 tensor, clamped
   * to `[0, L)`, or host values, checked). With it q may hold fewer rows than k and v, e.g. one
   * query per sequence: the causal mask hides the keys after a query's position, and dropout
   * draws the mask of that (position, key) entry of the full `[B, H, L, L]` probabilities, so
   * the result equals those rows of the attention over every position. Unfused form only.
   * Without it query i is position i and q has L rows.
   */
  readonly queryPositions?: Tensor | ArrayLike<number>;
  /**
   * Which form computes it: `true` the fused kernels (the probabilities never leave workgroup
   * memory; head size at most {@link FLASH_ATTENTION_MAX_DIM}), `false` the unfused products
   * and row softmax. Default: unfused (the faster form), fused only where the unfused
   * probabilities would not fit in one storage binding and the head size allows it.
   */
  readonly fused?: boolean;
}

/** The largest head size d the fused kernels take (its rows are held in registers). */
export const FLASH_ATTENTION_MAX_DIM = 128;

/** A shape as text, `[2, 3, 4]`. */
export function shapeText(t: Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

/**
 * Checks q (`[batch, heads, Lq, d]`), k and v (one `[batch, heads, L, d]` shape), all f32 and
 * non-empty, with L at most `maxLength` and Lq = L unless `selectedQueries` (the call passes
 * query positions, and then Lq ≤ L), and returns `[batch, heads, Lq, L, d]`.
 */
export function checkAttentionShapes(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  maxLength: number,
  selectedQueries = false,
): [number, number, number, number, number] {
  for (const t of [q, k, v]) assertDType(op, t, "f32");
  const shape = k.shape;
  const same = (t: Tensor) => t.shape.length === 4 && t.shape.every((n, i) => n === shape[i]);
  const fourD = [q, k, v].every((t) => t.shape.length === 4);
  const qFits = selectedQueries && fourD && q.shape[0] === shape[0] && q.shape[1] === shape[1] &&
    q.shape[3] === shape[3] && q.shape[2] <= shape[2];
  if (!same(v) || !(qFits || same(q)) || q.size === 0 || k.size === 0) {
    throw new RangeError(
      selectedQueries
        ? `${op}: q [batch, heads, Lq, d] and k, v [batch, heads, L, d] must be non-empty, ` +
          `agree in batch, heads and d, with Lq ≤ L, got q ${shapeText(q)}, k ${shapeText(k)} ` +
          `and v ${shapeText(v)}`
        : `${op}: q, k and v must have the same non-empty shape [batch, heads, L, d], got q ` +
          `${shapeText(q)}, k ${shapeText(k)} and v ${shapeText(v)}`,
    );
  }
  if (shape[2] > maxLength) {
    throw new RangeError(
      `${op}: sequence length ${shape[2]} of k ${shapeText(k)} exceeds ${maxLength}`,
    );
  }
  const [batch, heads, length, dim] = shape;
  return [batch, heads, q.shape[2], length, dim];
}

/** Checks the mask and the scale and returns the scale (default 1/√dim). */
export function attentionScale(op: string, options: AttentionOptions, dim: number): number {
  if (options.mask !== "causal" && options.mask !== "none") {
    throw new RangeError(`${op}: mask must be "causal" or "none", got ${String(options.mask)}`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(dim);
  if (!Number.isFinite(scale)) {
    throw new RangeError(`${op}: scale must be a finite number, got ${scale}`);
  }
  return scale;
}

/** The pad-key mask as an i32 `[B, L]` tensor, and whether it was uploaded here. */
export function padTensor(
  op: string,
  pad: Tensor | ArrayLike<number>,
  batch: number,
  length: number,
): { t: Tensor; owned: boolean } {
  if (pad instanceof Tensor) {
    assertDType(op, pad, "i32");
    if (pad.shape.length !== 2 || pad.shape[0] !== batch || pad.shape[1] !== length) {
      throw new RangeError(
        `${op}: keyPadding has shape ${shapeText(pad)}; expected [${batch}, ${length}] ` +
          `([batch, L] of k)`,
      );
    }
    return { t: pad, owned: false };
  }
  if (pad.length !== batch * length) {
    throw new RangeError(
      `${op}: keyPadding has ${pad.length} values; expected ${batch * length} ([batch, L] = ` +
        `[${batch}, ${length}] of k)`,
    );
  }
  const host = new Int32Array(pad.length);
  for (let i = 0; i < pad.length; i++) host[i] = pad[i] !== 0 ? 1 : 0;
  return { t: Tensor.from(host, [batch, length]), owned: true };
}

/**
 * The query positions as an i32 `[B, Lq]` tensor, and whether it was uploaded here: host values
 * must be integers in `[0, L)`.
 */
export function queryPositionsTensor(
  op: string,
  positions: Tensor | ArrayLike<number>,
  batch: number,
  queries: number,
  length: number,
): { t: Tensor; owned: boolean } {
  const expected = `[${batch}, ${queries}] ([batch, Lq] of q)`;
  if (positions instanceof Tensor) {
    assertDType(op, positions, "i32");
    if (
      positions.shape.length !== 2 || positions.shape[0] !== batch ||
      positions.shape[1] !== queries
    ) {
      throw new RangeError(
        `${op}: queryPositions has shape ${shapeText(positions)}; expected ${expected}`,
      );
    }
    return { t: positions, owned: false };
  }
  if (positions.length !== batch * queries) {
    throw new RangeError(
      `${op}: queryPositions has ${positions.length} values; expected ${batch * queries}, ` +
        expected,
    );
  }
  const host = Int32Array.from(positions);
  const bad = host.findIndex((x, i) => x !== positions[i] || x < 0 || x >= length);
  if (bad >= 0) {
    throw new RangeError(
      `${op}: queryPositions[${bad}] is ${positions[bad]}; positions are integers in [0, ` +
        `${length}) (L of k)`,
    );
  }
  return { t: Tensor.from(host, [batch, queries]), owned: true };
}

/**
 * The dropout words of the kernels' parameters: (drop, threshold, seed lo, hi, counter lo, hi)
 * and the keep scale. Takes one counter when dropout is active, as {@link dropout} does.
 */
export function dropoutWords(op: string, d: AttentionDropout | undefined): [number[], number] {
  if (d === undefined) return [[0, 0, 0, 0, 0, 0], 1];
  if (!(d.p >= 0 && d.p <= 1)) {
    throw new RangeError(`${op}: dropout p must be in [0, 1], got ${d.p}`);
  }
  if (d.p === 0 || d.training === false) return [[0, 0, 0, 0, 0, 0], 1];
  const draw = dropoutDraw(d.p, d.rng);
  return [[1, draw.threshold, ...draw.words], draw.scale];
}

/**
 * WGSL field declarations of the dropout words, in the order of {@link dropoutWords}, for a
 * parameter struct `P` bound as `p` (the keep scale is the f32 field `keep_scale`).
 */
export const ATTENTION_DROPOUT_FIELDS_WGSL =
  "drop: u32, threshold: u32, seed_lo: u32, seed_hi: u32, counter_lo: u32, counter_hi: u32,";

/**
 * WGSL `fn drop_factor(i: u32) -> f32`: the dropout factor of attention probability i (its
 * index in the full `[B, H, L, L]` probabilities, row-major): `keep_scale` where kept, 0 where
 * dropped, 1 without dropout. Reads the fields of {@link ATTENTION_DROPOUT_FIELDS_WGSL} from the
 * uniform `p`; the keep test is {@link dropout}'s.
 */
export const ATTENTION_DROP_FACTOR_WGSL: string = /* wgsl */ `
${DROPOUT_HASH_WGSL}
fn drop_factor(i: u32) -> f32 {
  if (p.drop == 0u) { return 1.0; }
  let seed = vec2u(p.seed_lo, p.seed_hi);
  let counter = vec2u(p.counter_lo, p.counter_hi);
  return select(0.0, p.keep_scale, dropout_keep(seed, counter, i, p.threshold));
}`;
