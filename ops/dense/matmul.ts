/**
 * Matrix products `C = op(A) · op(B) (+ bias)` on batches of matrices, recorded on the tape.
 *
 * One kernel generator serves the forward and both backward products: the WGSL is specialised
 * by a few compile-time constants (the tile shape, the transpose flags, whether each operand can
 * be read as vec4, whether M/N/K fill whole tiles, whether a bias is added) and the runtime caches
 * one pipeline per distinct source.
 *
 * The kernel is register tiled: a workgroup computes a `bm × bn` tile of C; each of its
 * `(bm/tm)·(bn/tn)` threads owns `tm × tn` outputs held in vec4 registers. K advances in slices
 * of `bk`: both operand slices are staged in workgroup memory (A with k outermost, so a thread
 * reads its `tm` rows as vec4s), double buffered, with the next slice loaded from global memory
 * into registers while the current one is multiplied, so each slice costs one barrier. A thread's
 * rows and columns are strips of 4 spread `bm/tm·4` (`bn/tn·4`) apart, so neighbouring threads
 * read neighbouring vec4s of workgroup memory (no bank conflicts) and write neighbouring vec4s of
 * C. Operands whose contiguous dimension is the reduction dimension are transposed on their way
 * into workgroup memory (scalar stores into a padded row, again conflict free).
 *
 * Few output tiles over a long reduction (a weight gradient `Aᵀ·dC` with K = batch × length)
 * would leave most of the GPU idle, so K is split across workgroups (split-K): each writes its
 * partial tile to a scratch buffer and a second, deterministic pass sums the partials in a fixed
 * order (no float atomics). A gradient summed over a batch of products (a weight shared by every
 * batch) is folded into the same machinery: the batch becomes part of the reduction, either by
 * flattening it into K when the memory layout allows or by iterating over it inside the kernel.
 *
 * Floors on an NVIDIA H200 (about 67 TFLOP/s fp32 without tensor cores, 4.3 TB/s):
 * - 4096³: 137 GFLOP → 2.05 ms at peak; 201 MB of operands → 0.05 ms: compute bound.
 *   Prediction for this kernel: 30–40 % of peak (20–27 TFLOP/s), limited by the FMA issue rate
 *   shared with the index arithmetic and bounds clamps that WGSL adds to workgroup-memory reads.
 * - (409600×64)·(64×256) and (409600×256)·(256×64), each 13.4 GFLOP → 0.2 ms at peak; they move
 *   105 MB + 419 MB → 0.12 ms: still compute bound, but only K/bk = 4–16 slices per tile, so the
 *   prologue and the C stores weigh more. Prediction 15–25 TFLOP/s.
 * - dB = Aᵀ·dC with K = 409600, M·N = 16384: 13.4 GFLOP, 524 MB read; split-K into a few hundred
 *   workgroups whose partials (≈ 17 MB) are summed by the second pass. Prediction 15–25 TFLOP/s.
 *
 * Measured on the H200 (`deno task bench`, median of 5 × ≥ 200 ms): 4096³ 29.4 TFLOP/s (44 % of
 * peak), 2048³ 25.1, 1024³ 16.2; the 409600-row forward and dA products 25.0–25.4; the dB
 * products 23.7 (split-K, 2 dispatches). The SM clock stayed at its 1980 MHz maximum and the
 * board drew 350–390 W of its 700 W during the sweep, so neither clock nor power limits it; what
 * remains is how densely the driver's code issues FMAs (WebGPU gives no hardware counters).
 *
 * @module
 */
