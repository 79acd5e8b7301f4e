/**
 * The WGSL of `ssdScanLast` (`last.ts`): one workgroup per segment walks it from its last token
 * back in blocks of tokens staged in workgroup memory. The forward forms each token's weight
 * α_t·Δ_t·(B_t·C_τ) (one invocation per head walks a block for the running Σ Δ behind α) and sums
 * the weighted x; the backward's first walk gives dx, dB, dC, the direct term of ∂Δ and the
 * per-segment sums of dA and dD, its second walk, oldest token first, adds the decays' term of ∂Δ
 * (a running sum of w) and sums d dtBias. Blocks are as long as workgroup memory allows, up to 32
 * tokens.
 *
 * @module
 */
import { runtime } from "../../core/runtime.ts";
import type { SsdSpec } from "./options.ts";
import { OP } from "./pieces.ts";
import { bind, type Binding, bindingIf, prelude } from "./prelude.ts";

/** Invocations per workgroup. */
const THREADS = 128;
/** Most tokens staged per block. */
const MAX_BLOCK = 32;

/** Workgroup-memory floats of a kernel for blocks of `tb` tokens. */
function sharedFloats(spec: SsdSpec, tb: number, backward: boolean): number {
  const { heads: H, headDim: P, groups: G, states: N } = spec;
  const parts = tb * G * splitOf(tb, G);
  return backward
    ? G * N + H * P + 4 * H + 3 * tb * H + 2 * tb * G + parts
    : G * N + H + tb * H + tb * G + parts;
}

/** Invocations sharing one B_t·C_τ dot product. */
function splitOf(tb: number, groups: number): number {
  return Math.max(1, Math.floor(THREADS / (tb * groups)));
}

/** The longest block (a power of two up to 32) whose staging fits the device's workgroup memory. */
function blockOf(spec: SsdSpec, backward: boolean): number {
  const limit = runtime().info.maxWorkgroupBytes;
  for (let tb = MAX_BLOCK; tb >= 1; tb /= 2) {
    if (4 * sharedFloats(spec, tb, backward) <= limit) return tb;
  }
  throw new RangeError(
    `${OP}Last: heads ${spec.heads} × headDim ${spec.headDim} with ${spec.groups} groups of ` +
      `${spec.states} states need ${4 * sharedFloats(spec, 1, backward)} bytes of workgroup ` +
      `memory, more than this device's ${limit}; use fewer heads or states`,
  );
}

/** A WGSL statement per channel block k of `count` values spread over the invocations. */
function perSlot(count: number, body: (k: number) => string): string {
  const slots = Math.ceil(count / THREADS);
  return Array.from({ length: slots }, (_, k) => body(k)).join("\n  ");
}

