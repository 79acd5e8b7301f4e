import { assertEquals, assertThrows } from "@std/assert";
import { causalConv1d } from "../ops/sequence/causal_conv1d.ts";
import { backward, mul, requireGrad, runtime, sumAll, Tensor } from "../ops/mod.ts";
import { causalConvGradRef, causalConvRef, type ConvProblem } from "./causal_conv1d_reference.ts";
import { freshSeed, gradCheck, makeRng, randn, uniform } from "./util.ts";

/** Non-decreasing segment ids per row: runs of length 1 and longer, as packing produces. */
function packedSegments(rng: () => number, batch: number, length: number): Int32Array {
  const seq = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    let id = 0;
    let left = 0;
    for (let t = 0; t < length; t++) {
      if (left === 0) {
        id++;
        left = rng() < 0.35 ? 1 : 1 + Math.floor(rng() * 6);
      }
      seq[b * length + t] = id;
      left--;
    }
  }
  return seq;
}

interface Case {
  shape: [number, number, number]; // batch, channels, length
  width: number;
  silu: boolean;
  bias: boolean;
  segments?: "packed" | "revisit";
}

async function check(
  c: Case,
  channelsLast: boolean,
  seed: number,
  rng: () => number,
  probes = 12,
) {
  const [batch, channels, length] = c.shape;
  let seq: Int32Array | undefined;
  if (c.segments === "packed") seq = packedSegments(rng, batch, length);
  if (c.segments === "revisit") {
    // Ids that come back (0 1 1 0 0 0 2 …): a tap must not jump over the change back to 0.
    seq = Int32Array.from({ length: batch * length }, (_, i) => [0, 1, 1, 0, 0, 0, 2][i % 7]);
  }
  const p: ConvProblem = {
    batch,
    channels,
    length,
    width: c.width,
    silu: c.silu,
    channelsLast,
    seq,
  };
  const layout = channelsLast ? "bld" : "bdl";
  const xShape = channelsLast ? [batch, length, channels] : [batch, channels, length];
  const seqT = seq ? Tensor.from(seq, [batch, length]) : undefined;
  const what = `causalConv1d x[${c.shape}] ${layout} w=${c.width} silu=${c.silu} ` +
    `bias=${c.bias} seg=${c.segments ?? "none"} seed ${seed}`;
  await gradCheck({
    what,
    inputs: [
      { data: randn(rng, batch * channels * length), shape: xShape },
      { data: randn(rng, channels * c.width, 0.6), shape: [channels, c.width] },
      ...(c.bias ? [{ data: randn(rng, channels, 0.5), shape: [channels] }] : []),
    ],
    gpu: ([x, w, b]) =>
      causalConv1d(x, w, b, { activation: c.silu ? "silu" : null, seqIdx: seqT, layout }),
    ref: ([x, w, b]) => causalConvRef(p, x, w, b),
    refGrad: ([x, w, b], g) => {
      const [dx, dw, db] = causalConvGradRef(p, x, w, b, g);
      return c.bias ? [dx, dw, db] : [dx, dw];
    },
    rng,
    probes,
  });
  seqT?.dispose();
}

const CASES: Case[] = [
  { shape: [1, 1, 1], width: 4, silu: true, bias: true },
  { shape: [2, 3, 7], width: 2, silu: false, bias: true },
  { shape: [3, 5, 13], width: 3, silu: true, bias: false },
  { shape: [2, 37, 50], width: 4, silu: true, bias: true },
  { shape: [1, 70, 29], width: 4, silu: false, bias: false },
  // Many positions: several partial-sum rows in the backward.
  { shape: [2, 3, 2503], width: 4, silu: true, bias: true },
  { shape: [3, 6, 41], width: 4, silu: true, bias: true, segments: "packed" },
  { shape: [2, 4, 23], width: 2, silu: false, bias: true, segments: "packed" },
  { shape: [1, 3, 30], width: 3, silu: true, bias: true, segments: "revisit" },
];

for (const channelsLast of [false, true]) {
  Deno.test(
    `causalConv1d ${channelsLast ? "bld" : "bdl"}: forward and gradients match float64 ` +
      `(widths 2–4, SiLU, bias, packed segments)`,
    async () => {
      const seed = freshSeed();
      const rng = makeRng(seed);
      for (const c of CASES) await check(c, channelsLast, seed, rng);
    },
  );
}

