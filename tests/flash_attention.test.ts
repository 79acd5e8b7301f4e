import { assert, assertEquals, assertThrows } from "@std/assert";
import { attention, fusedByDefault } from "../ops/dense/attention.ts";
import { type AttentionOptions, FLASH_ATTENTION_MAX_DIM } from "../ops/dense/attention_options.ts";
import type { AttentionProblem } from "../ops/dense/attention_reference.ts";
import { FLASH_INVOCATIONS, flashPlan } from "../ops/dense/flash_attention_plan.ts";
import { DropoutRng } from "../ops/pointwise/dropout.ts";
import { backward, requireGrad } from "../ops/core/autograd.ts";
import { readTensors, Tensor, tidy } from "../ops/core/tensor.ts";
import { runtime } from "../ops/core/runtime.ts";
import { mul } from "../ops/pointwise/elementwise.ts";
import { sumAll } from "../ops/pointwise/reduce.ts";
import {
  attentionDropoutCheck,
  attentionGradCheck,
  attentionTermMagnitudes,
  dropoutProblem,
  padMask,
} from "./attention_check.ts";
import { assertScaled, freshSeed, makeRng, randn, relError } from "./util.ts";

/**
 * [batch, heads, L, d]: L = 1 with B·H = 1, d odd (rows read element by element), d a multiple
 * of 4 (rows read as vec4), and for each tiling (`flash_attention_plan.ts`) L past one block of
 * own rows and a multiple of neither the block nor the tiles: d ≤ 32 (blocks of 64 rows, tiles
 * of 32 keys forward and 16 rows backward; d 32 is SASRec's head size), d ≤ 64 (blocks of 32),
 * d > 64 (blocks of 16, each invocation's columns not all within the row for d 100; with d 128
 * the backward reads its own rows from the tensors where 32 KB of workgroup memory cannot stage
 * them).
 */
const SHAPES: number[][] = [
  [1, 1, 1, 5],
  [2, 3, 7, 5],
  [3, 1, 13, 8],
  [1, 2, 70, 4],
  [2, 1, 70, 32],
  [2, 1, 67, 33],
  [1, 1, 37, 64],
  [1, 2, 20, 100],
  [1, 1, 19, 128],
];

/** The bits of f32 values, to compare results exactly. */
function bits(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

/**
 * A random [batch, heads, L, d] from the test's seed: L up to 90 (two blocks of 64 rows), d up
 * to 72 (all three tilings).
 */
function randomShape(rng: () => number): number[] {
  const pick = (n: number) => 1 + Math.floor(rng() * n);
  return [pick(3), pick(3), pick(90), pick(72)];
}

/** The mask and pad-key variants, as options of the op and of the reference. */
const MASKS = [
  { name: "bidirectional", causal: false, padded: false },
  { name: "causal", causal: true, padded: false },
  { name: "bidirectional with pad keys", causal: false, padded: true },
  { name: "causal with pad keys", causal: true, padded: true },
];

function options(causal: boolean, pad?: Int32Array, extra: Partial<AttentionOptions> = {}) {
  return { mask: causal ? "causal" : "none", keyPadding: pad, fused: true, ...extra } as const;
}

Deno.test("fused attention: forward and gradients match float64 and finite differences", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const shape of [...SHAPES, randomShape(rng)]) {
    const [batch, heads, length, dim] = shape;
    for (const m of MASKS) {
      const pad = m.padded ? padMask(rng, batch, length) : undefined;
      const problem: AttentionProblem = {
        batch,
        heads,
        length,
        dim,
        causal: m.causal,
        keyPadding: pad,
        scale: 1 / Math.sqrt(dim),
      };
      await attentionGradCheck({
        what: `fused attention ${m.name} [${shape}] seed ${seed}`,
        problem,
        shape,
        gpu: (q, k, v) => attention(q, k, v, options(m.causal, pad)),
        rng,
        probes: 6,
      });
    }
  }
});

Deno.test("fused attention: leading pads past a block of rows (closed causal rows in two blocks)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [4, 2, 100, 4];
  const [batch, heads, length, dim] = shape;
  // Sequence b starts with lead[b] pads: its first lead[b] causal rows see only masked keys.
  const lead = [0, 70, 100, 1 + Math.floor(rng() * 99)];
  const pad = Int32Array.from(
    { length: batch * length },
    (_, i) => i % length < lead[Math.floor(i / length)] ? 1 : 0,
  );
  for (const causal of [true, false]) {
    const problem = { batch, heads, length, dim, causal, keyPadding: pad, scale: 0.29 };
    await attentionGradCheck({
      what: `fused attention leading pads ${lead} causal ${causal} seed ${seed}`,
      problem,
      shape,
      gpu: (q, k, v) =>
        attention(
          q,
          k,
          v,
          options(causal, undefined, {
            keyPadding: Tensor.from(pad, [batch, length]),
            scale: 0.29,
          }),
        ),
      rng,
      probes: 6,
    });
  }
});