/** The bindings both kernels read, in their order (the segment table first, longest first). */
function inputBindings(spec: SsdSpec): Binding[] {
  return [
    ["read", "segs", "i32"],
    ["read", "x"],
    ["read", "B"],
    ["read", "C"],
    ["read", "dt"],
    ["read", "A"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
  ];
}

/** Both kernels' start: the workgroup's segment (its first token, length, number, last token τ)
 * and C_τ staged in `s_c`. */
const SEGMENT_PROLOGUE = `let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let start = u32(segs[item * 4u]);
  let len = u32(segs[item * 4u + 1u]);
  let seg = u32(segs[item * 4u + 3u]);
  let tau = start + len - 1u;
  for (var e = lid; e < GN; e += WG) { s_c[e] = C[tau * GN + e]; }`;

/**
 * The head of a loop over the segment's blocks, newest first: the block's `n` tokens from `base`
 * (the loop body ends with `hi = lo;`), after a barrier that ends the previous block's reads.
 */
const NEWEST_BLOCKS = `var hi = len;
  loop {
    if (hi == 0u) { break; }
    let lo = select(0u, hi - TB, hi > TB);
    let n = hi - lo;
    let base = start + lo;
    workgroupBarrier();`;

/**
 * The staging both kernels share: segment item, its bounds and C_τ, and the B_t·C_τ of a block
 * (`bc_stage(base, n)`, into `s_bc`, split over `SPLIT` invocations a dot product).
 */
function common(spec: SsdSpec, tb: number): string {
  const { heads: H, groups: G, states: N } = spec;
  return /* wgsl */ `
const WG: u32 = ${THREADS}u;
const TB: u32 = ${tb}u;
const HP: u32 = ${H * spec.headDim}u;
const GN: u32 = ${G * N}u;
const SPLIT: u32 = ${splitOf(tb, G)}u;
var<workgroup> s_c: array<f32, ${G * N}>;
var<workgroup> s_bc: array<f32, ${tb * G}>;
var<workgroup> s_part: array<f32, ${tb * G * splitOf(tb, G)}>;
// B_t·C_τ of the block's n tokens from base, per group: partial dot products, then their sums.
fn bc_stage(lid: u32, base: u32, n: u32) {
  for (var e = lid; e < n * G * SPLIT; e += WG) {
    let di = e / SPLIT;
    let row = bc_at(base + di / G, di % G, 0u);
    let crow = (di % G) * N;
    var s = 0.0;
    for (var k = e % SPLIT; k < N; k += SPLIT) { s = fma(B[row + k], s_c[crow + k], s); }
    s_part[e] = s;
  }
  workgroupBarrier();
  for (var e = lid; e < n * G; e += WG) {
    var s = 0.0;
    for (var q = 0u; q < SPLIT; q++) { s += s_part[e * SPLIT + q]; }
    s_bc[e] = s;
  }
}`;
}

/** The forward's shader: y at each segment's last token, (segments, H, P). */
function forwardShader(spec: SsdSpec): string {
  const tb = blockOf(spec, false);
  const list: Binding[] = [...inputBindings(spec), ["read_write", "y"]];
  const HP = spec.heads * spec.headDim;
  const skip = spec.hasD ? " + D[c / P] * x[tau * HP + c]" : "";
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true, false)}
${common(spec, tb)}
var<workgroup> s_suf: array<f32, ${spec.heads}>;
// Δ of the block's (token, head), then the weight α·Δ·(B·C_τ) of its x.
var<workgroup> s_tok: array<f32, ${tb * spec.heads}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${SEGMENT_PROLOGUE}
  for (var h = lid; h < H; h += WG) { s_suf[h] = 0.0; }
  ${perSlot(HP, (k) => `var acc${k} = 0.0;`)}
  ${NEWEST_BLOCKS}
    for (var e = lid; e < n * H; e += WG) {
      s_tok[e] = step_size(th_at(base + e / H, e % H), e % H).x;
    }
    bc_stage(lid, base, n);
    workgroupBarrier();
    // Newest token first: the running Σ Δ of the later tokens gives each token's decay α.
    for (var h = lid; h < H; h += WG) {
      let a = A[h];
      let g = h / HG;
      var suf = s_suf[h];
      for (var l = n; l > 0u; l--) {
        let e = (l - 1u) * H + h;
        let d = s_tok[e];
        s_tok[e] = exp(a * suf) * d * s_bc[(l - 1u) * G + g];
        suf += d;
      }
      s_suf[h] = suf;
    }
    workgroupBarrier();
    ${
    perSlot(HP, (k) =>
      `{
      let c = lid + ${k * THREADS}u;
      if (c < HP) {
        let h = c / P;
        for (var l = 0u; l < n; l++) { acc${k} = fma(s_tok[l * H + h], x[(base + l) * HP + c], acc${k}); }
      }
    }`)
  }
    hi = lo;
  }
  ${
    perSlot(HP, (k) =>
      `{
    let c = lid + ${k * THREADS}u;
    if (c < HP) { y[seg * HP + c] = acc${k}${skip}; }
  }`)
  }
}`;
}

/**
 * The backward's shader: dx, ∂dt, dB, dC at every token and the per-segment partial sums of dA
 * (and dD, d dtBias where given), each (segments, H); `wsum` is scratch, (tokens, H).
 */
function backwardShader(spec: SsdSpec): string {
  const tb = blockOf(spec, true);
  const { heads: H, headDim: P, groups: G, states: N } = spec;
  const list: Binding[] = [
    ...inputBindings(spec),
    ["read", "gy"],
    ["read_write", "dx"],
    ["read_write", "ddt"],
    ["read_write", "dB"],
    ["read_write", "dC"],
    ["read_write", "wsum"],
    ["read_write", "part_a"],
    ...bindingIf(spec.hasD, ["read_write", "part_d"]),
    ...bindingIf(spec.hasBias, ["read_write", "part_b"]),
  ];
  const HP = H * P, GN = G * N;
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true, false)}
${common(spec, tb)}
var<workgroup> s_g: array<f32, ${HP}>;
var<workgroup> s_suf: array<f32, ${H}>;
var<workgroup> s_da: array<f32, ${H}>;
var<workgroup> s_dd: array<f32, ${H}>;
var<workgroup> s_db: array<f32, ${H}>;
var<workgroup> s_u: array<f32, ${tb * H}>;
var<workgroup> s_v: array<f32, ${tb * H}>;
var<workgroup> s_w: array<f32, ${tb * H}>;
var<workgroup> s_q: array<f32, ${tb * G}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${SEGMENT_PROLOGUE}
  for (var c = lid; c < HP; c += WG) { s_g[c] = gy[seg * HP + c]; }
  for (var h = lid; h < H; h += WG) {
    s_suf[h] = 0.0;
    s_da[h] = 0.0;
    s_dd[h] = 0.0;
    s_db[h] = 0.0;
  }
  ${perSlot(GN, (k) => `var dc${k} = 0.0;`)}
  // First walk, newest token first: everything but the decays' term of ∂Δ.
  ${NEWEST_BLOCKS}
    for (var e = lid; e < n * H; e += WG) {
      let h = e % H;
      let row = hp_at(base + e / H, h, 0u);
      var s = 0.0;
      for (var p = 0u; p < P; p++) { s = fma(s_g[h * P + p], x[row + p], s); }
      s_u[e] = step_size(th_at(base + e / H, h), h).x;
      s_v[e] = s;
    }
    bc_stage(lid, base, n);
    workgroupBarrier();
    for (var h = lid; h < H; h += WG) {
      let a = A[h];
      let g = h / HG;
      var suf = s_suf[h];
      var da = s_da[h];
      for (var l = n; l > 0u; l--) {
        let e = (l - 1u) * H + h;
        let j = th_at(base + l - 1u, h);
        let d = s_u[e];
        let gx = s_v[e];
        let bc = s_bc[(l - 1u) * G + g];
        let alpha = exp(a * suf);
        let q = alpha * d * gx;
        let w = q * bc;
        ddt[j] = alpha * gx * bc;
        wsum[j] = w;
        da = fma(w, suf, da);
        suf += d;
        if (base + l - 1u == tau) { s_dd[h] = gx; }
        s_u[e] = alpha * d * bc;
        s_v[e] = q;
      }
      s_suf[h] = suf;
      s_da[h] = da;
    }
    workgroupBarrier();
    for (var e = lid; e < n * G; e += WG) {
      let row = (e / G) * H + (e % G) * HG;
      var s = 0.0;
      for (var k = 0u; k < HG; k++) { s += s_v[row + k]; }
      s_q[e] = s;
    }
    ${
    perSlot(HP, (k) =>
      `{
      let c = lid + ${k * THREADS}u;
      if (c < HP) {
        let h = c / P;
        let gc = s_g[c];
        for (var l = 0u; l < n; l++) {
          let t = base + l;
          var v = s_u[l * H + h] * gc;
          ${spec.hasD ? "if (t == tau) { v = fma(D[h], gc, v); }" : ""}
          dx[t * HP + c] = v;
        }
      }
    }`)
  }
    workgroupBarrier();
    for (var e = lid; e < n * GN; e += WG) {
      let t = base + e / GN;
      let r = e % GN;
      dB[t * GN + r] = s_c[r] * s_q[(e / GN) * G + r / N];
      if (t != tau) { dC[t * GN + r] = 0.0; }
    }
    ${
    perSlot(GN, (k) =>
      `{
      let r = lid + ${k * THREADS}u;
      if (r < GN) {
        for (var l = 0u; l < n; l++) { dc${k} = fma(B[(base + l) * GN + r], s_q[l * G + r / N], dc${k}); }
      }
    }`)
  }
    hi = lo;
  }
  ${
    perSlot(GN, (k) =>
      `{
    let r = lid + ${k * THREADS}u;
    if (r < GN) { dC[tau * GN + r] = dc${k}; }
  }`)
  }
  // Second walk, oldest token first: ∂Δ_t gains A·Σ_{t'<t} w_t', then the softplus' slope.
  storageBarrier();
  for (var h = lid; h < H; h += WG) { s_suf[h] = 0.0; }
  var done = 0u;
  loop {
    if (done >= len) { break; }
    let n = min(TB, len - done);
    let base = start + done;
    workgroupBarrier();
    for (var e = lid; e < n * H; e += WG) {
      let j = th_at(base + e / H, e % H);
      s_u[e] = ddt[j];
      s_v[e] = wsum[j];
      s_w[e] = step_size(j, e % H).y;
    }
    workgroupBarrier();
    for (var h = lid; h < H; h += WG) {
      let a = A[h];
      var sum = s_suf[h];
      var db = s_db[h];
      for (var l = 0u; l < n; l++) {
        let e = l * H + h;
        let v = fma(a, sum, s_u[e]) * s_w[e];
        s_u[e] = v;
        sum += s_v[e];
        db += v;
      }
      s_suf[h] = sum;
      s_db[h] = db;
    }
    workgroupBarrier();
    for (var e = lid; e < n * H; e += WG) { ddt[th_at(base + e / H, e % H)] = s_u[e]; }
    done += TB;
  }
  for (var h = lid; h < H; h += WG) {
    part_a[seg * H + h] = s_da[h];
    ${spec.hasD ? "part_d[seg * H + h] = s_dd[h];" : ""}
    ${spec.hasBias ? "part_b[seg * H + h] = s_db[h];" : ""}
  }
}`;
}

const shaders = new Map<string, string>();

/** The shader of `kind` for `spec`, generated once per distinct problem shape. */
export function shaderOf(kind: "forward" | "backward", spec: SsdSpec): string {
  const key = `${kind} ${JSON.stringify(spec)}`;
  let wgsl = shaders.get(key);
  if (wgsl === undefined) {
    wgsl = kind === "forward" ? forwardShader(spec) : backwardShader(spec);
    shaders.set(key, wgsl);
  }
  return wgsl;
}
