/**
 * Properties of the SSD scan on the GPU (`ssdScan`) that need no reference: chunk sizes that
 * agree with each other on segments longer than any chunk, a packed run that equals each segment
 * run alone, bitwise repeatability, and one `ssdPieces` chunking shared by two scans.
 */
import { assert, assertEquals } from "@std/assert";
import {
  backward,
  mul,
  readTensors,
  requireGrad,
  SsdPieces,
  ssdPieces,
  ssdScan,
  ssdSegmentStarts,
  sumAll,
  Tensor,
  tidy,
} from "../ops/mod.ts";
import {
  assertErrors,
  type Case,
  describe,
  draw,
  errors,
  FULL,
  HEAD_SUMS,
  type Part,
  referenceOf,
  runGpu,
  shapesOf,
} from "./ssd_scan_cases.ts";
import { itemRange, SSD_GRAD_KEYS, type SsdGradKey } from "./ssd_scan_inputs.ts";
import { freshSeed, makeRng, uniform } from "./util.ts";

/**
 * Segment ids for `batch` rows of `length` tokens where every row holds a segment of `long`
 * tokens (at a random place), a one-token segment, and random segments around them.
 */
function packingWithLongSegment(
  rng: () => number,
  batch: number,
  length: number,
  long: number,
): Int32Array {
  const ids = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const start = 1 + Math.floor(rng() * (length - long - 1));
    const cuts = new Set([1, start, start + long]);
    for (let t = 2; t < length; t++) {
      if ((t < start || t > start + long) && rng() < 0.05) cuts.add(t);
    }
    let id = 0;
    for (let t = 0; t < length; t++) {
      if (cuts.has(t)) id++;
      ids[b * length + t] = id;
    }
  }
  return ids;
}

Deno.test("ssdScan: chunks 64, 128 and 256 agree on segments longer than 256", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { size: [2, 700, 2, 3, 1, 5], parts: FULL, chunks: [64, 128, 256] };
  const long = 257 + Math.floor(rng() * 300);
  const d = draw(rng, c, packingWithLongSegment(rng, 2, 700, long));
  const { scales } = referenceOf(d);
  const label = (chunk: number) =>
    `${describe(d)} with a segment of ${long} tokens, chunk ${chunk} seed ${seed}`;
  const base = await runGpu(d, 64, label(64));
  for (const chunk of [128, 256]) {
    const what = `${label(chunk)} vs chunk 64`;
    const got = await runGpu(d, chunk, what);
    assertErrors(errors(got, base, base.grads, scales), 1e-5, what);
  }
});

Deno.test("ssdScan: the recurrent and the chunked forward agree", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { size: [2, 300, 4, 16, 2, 64], parts: FULL, perRow: 5, chunks: [64] };
  const d = draw(rng, c);
  const { scales } = referenceOf(d);
  const what = `${describe(d)} chunk 64 seed ${seed}`;
  const chunked = await runGpu(d, 64, `${what} (chunked)`, d.inputs.seqIdx, "chunked");
  const recurrent = await runGpu(d, 64, `${what} (recurrent)`, d.inputs.seqIdx, "recurrent");
  assertErrors(errors(recurrent, chunked, chunked.grads, scales), 1e-5, `${what}: recurrent`);
});

