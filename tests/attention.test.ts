import { assertEquals, assertThrows } from "@std/assert";
import { attention, ATTENTION_MAX_LENGTH } from "../ops/dense/attention.ts";
import type { AttentionOptions } from "../ops/dense/attention.ts";
import {
  type AttentionProblem,
  attentionReference,
  attentionReferenceBackward,
} from "../ops/dense/attention_reference.ts";
import { mergeHeads, splitHeads } from "../ops/dense/attention_heads.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { noGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor } from "../ops/core/tensor.ts";
import {
  attentionDropoutCheck,
  attentionGradCheck,
  dropoutProblem,
  f32,
  padMask,
} from "./attention_check.ts";
import { freshSeed, gradCheck, makeRng, randn } from "./util.ts";

/** [batch, heads, L, d]: L = 1, odd L, L past one invocation per key (64), d not a multiple of 4. */
const SHAPES: number[][] = [
  [1, 1, 1, 1],
  [2, 1, 1, 3],
  [2, 3, 7, 5],
  [3, 1, 13, 8],
  [1, 3, 33, 6],
  [2, 1, 70, 3],
];

interface Case {
  name: string;
  options: (pad: Int32Array, gen: DropoutRng) => AttentionOptions;
  problem: (pad: Int32Array) => Partial<AttentionProblem>;
}

const CASES: Case[] = [
  { name: "bidirectional", options: () => ({ mask: "none" }), problem: () => ({ causal: false }) },
  { name: "causal", options: () => ({ mask: "causal" }), problem: () => ({ causal: true }) },
  {
    name: "bidirectional with pad keys",
    options: (pad) => ({ mask: "none", keyPadding: pad }),
    problem: (pad) => ({ causal: false, keyPadding: pad }),
  },
  {
    name: "causal with pad keys",
    options: (pad) => ({ mask: "causal", keyPadding: pad }),
    problem: (pad) => ({ causal: true, keyPadding: pad }),
  },
];

Deno.test("attention: forward and gradients of q, k and v match float64", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const shape of SHAPES) {
    const [batch, heads, length, dim] = shape;
    for (const c of CASES) {
      const pad = padMask(rng, batch, length);
      const problem: AttentionProblem = {
        batch,
        heads,
        length,
        dim,
        causal: false,
        scale: 1 / Math.sqrt(dim),
        ...c.problem(pad),
      };
      const gen = new DropoutRng(seed);
      await attentionGradCheck({
        what: `attention ${c.name} [${shape}] seed ${seed}`,
        problem,
        shape,
        gpu: (q, k, v) => attention(q, k, v, c.options(pad, gen)),
        rng,
        probes: 8,
      });
    }
  }
});

Deno.test("attention: a pad-key tensor and a custom scale", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [3, 2, 9, 4];
  const [batch, heads, length, dim] = shape;
  const pad = padMask(rng, batch, length);
  const problem = { batch, heads, length, dim, causal: true, keyPadding: pad, scale: 0.37 };
  await attentionGradCheck({
    what: `attention pad tensor [${shape}] seed ${seed}`,
    problem,
    shape,
    gpu: (q, k, v) =>
      attention(q, k, v, {
        mask: "causal",
        keyPadding: Tensor.from(pad, [batch, length]),
        scale: 0.37,
      }),
    rng,
    probes: 8,
  });
});

Deno.test("attention: gradients of v alone, and of q and k alone", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [2, 2, 6, 3];
  const [batch, heads, length, dim] = shape;
  const n = batch * heads * length * dim;
  const problem = { batch, heads, length, dim, causal: true, scale: 1 / Math.sqrt(dim) };
  for (const wanted of [[false, false, true], [true, true, false]]) {
    await gradCheck({
      what: `attention differentiable [${wanted}] seed ${seed}`,
      inputs: wanted.map((differentiable) => ({
        data: f32(randn(rng, n)),
        shape,
        differentiable,
      })),
      gpu: ([q, k, v]) => attention(q, k, v, { mask: "causal" }),
      ref: ([q, k, v]) => attentionReference(q, k, v, problem),
      refGrad: ([q, k, v], g) => {
        const r = attentionReferenceBackward(q, k, v, problem, g);
        return [r.dq, r.dk, r.dv].map((d, i) => (wanted[i] ? d : null));
      },
      rng,
      probes: 8,
    });
  }
});

