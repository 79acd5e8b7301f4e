/**
 * The SSD scan read at each segment's last token only (`ssdScanLast`): what a model whose loss
 * reads nothing else needs (SSD4Rec's last layer, read at each sample's newest item). Per segment
 * (tokens s…τ) and head h, with Δ_t as in `ssdScan` and the decay from t to the end
 * α_t = exp(A_h·Σ_{u=t+1…τ} Δ_u) (α_τ = 1):
 *
 *     y_τ = Σ_t α_t·Δ_t·(B_t·C_τ)·x_t + D_h·x_τ
 *
 * a sum over the segment's tokens with one scalar weight per (token, head), so neither the state
 * nor any other token's output is formed. With G the output's gradient, gx_t = G·x_t and
 * q_t = α_t·Δ_t·gx_t, the backward is as short:
 *
 *     dx_t = α_t·Δ_t·(B_t·C_τ)·G (+ D_h·G at τ)      dB_t = C_τ·Σ_h q_t      dC_τ = Σ_t B_t·Σ_h q_t
 *     ∂Δ_t = α_t·gx_t·(B_t·C_τ) + A_h·Σ_{t'<t} w_t'    with w_t = q_t·(B_t·C_τ)
 *     dA_h = Σ_t w_t·Σ_{u>t} Δ_u      dD_h = G·x_τ      (sums over the heads of a group)
 *
 * One workgroup per segment, longest first, walks the segment from its last token back in blocks
 * of tokens staged in workgroup memory: the running sum of Δ gives α, one invocation per head
 * walks each block, and all invocations then apply the block's weights. The backward's second
 * walk, oldest token first, adds the decays' term of ∂Δ, the running sum of w. It equals the
 * full scan's output and gradients at the last tokens to rounding (the sums run in another
 * order); no atomics, so results repeat bit for bit.
 *
 * @module
 */
import { gradEnabled, record } from "../../core/autograd.ts";
import { runtime } from "../../core/runtime.ts";
import { Tensor } from "../../core/tensor.ts";
import { sumLeading } from "../../pointwise/reduce.ts";
import { listed, type SsdScanOptions, type SsdSpec, ssdSpec } from "./options.ts";
import { OP, piecesOf } from "./pieces.ts";
import { bind, type Binding, bindingIf, launchPerItem, prelude } from "./prelude.ts";

/** Invocations per workgroup. */
const THREADS = 128;
/** Most tokens staged per block. */
const MAX_BLOCK = 32;

/** Options of {@link ssdScanLast}: those of `ssdScan` without initial or final states. */
export type SsdScanLastOptions = Pick<
  SsdScanOptions,
  "D" | "dtBias" | "dtSoftplus" | "seqIdx" | "chunkSize" | "releaseInputs"
