/**
 * WGSL of the fused (flash-style) attention kernels: the forward and the two backward kernels.
 *
 * Each workgroup serves one (batch, head) and a block of {@link FLASH_ROWS} rows of its own
 * (queries in the forward and the query-gradient kernel, keys in the key/value-gradient kernel),
 * one invocation per row, holding that row of q (or k and v) and its accumulators in registers.
 * It walks the other side in tiles of `BK` rows staged in workgroup memory, so no `[L, L]`
 * matrix is ever written:
 *
 * - forward: per key tile, the tile's scores and their maximum; the running row maximum `m`,
 *   sum `l` and output accumulator are rescaled by exp(m_old − m_new) (the online softmax), and
 *   each visible key adds exp(s − m) · drop · v. It writes o = acc / l and the row statistics
 *   (m, l).
 * - query gradients: D = rowsum(dO ∘ O) first; per visible key, P = exp(s − m) / l recomputed,
 *   dP = drop · dO·v, dS = scale · P · (dP − D), dq += dS · k. It writes dq and D.
 * - key and value gradients: per visible query, the same P, dP and dS; dv += P · drop · dO and
 *   dk += dS · q.
 *
 * Every sum runs in a fixed order and nothing is accumulated with atomics, so results repeat bit
 * for bit.
 *
 * Masks. A row with at least one unmasked key (an open row) takes the softmax over its unmasked
 * keys only: the unfused op gives a masked key exp(s − 10,000 − max), which is 0 in f32 unless
 * that raw score exceeds the row's unmasked maximum by more than about 9,900. A row whose keys
 * are all masked (closed) takes the softmax of all its raw scores, as RecBole's additive −10,000
 * does. Which rows are closed follows from the first unpadded key of the sequence: with the
 * causal mask, rows before it; without, every row of a sequence of pads only. Each workgroup
 * finds that key first, and skips the key tiles (forward) or query tiles (key gradients) that
 * the causal mask hides from all of its rows.
 *
 * @module
 */
import { GRID_WGSL } from "../wgsl/grid.ts";
import { workgroupReduceWgsl } from "../wgsl/reduce.ts";
import { ATTENTION_DROP_FACTOR_WGSL, ATTENTION_DROPOUT_FIELDS_WGSL } from "./attention_options.ts";

/** Rows (queries, or keys) per workgroup, one invocation each. */
export const FLASH_ROWS = 64;

/** The kernels of the fused attention. */
export type FlashKernel = "forward" | "query grads" | "key grads";

/** Rows of the other side staged per tile: the tile of K and V (or Q and dO) stays ≤ 8 KiB. */
function flashTileRows(dim: number): number {
  const padded = 4 * Math.ceil(dim / 4);
  return padded <= 32 ? 32 : padded <= 64 ? 16 : 8;
}

/**
 * WGSL functions reading and writing rows of a `[rows, D]` tensor as vec4s: `ld_<name>(row, c4)`
 * (zero past D) and, with `write`, `st_<name>(row, c4, value)`. With D a multiple of 4 the
 * binding is an `array<vec4f>`, otherwise `array<f32>`.
 */
function rowAccess(name: string, binding: number, dim: number, write: boolean): string {
  const vec = dim % 4 === 0;
  const mode = write ? "read_write" : "read";
  const decl = `@group(0) @binding(${binding}) var<storage, ${mode}> ${name}: array<${
    vec ? "vec4f" : "f32"
  }>;`;
  const load = vec ? `return ${name}[row * D4 + c4];` : `var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c4 + e < D) { r[e] = ${name}[row * D + 4u * c4 + e]; }
  }
  return r;`;
  const store = vec ? `${name}[row * D4 + c4] = x;` : `for (var e = 0u; e < 4u; e++) {
    if (4u * c4 + e < D) { ${name}[row * D + 4u * c4 + e] = x[e]; }
  }`;
  return `${decl}
fn ld_${name}(row: u32, c4: u32) -> vec4f {
  ${load}
}${
    write
      ? `
fn st_${name}(row: u32, c4: u32, x: vec4f) {
  ${store}
}`
      : ""
  }`;
}