Deno.test("fused attention: dropout equals the reference fed the unfused op's mask", async () => {
  await attentionDropoutCheck("fused attention", { fused: true }, 6);
});

/** The output and the gradients of q, k and v of Σ out ⊙ w, read back. */
async function outputAndGrads(
  inputs: Float32Array[],
  shape: number[],
  w: Float32Array,
  o: AttentionOptions,
): Promise<Float32Array[]> {
  const tensors = tidy(() => {
    const [q, k, v] = inputs.map((x) => requireGrad(Tensor.from(x, shape)));
    const out = attention(q, k, v, o);
    backward(sumAll(mul(out, Tensor.from(w, shape))));
    return [out, q.grad!, k.grad!, v.grad!];
  });
  const host = await readTensors(tensors);
  for (const t of tensors) t.dispose();
  return host as Float32Array[];
}

Deno.test("fused and unfused attention agree to rounding under the same generator state", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const names = ["output", "dq", "dk", "dv"];
  // [2, 2, 130, 32]: SASRec's head size over three blocks of 64 queries, the last partial.
  for (const shape of [[2, 2, 9, 5], [3, 1, 70, 8], [2, 2, 130, 32], randomShape(rng)]) {
    const [batch, , length] = shape;
    const n = shape.reduce((a, b) => a * b, 1);
    const inputs = [0, 1, 2].map(() => Float32Array.from(randn(rng, n)));
    const w = Float32Array.from(randn(rng, n));
    const [q64, k64, v64, w64] = [...inputs, w].map((x) => Float64Array.from(x));
    const inputs64 = [q64, k64, v64] as const;
    const pad = padMask(rng, batch, length);
    for (const m of MASKS) {
      for (const p of [0, 0.4]) {
        const run = (fused: boolean) =>
          outputAndGrads(inputs, shape, w, {
            ...options(m.causal, m.padded ? pad : undefined),
            dropout: { p, rng: new DropoutRng(seed, 3) },
            fused,
          });
        const [fused, unfused] = [await run(true), await run(false)];
        // Measured against the sums of absolute terms: where a gradient cancels (a query with
        // one key has dq = 0 but for rounding), both forms hold only their own rounding.
        const masks = { causal: m.causal, keyPadding: m.padded ? pad : undefined };
        const counter = new DropoutRng(seed, 3).state().counter;
        const problem = dropoutProblem(shape, masks, seed, counter, p);
        const magnitudes = attentionTermMagnitudes(...inputs64, problem, w64);
        for (let i = 0; i < 4; i++) {
          assertScaled(
            fused[i],
            unfused[i],
            magnitudes[i],
            2e-6,
            `${names[i]} ${m.name} p ${p} [${shape}]: fused vs unfused, seed ${seed}`,
          );
        }
      }
    }
  }
});

Deno.test("attention's default form: unfused, bit for bit, unless its probabilities outgrow a binding", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [2, 2, 37, 16];
  const n = shape.reduce((a, b) => a * b, 1);
  const inputs = [0, 1, 2].map(() => Float32Array.from(randn(rng, n)));
  const w = Float32Array.from(randn(rng, n));
  const pad = padMask(rng, 2, 37);
  const run = (fused?: boolean) =>
    outputAndGrads(inputs, shape, w, {
      mask: "causal",
      keyPadding: pad,
      dropout: { p: 0.3, rng: new DropoutRng(seed, 5) },
      ...(fused === undefined ? {} : { fused }),
    });
  const [byDefault, unfused] = [await run(), await run(false)];
  for (let i = 0; i < 4; i++) {
    assertEquals(byDefault[i], unfused[i], `output/gradient ${i}, seed ${seed}`);
  }
  const limit = runtime().info.maxBindingBytes;
  assertEquals(fusedByDefault(Math.floor(limit / 4), 32), false);
  assertEquals(fusedByDefault(Math.floor(limit / 4) + 1, 32), true);
  assertEquals(fusedByDefault(Math.floor(limit / 4) + 1, FLASH_ATTENTION_MAX_DIM + 1), false);
});