import { record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { sumLeading } from "../pointwise/reduce.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL, MAX_WORKGROUPS_PER_DIMENSION } from "../wgsl/grid.ts";

/** A tile configuration of the matrix-product kernel. */
export interface MatmulTiles {
  /** Rows of C per workgroup (a multiple of `tm`). */
  bm: number;
  /** Columns of C per workgroup (a multiple of `tn`). */
  bn: number;
  /** Reduction slice staged in workgroup memory per step (a multiple of 4). */
  bk: number;
  /** Rows of C per thread (a multiple of 4). */
  tm: number;
  /** Columns of C per thread (a multiple of 4). */
  tn: number;
  /** Workgroups that split the reduction dimension (split-K); chosen from the shape if absent. */
  splits?: number;
}

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Multiply by the transpose of `a`, stored as `[..., K, M]`. */
  transA?: boolean;
  /** Multiply by the transpose of `b`, stored as `[..., N, K]` (PyTorch's Linear weight). */
  transB?: boolean;
  /** A `[N]` vector added to every row of the product. */
  bias?: Tensor;
  /** Overrides the tile configuration of the forward product (benchmarks and tests). */
  tiles?: MatmulTiles;
}

/** The operand layouts and shape facts that select one compiled kernel. */
interface KernelKey {
  tiles: MatmulTiles;
  transA: boolean;
  transB: boolean;
  /** Operands and output read/written as vec4 (their contiguous dimension is a multiple of 4). */
  vecA: boolean;
  vecB: boolean;
  vecC: boolean;
  /** M, N, K are multiples of bm, bn, bk: no bounds checks on that dimension. */
  fullM: boolean;
  fullN: boolean;
  fullK: boolean;
  /** The kernel adds a bias vector (only without split-K: the reduction pass adds it then). */
  bias: boolean;
  /** Extra floats per workgroup-memory row of a slice stored transposed (avoids bank conflicts). */
  padA: number;
  padB: number;
}

/** Tiles are visited in column-major groups of this many tile rows, for reuse in L2. */
const TILE_GROUP = 8;

/** One operand's side of the generated kernel: how its slice travels into workgroup memory. */
interface OperandCode {
  /** Declarations of the prefetch registers. */
  decls: string;
  /** Per-thread coordinates inside the slice, fixed for the whole reduction. */
  setup: string;
  /** Reads the slice at `k0` (in a scope defining `k0` and `<x>base`) into the registers. */
  load: string;
  /** Writes the registers into workgroup buffer `buf` (0 or 1). */
  store: (buf: number) => string;
}

