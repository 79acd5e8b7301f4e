/**
 * Times every kernel of the SSD scan alone, at the sizes of `bench/ssd_scan.ts` (one packed row of
 * T tokens in 1,024 random segments, H 32, P 16, N 64, G 1), to see which launch a change should
 * target:
 *
 *     deno run -A bench/ssd_kernels.ts [T = 200000] [chunk = 64]
 *
 * Each launch runs on inputs prepared once (the forward's Δ, cs, C·Bᵀ and carried states, and a
 * random output gradient), so a row is that launch's own time, not a share of a call's.
 *
 * @module
 */
import { initGpu, Tensor } from "../ops/mod.ts";
import { headGrads } from "../ops/sequence/ssd_scan/backward.ts";
import { chunkOutput, pairProducts, prepare } from "../ops/sequence/ssd_scan/forward.ts";
import { ssdSpec } from "../ops/sequence/ssd_scan/options.ts";
import { pairGrads } from "../ops/sequence/ssd_scan/pair_grads.ts";
import { ssdPieces } from "../ops/sequence/ssd_scan/pieces.ts";
import { carryStates, chunkStates } from "../ops/sequence/ssd_scan/states.ts";
import { type BenchmarkDef, formatHeader, formatRow, measure, randomTensor } from "./harness.ts";
import { randomPacking, SHAPE } from "./ssd_scan.ts";

if (import.meta.main) {
  const info = await initGpu();
  const T = Number(Deno.args[0] ?? 200_000);
  const chunk = Number(Deno.args[1] ?? 64);
  const { heads: H, headDim: P, states: N, groups: G, segments } = SHAPE;
  const pieces = ssdPieces(1, T, randomPacking(T, segments), chunk);
  const x = randomTensor([1, T, H, P], 1);
  const dt = randomTensor([1, T, H], 2);
  const A = Tensor.from(Float32Array.from({ length: H }, (_, h) => -(1 + h) / 8));
  const B = randomTensor([1, T, G, N], 4);
  const C = randomTensor([1, T, G, N], 5);
  const D = randomTensor([H], 6);
  const dtBias = randomTensor([H], 7);
  const gy = randomTensor([1, T, H, P], 9);
  const spec = ssdSpec(x, dt, A, B, C, { D, dtBias, dtSoftplus: true }, pieces.segments, chunk);
  const tables = pieces.tables(false);
  if (tables.slots === 0) {
    throw new RangeError(
      `ssd_kernels: T ${T} in ${segments} segments cuts no segment; use a larger T`,
    );
  }
  const count = pieces.chunks;
  const decays = prepare(spec, tables.chunks, count, dt, A, dtBias);
  const { cs } = decays;
  const cb = pairProducts(spec, tables.chunks, count, pieces.blockSize, B, C);
  const local = chunkStates(spec, tables, "forward", x, B, decays);
  const sin = carryStates(spec, tables, pieces.segments, "forward", local, cs).entering;
  const outputs = { chunks: tables.chunks, count, x, C, D };
  const { yh } = chunkOutput(spec, outputs, { ...decays, cb, sin });
  const rho = chunkStates(spec, tables, "backward", gy, C, decays);
  const ub = carryStates(spec, tables, pieces.segments, "backward", rho, cs).entering;
  const base = { chunks: tables.chunks, count, x, dt, A, B, C, D, dtBias };
  const launches: [string, () => Tensor[]][] = [
    [
      "prepare (Δ, cs, decays)",
      () => Object.values(prepare(spec, tables.chunks, count, dt, A, dtBias)),
    ],
    ["C·Bᵀ", () => [pairProducts(spec, tables.chunks, count, pieces.blockSize, B, C)]],
    ["chunk states (forward)", () => [chunkStates(spec, tables, "forward", x, B, decays)]],
    [
      "carry (forward)",
      () => [carryStates(spec, tables, pieces.segments, "forward", local, cs).entering],
    ],
    [
      "output (2 products)",
      () => Object.values(chunkOutput(spec, outputs, { ...decays, cb, sin })),
    ],
    ["chunk states (backward)", () => [chunkStates(spec, tables, "backward", gy, C, decays)]],
    [
      "carry (backward)",
      () => [carryStates(spec, tables, pieces.segments, "backward", rho, cs).entering],
    ],
    ["dx, ∂dt (2 products + finish)", () => {
      const r = headGrads(spec, base, { ...decays, gy, yh, cb, sin, ub });
      return [r.dx, r.ddt, r.parts];
    }],
    ["dB, dC (3 products)", () => {
      const r = pairGrads(spec, { ...base, blockSize: pieces.blockSize }, {
        ...decays,
        gy,
        sin,
        ub,
      });
      return [r.dB, r.dC];
    }],
  ];
  console.log(`adapter: ${info.description}`);
  console.log(
    `T ${T}, chunk ${chunk}: ${count} chunks, ${tables.slots} carried`,
  );
  console.log(formatHeader());
  for (const [name, launch] of launches) {
    const def: BenchmarkDef<null> = {
      name,
      setup: () => null,
      run: () => launch().forEach((t) => t.dispose()),
    };
    console.log(
      formatRow(await measure(def, { info, quick: info.isCpu }, { targetMs: 50, repeats: 3 })),
    );
  }
}
