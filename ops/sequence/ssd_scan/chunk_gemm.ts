/**
 * The one kernel shape behind nearly all of the SSD scan's work: per work item (a chunk, a
 * (chunk, group) or a (chunk, head)), a small matrix product whose reduction runs over the
 * chunk's tokens, the states or the channels,
 *
 *     out[m, n] = Σ_phase Σ_{κ ∈ [lo, hi)} a(κ, m) · b(κ, n),
 *
 * with operands read through WGSL expressions (so decay weights, Δ and masks are applied as the
 * operands are staged, never materialised) and every output element handed to a WGSL statement.
 *
 * It is the register-tiled product of `ops/dense/matmul` reshaped for chunks: a workgroup owns a
 * `bm × bn` tile of one item's output, each thread `tm × tn` of it in vec4 registers; the
 * reduction advances in slices of `bk`, both operand slices staged in workgroup memory (k-major)
 * and multiplied by the matmul's unrolled slice code. The finished tile passes through workgroup
 * memory so that the output statement runs once per element in a plain loop, consecutive threads
 * on consecutive columns (coalesced stores).
 *
 * A phase may be cut into slabs (`slab`): each slab's product is accumulated apart and added
 * weighted elementwise, `out += w(m, n, slab) ⊙ Σ_{κ ∈ slab}` — the per-head decays of a sum over
 * heads.
 *
 * @module
 */
import { sliceProductCode } from "../../dense/matmul/shader.ts";
import { runtime } from "../../core/runtime.ts";
import { bind, type Binding, launchPerItem, prelude } from "./prelude.ts";
import { sizeFreeKey, type SsdSpec } from "./options.ts";
import { cachedShader } from "../../wgsl/cache.ts";

/** A tile shape: `bm × bn` outputs per workgroup, `tm × tn` per thread, slices of `bk`. */
export interface GemmTiles {
  /** Rows per workgroup (a multiple of `tm`). */
  bm: number;
  /** Columns per workgroup. */
  bn: number;
  /** Reduction slice staged at a time (a multiple of 4). */
  bk: number;
  /** Rows per thread (a multiple of 4). */
  tm: number;
  /** Columns per thread (a multiple of 4). */
  tn: number;
}

/** Tile shapes by output width: `wide` for outputs of 64 or more columns, `narrow` for P. */
export type TileKind = "wide" | "narrow";

/**
 * Tiles on a GPU: 64 × 64 in 4 × 4 per thread (256 threads), or 32 × 16 for outputs a head's P
 * columns wide (rows in two tiles, so the causal pair terms skip the slices past a tile's last
 * row; 3 % faster than 64 × 16 for the whole scan at T = 46,000, 0.5 % at 200,000, H100). Measured on an H100 for the chunk states (T = 200,000): 1.49 ms with 4 × 4 per
 * thread against 3.8 ms with 8 × 8 (64 threads) and 7.5 ms with 8 × 8 and 16-deep slices; the
 * operands' own reads (decays, Δ) weigh as much as the products here, and more threads hide
 * their latency. On CPU implementations: small kernels that compile quickly.
 */
const TILES: Record<"gpu" | "cpu", Record<TileKind, GemmTiles>> = {
  gpu: {
    wide: { bm: 64, bn: 64, bk: 8, tm: 4, tn: 4 },
    narrow: { bm: 32, bn: 16, bk: 8, tm: 4, tn: 4 },
  },
  cpu: {
    wide: { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 },
    narrow: { bm: 32, bn: 16, bk: 8, tm: 4, tn: 4 },
  },
};

/** The tiles of `kind` on this device (explicit tiles pass through). */
export function gemmTiles(kind: TileKind | GemmTiles): GemmTiles {
  return typeof kind === "string" ? TILES[runtime().info.isCpu ? "cpu" : "gpu"][kind] : kind;
}

/**
 * One reduction phase. Expressions may use `item`, `m0`, `n0`, the tile extents `BM`, `BN` and
 * the setup's names.
 */
export interface GemmPhase {
  /** First reduction index, a WGSL u32 expression (uniform over the workgroup). */
  lo: string;
  /** One past the last reduction index (uniform over the workgroup). */
  hi: string;
  /** a(κ, m): a WGSL f32 expression of `kk` (κ) and `mm` (the row), read only in bounds. */
  a: string;
  /** b(κ, n): a WGSL f32 expression of `kk` and `nn` (the column), read only in bounds. */
  b: string;
  /** Where a(κ, m) may be nonzero, a WGSL bool of `kk` and `mm`: elsewhere it is 0, unread. */
  aWhere?: string;
  /** Which index consecutive threads take while staging a: its contiguous one in memory. */
  aAlong: "k" | "m";
  /** The same for b. */
  bAlong: "k" | "n";
  /**
   * Slabs: `count` consecutive runs of `size` reduction indices from `lo` (`hi` is ignored),
   * each product weighted elementwise by `weight`, a WGSL f32 expression of `m`, `n` (in bounds)
   * and `slab`.
   */
  slab?: { count: string; size: string; weight: string };
}