function operandCode(x: "a" | "b", key: KernelKey, threads: number): OperandCode {
  const { bk } = key.tiles;
  const isA = x === "a";
  const bo = isA ? key.tiles.bm : key.tiles.bn; // tile extent along the output dimension
  const dimO = isA ? "p.m" : "p.n";
  const origin = isA ? "m0" : "n0";
  const fullO = isA ? key.fullM : key.fullN;
  const vec = isA ? key.vecA : key.vecB;
  // "direct": the stored matrix is contiguous along the output dimension (Aᵀ stored [K, M], or
  // B stored [K, N]), so 4 loaded values go straight into a workgroup-memory row; otherwise they
  // run along K and are transposed on the way in.
  const direct = isA ? key.transA : !key.transB;
  const ld = direct ? dimO : "p.k"; // elements per stored row
  const units = (bk * bo) / 4; // groups of 4 contiguous values in one slice
  const perThread = Math.ceil(units / threads);
  let decls = "", setup = "", load = "", store = "";
  for (let i = 0; i < perThread; i++) {
    const u = `${x}u${i}`, r = `${x}r${i}`, ko = `${x}k${i}`, oo = `${x}o${i}`;
    decls += `  var ${r} = vec4f(0.0);\n`;
    setup += `  let ${u} = tid + ${i * threads}u;\n`;
    if (direct) {
      setup += `  let ${ko} = ${u} / ${bo / 4}u;\n  let ${oo} = (${u} % ${bo / 4}u) * 4u;\n`;
    } else {
      setup += `  let ${oo} = ${u} / ${bk / 4}u;\n  let ${ko} = (${u} % ${bk / 4}u) * 4u;\n`;
    }
    setup += `  let ${oo}v = ${oo} / 4u;\n  let ${oo}c = ${oo} % 4u;\n`;
    const o = `(${origin} + ${oo})`;
    const k = `(k0 + ${ko})`;
    const index = direct ? `${x}base + ${k} * ${ld} + ${o}` : `${x}base + ${o} * ${ld} + ${k}`;
    const unitGuard = units % threads !== 0 ? `${u} < ${units}u` : null;
    const otherCheck = direct
      ? (key.fullK ? null : `${k} < p.k`)
      : (fullO ? null : `${o} < ${dimO}`);
    const contigCheck = (c: number) =>
      direct
        ? (fullO ? null : `${o} + ${c}u < ${dimO}`)
        : (key.fullK ? null : `${k} + ${c}u < p.k`);
    const conds = [unitGuard, otherCheck, contigCheck(0)].filter((c) => c !== null);
    let body: string;
    if (vec) {
      // The contiguous dimension is a multiple of 4 and the group starts at a multiple of 4, so
      // the first value's bounds check covers all four.
      body = `${r} = ${x}g[(${index}) >> 2u];`;
      if (conds.length > 0) {
        body = `if (${conds.join(" && ")}) { ${body} } else { ${r} = vec4f(0.0); }`;
      }
      body = `    ${body}\n`;
    } else {
      const reads = [0, 1, 2, 3].map((c) => {
        const check = contigCheck(c);
        const read = `${r}[${c}] = ${x}g[${index} + ${c}u];`;
        return c > 0 && check ? `if (${check}) { ${read} }` : read;
      });
      body = `    ${r} = vec4f(0.0);\n`;
      body += conds.length > 0
        ? `    if (${conds.join(" && ")}) {\n      ${reads.join("\n      ")}\n    }\n`
        : `    ${reads.join("\n    ")}\n`;
    }
    load += body;
    // Workgroup memory holds the slice k-major: row k, contiguous along the output dimension.
    // Indices are loop invariant apart from the compile-time buffer offset, so the bounds clamps
    // WGSL adds to them are computed once, outside the reduction loop.
    const lines = direct
      ? [`${x}_tile[BUF + ${ko}][${oo}v] = ${r};`]
      : [0, 1, 2, 3].map((c) => `${x}_tile[BUF + ${ko} + ${c}u][${oo}v][${oo}c] = ${r}[${c}];`);
    store += unitGuard
      ? `    if (${unitGuard}) {\n      ${lines.join("\n      ")}\n    }\n`
      : `    ${lines.join("\n    ")}\n`;
  }
  return { decls, setup, load, store: (b: number) => store.replaceAll("BUF", `${b * bk}u`) };
}

function indent(code: string, levels: number): string {
  const pad = "  ".repeat(levels);
  return code.replace(/^(?=.)/gm, pad);
}

const shaderCache = new Map<string, string>();

/**
 * The WGSL of the tiled product kernel for one {@link KernelKey}, generated once: the same string
 * object comes back every time, so the runtime's pipeline lookup does not rehash a new source.
 */
function matmulShader(key: KernelKey): string {
  const id = JSON.stringify(key);
  let wgsl = shaderCache.get(id);
  if (wgsl === undefined) shaderCache.set(id, wgsl = generateShader(key));
  return wgsl;
}

/**
 * One slice's multiply-adds from workgroup buffer `buf` into the accumulators `c{r}_{j}`: every
 * index is a loop-invariant thread offset plus a constant.
 */
function sliceProductCode({ bm, bn, bk, tm, tn }: MatmulTiles, buf: number): string {
  const tx = bn / tn, ty = bm / tm;
  const rs = tm / 4, cs = tn / 4;
  let code = "";
  for (let kk = 0; kk < bk; kk++) {
    const row = buf * bk + kk;
    code += "      {\n";
    for (let s = 0; s < rs; s++) code += `        let a${s} = a_tile[${row}][ty + ${s * ty}u];\n`;
    for (let j = 0; j < cs; j++) code += `        let b${j} = b_tile[${row}][tx + ${j * tx}u];\n`;
    for (let r = 0; r < tm; r++) {
      const s = Math.floor(r / 4), comp = "xyzw"[r % 4];
      for (let j = 0; j < cs; j++) {
        code += `        c${r}_${j} = fma(vec4f(a${s}.${comp}), b${j}, c${r}_${j});\n`;
      }
    }
    code += "      }\n";
  }
  return code;
}