/** WGSL shared by the three kernels: sizes, parameters, dropout, pads and visibility. */
function prelude(dim: number): string {
  const bk = flashTileRows(dim);
  return /* wgsl */ `
const ROWS = ${FLASH_ROWS}u;
const BK = ${bk}u;
const D = ${dim}u;
const D4 = ${Math.ceil(dim / 4)}u;
const LOWEST = -3.4028235e38;
struct P {
  groups: u32, tiles: u32, gx: u32, length: u32, heads: u32, causal: u32, has_pad: u32,
  ${ATTENTION_DROPOUT_FIELDS_WGSL}
  scale: f32, keep_scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> pad: array<i32>;
var<workgroup> red: array<u32, ROWS>;
${ATTENTION_DROP_FACTOR_WGSL}
${GRID_WGSL}
// The first unpadded key of sequence b (L when all are pads), the same in every invocation.
fn first_unpadded(b: u32, lid: u32) -> u32 {
  var f = 0u;
  if (p.has_pad != 0u) {
    f = p.length;
    for (var j = lid; j < p.length; j += ROWS) {
      if (pad[b * p.length + j] == 0) { f = j; break; }
    }
  }
  ${workgroupReduceWgsl({ array: "red", size: FLASH_ROWS, combine: { merge: "min" }, value: "f" })}
  return workgroupUniformLoad(&red[0]);
}
// Whether query i has an unmasked key.
fn row_open(i: u32, first: u32) -> bool {
  if (p.causal != 0u) { return first <= i; }
  return first < p.length;
}
// Whether query i's softmax includes key j (j < L): an open row skips its masked keys.
fn visible(i: u32, j: u32, open: bool, padded: bool) -> bool {
  return !open || (!(p.causal != 0u && j > i) && !padded);
}
fn is_pad(b: u32, j: u32) -> bool {
  return p.has_pad != 0u && pad[b * p.length + j] != 0;
}
`;
}

/** The key-tile walk of the query-side kernels: stages K, V and the pad flags of keys k0…. */
const KEY_TILE = /* wgsl */ `
var<workgroup> kt: array<vec4f, BK * D4>;
var<workgroup> vt: array<vec4f, BK * D4>;
var<workgroup> kpad: array<u32, BK>;
fn load_keys(bh: u32, b: u32, k0: u32, lid: u32) {
  workgroupBarrier();
  for (var e = lid; e < BK * D4; e += ROWS) {
    let key = k0 + e / D4;
    var kv = vec4f(0.0);
    var vv = vec4f(0.0);
    if (key < p.length) {
      kv = ld_k(bh * p.length + key, e % D4);
      vv = ld_v(bh * p.length + key, e % D4);
    }
    kt[e] = kv;
    vt[e] = vv;
  }
  for (var j = lid; j < BK; j += ROWS) {
    kpad[j] = select(0u, 1u, k0 + j < p.length && is_pad(b, k0 + j));
  }
  workgroupBarrier();
}
// The end of the keys a block of queries from r0 may see: with the causal mask and every row
// open, the block's last query.
fn key_end(r0: u32, first: u32) -> u32 {
  if (p.causal != 0u && first <= r0) { return min(r0 + ROWS, p.length); }
  return p.length;
}`;

/** The prologue of every kernel: this workgroup's (batch, head), first row and first key. */
const PROLOGUE = /* wgsl */ `
  let w = grid_index(wid, p.gx);
  if (w >= p.groups) { return; }
  let bh = w / p.tiles;
  let r0 = (w % p.tiles) * ROWS;
  let b = bh / p.heads;
  let first = first_unpadded(b, lid);
  let live = r0 + lid < p.length;
  let row = bh * p.length + r0 + lid;`;

const ENTRY = `@compute @workgroup_size(${FLASH_ROWS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {`;

