/**
 * Per-chunk matrices over token pairs (l, s), s ≤ l, computed in 64 × 64 tiles: one workgroup per
 * tile and group, every invocation a 4 × 4 block of pairs in vec4 registers, the tile's rows staged
 * in workgroup memory a slice of the reduced dimension at a time.
 *
 * - `chunkBlocks`: C·Bᵀ, CB[l, s] = C_l·B_s, shared by the heads of a group, forward and backward.
 *   Stored [s][l] (`cb`) and [l][s] (`cbt`), so that every pair loop reads a row coalesced.
 * - `pairWeights`: W[l, s] = Σ_h exp(cs_l − cs_s)·Δ_s·(∂y_l·x_s) over the heads of the group, from
 *   which dB and dC follow (`pair_grads.ts`). Stored [s][l].
 *
 * Entries with s > l are never written and never read.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import type { SsdSpec } from "./options.ts";
import { PAIR_TILE } from "./pieces.ts";
import { bind, type Binding, launchPerItem, prelude } from "./prelude.ts";

/** Invocations per workgroup: 16 × 16, each a 4 × 4 block of a 64 × 64 tile. */
const TILE_THREADS = 256;
/** Slice of the reduced dimension staged at a time. */
const SLICE = 16;

/** Which pair matrix a launch computes. */
type PairKind = "blocks" | "weights";

function tileShader(spec: SsdSpec, kind: PairKind): string {
  const blocks = kind === "blocks";
  const list: Binding[] = blocks
    ? [["read", "chunks", "i32"], ["read", "tiles", "i32"], ["read", "B"], ["read", "C"], [
      "read_write",
      "cb",
    ], ["read_write", "cbt"]]
    : [
      ["read", "chunks", "i32"],
      ["read", "tiles", "i32"],
      ["read", "x"],
      ["read", "gy"],
      [
        "read",
        "dtv",
      ],
      ["read", "cs"],
      ["read_write", "w"],
    ];
  // The reduced dimension, the summed sources (heads of the group, or the group itself), and the
  // element r of row l (rows of the tile) and of column s.
  const R = blocks ? "N" : "P";
  const sources = blocks ? "1u" : "HG";
  const rowValue = blocks
    ? "C[((start + l) * G + g) * N + r]"
    : "gy[((start + l) * H + h) * P + r]";
  const colValue = blocks ? "B[((start + s) * G + g) * N + r]" : "x[((start + s) * H + h) * P + r]";
  const stageScalars = blocks ? "" : `if (lid < TB) {
      csl[lid] = cs[(start + min(l0 + lid, len - 1u)) * H + h];
    } else if (lid < 2u * TB) {
      let r = lid - TB;
      let s = min(s0 + r, len - 1u);
      css[r] = cs[(start + s) * H + h];
      dts[r] = dtv[(start + s) * H + h];
    }`;
  const scalars = blocks ? "" : `var<workgroup> csl: array<f32, TB>;
var<workgroup> css: array<f32, TB>;
var<workgroup> dts: array<f32, TB>;`;
  // Adds a source's dot products into the pairs' sums: plainly (C·Bᵀ), or decayed (W).
  const accumulate = blocks
    ? "acc0 += d0;\n    acc1 += d1;\n    acc2 += d2;\n    acc3 += d3;"
    : `let sc = vec4<f32>(css[ts * 4u], css[ts * 4u + 1u], css[ts * 4u + 2u], css[ts * 4u + 3u]);
    let sd = vec4<f32>(dts[ts * 4u], dts[ts * 4u + 1u], dts[ts * 4u + 2u], dts[ts * 4u + 3u]);
    let col = vec4<u32>(s0 + ts * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let row = l0 + tl * 4u;
    ${
      [0, 1, 2, 3].map((i) =>
        `acc${i} += select(vec4<f32>(), exp(vec4<f32>(csl[tl * 4u + ${i}u]) - sc) * sd * d${i}, col <= vec4<u32>(row + ${i}u));`
      ).join("\n    ")
    }`;
  const store = blocks
    ? "cb[off + s * len + l] = v;\n        cbt[off + l * len + s] = v;"
    : "w[off + s * len + l] = v;";
  return /* wgsl */ `
${bind(list)}
${prelude(spec)}
const TB: u32 = ${PAIR_TILE}u;
const RS: u32 = ${SLICE}u;
var<workgroup> rows_l: array<f32, ${PAIR_TILE * SLICE}>;  // [r][l]
var<workgroup> cols_s: array<f32, ${PAIR_TILE * SLICE}>;  // [r][s]
${scalars}
@compute @workgroup_size(${TILE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let tile = item / G;
  let g = item % G;
  let k = u32(tiles[tile * 4u]);
  let l0 = u32(tiles[tile * 4u + 1u]) * TB;
  let s0 = u32(tiles[tile * 4u + 2u]) * TB;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let tl = lid / 16u;
  let ts = lid % 16u;
  // Whether the invocation's 4 × 4 block holds a pair of the chunk (rows past its end and blocks
  // wholly above the diagonal only stage rows): short chunks cost what they hold.
  let live = l0 + tl * 4u < len && s0 + ts * 4u <= l0 + tl * 4u + 3u;
  // The invocation's pairs: rows l = 4·tl + i (vec4 i), columns s = 4·ts + (x, y, z, w).
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var src = 0u; src < ${sources}; src++) {
    let h = g * HG + src;
    workgroupBarrier();
    ${stageScalars}
    var d0 = vec4<f32>();
    var d1 = vec4<f32>();
    var d2 = vec4<f32>();
    var d3 = vec4<f32>();
    for (var r0 = 0u; r0 < ${R}; r0 += RS) {
      workgroupBarrier();
      for (var e = lid; e < TB * RS; e += ${TILE_THREADS}u) {
        let rr = e / RS;
        let r = min(r0 + e % RS, ${R} - 1u);
        let inside = r0 + e % RS < ${R};
        let l = min(l0 + rr, len - 1u);
        let s = min(s0 + rr, len - 1u);
        rows_l[(e % RS) * TB + rr] = select(0.0, ${rowValue}, inside && l0 + rr < len);
        cols_s[(e % RS) * TB + rr] = select(0.0, ${colValue}, inside && s0 + rr < len);
      }
      workgroupBarrier();
      for (var rr = 0u; rr < RS && live; rr++) {
        let a = vec4<f32>(rows_l[rr * TB + tl * 4u], rows_l[rr * TB + tl * 4u + 1u], rows_l[rr * TB + tl * 4u + 2u], rows_l[rr * TB + tl * 4u + 3u]);
        let b = vec4<f32>(cols_s[rr * TB + ts * 4u], cols_s[rr * TB + ts * 4u + 1u], cols_s[rr * TB + ts * 4u + 2u], cols_s[rr * TB + ts * 4u + 3u]);
        d0 += a.x * b;
        d1 += a.y * b;
        d2 += a.z * b;
        d3 += a.w * b;
      }
    }
    if (live) {
      ${accumulate}
    }
  }
  var acc: array<vec4<f32>, 4>;
  acc[0] = acc0;
  acc[1] = acc1;
  acc[2] = acc2;
  acc[3] = acc3;
  let off = chunk_block(k, g);
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let l = l0 + tl * 4u + i;
      let s = s0 + ts * 4u + j;
      if (s <= l && l < len) {
        let v = acc[i][j];
        ${store}
      }
    }
  }
}`;
}