/** The stores of a thread's accumulators (plus the bias), bounds-checked where tiles are partial. */
function epilogueCode(key: KernelKey): string {
  const { bm, bn, tm, tn } = key.tiles;
  const tx = bn / tn, ty = bm / tm, cs = tn / 4;
  let epilogue = "";
  for (let r = 0; r < tm; r++) {
    const s = Math.floor(r / 4);
    const rowExpr = `m0 + ${s * ty * 4 + (r % 4)}u + ty * 4u`;
    epilogue += `  {\n    let row = ${rowExpr};\n`;
    if (!key.fullM) epilogue += "    if (row < p.m) {\n";
    for (let j = 0; j < cs; j++) {
      const col = `n0 + ${j * tx * 4}u + tx * 4u`;
      const value = `c${r}_${j}`;
      if (key.vecC) {
        const v = key.bias ? `${value} + bias[(${col}) >> 2u]` : value;
        const st = `cg[(cbase + row * p.n + ${col}) >> 2u] = ${v};`;
        epilogue += key.fullN ? `      ${st}\n` : `      if (${col} < p.n) { ${st} }\n`;
      } else {
        for (let c = 0; c < 4; c++) {
          const cc = `${col} + ${c}u`;
          const v = key.bias ? `${value}[${c}] + bias[${cc}]` : `${value}[${c}]`;
          const st = `cg[cbase + row * p.n + ${cc}] = ${v};`;
          epilogue += key.fullN ? `      ${st}\n` : `      if (${cc} < p.n) { ${st} }\n`;
        }
      }
    }
    if (!key.fullM) epilogue += "    }\n";
    epilogue += "  }\n";
  }
  return epilogue;
}

/** Generates the WGSL of the tiled product kernel for one {@link KernelKey}. */
function generateShader(key: KernelKey): string {
  const { bm, bn, bk, tm, tn } = key.tiles;
  // Threads along N and along M; WGSL's tx, ty are a thread's coordinates in that grid.
  const tx = bn / tn, ty = bm / tm, threads = tx * ty;
  const as4 = (bm + key.padA) / 4, bs4 = (bn + key.padB) / 4;
  const a = operandCode("a", key, threads);
  const b = operandCode("b", key, threads);
  const cs = tn / 4; // column strips per thread
  const arr = (v: boolean) => (v ? "array<vec4f>" : "array<f32>");
  let binding = 1;
  const decl = (name: string, type: string, access: string) =>
    `@group(0) @binding(${binding++}) var<storage, ${access}> ${name}: ${type};\n`;
  let bindings = decl("ag", arr(key.vecA), "read") + decl("bg", arr(key.vecB), "read");
  if (key.bias) bindings += decl("bias", arr(key.vecC), "read");
  bindings += decl("cg", arr(key.vecC), "read_write");

  let acc = "";
  for (let r = 0; r < tm; r++) {
    for (let j = 0; j < cs; j++) acc += `  var c${r}_${j} = vec4f(0.0);\n`;
  }
  const compute = (buf: number) => sliceProductCode(key.tiles, buf);
  // Reads slice `step` into the prefetch registers.
  const load = (step: string) =>
    `    let batch = ob * p.inner_batch + (${step}) / p.k_tiles;
    let k0 = ((${step}) % p.k_tiles) * ${bk}u;
    let abase = batch * p.stride_a;
    let bbase = batch * p.stride_b;
${a.load}${b.load}`;
  // One reduction step on buffer `buf`: prefetch slice `t + ahead`, multiply, store the prefetch
  // into the other buffer. Barriers follow in the caller.
  const step = (buf: number, ahead: number) =>
    `    {
      let more = t + ${ahead}u < t1;
      if (more) {
${indent(load(`t + ${ahead}u`), 2)}      }
${compute(buf)}      if (more) {
${indent(a.store(1 - buf) + b.store(1 - buf), 2)}      }
    }
`;
  const epilogue = epilogueCode(key);

  return /* wgsl */ `// matmul ${JSON.stringify(key)}
struct P {
  m: u32, n: u32, k: u32, k_tiles: u32, steps: u32, steps_per_split: u32, splits: u32,
  inner_batch: u32, stride_a: u32, stride_b: u32, tiles_m: u32, tiles_n: u32, gx: u32,
}
@group(0) @binding(0) var<uniform> p: P;
${bindings}
var<workgroup> a_tile: array<array<vec4f, ${as4}>, ${2 * bk}>;
var<workgroup> b_tile: array<array<vec4f, ${bs4}>, ${2 * bk}>;

${GRID_WGSL}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  // Output tile: grouped ordering, ${TILE_GROUP} tile rows at a time, so that concurrently running
  // workgroups share operand panels in L2.
  let tile = grid_index(wid, p.gx);
  if (tile >= p.tiles_m * p.tiles_n) { return; }
  let per_group = ${TILE_GROUP}u * p.tiles_n;
  let first_m = (tile / per_group) * ${TILE_GROUP}u;
  let group_rows = min(p.tiles_m - first_m, ${TILE_GROUP}u);
  let in_group = tile % per_group;
  let m0 = (first_m + in_group % group_rows) * ${bm}u;
  let n0 = (in_group / group_rows) * ${bn}u;
  let ob = wid.z / p.splits;
  let t0 = (wid.z % p.splits) * p.steps_per_split;
  let t1 = min(t0 + p.steps_per_split, p.steps);
  let cbase = wid.z * p.m * p.n;
  let tx = tid % ${tx}u;
  let ty = tid / ${tx}u;
${a.setup}${b.setup}${a.decls}${b.decls}${acc}
  if (t0 < t1) {
${load("t0")}${a.store(0)}${b.store(0)}  }
  workgroupBarrier();
  // Double buffered, unrolled by two so that each buffer's offset is a compile-time constant.
  var t = t0;
  loop {
    if (t >= t1) { break; }
${step(0, 1)}    workgroupBarrier();
    if (t + 1u >= t1) { break; }
${step(1, 2)}    workgroupBarrier();
    t += 2u;
  }
${epilogue}}
`;
}