Deno.test("fused attention repeats bit for bit; eval and p = 0 take no counter", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [2, 2, 75, 6];
  const n = shape.reduce((a, b) => a * b, 1);
  const inputs = [0, 1, 2].map(() => Float32Array.from(randn(rng, n)));
  const w = Float32Array.from(randn(rng, n));
  const pad = padMask(rng, 2, 75);
  const names = ["output", "dq", "dk", "dv"];
  const withDropout = () => options(true, pad, { dropout: { p: 0.5, rng: new DropoutRng(seed) } });
  const [a, b] = [
    await outputAndGrads(inputs, shape, w, withDropout()),
    await outputAndGrads(inputs, shape, w, withDropout()),
  ];
  for (let i = 0; i < 4; i++) {
    assertEquals(bits(a[i]), bits(b[i]), `${names[i]}, seed ${seed}`);
  }
  const gen = new DropoutRng(seed);
  const plain = await outputAndGrads(inputs, shape, w, options(true, pad));
  for (const dropout of [{ p: 0, rng: gen }, { p: 0.5, rng: gen, training: false }]) {
    const got = await outputAndGrads(inputs, shape, w, options(true, pad, { dropout }));
    assertEquals(bits(got[0]), bits(plain[0]), `output, seed ${seed}`);
  }
  assertEquals(gen.state().counter, 0, `p = 0 and eval take no counter, seed ${seed}`);
  assert(relError(a[0], plain[0]) > 0.1, `dropout p = 0.5 changed the output, seed ${seed}`);
});

// 66,000 sequences of 2 keys, one block each: 66,000 workgroups, a 2-D grid.
Deno.test("fused attention: more than 65,535 workgroups (2-D grid)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shape = [66000, 1, 2, 1];
  const [batch, heads, length, dim] = shape;
  const pad = padMask(rng, batch, length);
  const problem = { batch, heads, length, dim, causal: true, keyPadding: pad, scale: 1 };
  await attentionGradCheck({
    what: `fused attention 2-D grid [${shape}] seed ${seed}`,
    problem,
    shape,
    gpu: (q, k, v) => attention(q, k, v, options(true, pad)),
    rng,
    probes: 0,
  });
});

Deno.test("fused attention: a head size past the fused kernels and too many dropout indices", () => {
  const t = (shape: number[]) =>
    Tensor.from(new Float32Array(shape.reduce((a, b) => a * b)), shape);
  const wide = t([1, 1, 2, FLASH_ATTENTION_MAX_DIM + 1]);
  assertThrows(
    () => attention(wide, wide, wide, options(true)),
    RangeError,
    `attention: the fused form takes a head size d ≤ ${FLASH_ATTENTION_MAX_DIM}, got q ` +
      `[1, 1, 2, ${FLASH_ATTENTION_MAX_DIM + 1}]; pass fused: false`,
  );
  // 1,025 × 2,048² probabilities exceed the u32 index of the dropout hash.
  const many = t([1025, 1, 2048, 1]);
  const gen = new DropoutRng(1);
  assertThrows(
    () => attention(many, many, many, options(false, undefined, { dropout: { p: 0.1, rng: gen } })),
    RangeError,
    "attention: dropout indexes the 4299161600 probabilities of q [1025, 1, 2048, 1] by a u32",
  );
  many.dispose();
  wide.dispose();
});

Deno.test("fused attention plans fit 32 KB, staging the own rows where they fit", () => {
  for (const kernel of ["forward", "query grads", "key grads"] as const) {
    for (const dim of [1, 5, 32, 33, 64, 65, 100, 128]) {
      const plan = flashPlan(kernel, dim, 32768);
      const what = `${kernel} d ${dim}: ${JSON.stringify(plan)}`;
      assert(plan.bytes <= 32768, `${what} exceeds 32 KB`);
      assertEquals(plan.ownGroups * plan.groups, FLASH_INVOCATIONS, what);
      assertEquals(plan.perInvocation * plan.groups, plan.tile, what);
      assert(plan.columns * plan.groups >= plan.dim4, `${what}: columns miss part of a row`);
      assertEquals(plan.stageOwn, !(dim === 128 && kernel !== "forward"), what);
    }
  }
  assert(flashPlan("key grads", 128, 49152).stageOwn, "d 128 stages its keys with 48 KB");
  assertThrows(
    () => flashPlan("key grads", 128, 8192),
    RangeError,
    "attention: the fused key grads kernel for head size 128 needs",
  );
});
