import { assert, assertEquals, assertThrows } from "@std/assert";
import { Adam, type AdamOptions } from "../ops/training/optimizer.ts";
import { globalGradNorm } from "../ops/training/grad_norm.ts";
import { readTensors, Tensor } from "../ops/core/tensor.ts";
import { type AdamRefParam, adamStepRef, globalNormRef } from "./optimizer_reference.ts";
import { assertClose, freshSeed, makeRng, randn } from "./util.ts";

// Thirteen parameters: more than one Adam dispatch updates (eleven), of awkward sizes, one over
// several norm blocks of 4,096 values.
const SHAPES = [[1], [37], [64, 33], [5, 7, 3], [300, 70], [2], [3], [5], [7], [11], [13], [17], [
  19,
]];

function f32(v: Float64Array): Float64Array {
  return v.map(Math.fround);
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/**
 * ‖got − want‖ ≤ rel · ‖want‖ + abs, each value's difference first reduced by its own `slack`
 * (never below zero).
 */
function assertNear(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rel: number,
  abs: number,
  what: string,
  slack?: ArrayLike<number>,
) {
  const diff = Array.from(want, (w, i) => Math.max(0, Math.abs(got[i] - w) - (slack?.[i] ?? 0)));
  const err = norm(diff), bound = rel * norm(want) + abs;
  assert(err <= bound, `${what}: error ${err.toExponential(3)} > ${bound.toExponential(3)}`);
}

function setGrad(p: Tensor, g: Float64Array | null): void {
  p.grad?.dispose();
  p.grad = g ? Tensor.from(Float32Array.from(g), p.shape) : null;
}

async function runAgainstReference(what: string, rng: () => number, options: AdamOptions) {
  const o = {
    lr: options.lr ?? 1e-3,
    beta1: options.betas?.[0] ?? 0.9,
    beta2: options.betas?.[1] ?? 0.999,
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? 0,
    maxGradNorm: options.maxGradNorm,
  };
  // Parameters of size ~0.1 so the f32 spacing of x (≤ 1e-8) is far below the updates.
  const ref: AdamRefParam[] = SHAPES.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    return { x: f32(randn(rng, n, 0.1)), m: new Float64Array(n), v: new Float64Array(n), step: 0 };
  });
  const start = ref.map((p) => Float64Array.from(p.x));
  const params = ref.map((p, k) => Tensor.from(Float32Array.from(p.x), SHAPES[k]));
  const adam = new Adam(params, options);
  let norms: number[] = [];
  for (let step = 0; step < 6; step++) {
    // Parameter 1 has no gradient at step 2 (skipped, keeps its step count).
    const grads = ref.map((p, k) => (k === 1 && step === 2 ? null : f32(randn(rng, p.x.length))));
    norms = [globalNormRef(grads)];
    params.forEach((p, k) => setGrad(p, grads[k]));
    adam.step();
    adamStepRef(ref, grads, o);
  }
  const state = adam.state();
  const host = await readTensors([
    ...params,
    ...state.expAvg.map((t) => t!),
    ...state.expAvgSq.map((t) => t!),
  ]);
  ref.forEach((p, k) => {
    const n = SHAPES.length;
    // The change of each parameter (not its value, which would hide errors in the update). Storing
    // x in f32 costs up to half an ulp per step, which a one-value parameter cannot average out.
    const delta = host[k].map((v, i) => v - start[k][i]);
    const xFloor = 6 * 2 ** -24 * norm(p.x);
    // Where a value's gradient stays near zero, float32 rounding of that gradient moves its update
    // (±lr hinges on the sign): each value may differ by the reference's drift bound for it.
    assertNear(
      delta,
      p.x.map((v, i) => v - start[k][i]),
      1e-5,
      xFloor,
      `${what}: Δx of parameter ${k}`,
      p.drift,
    );
    // m averages gradients of both signs and may cancel far below their size (~1): allow an f32
    // rounding of the gradients per value.
    assertNear(
      host[n + k],
      p.m,
      1e-5,
      1e-6 * Math.sqrt(p.m.length),
      `${what}: exp_avg of parameter ${k}`,
    );
    assertClose(host[2 * n + k], p.v, 1e-5, `${what}: exp_avg_sq of parameter ${k}`);
  });
  assertEquals(state.steps, SHAPES.map((_, k) => (k === 1 ? 5 : 6)), `${what}: step counts`);
  if (o.maxGradNorm !== undefined) {
    const clipping = o.maxGradNorm < norms[0];
    assert(clipping === (options.maxGradNorm! < 1), `${what}: the test meant clipping ${clipping}`);
  }
  adam.dispose();
}