/**
 * GPU tile configurations, from two sweeps on an NVIDIA H200 (bench/matmul_sweep.ts):
 * - `output`: 64×64 tiles with 8×8 outputs per thread (64 threads) were within the run-to-run
 *   spread (±5 %) of the best configuration on 1024³–4096³ and on the 409600-row products
 *   (26–29 TFLOP/s and 23–25 TFLOP/s), and make the most workgroups for small outputs.
 * - `reduction`: for products with few output tiles and a long reduction (weight gradients),
 *   split-K with 64×64 tiles of 4×4 per thread (256 threads, more warps per workgroup to hide
 *   latency when workgroups are few) and 16-deep slices: 21.9 TFLOP/s, against 14–20 for the
 *   output configuration at any split count.
 */
const GPU_TILES = {
  output: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 },
  reduction: { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
} satisfies Record<string, MatmulTiles>;

/** On CPU implementations: small kernels that compile quickly; speed is not the point there. */
const CPU_TILES: MatmulTiles = { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 };

/**
 * Split-K aims at this many workgroups: 66 splits of the 4 output tiles of a 64×256 weight
 * gradient (two 256-thread workgroups per SM of an H200) measured best, ahead of 33 and 132.
 */
const GPU_TARGET_WORKGROUPS = 264;
/** On a CPU a few workgroups suffice; split-K still runs, so the tests there exercise it. */
const CPU_TARGET_WORKGROUPS = 8;
/** A split-K slice covers at least this many reduction steps: shorter ones cost a dispatch more
 * than they gain. */
const MIN_STEPS_PER_SPLIT = 16;

/** How one product runs: its tiles and how many workgroups split its reduction. */
export interface MatmulPlan {
  /** The tile configuration. */
  tiles: MatmulTiles;
  /** Workgroups along the reduction dimension (1: no split-K). */
  splits: number;
}