>;

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
  const list: Binding[] = [
    ["read", "segs", "i32"],
    ["read", "x"],
    ["read", "B"],
    ["read", "C"],
    ["read", "dt"],
    ["read", "A"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
    ["read_write", "y"],
  ];
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
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let start = u32(segs[item * 4u]);
  let len = u32(segs[item * 4u + 1u]);
  let seg = u32(segs[item * 4u + 3u]);
  let tau = start + len - 1u;
  for (var e = lid; e < GN; e += WG) { s_c[e] = C[tau * GN + e]; }
  for (var h = lid; h < H; h += WG) { s_suf[h] = 0.0; }
  ${perSlot(HP, (k) => `var acc${k} = 0.0;`)}
  var hi = len;
  loop {
    if (hi == 0u) { break; }
    let lo = select(0u, hi - TB, hi > TB);
    let n = hi - lo;
    let base = start + lo;
    workgroupBarrier();
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
    ["read", "segs", "i32"],
    ["read", "x"],
    ["read", "B"],
    ["read", "C"],
    ["read", "dt"],
    ["read", "A"],
    ...bindingIf(spec.hasD, ["read", "D"]),
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
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
  let item = grid_index(wid, u.width);
  if (item >= u.count) { return; }
  let start = u32(segs[item * 4u]);
  let len = u32(segs[item * 4u + 1u]);
  let seg = u32(segs[item * 4u + 3u]);
  let tau = start + len - 1u;
  for (var e = lid; e < GN; e += WG) { s_c[e] = C[tau * GN + e]; }
  for (var c = lid; c < HP; c += WG) { s_g[c] = gy[seg * HP + c]; }
  for (var h = lid; h < H; h += WG) {
    s_suf[h] = 0.0;
    s_da[h] = 0.0;
    s_dd[h] = 0.0;
    s_db[h] = 0.0;
  }
  ${perSlot(GN, (k) => `var dc${k} = 0.0;`)}
  // First walk, newest token first: everything but the decays' term of ∂Δ.
  var hi = len;
  loop {
    if (hi == 0u) { break; }
    let lo = select(0u, hi - TB, hi > TB);
    let n = hi - lo;
    let base = start + lo;
    workgroupBarrier();
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
function shaderOf(kind: "forward" | "backward", spec: SsdSpec): string {
  const key = `${kind} ${JSON.stringify(spec)}`;
  let wgsl = shaders.get(key);
  if (wgsl === undefined) {
    wgsl = kind === "forward" ? forwardShader(spec) : backwardShader(spec);
    shaders.set(key, wgsl);
  }
  return wgsl;
}

/**
 * The SSD scan's output at each segment's last token only: `ssdScan(…).y` gathered at those
 * tokens, (segments, H, P) with segments in order row by row, computed without the other
 * tokens' outputs or any state. Recorded on the tape with gradients for x, dt, A, B, C, D and
 * dtBias, which equal the full scan's for a gradient that enters at the last tokens only, to
 * rounding.
 *
 * @param x input (batch, length, heads H, headDim P)
 * @param dt step sizes before bias and softplus, (batch, length, H)
 * @param A per-head decay rate (H)
 * @param B input matrix (batch, length, groups G, states N)
 * @param C output matrix, shaped like B
 * @param options D, dtBias, dtSoftplus, seqIdx (the segments), releaseInputs; `chunkSize`
 *   only shapes the `SsdPieces` built from ids and changes nothing here
 * @returns y at the last token of every segment, (segments, H, P)
 */
export function ssdScanLast(
  x: Tensor,
  dt: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  options: SsdScanLastOptions = {},
): Tensor {
  const { pieces, owned } = piecesOf(x, options);
  const spec = ssdSpec(x, dt, A, B, C, options, pieces.segments, pieces.chunk);
  const { heads: H, headDim: P } = spec;
  const { D, dtBias } = options;
  const segments = pieces.segments;
  const table = pieces.segmentTable();
  const y = Tensor.empty([segments, H, P], "f32", `${OP}Last`);
  const optional = [...listed(D), ...listed(dtBias)];
  launchPerItem("last forward", shaderOf("forward", spec), segments, [
    table,
    x,
    B,
    C,
    dt,
    A,
    ...optional,
    y,
  ]);
  const inputs = [x, dt, A, B, C, ...optional];
  const ownedTables = owned ? pieces.tensors() : [];
  const handed = options.releaseInputs ? [x, dt, B, C] : [];
  if (!gradEnabled() || !inputs.some((t) => t.requiresGrad)) {
    for (const t of [...ownedTables, ...handed]) t.dispose();
    return y;
  }
  return record(y, `${OP}Last`, inputs, (gy) => {
    const dx = Tensor.empty(x.shape, "f32", `${OP}Last dx`);
    const ddt = Tensor.empty(dt.shape, "f32", `${OP}Last ddt`);
    const dB = Tensor.empty(B.shape, "f32", `${OP}Last dB`);
    const dC = Tensor.empty(C.shape, "f32", `${OP}Last dC`);
    const wsum = Tensor.empty(dt.shape, "f32", `${OP}Last weights`);
    const parts = [true, spec.hasD, spec.hasBias].filter((on) => on).map(() =>
      Tensor.empty([segments, H], "f32", `${OP}Last head sums`)
    );
    launchPerItem("last backward", shaderOf("backward", spec), segments, [
      table,
      x,
      B,
      C,
      dt,
      A,
      ...optional,
      gy,
      dx,
      ddt,
      dB,
      dC,
      wsum,
      ...parts,
    ]);
    wsum.dispose();
    const [dA, ...sums] = parts.map((p) => {
      const sum = sumLeading(p, [H]);
      p.dispose();
      return sum;
    });
    return [dx, ddt, dA, dB, dC, ...sums];
  }, [...ownedTables, ...handed]);
}