Deno.test("Adam: matches a float64 torch.optim.Adam over 6 steps (decay, clipping on/off)", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const cases: [string, AdamOptions][] = [
    ["defaults", {}],
    ["lr 1e-2, betas (0.8, 0.99), eps 1e-6", { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6 }],
    ["weight decay 0.1", { lr: 1e-2, weightDecay: 0.1 }],
    // Total gradient norm ≈ 50: 0.5 clips (coefficient ≈ 0.01), 1e6 does not.
    ["clipping active", { lr: 1e-2, weightDecay: 0.05, maxGradNorm: 0.5 }],
    ["clipping inactive", { lr: 1e-2, weightDecay: 0.05, maxGradNorm: 1e6 }],
  ];
  for (const [name, options] of cases) {
    await runAgainstReference(`Adam ${name} seed ${seed}`, rng, options);
  }
});

Deno.test("globalGradNorm: L2 norm over all gradients, nulls skipped, large tensors", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  // 40 tensors: more than one sum-of-squares dispatch takes (31).
  const shapes = [[1], [1100, 1000], [3], [4097], ...Array.from({ length: 36 }, (_, k) => [k + 1])];
  const grads = shapes.map((
    s,
    k,
  ) => (k === 2 ? null : f32(randn(rng, s.reduce((a, b) => a * b, 1)))));
  const params = shapes.map((s) => Tensor.from(new Float32Array(s.reduce((a, b) => a * b, 1)), s));
  params.forEach((p, k) => setGrad(p, grads[k]));
  const norm = globalGradNorm(params);
  assertEquals(norm.shape, []);
  const [got] = await readTensors([norm]);
  assertClose(got, [globalNormRef(grads)], 1e-5, `globalGradNorm seed ${seed}`);
  const none = await globalGradNorm([Tensor.from([1, 2])]).item();
  assertEquals(none, 0);
});

Deno.test("Adam: state() and loadState() resume bit for bit", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shapes = [[3, 5], [17]];
  const init = shapes.map((s) => Float32Array.from(randn(rng, s.reduce((a, b) => a * b, 1), 0.1)));
  const grads = Array.from(
    { length: 5 },
    () => shapes.map((s) => f32(randn(rng, s.reduce((a, b) => a * b, 1)))),
  );
  const options: AdamOptions = { lr: 1e-2, weightDecay: 0.01, maxGradNorm: 1 };
  const params = shapes.map((s, k) => Tensor.from(init[k], s));
  const adam = new Adam(params, options);
  const run = (opt: Adam, ps: Tensor[], from: number) => {
    for (let s = from; s < 5; s++) {
      ps.forEach((p, k) => setGrad(p, grads[s][k]));
      opt.step();
    }
  };
  run(adam, params, 0);
  const straight = await readTensors(params);
  // Again, stopping after 2 steps to checkpoint into a fresh optimizer.
  const again = shapes.map((s, k) => Tensor.from(init[k], s));
  const first = new Adam(again, options);
  for (let s = 0; s < 2; s++) {
    again.forEach((p, k) => setGrad(p, grads[s][k]));
    first.step();
  }
  const saved = first.state();
  first.dispose();
  const resumed = new Adam(again, options);
  resumed.loadState(saved);
  saved.expAvg.forEach((t) => t?.dispose());
  run(resumed, again, 2);
  const got = await readTensors(again);
  got.forEach((g, k) => assertEquals([...g], [...straight[k]], `parameter ${k}, seed ${seed}`));
});

Deno.test("Adam: bad input names the optimizer and the value", () => {
  const p = Tensor.from([1, 2, 3]);
  assertThrows(() => new Adam([p, p]), RangeError, "Adam: parameter 1 [3] f32 is listed twice");
  assertThrows(
    () => new Adam([Tensor.from(new Int32Array(2))]),
    TypeError,
    "Adam: parameter 0 [2] i32 is not f32",
  );
  assertThrows(() => new Adam([p], { lr: -1 }), RangeError, "Adam: invalid lr -1");
  assertThrows(() => new Adam([p], { betas: [0.9, 1] }), RangeError, "Adam: invalid betas[1] 1");
  assertThrows(() => new Adam([p], { maxGradNorm: 0 }), RangeError, "Adam: invalid maxGradNorm 0");
  const adam = new Adam([p]);
  assertThrows(
    () => adam.loadState({ steps: [], expAvg: [], expAvgSq: [] }),
    RangeError,
    "Adam.loadState: the state has 0 parameters, the optimizer 1",
  );
  assertThrows(
    () => adam.loadState({ steps: [1], expAvg: [Tensor.from([1, 2])], expAvgSq: [null] }),
    RangeError,
    "Adam.loadState: moment [2] f32 does not match parameter 0 [3] f32",
  );
});