Deno.test("causalConv1d: a segment of length 1 sees only its own token", async () => {
  // Row [a | b | c c c] with width 4: out at a segment start is bias + w[3]·x.
  const x = Tensor.from([1, 2, 3, 4, 5], [1, 1, 5]);
  const w = Tensor.from([10, 100, 1000, 1], [1, 4]);
  const seq = Tensor.from(new Int32Array([7, 8, 9, 9, 9]), [1, 5]);
  const out = await causalConv1d(x, w, undefined, { seqIdx: seq }).toArray();
  assertEquals([...out], [1, 2, 3, 4 + 1000 * 3, 5 + 1000 * 4 + 100 * 3]);
});

Deno.test("causalConv1d: bad input names the op and the shapes before any dispatch", () => {
  const x = Tensor.from(new Float32Array(2 * 3 * 5), [2, 3, 5]);
  const w = Tensor.from(new Float32Array(3 * 4), [3, 4]);
  const before = runtime().dispatchCount;
  assertThrows(
    () => causalConv1d(x, Tensor.from(new Float32Array(15), [3, 5])),
    RangeError,
    "causalConv1d: weight must be (channels 3, width 2..4), got [3, 5] f32",
  );
  assertThrows(
    () => causalConv1d(x, w, undefined, { layout: "bld" }),
    RangeError,
    "weight must be (channels 5, width 2..4), got [3, 4] f32 for x [2, 3, 5] f32 (layout bld)",
  );
  assertThrows(
    () => causalConv1d(x, w, Tensor.from([1, 2])),
    RangeError,
    "causalConv1d: bias must be (3), got [2] f32",
  );
  assertThrows(
    () => causalConv1d(x, w, undefined, { seqIdx: Tensor.from(new Float32Array(10), [2, 5]) }),
    TypeError,
    "causalConv1d: expected a i32 tensor",
  );
  assertThrows(
    () => causalConv1d(x, w, undefined, { seqIdx: Tensor.from(new Int32Array(6), [2, 3]) }),
    RangeError,
    "seqIdx must be i32 (batch 2, length 5), got [2, 3] i32",
  );
  assertThrows(
    () => causalConv1d(Tensor.from([1, 2]), w),
    RangeError,
    "causalConv1d: x must be a non-empty (batch, channels, length) tensor, got [2] f32",
  );
  assertEquals(runtime().dispatchCount, before);
});

/**
 * SSD4Rec's packed ids (`item_idx`): one row, segment b holds the b-th history, ids 0, 1, 2, …
 * Lengths 1, 2 and 3 come first, then random lengths up to 40 (the last cut to fit).
 */
function ssd4recSeqIdx(rng: () => number, length: number): Int32Array {
  const seq = new Int32Array(length);
  const fixed = [1, 2, 3, 1, 1, 2, 3, 3, 1, 2];
  let id = 0, t = 0;
  while (t < length) {
    const n = Math.min(length - t, fixed[id] ?? 1 + Math.floor(rng() * 40));
    seq.fill(id, t, t + n);
    t += n;
    id++;
  }
  return seq;
}

/** A packed problem of the rule below: batch 1, channels-last, one segment id per position. */
interface SeqIdxRule {
  length: number;
  channels: number;
  seq: Int32Array;
}

/** Width of the SSD4Rec short convolution. */
const SSD4REC_WIDTH = 4;

/**
 * The spec's rule written out directly: pre[t, c] = b[c] + Σ_{w=0..3} W[c, w] · x[t − 3 + w, c]
 * · 1[seq[t − 3 + w] == seq[t]], taps before t = 0 zero.
 */
function seqIdxRulePre(r: SeqIdxRule, x: Float64Array, w: Float64Array, b: Float64Array) {
  const pre = new Float64Array(r.length * r.channels);
  for (let t = 0; t < r.length; t++) {
    for (let c = 0; c < r.channels; c++) {
      let acc = b[c];
      for (let k = 0; k < SSD4REC_WIDTH; k++) {
        const s = t - (SSD4REC_WIDTH - 1) + k;
        if (s >= 0 && r.seq[s] === r.seq[t]) {
          acc += w[c * SSD4REC_WIDTH + k] * x[s * r.channels + c];
        }
      }
      pre[t * r.channels + c] = acc;
    }
  }
  return pre;
}

const sigmoid64 = (v: number) => 1 / (1 + Math.exp(-v));