Deno.test("ssdScan: a packed run equals each segment run alone", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const c: Case = { size: [2, 40, 4, 3, 2, 5], parts: FULL, perRow: 4, chunks: [7] };
  const [batch, T, H, P, G, N] = c.size;
  const d = draw(rng, c);
  const what = `${describe(d)} chunk 7 seed ${seed}`;
  const packed = await runGpu(d, 7, what);
  const starts = ssdSegmentStarts(batch, T, d.inputs.seqIdx);
  const perToken = { x: H * P, dt: H, B: G * N, C: G * N };
  const PN = H * P * N;
  // The separate runs, concatenated in segment order; the per-head parameter gradients summed.
  const sep = {
    y: new Float64Array(packed.y.length),
    finalStates: new Float64Array(packed.finalStates!.length),
  };
  const sepGrads = Object.fromEntries(
    SSD_GRAD_KEYS.map((k) => [k, new Float64Array(packed.grads[k]!.length)]),
  ) as Record<SsdGradKey, Float64Array>;
  for (let k = 0; k < starts.length; k++) {
    const start = starts[k];
    const rowEnd = (Math.floor(start / T) + 1) * T;
    const len = Math.min(k + 1 < starts.length ? starts[k + 1] : rowEnd, rowEnd) - start;
    const slice = (key: keyof typeof perToken) =>
      itemRange(d.inputs[key], perToken[key], start, len);
    const got = await runGpu(
      {
        c: { ...c, size: [1, len, H, P, G, N], perRow: undefined },
        p: { ...d.p, batch: 1, length: len },
        inputs: {
          ...d.inputs,
          x: slice("x"),
          dt: slice("dt"),
          B: slice("B"),
          C: slice("C"),
          seqIdx: undefined,
          initialStates: d.inputs.initialStates!.subarray(k * PN, (k + 1) * PN),
        },
        segments: 1,
        gy: itemRange(d.gy, H * P, start, len),
      },
      7,
      `${what}, segment ${k} alone`,
    );
    sep.y.set(got.y, start * H * P);
    sep.finalStates.set(got.finalStates!, k * PN);
    for (const key of ["x", "dt", "B", "C"] as const) {
      sepGrads[key].set(got.grads[key]!, start * perToken[key]);
    }
    sepGrads.initialStates.set(got.grads.initialStates!, k * PN);
    for (const key of HEAD_SUMS) {
      for (let h = 0; h < H; h++) sepGrads[key][h] += got.grads[key]![h];
    }
  }
  assertErrors(errors(packed, sep, sepGrads, referenceOf(d).scales), 1e-6, what);
});

Deno.test("ssdScan: the same call twice gives identical y and gradients", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const d = draw(rng, { size: [2, 90, 4, 5, 2, 7], parts: FULL, perRow: 6, chunks: [16] });
  const what = `${describe(d)} chunk 16 seed ${seed}`;
  const first = await runGpu(d, 16, what);
  const second = await runGpu(d, 16, what);
  assertEquals(second.y, first.y, `${what}: y differs between two identical calls`);
  assertEquals(second.finalStates, first.finalStates, `${what}: final states differ`);
  for (const k of SSD_GRAD_KEYS) {
    assertEquals(second.grads[k], first.grads[k], `${what}: d${k} differs between two calls`);
  }
});

Deno.test("ssdScan: one ssdPieces shared by two stacked scans equals raw segment ids", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const chunk = 8;
  const parts: Part[] = ["softplus", "initialStates"];
  const d = draw(rng, { size: [2, 45, 2, 3, 1, 5], parts, perRow: 4, chunks: [chunk] });
  const [batch, T, H] = d.c.size;
  const shapes = shapesOf(d);
  const dt2 = Float32Array.from(uniform(rng, batch * T * H, -3, 0));
  /**
   * Two scans, the second on the first's output with B and C swapped: the first with initial
   * and final states (every segment gets a state slot), the second without (only cut segments).
   */
  const run = async (seqIdx: ArrayLike<number> | SsdPieces) => {
    const chunkSize = seqIdx instanceof SsdPieces ? undefined : chunk;
    const out = tidy(() => {
      const [x, dt, A, B, C, init] = (["x", "dt", "A", "B", "C", "initialStates"] as const).map(
        (k) => requireGrad(Tensor.from(Float32Array.from(d.inputs[k]!), shapes[k])),
      );
      const common = { dtSoftplus: true, seqIdx, chunkSize };
      const first = ssdScan(x, dt, A, B, C, { ...common, initialStates: init, finalStates: true });
      const second = ssdScan(first.y, Tensor.from(dt2, shapes.dt), A, C, B, common);
      backward(sumAll(mul(second.y, Tensor.from(Float32Array.from(d.gy), second.y.shape))));
      return [second.y, first.finalStates!, ...[x, dt, A, B, C, init].map((t) => t.grad!)];
    });
    const host = await readTensors(out);
    for (const t of out) t.dispose();
    return host;
  };
  const pieces = ssdPieces(batch, T, d.inputs.seqIdx, chunk);
  const shared = await run(pieces);
  // The pieces' tables outlive the tidy scope of their first use: a second use still works.
  const again = await run(pieces);
  assert(pieces.tensors().length > 0, "the pieces hold their GPU tables until disposed");
  pieces.dispose();
  assertEquals(pieces.tensors().length, 0, "dispose() frees the pieces' GPU tables");
  const raw = await run(d.inputs.seqIdx!);
  ["y", "final states", "dx", "ddt", "dA", "dB", "dC", "dinitialStates"].forEach((n, i) => {
    assertEquals(shared[i], raw[i], `${n}: shared pieces differ from raw ids, seed ${seed}`);
    assertEquals(again[i], raw[i], `${n}: second use of the pieces differs, seed ${seed}`);
  });
});