/**
 * The tiles and split-K count {@link matmul} uses on this device for `outputs` products of
 * `M × N` (summed over `innerBatch` products each) with reduction length `K`, unless `override`
 * fixes the tiles (and possibly the splits).
 */
export function planMatmul(
  m: number,
  n: number,
  k: number,
  outputs = 1,
  innerBatch = 1,
  override?: MatmulTiles,
): MatmulPlan {
  const cpu = runtime().info.isCpu;
  const target = cpu ? CPU_TARGET_WORKGROUPS : GPU_TARGET_WORKGROUPS;
  const autoSplits = (t: MatmulTiles) => {
    const outTiles = Math.ceil(m / t.bm) * Math.ceil(n / t.bn) * outputs;
    const steps = innerBatch * Math.ceil(k / t.bk);
    if (outTiles * 2 >= target) return 1;
    return Math.max(
      1,
      Math.min(Math.ceil(target / outTiles), Math.floor(steps / MIN_STEPS_PER_SPLIT)),
    );
  };
  if (override) return { tiles: override, splits: override.splits ?? autoSplits(override) };
  if (cpu) return { tiles: CPU_TILES, splits: autoSplits(CPU_TILES) };
  if (autoSplits(GPU_TILES.output) === 1) return { tiles: GPU_TILES.output, splits: 1 };
  return { tiles: GPU_TILES.reduction, splits: autoSplits(GPU_TILES.reduction) };
}

function tileBytes(t: MatmulTiles, padA: number, padB: number): number {
  return 2 * t.bk * (t.bm + padA + t.bn + padB) * 4;
}

function checkTiles(op: string, t: MatmulTiles): void {
  const rt = runtime();
  const threads = (t.bm / t.tm) * (t.bn / t.tn);
  const problems: string[] = [];
  for (const [name, v] of Object.entries(t)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) problems.push(`${name} = ${v}`);
  }
  if (t.tm % 4 !== 0 || t.tn % 4 !== 0) problems.push("tm and tn must be multiples of 4");
  if (t.bk % 4 !== 0) problems.push("bk must be a multiple of 4");
  if (t.bm % t.tm !== 0 || t.bn % t.tn !== 0) problems.push("bm, bn must be multiples of tm, tn");
  if (threads > rt.info.maxInvocations) {
    problems.push(`${threads} threads exceed the device's ${rt.info.maxInvocations}`);
  }
  if (tileBytes(t, 0, 0) > rt.info.maxWorkgroupBytes) {
    problems.push(`workgroup memory exceeds the device's ${rt.info.maxWorkgroupBytes} bytes`);
  }
  if (problems.length > 0) {
    throw new RangeError(`${op}: invalid tiles ${JSON.stringify(t)}: ${problems.join("; ")}`);
  }
}

/** A matrix operand: `batch` stored `rows × cols` matrices (one, shared, when batch is 1). */
interface Operand {
  t: Tensor;
  batch: number;
  rows: number;
  cols: number;
  /** The product uses the transpose of the stored matrices. */
  trans: boolean;
}

const SPLIT_REDUCE_WG = 256;

const SPLIT_REDUCE = [false, true].map((withBias) => splitReduceShader(withBias));

function splitReduceShader(withBias: boolean): string {
  return /* wgsl */ `
struct P { total: u32, mn: u32, n: u32, splits: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
${withBias ? "@group(0) @binding(2) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${withBias ? 3 : 2}) var<storage, read_write> out: array<f32>;
${GRID_WGSL}
@compute @workgroup_size(${SPLIT_REDUCE_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.total) { return; }
  let ob = i / p.mn;
  let e = i - ob * p.mn;
  var s = 0.0;
  for (var k = 0u; k < p.splits; k++) { s += part[(ob * p.splits + k) * p.mn + e]; }
  out[i] = s${withBias ? " + bias[e % p.n]" : ""};
}`;
}

/**
 * Encodes `out = Σ op(X)·op(Y)` for one product family: per batch index, or summed over the batch
 * when `sumBatch` (the gradient of an operand shared by every batch). Not recorded.
 */
