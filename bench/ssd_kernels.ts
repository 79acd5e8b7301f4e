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
import { chunkOutput, prepare } from "../ops/sequence/ssd_scan/forward.ts";
import { ssdSpec } from "../ops/sequence/ssd_scan/options.ts";
import { pairGrads } from "../ops/sequence/ssd_scan/pair_grads.ts";
import { chunkBlocks, pairWeights } from "../ops/sequence/ssd_scan/pair_tiles.ts";
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
  const tiles = pieces.pairTiles();
  const { dtv, cs } = prepare(spec, tables.chunks, count, dt, A, dtBias);
  const { cb, cbt } = chunkBlocks(spec, tables.chunks, tiles, pieces.blockSize, B, C);
  const local = chunkStates(spec, tables, "forward", x, B, { dtv, cs });
  const sin = carryStates(spec, tables, pieces.segments, "forward", local, cs).entering;
  const rho = chunkStates(spec, tables, "backward", gy, C, { dtv, cs });
  const ub = carryStates(spec, tables, pieces.segments, "backward", rho, cs).entering;
  const w = pairWeights(spec, tables.chunks, tiles, pieces.blockSize, { x, gy, dtv, cs });
  const base = { chunks: tables.chunks, count, x, dt, A, B, C, D, dtBias };
  const launches: [string, () => Tensor[]][] = [
    ["prepare (Δ, cs)", () => Object.values(prepare(spec, tables.chunks, count, dt, A, dtBias))],
    ["C·Bᵀ", () => Object.values(chunkBlocks(spec, tables.chunks, tiles, pieces.blockSize, B, C))],
    ["chunk states (forward)", () => [chunkStates(spec, tables, "forward", x, B, { dtv, cs })]],
    [
      "carry (forward)",
      () => [carryStates(spec, tables, pieces.segments, "forward", local, cs).entering],
    ],
    [
      "output",
      () => [chunkOutput(spec, { chunks: tables.chunks, count, x, B, C, D }, { dtv, cs, cb, sin })],
    ],
    ["chunk states (backward)", () => [chunkStates(spec, tables, "backward", gy, C, { dtv, cs })]],
    [
      "carry (backward)",
      () => [carryStates(spec, tables, pieces.segments, "backward", rho, cs).entering],
    ],
    ["head gradients", () => {
      const r = headGrads(spec, base, { gy, dtv, cs, cb, cbt, sin, ub });
      return [r.dx, r.ddt, ...r.parts];
    }],
    [
      "pair weights W",
      () => [pairWeights(spec, tables.chunks, tiles, pieces.blockSize, { x, gy, dtv, cs })],
    ],
    ["dC", () => [pairGrads(spec, "C", base, { gy, dtv, cs, w, src: sin })]],
    ["dB", () => [pairGrads(spec, "B", base, { gy, dtv, cs, w, src: ub })]],
  ];
  console.log(`adapter: ${info.description}`);
  console.log(
    `T ${T}, chunk ${chunk}: ${count} chunks, ${tables.slots} carried, ${tiles.count} pair tiles`,
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