/** Every chunk's C·Bᵀ per group, [s][l] (`cb`) and [l][s] (`cbt`). */
export function chunkBlocks(
  spec: SsdSpec,
  chunks: Tensor,
  tiles: { table: Tensor; count: number },
  blockSize: number,
  B: Tensor,
  C: Tensor,
): { cb: Tensor; cbt: Tensor } {
  const size = [Math.max(1, blockSize * spec.groups)];
  const cb = Tensor.empty(size, "f32", "ssdScan C·Bᵀ");
  const cbt = Tensor.empty(size, "f32", "ssdScan C·Bᵀ transposed");
  launchPerItem("C·Bᵀ", tileShader(spec, "blocks"), tiles.count * spec.groups, [
    chunks,
    tiles.table,
    B,
    C,
    cb,
    cbt,
  ]);
  return { cb, cbt };
}

/** W of every chunk and group, laid out like the C·Bᵀ blocks ([s][l]). */
export function pairWeights(
  spec: SsdSpec,
  chunks: Tensor,
  tiles: { table: Tensor; count: number },
  blockSize: number,
  s: { x: Tensor; gy: Tensor; dtv: Tensor; cs: Tensor },
): Tensor {
  const w = Tensor.empty([Math.max(1, blockSize * spec.groups)], "f32", "ssdScan pair weights");
  launchPerItem("pair weights", tileShader(spec, "weights"), tiles.count * spec.groups, [
    chunks,
    tiles.table,
    s.x,
    s.gy,
    s.dtv,
    s.cs,
    w,
  ]);
  return w;
}