function product(
  op: string,
  x: Operand,
  y: Operand,
  sumBatch: boolean,
  outShape: readonly number[],
  bias?: Tensor,
  tiles?: MatmulTiles,
): Tensor {
  const m = x.trans ? x.cols : x.rows, k = x.trans ? x.rows : x.cols;
  const n = y.trans ? y.rows : y.cols;
  const batch = Math.max(x.batch, y.batch);
  let M = m, K = k, outBatch = batch, innerBatch = 1;
  let strideA = x.batch > 1 ? x.rows * x.cols : 0, strideB = y.batch > 1 ? y.rows * y.cols : 0;
  if (batch > 1 && !sumBatch && x.batch > 1 && y.batch === 1 && !x.trans) {
    // [batch, m, k] rows times a shared matrix: one product with batch·m rows.
    M = batch * m;
    outBatch = 1;
    strideA = 0;
  } else if (batch > 1 && sumBatch && x.batch > 1 && y.batch > 1 && x.trans && !y.trans) {
    // Σ_b X_bᵀ Y_b with X, Y stored [batch, k, ·]: one product whose reduction runs over batch·k.
    K = batch * k;
    outBatch = 1;
    strideA = strideB = 0;
  } else if (sumBatch) {
    outBatch = 1;
    innerBatch = batch;
  }
  const out = Tensor.empty(outShape, "f32", op);
  if (out.size === 0) return out;
  const plan = planMatmul(M, n, K, outBatch, innerBatch, tiles);
  const t = plan.tiles;
  checkTiles(op, t);
  const tilesM = Math.ceil(M / t.bm), tilesN = Math.ceil(n / t.bn);
  const kTiles = Math.ceil(K / t.bk);
  const steps = innerBatch * kTiles;
  const rt = runtime();
  let splits = plan.splits;
  splits = Math.max(1, Math.min(splits, steps));
  const stepsPerSplit = Math.ceil(steps / splits);
  splits = Math.max(1, Math.ceil(steps / stepsPerSplit));
  const gz = outBatch * splits;
  if (gz > MAX_WORKGROUPS_PER_DIMENSION) {
    throw new RangeError(
      `${op}: ${outBatch} products × ${splits} reduction splits exceed ` +
        `${MAX_WORKGROUPS_PER_DIMENSION} workgroup layers; multiply fewer matrices per call`,
    );
  }
  const key: KernelKey = {
    tiles: { bm: t.bm, bn: t.bn, bk: t.bk, tm: t.tm, tn: t.tn },
    transA: x.trans,
    transB: y.trans,
    vecA: (x.trans ? M : K) % 4 === 0,
    vecB: (y.trans ? K : n) % 4 === 0,
    vecC: n % 4 === 0,
    fullM: M % t.bm === 0,
    fullN: n % t.bn === 0,
    fullK: K % t.bk === 0,
    bias: bias !== undefined && splits === 1,
    // Slices stored transposed get padded rows, unless that no longer fits in workgroup memory.
    padA: x.trans ? 0 : 4,
    padB: y.trans ? 4 : 0,
  };
  if (tileBytes(key.tiles, key.padA, key.padB) > rt.info.maxWorkgroupBytes) {
    key.padA = key.padB = 0;
  }
  const [gx, gy] = foldWorkgroups(tilesM * tilesN);
  const params = packParams([
    M,
    n,
    K,
    kTiles,
    steps,
    stepsPerSplit,
    splits,
    innerBatch,
    strideA,
    strideB,
    tilesM,
    tilesN,
    gx,
  ]);
  const target = splits === 1 ? out : Tensor.empty([gz, M, n], "f32", `${op} split-K partials`);
  const inputs = key.bias ? [x.t, y.t, bias!, target] : [x.t, y.t, target];
  launch(op, matmulShader(key), params, inputs, [gx, gy, gz]);
  if (splits > 1) {
    const total = outBatch * M * n;
    const g = grid(total, SPLIT_REDUCE_WG);
    const withBias = bias !== undefined;
    launch(
      `${op} split-K sum`,
      SPLIT_REDUCE[withBias ? 1 : 0],
      packParams([total, M * n, n, splits, g.stride]),
      withBias ? [target, bias, out] : [target, out],
      g.groups,
    );
    target.dispose();
  }
  return out;
}

