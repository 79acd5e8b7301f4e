import { assertEquals, assertThrows } from "@std/assert";
import {
  gru,
  type GruInputs,
  type GruProblem,
  gruReference,
  gruReferenceBackward,
  type GruWeights,
  noGrad,
  readTensors,
  runtime,
  Tensor,
  tidy,
} from "../ops/mod.ts";
import { freshSeed, gradCheck, type GradInput, makeRng, randn, uniform } from "./util.ts";

interface Case {
  /** batch, length, input, hidden */
  shape: [number, number, number, number];
  bias: boolean;
  h0: boolean;
}

/** Random inputs of a case: weights and biases U(±1/√H) as PyTorch initialises them. */
function draw(c: Case, rng: () => number): GruInputs {
  const [batch, length, input, hidden] = c.shape;
  const k = 1 / Math.sqrt(hidden);
  return {
    x: randn(rng, batch * length * input),
    weightIh: uniform(rng, 3 * hidden * input, -k, k),
    weightHh: uniform(rng, 3 * hidden * hidden, -k, k),
    biasIh: c.bias ? uniform(rng, 3 * hidden, -k, k) : undefined,
    biasHh: c.bias ? uniform(rng, 3 * hidden, -k, k) : undefined,
    h0: c.h0 ? randn(rng, batch * hidden, 0.5) : undefined,
  };
}

/** The inputs of a case in gradCheck's order: x, weightIh, weightHh, [biasIh, biasHh], [h0]. */
function ordered(c: Case, x: GruInputs): GradInput[] {
  const [batch, length, input, hidden] = c.shape;
  const list: GradInput[] = [
    { data: x.x, shape: [batch, length, input] },
    { data: x.weightIh, shape: [3 * hidden, input] },
    { data: x.weightHh, shape: [3 * hidden, hidden] },
  ];
  if (x.biasIh && x.biasHh) {
    list.push({ data: x.biasIh, shape: [3 * hidden] }, { data: x.biasHh, shape: [3 * hidden] });
  }
  if (x.h0) list.push({ data: x.h0, shape: [batch, hidden] });
  return list;
}

/** Splits gradCheck's flat list back into named inputs. */
function named<T>(c: Case, xs: T[]) {
  const [x, weightIh, weightHh, ...rest] = xs;
  const biasIh = c.bias ? rest[0] : undefined;
  const biasHh = c.bias ? rest[1] : undefined;
  const h0 = c.h0 ? rest[c.bias ? 2 : 0] : undefined;
  return { x, weightIh, weightHh, biasIh, biasHh, h0 };
}

async function check(c: Case, seed: number, rng: () => number, probes: number) {
  const [batch, length, input, hidden] = c.shape;
  const p: GruProblem = { batch, length, input, hidden };
  await gradCheck({
    what: `gru [${c.shape}] bias=${c.bias} h0=${c.h0} seed ${seed}`,
    inputs: ordered(c, draw(c, rng)),
    gpu: (ts) => {
      const t = named(c, ts);
      const w: GruWeights = { weightIh: t.weightIh, weightHh: t.weightHh };
      if (t.biasIh && t.biasHh) Object.assign(w, { biasIh: t.biasIh, biasHh: t.biasHh });
      return gru(t.x, w, { h0: t.h0 }).output;
    },
    ref: (xs) => gruReference(p, named(c, xs)),
    refGrad: (xs, g) => {
      const d = gruReferenceBackward(p, named(c, xs), g);
      return [
        d.x,
        d.weightIh,
        d.weightHh,
        ...(c.bias ? [d.biasIh!, d.biasHh!] : []),
        ...(
          c.h0 ? [d.h0!] : []
        ),
      ];
    },
    rng,
    probes,
  });
}

Deno.test("gru: forward and every gradient match float64 and finite differences", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const cases: Case[] = [
    { shape: [1, 1, 3, 5], bias: true, h0: true },
    { shape: [2, 1, 4, 5], bias: false, h0: false },
    { shape: [1, 9, 7, 5], bias: true, h0: false },
    { shape: [3, 6, 8, 33], bias: true, h0: true },
    { shape: [2, 5, 40, 33], bias: false, h0: true },
    { shape: [2, 4, 16, 64], bias: true, h0: true },
  ];
  for (const c of cases) await check(c, seed, rng, 12);
});

