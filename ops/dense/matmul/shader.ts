/**
 * The WGSL of the matrix-product kernels, generated from a few compile-time constants (the tile
 * shape, the transpose flags, whether each operand can be read as vec4, whether M/N/K fill whole
 * tiles, what the epilogue adds: a bias, an addend matrix, GELU), and of the pass that sums
 * split-K partials (and then applies the epilogue).
 *
 * The epilogue computes `act(acc + bias + addend)` in that order, each step the f32 operation
 * the separate ops would do, so a fused sum equals `add(matmul(…, { bias }), addend)` bit for
 * bit.
 *
 * The product kernel is register tiled: a workgroup computes a `bm × bn` tile of C; each of its
 * `(bm/tm)·(bn/tn)` threads owns `tm × tn` outputs held in vec4 registers. K advances in slices
 * of `bk`: both operand slices are staged in workgroup memory (A with k outermost, so a thread
 * reads its `tm` rows as vec4s), double buffered, with the next slice loaded from global memory
 * into registers while the current one is multiplied, so each slice costs one barrier. A thread's
 * rows and columns are strips of 4 spread `bm/tm·4` (`bn/tn·4`) apart, so neighbouring threads
 * read neighbouring vec4s of workgroup memory (no bank conflicts) and write neighbouring vec4s of
 * C. Operands whose contiguous dimension is the reduction dimension are transposed on their way
 * into workgroup memory (scalar stores into a padded row, again conflict free).
 *
 * @module
 */
import { GRID_WGSL } from "../../wgsl/grid.ts";
import { GELU_WGSL } from "../../wgsl/math.ts";
import type { MatmulTiles } from "./plan.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/** The operand layouts and shape facts that select one compiled kernel. */
export interface KernelKey {
  /** The tile configuration (without the split count, which the kernel reads at run time). */
  tiles: MatmulTiles;
  /** A is stored transposed, `[K, M]`. */
  transA: boolean;
  /** B is stored transposed, `[N, K]`. */
  transB: boolean;
  /** A read as vec4 (its contiguous dimension is a multiple of 4). */
  vecA: boolean;
  /** B read as vec4. */
  vecB: boolean;
  /** C (and the bias) read and written as vec4. */
  vecC: boolean;
  /** M is a multiple of bm: no bounds checks on that dimension. */
  fullM: boolean;
  /** N is a multiple of bn. */
  fullN: boolean;
  /** K is a multiple of bk. */
  fullK: boolean;
  /** The kernel adds a bias vector (only without split-K: the reduction pass adds it then). */
  bias: boolean;
  /** The kernel adds an addend matrix of C's shape (only without split-K, as the bias). */
  addend: boolean;
  /** The kernel applies GELU last (only without split-K, as the bias). */
  gelu: boolean;
  /** Extra floats per workgroup-memory row of A's slice when transposed (avoids bank conflicts). */
  padA: number;
  /** The same padding for B's slice. */
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

/**
 * The WGSL of the tiled product kernel for one {@link KernelKey}, generated once: the same string
 * object comes back every time, so the runtime's pipeline lookup does not rehash a new source.
 */
export const matmulShader: (key: KernelKey) => string = shaderGenerator("matmul", generateShader);

/**
 * One slice's multiply-adds from workgroup buffer `buf` (of `a_tile`, `b_tile`, laid out as the
 * product kernel stages them) into the vec4 accumulators `<acc>{r}_{j}`: every index is a
 * loop-invariant thread offset (`tx`, `ty`) plus a constant.
 */
export function sliceProductCode(
  { bm, bn, bk, tm, tn }: MatmulTiles,
  buf: number,
  acc = "c",
): string {
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
        code += `        ${acc}${r}_${j} = fma(vec4f(a${s}.${comp}), b${j}, ${acc}${r}_${j});\n`;
      }
    }
    code += "      }\n";
  }
  return code;
}

/** What the epilogue adds to a product and applies last. */
export interface EpilogueFlags {
  /** A bias vector `[N]`, bound as `bias`. */
  readonly bias: boolean;
  /** An addend of C's shape, bound as `addend`. */
  readonly addend: boolean;
  /** GELU (exact, with the normal CDF) applied last. */
  readonly gelu: boolean;
}

/**
 * WGSL of one output unit's final value: `value` (a product's sum, a vec4f where `vector`) plus
 * the bias at `biasAt`, plus the addend at `addendAt`, through GELU, as the flags say.
 */
export function epilogueValue(
  flags: EpilogueFlags,
  value: string,
  biasAt: string,
  addendAt: string,
  vector = false,
): string {
  let v = value;
  if (flags.bias) v = `(${v} + bias[${biasAt}])`;
  if (flags.addend) v = `(${v} + addend[${addendAt}])`;
  return flags.gelu ? `${vector ? "gelu4_" : "gelu_"}(${v})` : v;
}

/** WGSL of `gelu_` (the elementwise op's GELU) and of `gelu4_`, the same on each of a vec4f. */
const EPILOGUE_GELU_WGSL = `${GELU_WGSL}
fn gelu4_(v: vec4f) -> vec4f { return vec4f(gelu_(v.x), gelu_(v.y), gelu_(v.z), gelu_(v.w)); }`;

/** The stores of a thread's accumulators through the epilogue, bounds-checked where tiles are
 * partial. */
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
        const at = `(cbase + row * p.n + ${col}) >> 2u`;
        const v = epilogueValue(key, value, `(${col}) >> 2u`, at, true);
        const st = `cg[${at}] = ${v};`;
        epilogue += key.fullN ? `      ${st}\n` : `      if (${col} < p.n) { ${st} }\n`;
      } else {
        for (let c = 0; c < 4; c++) {
          const cc = `${col} + ${c}u`;
          const at = `cbase + row * p.n + ${cc}`;
          const v = epilogueValue(key, `${value}[${c}]`, cc, at);
          const st = `cg[${at}] = ${v};`;
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
  if (key.addend) bindings += decl("addend", arr(key.vecC), "read");
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

${GRID_WGSL}${key.gelu ? EPILOGUE_GELU_WGSL : ""}
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

/** Invocations per workgroup of the split-K sum. */
export const SPLIT_REDUCE_WG = 256;

/**
 * The split-K sum's WGSL for the epilogue `flags`, generated once per flags: each output's
 * partials summed in a fixed order, then the bias, the addend and GELU as in the product kernel.
 */
export const splitReduceShader: (flags: EpilogueFlags) => string = shaderGenerator(
  "matmul split-K sum",
  (flags: EpilogueFlags) => {
    let binding = 2;
    const decl = (name: string) =>
      `@group(0) @binding(${binding++}) var<storage, read> ${name}: array<f32>;\n`;
    const extra = (flags.bias ? decl("bias") : "") + (flags.addend ? decl("addend") : "");
    return /* wgsl */ `
struct P { total: u32, mn: u32, n: u32, splits: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
${extra}@group(0) @binding(${binding}) var<storage, read_write> out: array<f32>;
${GRID_WGSL}${flags.gelu ? EPILOGUE_GELU_WGSL : ""}
@compute @workgroup_size(${SPLIT_REDUCE_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.total) { return; }
  let ob = i / p.mn;
  let e = i - ob * p.mn;
  var s = 0.0;
  for (var k = 0u; k < p.splits; k++) { s += part[(ob * p.splits + k) * p.mn + e]; }
  out[i] = ${epilogueValue(flags, "s", "e % p.n", "i")};
}`;
  },
);