function shapeText(t: Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

/**
 * Matrix product `op(a) · op(b) (+ bias)`, recorded on the tape.
 *
 * `a` is `[...batch, M, K]` (`[...batch, K, M]` with `transA`); `b` is `[...batch, K, N]`
 * (`[...batch, N, K]` with `transB`) with the same batch dimensions, or either operand is a 2-D
 * matrix shared by every batch. The result is `[...batch, M, N]`; `bias` (`[N]`) is added to
 * every row. A Linear layer `y = x Wᵀ + b` with PyTorch's `W: [out, in]` is
 * `matmul(x, W, { transB: true, bias: b })`, for `x` of shape `[in]`-suffixed `[B, L, in]` too.
 *
 * Gradients: `dA`, `dB` (summed over the batch for a shared operand, inside the product) and
 * `dBias` (a column sum).
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const op = "matmul";
  const transA = options.transA ?? false, transB = options.transB ?? false;
  const bias = options.bias;
  assertDType(op, a, "f32");
  assertDType(op, b, "f32");
  if (bias) assertDType(op, bias, "f32");
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(
      `${op}: both operands need at least 2 dimensions, got a ${shapeText(a)} and b ${
        shapeText(b)
      }`,
    );
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar, K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  const flags = `${transA ? " transA" : ""}${transB ? " transB" : ""}`;
  if (K !== Kb) {
    throw new RangeError(
      `${op}: inner dimensions do not match: a ${shapeText(a)} gives K = ${K}, b ${shapeText(b)} ` +
        `gives K = ${Kb}${flags ? ` (with${flags})` : ""}`,
    );
  }
  if (
    aBatch.length > 0 && bBatch.length > 0 &&
    (aBatch.length !== bBatch.length || aBatch.some((d, i) => d !== bBatch[i]))
  ) {
    throw new RangeError(
      `${op}: batch dimensions do not match: a ${shapeText(a)} and b ${shapeText(b)} (b must ` +
        `have a's batch dimensions or be a 2-D matrix shared by every batch)`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== N)) {
    throw new RangeError(
      `${op}: bias ${shapeText(bias)} must have shape [${N}] for a ${shapeText(a)} · b ` +
        `${shapeText(b)}${flags}`,
    );
  }
  const batchShape = aBatch.length > 0 ? aBatch : bBatch;
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const A: Operand = {
    t: a,
    batch: aBatch.length > 0 ? batch : 1,
    rows: ar,
    cols: ac,
    trans: transA,
  };
  const B: Operand = {
    t: b,
    batch: bBatch.length > 0 ? batch : 1,
    rows: br,
    cols: bc,
    trans: transB,
  };
  const out = product(op, A, B, false, [...batchShape, M, N], bias, options.tiles);
  const inputs = bias ? [a, b, bias] : [a, b];
  return record(out, op, inputs, (g) => {
    const G: Operand = { t: g, batch, rows: M, cols: N, trans: false };
    const Gt: Operand = { ...G, trans: true };
    const sumA = A.batch === 1 && batch > 1, sumB = B.batch === 1 && batch > 1;
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) {
      // C = op(A)·op(B): d op(A) = dC·op(B)ᵀ; for a stored Aᵀ that is op(B)·dCᵀ.
      da = transA
        ? product("matmul backward dA", B, Gt, sumA, a.shape)
        : product("matmul backward dA", G, { ...B, trans: !transB }, sumA, a.shape);
    }
    if (b.requiresGrad) {
      // d op(B) = op(A)ᵀ·dC; for a stored Bᵀ that is dCᵀ·op(A).
      db = transB
        ? product("matmul backward dB", Gt, A, sumB, b.shape)
        : product("matmul backward dB", { ...A, trans: !transA }, G, sumB, b.shape);
    }
    if (!bias) return [da, db];
    return [da, db, bias.requiresGrad ? sumLeading(g, [N]) : null];
  });
}