function forwardShader(dim: number): string {
  return /* wgsl */ `
${prelude(dim)}
${rowAccess("q", 1, dim, false)}
${rowAccess("k", 2, dim, false)}
${rowAccess("v", 3, dim, false)}
${rowAccess("o", 5, dim, true)}
@group(0) @binding(6) var<storage, read_write> stats: array<vec2f>;
${KEY_TILE}
${ENTRY}
${PROLOGUE}
  let i = r0 + lid;
  let open = row_open(i, first);
  var qr: array<vec4f, D4>;
  var acc: array<vec4f, D4>;
  for (var c = 0u; c < D4; c++) {
    if (live) { qr[c] = ld_q(row, c); }
    acc[c] = vec4f(0.0);
  }
  var m = LOWEST;
  var l = 0.0;
  let kend = key_end(r0, first);
  for (var k0 = 0u; k0 < kend; k0 += BK) {
    load_keys(bh, b, k0, lid);
    if (live) {
      var s: array<f32, BK>;
      var seen = 0u;
      var tmax = LOWEST;
      for (var j = 0u; j < BK; j++) {
        let key = k0 + j;
        if (key < p.length && visible(i, key, open, kpad[j] != 0u)) {
          var dot_qk = 0.0;
          for (var c = 0u; c < D4; c++) { dot_qk += dot(qr[c], kt[j * D4 + c]); }
          s[j] = dot_qk * p.scale;
          tmax = max(tmax, s[j]);
          seen |= 1u << j;
        }
      }
      // Rescale what the earlier tiles summed to the new maximum, then add this tile.
      let mn = max(m, tmax);
      let alpha = exp(m - mn);
      l *= alpha;
      for (var c = 0u; c < D4; c++) { acc[c] *= alpha; }
      for (var j = 0u; j < BK; j++) {
        if ((seen & (1u << j)) == 0u) { continue; }
        let e = exp(s[j] - mn);
        l += e;
        let weight = e * drop_factor(row * p.length + k0 + j);
        for (var c = 0u; c < D4; c++) { acc[c] += weight * vt[j * D4 + c]; }
      }
      m = mn;
    }
  }
  if (!live) { return; }
  let inv = 1.0 / l;
  for (var c = 0u; c < D4; c++) { st_o(row, c, acc[c] * inv); }
  stats[row] = vec2f(m, l);
}`;
}

function queryGradShader(dim: number): string {
  return /* wgsl */ `
${prelude(dim)}
${rowAccess("q", 1, dim, false)}
${rowAccess("k", 2, dim, false)}
${rowAccess("v", 3, dim, false)}
${rowAccess("o", 5, dim, false)}
${rowAccess("dout", 6, dim, false)}
@group(0) @binding(7) var<storage, read> stats: array<vec2f>;
${rowAccess("dq", 8, dim, true)}
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;
${KEY_TILE}
${ENTRY}
${PROLOGUE}
  let i = r0 + lid;
  let open = row_open(i, first);
  var qr: array<vec4f, D4>;
  var gr: array<vec4f, D4>;
  var acc: array<vec4f, D4>;
  var dsum = 0.0;
  var m = 0.0;
  var inv = 0.0;
  if (live) {
    for (var c = 0u; c < D4; c++) {
      qr[c] = ld_q(row, c);
      gr[c] = ld_dout(row, c);
      dsum += dot(gr[c], ld_o(row, c));
    }
    let st = stats[row];
    m = st.x;
    inv = 1.0 / st.y;
  }
  for (var c = 0u; c < D4; c++) { acc[c] = vec4f(0.0); }
  let kend = key_end(r0, first);
  for (var k0 = 0u; k0 < kend; k0 += BK) {
    load_keys(bh, b, k0, lid);
    if (live) {
      for (var j = 0u; j < BK; j++) {
        let key = k0 + j;
        if (key >= p.length || !visible(i, key, open, kpad[j] != 0u)) { continue; }
        var dot_qk = 0.0;
        var dot_gv = 0.0;
        for (var c = 0u; c < D4; c++) {
          dot_qk += dot(qr[c], kt[j * D4 + c]);
          dot_gv += dot(gr[c], vt[j * D4 + c]);
        }
        let prob = exp(dot_qk * p.scale - m) * inv;
        let dp = drop_factor(row * p.length + key) * dot_gv;
        let ds = p.scale * prob * (dp - dsum);
        for (var c = 0u; c < D4; c++) { acc[c] += ds * kt[j * D4 + c]; }
      }
    }
  }
  if (!live) { return; }
  for (var c = 0u; c < D4; c++) { st_dq(row, c, acc[c]); }
  delta[row] = dsum;
}`;
}

