/**
 * `ssdScanLast` (the SSD scan read at each segment's last token) against the float64 reference of
 * the full scan gathered at those tokens: the output and every gradient, over packed segments of
 * every awkward kind (one token, many tiny, longer than a staged block, one a row), groups 1 /
 * between / H, more heads than a workgroup has invocations, SSD4Rec's own sizes; and every
 * gradient against central finite differences.
 */
import { assert } from "@std/assert";
import {
  backward,
  mul,
  readTensors,
  requireGrad,
  type SsdPieces,
  ssdPieces,
  type SsdScanInputs,
  ssdScanLast,
  ssdScanReference,
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
  type Drawn,
  errors,
  type GpuResult,
  referenceOf,
  shapesOf,
} from "./ssd_scan_cases.ts";
import { SSD_GRAD_KEYS, type SsdGradKey } from "./ssd_scan_inputs.ts";
import { freshSeed, gradCheck, type GradInput, makeRng, randn } from "./util.ts";

/** The inputs with a gradient here: those of the full scan but the initial states. */
const KEYS = SSD_GRAD_KEYS.filter((k) => k !== "initialStates");

const CASES: Case[] = [
  // One token a row.
  { size: [3, 1, 2, 3, 1, 5], parts: ["softplus", "D", "dtBias"], chunks: [64] },
  // T = 37 with segments of every length; 1 < G < H.
  { size: [2, 37, 4, 3, 2, 5], parts: ["softplus", "D", "dtBias"], perRow: 4, chunks: [7] },
  // G = H, no softplus, only a bias.
  { size: [2, 13, 3, 5, 3, 3], parts: ["dtBias"], perRow: 3, chunks: [7] },
  // Hundreds of segments in a row, mostly one or two tokens long.
  { size: [2, 420, 2, 3, 1, 5], parts: ["softplus", "D", "dtBias"], perRow: 200, chunks: [16] },
  // One segment a row (no seqIdx), several staged blocks long, P 16 and N 64.
  { size: [2, 150, 4, 16, 2, 64], parts: ["softplus", "D", "dtBias"], chunks: [64] },
  // No optional input.
  { size: [3, 150, 2, 3, 2, 5], parts: [], perRow: 5, chunks: [16] },
  // Segments of hundreds of tokens.
  { size: [1, 600, 2, 3, 1, 5], parts: ["softplus", "D", "dtBias"], perRow: 3, chunks: [64] },
  // SSD4Rec's block: 32 heads of 16 channels (more channels than invocations), 64 states.
  { size: [1, 90, 32, 16, 1, 64], parts: ["softplus", "D", "dtBias"], perRow: 4, chunks: [64] },
  // More heads than a workgroup has invocations.
  { size: [1, 20, 130, 1, 1, 3], parts: ["softplus", "D", "dtBias"], perRow: 2, chunks: [8] },
  // G·N = 162 states of B and C, more than invocations, N odd.
  { size: [1, 40, 4, 3, 2, 81], parts: ["softplus", "D", "dtBias"], perRow: 3, chunks: [16] },
];

/** Segments one token short of, exactly at and one past the staged blocks (32 tokens and less). */
const BLOCK_EDGES = [31, 32, 33, 1, 64, 65, 2];

/** Segment ids of `lengths` in one row. */
function idsOf(lengths: readonly number[]): Int32Array {
  return Int32Array.from(lengths.flatMap((n, k) => Array(n).fill(k)));
}

/** The flat index of every segment's last token, in segment order. */
function lastTokens(d: Drawn): Int32Array {
  const { batch, length } = d.p;
  const starts = ssdSegmentStarts(batch, length, d.inputs.seqIdx);
  return Int32Array.from(
    starts,
    (_, k) => (k + 1 < starts.length ? starts[k + 1] : batch * length) - 1,
  );
}

/** Rows `tokens` of `values` (`width` values a token). */
function rowsAt(values: Float64Array, tokens: Int32Array, width: number): Float64Array {
  const out = new Float64Array(tokens.length * width);
  tokens.forEach((t, k) => out.set(values.subarray(t * width, (t + 1) * width), k * width));
  return out;
}

/**
 * A drawn problem whose output gradient is `gLast` at the last tokens and zero elsewhere: its
 * reference gradients are the full scan's for a loss that reads the last tokens only.
 */
function lastOnly(d: Drawn, gLast: Float64Array): Drawn {
  const { heads: H, headDim: P } = d.p;
  const gy = new Float64Array(d.gy.length);
  lastTokens(d).forEach((t, k) => gy.set(gLast.subarray(k * H * P, (k + 1) * H * P), t * H * P));
  return { ...d, gy };
}