// The unfused form: 262,400 rows of 64 scores at 4 rows per workgroup, 65,600 workgroups, a
// 2-D grid.
Deno.test("attention (unfused): more than 65,535 workgroups (2-D grid)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [4100, 1, 64, 1];
  const [batch, heads, length, dim] = shape;
  const pad = padMask(rng, batch, length);
  const problem = {
    batch,
    heads,
    length,
    dim,
    causal: false,
    keyPadding: pad,
    scale: 1 / Math.sqrt(dim),
  };
  await attentionGradCheck({
    what: `attention 2-D grid [${shape}] seed ${seed}`,
    problem,
    shape,
    gpu: (q, k, v) => attention(q, k, v, { mask: "none", keyPadding: pad, fused: false }),
    rng,
    probes: 0,
  });
});

Deno.test("attention: dropout p > 0 equals the reference fed the op's mask; gradients too", async () => {
  await attentionDropoutCheck("attention", {}, 8);
});

/** Lq distinct random positions in [0, L) for each of `batch` sequences, sorted. */
function randomPositions(rng: () => number, batch: number, length: number, lq: number): Int32Array {
  const out = new Int32Array(batch * lq);
  for (let b = 0; b < batch; b++) {
    const all = Array.from({ length }, (_, j) => j).sort(() => rng() - 0.5).slice(0, lq);
    out.set(all.sort((x, y) => x - y), b * lq);
  }
  return out;
}

Deno.test("attention at selected queries: float64 forward and gradients, with masks and dropout", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // [batch, heads, L, d] and Lq: one query (SASRec's last item), several, every position.
  for (const [shape, lq] of [[[2, 3, 7, 5], 1], [[3, 2, 13, 8], 4], [[1, 1, 70, 3], 2]] as const) {
    const [batch, heads, length, dim] = shape;
    for (const causal of [true, false]) {
      const pad = padMask(rng, batch, length);
      const positions = randomPositions(rng, batch, length, lq);
      const p = 0.3;
      const gen = new DropoutRng(seed, 3);
      const counter = gen.state().counter;
      const masks = { causal, keyPadding: pad, queryPositions: positions };
      const problem = dropoutProblem(shape, masks, seed, counter, p);
      await attentionGradCheck({
        what: `attention at positions [${positions}] ${causal ? "causal" : "bidirectional"} ` +
          `[${shape}] seed ${seed}`,
        problem,
        shape: [...shape],
        queryShape: [batch, heads, lq, dim],
        gpu: (q, k, v) =>
          attention(q, k, v, {
            mask: causal ? "causal" : "none",
            keyPadding: pad,
            queryPositions: positions,
            dropout: { p, rng: gen },
          }),
        rng,
        probes: 6,
      });
    }
  }
});

Deno.test("attention at selected queries equals those rows of the full attention, bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [3, 2, 37, 8];
  const [batch, heads, length, dim] = shape;
  const n = batch * heads * length * dim;
  const [q, k, v] = [0, 1, 2].map(() => Tensor.from(Float32Array.from(randn(rng, n)), shape));
  const pad = padMask(rng, batch, length);
  const positions = randomPositions(rng, batch, length, 3);
  // The selected rows of q, as a gather would pick them.
  const qHost = (await readTensors([q]))[0];
  const qSel = new Float32Array(batch * heads * 3 * dim);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < 3; i++) {
      const at = positions[Math.floor(bh / heads) * 3 + i];
      qSel.set(
        qHost.subarray((bh * length + at) * dim, (bh * length + at + 1) * dim),
        (bh * 3 + i) * dim,
      );
    }
  }
  const options = (rng: DropoutRng): AttentionOptions => ({
    mask: "causal",
    keyPadding: pad,
    dropout: { p: 0.5, rng },
  });
  const [full, part] = await readTensors([
    noGrad(() => attention(q, k, v, options(new DropoutRng(seed, 4)))),
    noGrad(() =>
      attention(Tensor.from(qSel, [batch, heads, 3, dim]), k, v, {
        ...options(new DropoutRng(seed, 4)),
        queryPositions: Tensor.from(positions, [batch, 3]),
      })
    ),
  ]);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let i = 0; i < 3; i++) {
      const at = positions[Math.floor(bh / heads) * 3 + i];
      assertEquals(
        new Uint32Array(part.buffer, (bh * 3 + i) * dim * 4, dim),
        new Uint32Array(full.buffer, (bh * length + at) * dim * 4, dim),
        `row (${bh}, ${i}) at position ${at}, seed ${seed}`,
      );
    }
  }
});