/** One chunk product: what it reads, how its items and outputs are laid out, what it writes. */
export interface ChunkGemm {
  /** Kernel label (after the op name). */
  label: string;
  /** Storage bindings, in the order of `tensors` at launch. */
  bindings: Binding[];
  /** Tile shape: a kind (this device's tiles for it) or explicit tiles. */
  tiles: TileKind | GemmTiles;
  /** Statements run once per workgroup given `item`: must define u32 `rows` and `cols`. */
  setup: string;
  /** Module-scope WGSL the product needs (workgroup arrays its prologue fills). */
  declarations?: string;
  /**
   * Statements every invocation runs after the setup (with `lid`), e.g. filling per-token
   * values of the item into workgroup memory; a barrier follows.
   */
  prologue?: string;
  /** Most rows any item has (sizes the grid). */
  maxRows: number;
  /** Most columns any item has. */
  maxCols: number;
  /** The reduction phases, summed in order. */
  phases: GemmPhase[];
  /** Statements storing one output: `m`, `n` (in bounds) and the value `v`. */
  emit: string;
}

/** One operand's staging: reads of a slice into registers, and their stores into its tile. */
interface Staging {
  /** Declares the prefetch registers. */
  decls: string;
  /** Reads the slice at `ks` into the registers (bounds-checked; zero outside). */
  load: string;
  /** Writes the registers into the workgroup tile. */
  store: string;
}

function staging(
  operand: "a" | "b",
  expr: string,
  along: string,
  t: GemmTiles,
  threads: number,
  where?: string,
): Staging {
  const { bk } = t;
  const extent = operand === "a" ? t.bm : t.bn;
  const [dim, bound, origin] = operand === "a" ? ["mm", "rows", "m0"] : ["nn", "cols", "n0"];
  const units = bk * extent;
  let decls = "", load = "", store = "";
  for (let i = 0; i < Math.ceil(units / threads); i++) {
    const r = `${operand}r${i}`;
    const e = `(lid + ${i * threads}u)`;
    const kl = along === "k" ? `${e} % ${bk}u` : `${e} / ${extent}u`;
    const ol = along === "k" ? `${e} / ${bk}u` : `${e} % ${extent}u`;
    const guard = units % threads === 0 ? "" : `${e} < ${units}u && `;
    decls += `  var ${r} = 0.0;\n`;
    load += `      {
        let kk = ks + ${kl};
        let ${dim} = ${origin} + ${ol};
        ${r} = 0.0;
        if (${guard}kk < k1 && ${dim} < ${bound}${where ? ` && ${where}` : ""}) { ${r} = ${expr}; }
      }\n`;
    const st = `${operand}_tile[${kl}][(${ol}) >> 2u][(${ol}) & 3u] = ${r};`;
    store += guard ? `    if (${e} < ${units}u) { ${st} }\n` : `    ${st}\n`;
  }
  return { decls, load, store };
}

/**
 * The reduction over [k_lo, k1) into accumulators `acc`. On a GPU the next slice's reads are
 * issued into registers before the current slice is multiplied, so their latency overlaps the
 * arithmetic; on a CPU implementation each slice is read when it is needed (half the code to
 * compile, and nothing to overlap).
 */
function slicesCode(a: Staging, b: Staging, t: GemmTiles, acc: string): string {
  const product = sliceProductCode(t, 0, acc);
  if (runtime().info.isCpu) {
    return `    for (var k0 = k_lo; k0 < k1; k0 += ${t.bk}u) {
      let ks = k0;
${a.load}${b.load}${a.store}${b.store}    workgroupBarrier();
${product}    workgroupBarrier();
  }\n`;
  }
  return `    {
      let ks = k_lo;
${a.load}${b.load}    }
    for (var k0 = k_lo; k0 < k1; k0 += ${t.bk}u) {
${a.store}${b.store}    workgroupBarrier();
    if (k0 + ${t.bk}u < k1) {
      let ks = k0 + ${t.bk}u;
${a.load}${b.load}    }
${product}    workgroupBarrier();
  }\n`;
}