/** Runs `ssdScanLast` with the loss Σ y ⊙ gLast and reads y and every input's gradient. */
async function runLast(
  d: Drawn,
  gLast: Float64Array,
  seqIdx: ArrayLike<number> | SsdPieces | undefined,
): Promise<GpuResult> {
  const shapes = shapesOf(d);
  const keys = KEYS.filter((k) => d.inputs[k] !== undefined);
  const out = tidy(() => {
    const t = Object.fromEntries(
      keys.map((k) => [k, requireGrad(Tensor.from(Float32Array.from(d.inputs[k]!), shapes[k]))]),
    ) as Partial<Record<SsdGradKey, Tensor>>;
    const y = ssdScanLast(t.x!, t.dt!, t.A!, t.B!, t.C!, {
      D: t.D,
      dtBias: t.dtBias,
      dtSoftplus: d.p.dtSoftplus,
      seqIdx,
    });
    backward(sumAll(mul(y, Tensor.from(Float32Array.from(gLast), y.shape))));
    return [y, ...keys.map((k) => t[k]!.grad!)];
  });
  const host = (await readTensors(out)) as Float32Array[];
  for (const t of out) t.dispose();
  const y = host.shift()!;
  return { y, grads: Object.fromEntries(keys.map((k, i) => [k, host[i]])) };
}

Deno.test(
  "ssdScanLast: y at each segment's last token and every gradient match the float64 full scan " +
    "gathered there (one-token, tiny, long and whole-row segments; G = 1 / between / H; " +
    "H·P and H beyond a workgroup)",
  async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const failures: string[] = [];
    const edges: Case = {
      size: [1, BLOCK_EDGES.reduce((a, b) => a + b), 3, 4, 1, 6],
      parts: ["softplus", "D", "dtBias"],
      chunks: [16],
    };
    for (
      const [c, ids] of [
        ...CASES.map((c) => [c, undefined] as const),
        [edges, idsOf(BLOCK_EDGES)] as const,
      ]
    ) {
      const d = draw(rng, c, ids);
      const ends = lastTokens(d);
      const { heads: H, headDim: P } = d.p;
      const gLast = Float64Array.from(Float32Array.from(randn(rng, ends.length * H * P)));
      const ref = referenceOf(lastOnly(d, gLast));
      const what = `${describe(d)} seed ${seed}`;
      try {
        // The ids on the first case's run, the prebuilt chunking (as models pass it) on the rest.
        const seqIdx = c === CASES[0] || d.inputs.seqIdx === undefined
          ? d.inputs.seqIdx
          : ssdPieces(d.p.batch, d.p.length, d.inputs.seqIdx, c.chunks[0]);
        const got = await runLast(d, gLast, seqIdx);
        if (seqIdx !== d.inputs.seqIdx) (seqIdx as SsdPieces).dispose();
        const want = { y: rowsAt(ref.out.y, ends, H * P) };
        assertErrors(errors(got, want, ref.grads, ref.scales), 1e-5, what);
      } catch (e) {
        failures.push(e instanceof Error ? e.message : String(e));
      }
    }
    assert(failures.length === 0, `${failures.length} failing cases:\n${failures.join("\n")}`);
  },
);

Deno.test("ssdScanLast: every gradient against central finite differences", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const d = draw(rng, {
    size: [2, 19, 4, 3, 2, 5],
    parts: ["softplus", "D", "dtBias"],
    perRow: 3,
    chunks: [4],
  });
  const shapes = shapesOf(d);
  const ends = lastTokens(d);
  const width = d.p.heads * d.p.headDim;
  const inputs: GradInput[] = KEYS.map((k) => ({ data: d.inputs[k]!, shape: shapes[k] }));
  const unpack = (xs: Float64Array[]): SsdScanInputs => ({
    ...Object.fromEntries(KEYS.map((k, i) => [k, xs[i]])) as Omit<SsdScanInputs, "seqIdx">,
    seqIdx: d.inputs.seqIdx,
  });
  await gradCheck({
    what: `ssdScanLast ${describe(d)} seed ${seed}`,
    inputs,
    gpu: ([x, dt, A, B, C, D, dtBias]) =>
      ssdScanLast(x, dt, A, B, C, { D, dtBias, dtSoftplus: true, seqIdx: d.inputs.seqIdx }),
    ref: (xs) => rowsAt(ssdScanReference(d.p, unpack(xs)).y, ends, width),
    rng,
    tol: 1e-5,
    probes: 12,
  });
});