Deno.test("attention: p = 0 and eval equal no dropout bit for bit and take no counter; calls repeat", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [2, 2, 11, 6];
  const n = shape.reduce((a, b) => a * b, 1);
  const [q, k, v] = [0, 1, 2].map(() => Tensor.from(Float32Array.from(randn(rng, n)), shape));
  const gen = new DropoutRng(seed);
  const same = (o: AttentionOptions) => noGrad(() => attention(q, k, v, o));
  const [plain, p0, evalMode, again, d1, d2] = await readTensors([
    same({ mask: "causal" }),
    same({ mask: "causal", dropout: { p: 0, rng: gen } }),
    same({ mask: "causal", dropout: { p: 0.5, rng: gen, training: false } }),
    same({ mask: "causal" }),
    same({ mask: "causal", dropout: { p: 0.5, rng: new DropoutRng(seed, 9) } }),
    same({ mask: "causal", dropout: { p: 0.5, rng: new DropoutRng(seed, 9) } }),
  ]);
  assertEquals(gen.state().counter, 0, `p = 0 and eval take no counter, seed ${seed}`);
  const others: [string, typeof plain][] = [["p = 0", p0], ["eval", evalMode], [
    "a second call",
    again,
  ]];
  for (const [what, got] of others) {
    assertEquals(
      new Uint32Array(got.buffer),
      new Uint32Array(plain.buffer),
      `${what} vs no dropout, seed ${seed}`,
    );
  }
  assertEquals(new Uint32Array(d1.buffer), new Uint32Array(d2.buffer), `same stream, seed ${seed}`);
});

/** `[A, X, Y, D]` → `[A, Y, X, D]` on the host. */
function swapMiddleRef(v: Float64Array, [a, x, y, d]: number[]): Float64Array {
  const out = new Float64Array(v.length);
  for (let n = 0; n < a; n++) {
    for (let i = 0; i < x; i++) {
      for (let j = 0; j < y; j++) {
        for (let c = 0; c < d; c++) {
          out[((n * y + j) * x + i) * d + c] = v[((n * x + i) * y + j) * d + c];
        }
      }
    }
  }
  return out;
}

Deno.test("splitHeads and mergeHeads: the head layouts and their gradients", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [batch, length, heads, dim] of [[1, 1, 1, 1], [2, 7, 3, 5], [3, 13, 2, 4]]) {
    const n = batch * length * heads * dim;
    await gradCheck({
      what: `splitHeads [${batch}, ${length}, ${heads}·${dim}] seed ${seed}`,
      inputs: [{ data: f32(randn(rng, n)), shape: [batch, length, heads * dim] }],
      gpu: ([x]) => splitHeads(x, heads),
      ref: ([x]) => swapMiddleRef(x, [batch, length, heads, dim]),
      refGrad: (_xs, g) => [swapMiddleRef(g, [batch, heads, length, dim])],
      rng,
      tol: 1e-7,
    });
    await gradCheck({
      what: `mergeHeads [${batch}, ${heads}, ${length}, ${dim}] seed ${seed}`,
      inputs: [{ data: f32(randn(rng, n)), shape: [batch, heads, length, dim] }],
      gpu: ([x]) => mergeHeads(x),
      ref: ([x]) => swapMiddleRef(x, [batch, heads, length, dim]),
      refGrad: (_xs, g) => [swapMiddleRef(g, [batch, length, heads, dim])],
      rng,
      tol: 1e-7,
    });
  }
  const x = Tensor.from(new Float32Array(2 * 3 * 6), [2, 3, 6]);
  assertEquals(mergeHeads(splitHeads(x, 3)).shape, [2, 3, 6]);
  assertThrows(
    () => splitHeads(x, 4),
    RangeError,
    "splitHeads: expected x [B, L, H·d] with 4 heads dividing its last dimension, got x [2, 3, 6]",
  );
  assertThrows(
    () => mergeHeads(x),
    RangeError,
    "mergeHeads: expected x [B, H, L, d], got x [2, 3, 6]",
  );
});