function phaseCode(phase: GemmPhase, t: GemmTiles, threads: number, index: number): string {
  const { bm, bn } = t;
  const a = staging("a", phase.a, phase.aAlong, t, threads, phase.aWhere);
  const b = staging("b", phase.b, phase.bAlong, t, threads);
  const slices = (acc: string) => slicesCode(a, b, t, acc);
  if (!phase.slab) {
    return `  // phase ${index}
  {
${a.decls}${b.decls}    let k_lo = ${phase.lo};
    let k1 = ${phase.hi};
${slices("c")}  }\n`;
  }
  const { count, size, weight } = phase.slab;
  const { tm, tn } = t;
  const tx = bn / tn, ty = bm / tm;
  let zero = "", add = "";
  for (let r = 0; r < tm; r++) {
    const s = Math.floor(r / 4);
    const row = `m0 + ${s * ty * 4 + (r % 4)}u + ty * 4u`;
    for (let j = 0; j < tn / 4; j++) {
      zero += `      w${r}_${j} = vec4f(0.0);\n`;
      for (let c = 0; c < 4; c++) {
        const col = `n0 + ${j * tx * 4 + c}u + tx * 4u`;
        add += `      { let m = min(${row}, rows - 1u); let n = min(${col}, cols - 1u); ` +
          `c${r}_${j}[${c}] += w${r}_${j}[${c}] * (${weight}); }\n`;
      }
    }
  }
  return `  // phase ${index}, in slabs
${a.decls}${b.decls}  for (var slab = 0u; slab < ${count}; slab++) {
${zero}    let k_lo = ${phase.lo} + slab * ${size};
    let k1 = k_lo + ${size};
${slices("w")}${add}  }\n`;
}

function gemmShader(spec: SsdSpec, g: ChunkGemm): string {
  const t = gemmTiles(g.tiles);
  const { bm, bn, bk, tm, tn } = t;
  const tx = bn / tn, ty = bm / tm, threads = tx * ty;
  const mt = Math.ceil(g.maxRows / bm), nt = Math.ceil(g.maxCols / bn);
  const slabbed = g.phases.some((p) => p.slab);
  let acc = "";
  for (let r = 0; r < tm; r++) {
    for (let j = 0; j < tn / 4; j++) {
      acc += `  var c${r}_${j} = vec4f(0.0);\n`;
      if (slabbed) acc += `  var w${r}_${j} = vec4f(0.0);\n`;
    }
  }
  // The thread's accumulators into the output tile in workgroup memory (row-major, bn wide).
  let park = "";
  for (let r = 0; r < tm; r++) {
    const s = Math.floor(r / 4);
    const row = `${s * ty * 4 + (r % 4)}u + ty * 4u`;
    for (let j = 0; j < tn / 4; j++) {
      park += `  out_tile[(${row}) * ${bn / 4}u + ${j * tx}u + tx] = c${r}_${j};\n`;
    }
  }
  return /* wgsl */ `// ${g.label}
${bind(g.bindings)}
${prelude(spec)}
const THREADS: u32 = ${threads}u;
const BM: u32 = ${bm}u;
const BN: u32 = ${bn}u;
var<workgroup> a_tile: array<array<vec4f, ${bm / 4}>, ${bk}>;
var<workgroup> b_tile: array<array<vec4f, ${bn / 4}>, ${bk}>;
${g.declarations ?? ""}
var<workgroup> out_tile: array<vec4f, ${(bm * bn) / 4}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = grid_index(wid, u.width);
  if (tile >= u.count) { return; }
  let item = tile / ${mt * nt}u;
  let m0 = ((tile / ${nt}u) % ${mt}u) * ${bm}u;
  let n0 = (tile % ${nt}u) * ${bn}u;
${g.setup}
  if (m0 >= rows || n0 >= cols) { return; }
  let tx = lid % ${tx}u;
  let ty = lid / ${tx}u;
${
    g.prologue
      ? `${g.prologue}
  workgroupBarrier();
`
      : ""
  }${acc}${g.phases.map((p, i) => phaseCode(p, t, threads, i)).join("")}
${park}  workgroupBarrier();
  for (var e = lid; e < ${bm * bn}u; e += ${threads}u) {
    let m = m0 + e / ${bn}u;
    let n = n0 + e % ${bn}u;
    if (m < rows && n < cols) {
      let v = out_tile[e >> 2u][e & 3u];
      ${g.emit}
    }
  }
}`;
}

/**
 * Launches chunk product `g` over `items` work items with `tensors` bound in the order of
 * `g.bindings`. The WGSL is generated once per (spec, product) and the same string is reused.
 */
export function runChunkGemm(
  spec: SsdSpec,
  g: ChunkGemm,
  items: number,
  tensors: Parameters<typeof launchPerItem>[3],
): void {
  const t = gemmTiles(g.tiles);
  const key = JSON.stringify([sizeFreeKey(spec), g.label, g.maxRows, g.maxCols, t]);
  const wgsl = cachedShader(`chunk gemm ${key}`, () => gemmShader(spec, g));
  const tiles = Math.ceil(g.maxRows / t.bm) * Math.ceil(g.maxCols / t.bn);
  launchPerItem(g.label, wgsl, items * tiles, tensors);
}
