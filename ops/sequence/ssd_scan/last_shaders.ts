/**
 * The WGSL of `ssdScanLast` (`last.ts`): one workgroup per segment walks it from its last token
 * back in blocks of tokens staged in workgroup memory. The forward forms each token's weight
 * α_t·Δ_t·(B_t·C_τ) (one invocation per head walks a block for the running Σ Δ behind α) and sums
 * the weighted x; the backward's first walk gives dx, dB, dC, the direct term of ∂Δ and the
 * per-segment sums of dA and dD, its second walk, oldest token first, adds the decays' term of ∂Δ
 * (a running sum of w) and sums d dtBias. Blocks are as long as workgroup memory allows, up to 32
 * tokens.
 *
 * A workgroup walks its segment alone, so the longest segment of a batch sets the kernel's time,
 * and each block's wait for memory is paid once per block: an invocation loads the Δ, the B
 * entries and the x (or B) values of several tokens before it multiplies them, so that their
 * loads wait together rather than one after another. Every sum keeps its order, so this changes
 * no result.
 *
 * @module
 */
import {
  blockOf,
  common,
  eachEntry,
  entryBatches,
  inputBindings,
  NEWEST_BLOCKS,
  perSlot,
  SEGMENT_PROLOGUE,
  THREADS,
  tokenSums,
} from "./last_shader_parts.ts";
import { sizeFreeKey, type SsdSpec } from "./options.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";
import { bind, type Binding, prelude } from "./prelude.ts";

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
  // Each slot's channel (the last one for invocations past H·P, whose sums are not written).
  ${
    perSlot(HP, (k) =>
      `let c${k} = min(lid + ${k * THREADS}u, HP - 1u);
  let h${k} = c${k} / P;`)
  }
  ${NEWEST_BLOCKS}
    // Δ of the block's (token, head) entries, several at once.
    ${
    entryBatches(
      "n * H",
      eachEntry((u) => `let d${u} = step_size(th_at(base + e${u} / H, e${u} % H), e${u} % H).x;`),
      (u) => `s_tok[e${u}] = d${u};`,
    )
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
    tokenSums(
      Math.ceil(HP / THREADS),
      tb,
      (k) => `acc${k}`,
      (k, l) => `s_tok[(${l}) * H + h${k}]`,
      (k, l) => `x[(base + ${l}) * HP + c${k}]`,
    )
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
 * (and dD, d dtBias where given) in one (segments, K, H) tensor, K the number of sums; `wsum` is
 * scratch, (tokens, H).
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
    ["read_write", "parts"],
  ];
  // The head sums' rows of one segment: dA, then dD and d dtBias where given.
  const K = 1 + Number(spec.hasD) + Number(spec.hasBias);
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
  // Each slot's state (the last one for invocations past G·N, whose sums are not written).
  ${
    perSlot(GN, (k) =>
      `let r${k} = min(lid + ${k * THREADS}u, GN - 1u);
  let g${k} = r${k} / N;`)
  }
  // First walk, newest token first: everything but the decays' term of ∂Δ.
  ${NEWEST_BLOCKS}
    // Per (token, head) entry, several at once: Δ and G·x_t, the x of every entry loaded together.
    ${
    entryBatches(
      "n * H",
      [
        eachEntry((u) => `let h${u} = e${u} % H;`),
        eachEntry((u) => `let row${u} = hp_at(base + e${u} / H, h${u}, 0u);`),
        eachEntry((u) => `var s${u} = 0.0;`),
        "for (var p = 0u; p < P; p++) {",
        eachEntry((u) => `  let x${u} = x[row${u} + p];`),
        eachEntry((u) => `  s${u} = fma(s_g[h${u} * P + p], x${u}, s${u});`),
        "}",
        eachEntry((u) => `let d${u} = step_size(th_at(base + e${u} / H, h${u}), h${u}).x;`),
      ].join("\n      "),
      (u) => `s_u[e${u}] = d${u}; s_v[e${u}] = s${u};`,
    )
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
    tokenSums(
      Math.ceil(GN / THREADS),
      tb,
      (k) => `dc${k}`,
      (k, l) => `s_q[(${l}) * G + g${k}]`,
      (k, l) => `B[(base + ${l}) * GN + r${k}]`,
    )
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
    parts[seg * ${K * H}u + h] = s_da[h];
    ${spec.hasD ? `parts[seg * ${K * H}u + ${H}u + h] = s_dd[h];` : ""}
    ${spec.hasBias ? `parts[seg * ${K * H}u + ${(K - 1) * H}u + h] = s_db[h];` : ""}
  }
}`;
}

/** The shader of `kind` for `spec`, generated once per kind and spec (whatever its sizes). */
export const shaderOf = shaderGenerator(
  "ssdScanLast",
  (kind: "forward" | "backward", spec: SsdSpec) =>
    kind === "forward" ? forwardShader(spec) : backwardShader(spec),
  (kind, spec) => `${kind} ${sizeFreeKey(spec)}`,
);