function keyGradShader(dim: number): string {
  return /* wgsl */ `
${prelude(dim)}
${rowAccess("q", 1, dim, false)}
${rowAccess("k", 2, dim, false)}
${rowAccess("v", 3, dim, false)}
${rowAccess("dout", 5, dim, false)}
@group(0) @binding(6) var<storage, read> stats: array<vec2f>;
@group(0) @binding(7) var<storage, read> delta: array<f32>;
${rowAccess("dk", 8, dim, true)}
${rowAccess("dv", 9, dim, true)}
var<workgroup> qt: array<vec4f, BK * D4>;
var<workgroup> gt: array<vec4f, BK * D4>;
// Per staged query: (m, 1 / l, D) of its row.
var<workgroup> qstat: array<vec3f, BK>;
${ENTRY}
${PROLOGUE}
  let j = r0 + lid;
  let padded = live && is_pad(b, j);
  var kr: array<vec4f, D4>;
  var vr: array<vec4f, D4>;
  var dka: array<vec4f, D4>;
  var dva: array<vec4f, D4>;
  for (var c = 0u; c < D4; c++) {
    if (live) {
      kr[c] = ld_k(row, c);
      vr[c] = ld_v(row, c);
    }
    dka[c] = vec4f(0.0);
    dva[c] = vec4f(0.0);
  }
  for (var i0 = 0u; i0 < p.length; i0 += BK) {
    // Open queries before this block see none of its keys under the causal mask.
    if (p.causal != 0u && i0 >= first && i0 + BK <= r0) { continue; }
    workgroupBarrier();
    for (var e = lid; e < BK * D4; e += ROWS) {
      let i = i0 + e / D4;
      var qv = vec4f(0.0);
      var gv = vec4f(0.0);
      if (i < p.length) {
        qv = ld_q(bh * p.length + i, e % D4);
        gv = ld_dout(bh * p.length + i, e % D4);
      }
      qt[e] = qv;
      gt[e] = gv;
    }
    for (var t = lid; t < BK; t += ROWS) {
      var st = vec3f(0.0);
      if (i0 + t < p.length) {
        let r = bh * p.length + i0 + t;
        st = vec3f(stats[r].x, 1.0 / stats[r].y, delta[r]);
      }
      qstat[t] = st;
    }
    workgroupBarrier();
    if (live) {
      for (var t = 0u; t < BK; t++) {
        let i = i0 + t;
        if (i >= p.length || !visible(i, j, row_open(i, first), padded)) { continue; }
        var dot_qk = 0.0;
        var dot_gv = 0.0;
        for (var c = 0u; c < D4; c++) {
          dot_qk += dot(qt[t * D4 + c], kr[c]);
          dot_gv += dot(gt[t * D4 + c], vr[c]);
        }
        let st = qstat[t];
        let prob = exp(dot_qk * p.scale - st.x) * st.y;
        let f = drop_factor((bh * p.length + i) * p.length + j);
        let ds = p.scale * prob * (f * dot_gv - st.z);
        let pf = prob * f;
        for (var c = 0u; c < D4; c++) {
          dva[c] += pf * gt[t * D4 + c];
          dka[c] += ds * qt[t * D4 + c];
        }
      }
    }
  }
  if (!live) { return; }
  for (var c = 0u; c < D4; c++) {
    st_dk(row, c, dka[c]);
    st_dv(row, c, dva[c]);
  }
}`;
}

const shaders = new Map<string, string>();

/** The WGSL of one fused-attention kernel for head size `dim` (generated once per pair). */
export function flashShader(kernel: FlashKernel, dim: number): string {
  const key = `${kernel} ${dim}`;
  let src = shaders.get(key);
  if (src === undefined) {
    src = kernel === "forward"
      ? forwardShader(dim)
      : kernel === "query grads"
      ? queryGradShader(dim)
      : keyGradShader(dim);
    shaders.set(key, src);
  }
  return src;
}