Deno.test("gru: wide layers (H 256, and 300 with two units per invocation)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  await check({ shape: [2, 3, 12, 256], bias: true, h0: true }, seed, rng, 4);
  await check({ shape: [1, 3, 10, 300], bias: false, h0: true }, seed, rng, 4);
});

Deno.test("gru: gradients flow through the last state", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { shape: [2, 4, 3, 6], bias: true, h0: true };
  const [batch, length, input, hidden] = c.shape;
  const p: GruProblem = { batch, length, input, hidden };
  await gradCheck({
    what: `gru last [${c.shape}] seed ${seed}`,
    inputs: ordered(c, draw(c, rng)),
    gpu: (ts) => {
      const t = named(c, ts);
      const w = { weightIh: t.weightIh, weightHh: t.weightHh, biasIh: t.biasIh, biasHh: t.biasHh };
      return gru(t.x, w, { h0: t.h0 }).last;
    },
    ref: (xs) => {
      const out = gruReference(p, named(c, xs));
      const last = new Float64Array(batch * hidden);
      for (let b = 0; b < batch; b++) {
        last.set(
          out.subarray(((b + 1) * length - 1) * hidden, (b + 1) * length * hidden),
          b * hidden,
        );
      }
      return last;
    },
    rng,
    probes: 8,
  });
});

Deno.test("gru: the last state is the output's last step, and noGrad gives the same output", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { shape: [3, 7, 6, 11], bias: true, h0: true };
  const [batch, length, , hidden] = c.shape;
  const d = draw(c, rng);
  const [out, last, plain] = await tidy(() => {
    const t = ordered(c, d).map((g) => Tensor.from(Float32Array.from(g.data), g.shape));
    const n = named(c, t);
    const w = { weightIh: n.weightIh, weightHh: n.weightHh, biasIh: n.biasIh, biasHh: n.biasHh };
    const r = gru(n.x, w, { h0: n.h0 });
    const again = noGrad(() => gru(n.x, w, { h0: n.h0 }).output);
    return readTensors([r.output, r.last, again]);
  });
  const want: number[] = [];
  for (let b = 0; b < batch; b++) {
    want.push(...out.subarray(((b + 1) * length - 1) * hidden, (b + 1) * length * hidden));
  }
  assertEquals([...last], want, `last state, seed ${seed}`);
  assertEquals([...plain], [...out], `noGrad output, seed ${seed}`);
});

Deno.test("gru: bad shapes name the op and the shapes before any dispatch", () => {
  tidy(() => {
    const x = Tensor.from(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const wih = Tensor.from(new Float32Array(15 * 4), [15, 4]);
    const whh = Tensor.from(new Float32Array(15 * 5), [15, 5]);
    const before = runtime().dispatchCount;
    assertThrows(
      () => gru(Tensor.from(new Float32Array(12), [3, 4]), { weightIh: wih, weightHh: whh }),
      RangeError,
      "gru: x must be a non-empty (batch, length, input) tensor; got x [3, 4] f32",
    );
    assertThrows(
      () => gru(x, { weightIh: Tensor.from(new Float32Array(15 * 3), [15, 3]), weightHh: whh }),
      RangeError,
      "gru: weightIh must be (3·hidden 15, input 4); got x [2, 3, 4] f32, weightIh [15, 3] f32",
    );
    assertThrows(
      () => gru(x, { weightIh: wih, weightHh: Tensor.from(new Float32Array(16 * 5), [16, 5]) }),
      RangeError,
      "gru: weightHh must be (3·hidden, hidden)",
    );
    assertThrows(
      () => gru(x, { weightIh: wih, weightHh: whh, biasHh: Tensor.from(new Float32Array(5)) }),
      RangeError,
      "gru: biasHh must be (3·hidden 15); got",
    );
    assertThrows(
      () =>
        gru(x, { weightIh: wih, weightHh: whh }, { h0: Tensor.from(new Float32Array(5), [1, 5]) }),
      RangeError,
      "gru: h0 must be (batch 2, hidden 5); got x [2, 3, 4] f32",
    );
    const wide = 513;
    assertThrows(
      () =>
        gru(Tensor.from(new Float32Array(4), [1, 1, 4]), {
          weightIh: Tensor.from(new Float32Array(3 * wide * 4), [3 * wide, 4]),
          weightHh: Tensor.from(new Float32Array(3 * wide * wide), [3 * wide, wide]),
        }),
      RangeError,
      "gru: hidden 513 exceeds the largest supported, 512",
    );
    assertEquals(runtime().dispatchCount, before);
  });
});