Deno.test("attention: bad input names the op and the shapes", () => {
  const t = (shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, b) => a * b)), shape);
  const q = t([2, 1, 3, 4]);
  assertThrows(
    () => attention(q, t([2, 1, 4, 4]), q, { mask: "none" }),
    RangeError,
    "attention: q, k and v must have the same non-empty shape [batch, heads, L, d], got q " +
      "[2, 1, 3, 4], k [2, 1, 4, 4] and v [2, 1, 3, 4]",
  );
  assertThrows(
    () => attention(t([2, 3, 4]), t([2, 3, 4]), t([2, 3, 4]), { mask: "none" }),
    RangeError,
    "attention: q, k and v must have the same non-empty shape",
  );
  assertThrows(
    () => attention(q, q, q, { mask: "none", keyPadding: [0, 1, 0] }),
    RangeError,
    "attention: keyPadding has 3 values; expected 6 ([batch, L] = [2, 3] of k)",
  );
  assertThrows(
    () =>
      attention(q, q, q, {
        mask: "none",
        keyPadding: Tensor.from(new Int32Array(6), [3, 2]),
      }),
    RangeError,
    "attention: keyPadding has shape [3, 2]; expected [2, 3]",
  );
  assertThrows(
    () =>
      attention(q, q, q, { mask: "none", keyPadding: Tensor.from(new Float32Array(6), [2, 3]) }),
    TypeError,
    "attention: expected a i32 tensor",
  );
  assertThrows(
    () => attention(q, q, q, { mask: "none", dropout: { p: 1.5, rng: new DropoutRng(1) } }),
    RangeError,
    "attention: dropout p must be in [0, 1], got 1.5",
  );
  const one = t([2, 1, 1, 4]);
  assertThrows(
    () => attention(one, q, q, { mask: "none" }),
    RangeError,
    "attention: q, k and v must have the same non-empty shape",
  );
  assertThrows(
    () =>
      attention(t([2, 1, 4, 4]), q, q, { mask: "none", queryPositions: [0, 1, 2, 0, 1, 2, 0, 1] }),
    RangeError,
    "attention: q [batch, heads, Lq, d] and k, v [batch, heads, L, d] must be non-empty, agree " +
      "in batch, heads and d, with Lq ≤ L, got q [2, 1, 4, 4], k [2, 1, 3, 4] and v [2, 1, 3, 4]",
  );
  assertThrows(
    () => attention(one, q, q, { mask: "none", queryPositions: [0, 3] }),
    RangeError,
    "attention: queryPositions[1] is 3; positions are integers in [0, 3) (L of k)",
  );
  assertThrows(
    () => attention(one, q, q, { mask: "none", queryPositions: [0] }),
    RangeError,
    "attention: queryPositions has 1 values; expected 2, [2, 1] ([batch, Lq] of q)",
  );
  assertThrows(
    () => attention(one, q, q, { mask: "none", queryPositions: [0, 1], fused: true }),
    RangeError,
    "attention: the fused form computes every query; with queryPositions pass fused: false",
  );
  const long = t([1, 1, ATTENTION_MAX_LENGTH + 1, 1]);
  assertThrows(
    () => attention(long, long, long, { mask: "causal" }),
    RangeError,
    `attention: sequence length ${ATTENTION_MAX_LENGTH + 1} of k [1, 1, 2049, 1] exceeds 2048`,
  );
});