/** Gradients [dx, dW, db] of Σ g ⊙ SiLU(pre) under the same rule. */
function seqIdxRuleGrad(
  r: SeqIdxRule,
  x: Float64Array,
  w: Float64Array,
  b: Float64Array,
  g: Float64Array,
): Float64Array[] {
  const pre = seqIdxRulePre(r, x, w, b);
  const dx = new Float64Array(x.length), dw = new Float64Array(w.length);
  const db = new Float64Array(r.channels);
  for (let t = 0; t < r.length; t++) {
    for (let c = 0; c < r.channels; c++) {
      const a = pre[t * r.channels + c], sg = sigmoid64(a);
      const ga = g[t * r.channels + c] * sg * (1 + a * (1 - sg));
      db[c] += ga;
      for (let k = 0; k < SSD4REC_WIDTH; k++) {
        const s = t - (SSD4REC_WIDTH - 1) + k;
        if (s < 0 || r.seq[s] !== r.seq[t]) continue;
        dw[c * SSD4REC_WIDTH + k] += ga * x[s * r.channels + c];
        dx[s * r.channels + c] += ga * w[c * SSD4REC_WIDTH + k];
      }
    }
  }
  return [dx, dw, db];
}

Deno.test(
  "causalConv1d: SSD4Rec packed shapes (bld, batch 1, 640 and 37 channels, width 4, seqIdx) " +
    "follow causal-conv1d's seq_idx rule, forward and gradients",
  async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    // 640 = d_inner 512 + B 64 + C 64 (x, B and C are all convolved); 37 is a small odd count.
    for (const [channels, length] of [[640, 301], [37, 347]]) {
      const seq = ssd4recSeqIdx(rng, length);
      const r: SeqIdxRule = { length, channels, seq };
      const seqT = Tensor.from(seq, [1, length]);
      await gradCheck({
        what: `causalConv1d SSD4Rec x[1, ${length}, ${channels}] bld silu seqIdx ` +
          `(${seq[length - 1] + 1} segments) seed ${seed}`,
        inputs: [
          { data: randn(rng, length * channels), shape: [1, length, channels] },
          // PyTorch's default Conv1d init for fan-in 4: U(−0.5, 0.5) weights and bias.
          { data: uniform(rng, channels * SSD4REC_WIDTH, -0.5, 0.5), shape: [channels, 4] },
          { data: uniform(rng, channels, -0.5, 0.5), shape: [channels] },
        ],
        gpu: ([x, w, b]) =>
          causalConv1d(x, w, b, { activation: "silu", seqIdx: seqT, layout: "bld" }),
        ref: ([x, w, b]) => seqIdxRulePre(r, x, w, b).map((v) => v * sigmoid64(v)),
        refGrad: ([x, w, b], g) => seqIdxRuleGrad(r, x, w, b, g),
        rng,
        probes: 12,
      });
      seqT.dispose();
    }
  },
);

Deno.test(
  "causalConv1d: long packed rows (70,001 positions of 36 channels-last channels, 2 × 9,001 of " +
    "33 channels-first) match float64 through hundreds of partial rows of longer runs, and the " +
    "weight gradient repeats bit for bit",
  async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    // Channels-last, 36 channels: 9 vec4 groups in workgroups of 16 group lanes, 7 idle; 70,001
    // positions: runs longer than the shortest and a ragged last workgroup. Channels-first:
    // 256 runs a workgroup.
    const long: Case = { shape: [1, 36, 70_001], width: 4, silu: true, bias: true };
    await check({ ...long, segments: "packed" }, true, seed, rng, 2);
    await check({ ...long, shape: [2, 33, 9_001], segments: "packed" }, false, seed, rng, 2);
    const [batch, channels, length] = long.shape;
    const seq = Tensor.from(packedSegments(rng, batch, length), [batch, length]);
    const shape = [batch, length, channels];
    const x = Tensor.from(Float32Array.from(randn(rng, batch * length * channels)), shape);
    const gy = Tensor.from(Float32Array.from(randn(rng, x.size)), shape);
    const w0 = Float32Array.from(randn(rng, channels * 4));
    const weightGradient = async () => {
      const w = requireGrad(Tensor.from(w0, [channels, 4]));
      const y = causalConv1d(x, w, undefined, { activation: "silu", seqIdx: seq, layout: "bld" });
      backward(sumAll(mul(y, gy)));
      const bits = new Uint32Array((await w.grad!.toArray()).buffer);
      w.dispose();
      return bits;
    };
    const first = await weightGradient(), second = await weightGradient();
    assertEquals(second, first, `weight gradients of two identical runs differ (seed ${seed})`);
    for (const t of [seq, x, gy]) t.dispose();
  },
);
