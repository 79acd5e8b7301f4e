/**
 * The SSD scan's per-chunk forward kernels. Within a chunk (tokens of one segment, at most Q of
 * them) with cumulative log decay cs_l = Σ_{r≤l} Δ_r·A and the state S_in entering it:
 *
 *     y_l = Σ_{s≤l} (C_l·B_s) · exp(cs_l − cs_s) · Δ_s · x_s  +  exp(cs_l) · S_in · C_l  +  D · x_l
 *
 * - `prepare`: one invocation per (chunk, head) walks the chunk and writes Δ and cs.
 * - `pairProducts`: the chunk's C·Bᵀ per group, CB[l, s] = C_l·B_s, shared by the heads of the
 *   group and by the backward; a chunk product over the states.
 * - `chunkOutput`: one chunk product per (chunk, head) in two phases: the entering-state term, a
 *   product over the states, then the pairs s < l, a product over the chunk's tokens whose
 *   operand CB[l, s]·exp(cs_l − cs_s)·Δ_s (zero for s ≥ l) is formed as it is staged; the pair
 *   (l, l) and D·x last. The sum before
 *   those two, ŷ, is kept for the backward: the decay gradient is ∂y·ŷ, and taking it from y
 *   would subtract terms that cancel, losing precision where the diagonal dominates.
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { type ChunkGemm, runChunkGemm } from "./chunk_gemm.ts";
import { listed, type SsdSpec } from "./options.ts";
import {
  bind,
  type Binding,
  bindingIf,
  headTokens,
  itemSetup,
  launchPerInvocation,
  prelude,
} from "./prelude.ts";

/** Invocations per workgroup of `prepare`. */
const PREPARE_THREADS = 64;

function prepareShader(spec: SsdSpec): string {
  const list: Binding[] = [
    ["read", "chunks", "i32"],
    ["read", "dt"],
    ["read", "A"],
    ...bindingIf(spec.hasBias, ["read", "dt_bias"]),
    ["read_write", "dtv"],
    ["read_write", "cs"],
    ["read_write", "ecs"],
    ["read_write", "eend"],
  ];
  return /* wgsl */ `
${bind(list)}
${prelude(spec, true)}
@compute @workgroup_size(${PREPARE_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let id = grid_index(gid, u.width);
  if (id >= u.count) { return; }
  let k = id / H;
  let h = id % H;
  let start = chunk_start(k);
  let len = chunk_len(k);
  let a = A[h];
  var c = 0.0;
  for (var l = 0u; l < len; l++) {
    let j = (start + l) * H + h;
    let d = step_size(j, h).x;
    c += d * a;
    dtv[j] = d;
    cs[j] = c;
    ecs[j] = exp(c);
  }
  for (var l = 0u; l < len; l++) {
    let j = (start + l) * H + h;
    eend[j] = exp(c - cs[j]);
  }
}`;
}

/**
 * The per-(token, head) factors of a scan, each (tokens, H): Δ, the within-chunk cumulative log
 * decay cs, and the decays it gives from the chunk's start, exp(cs), and to its end,
 * exp(cs_end − cs) (both ≤ 1), which the products read instead of evaluating exp per operand.
 */
export interface Decays {
  /** Δ = dt + bias, softplus'd when asked. */
  dtv: Tensor;
  /** cs_l = Σ_{r≤l} Δ_r·A within the chunk. */
  cs: Tensor;
  /** exp(cs_l). */
  ecs: Tensor;
  /** exp(cs_end − cs_l). */
  eend: Tensor;
}

/** Computes the {@link Decays} of every chunk (one invocation per chunk and head). */
export function prepare(
  spec: SsdSpec,
  chunks: Tensor,
  count: number,
  dt: Tensor,
  A: Tensor,
  dtBias: Tensor | undefined,
): Decays {
  const shape = [spec.batch * spec.length, spec.heads];
  const d: Decays = {
    dtv: Tensor.empty(shape, "f32", "ssdScan Δ"),
    cs: Tensor.empty(shape, "f32", "ssdScan cs"),
    ecs: Tensor.empty(shape, "f32", "ssdScan exp(cs)"),
    eend: Tensor.empty(shape, "f32", "ssdScan exp(cs_end − cs)"),
  };
  launchPerInvocation(
    "prepare",
    prepareShader(spec),
    count * spec.heads,
    PREPARE_THREADS,
    [chunks, dt, A, ...listed(dtBias), d.dtv, d.cs, d.ecs, d.eend],
  );
  return d;
}

/** C·Bᵀ of every chunk and group, blocks of len × len at `chunk_block`, row l holding CB[l, ·]. */
function pairProductGemm(spec: SsdSpec): ChunkGemm {
  return {
    label: "pair products",
    bindings: [["read", "chunks", "i32"], ["read", "B"], ["read", "C"], ["read_write", "cb"]],
    tiles: "wide",
    setup: itemSetup("CHUNK_GROUP", "len", "len"),
    maxRows: spec.chunk,
    maxCols: spec.chunk,
    phases: [{
      lo: "0u",
      hi: "N",
      a: "C[bc_at(start + mm, g, kk)]",
      b: "B[bc_at(start + nn, g, kk)]",
      aAlong: "k",
      bAlong: "k",
    }],
    emit: "cb[off + m * len + n] = v;",
  };
}

/** C·Bᵀ of every chunk and group, (G · Σ len²) floats in the blocks `chunk_block` addresses. */
export function pairProducts(
  spec: SsdSpec,
  chunks: Tensor,
  count: number,
  blockSize: number,
  B: Tensor,
  C: Tensor,
): Tensor {
  const cb = Tensor.empty([Math.max(1, spec.groups * blockSize)], "f32", "ssdScan C·Bᵀ");
  runChunkGemm(spec, pairProductGemm(spec), count * spec.groups, [chunks, B, C, cb]);
  return cb;
}

/**
 * The output per (chunk, head): a product over the states for the entering-state term,
 * exp(cs_l)·(C_l·S_in), then one over the chunk's tokens for the pairs s < l, whose operand
 * CB[l, s]·exp(cs_l − cs_s)·Δ_s is formed as it is staged. Their sum is ŷ (y without the pair
 * (l, l) and D·x, which the backward needs); y = ŷ + (CB[l, l]·Δ_l + D)·x_l.
 */
function outputGemm(spec: SsdSpec): ChunkGemm {
  const skip = spec.hasD ? " + D[h]" : "";
  const tokens = headTokens(spec, ["cs", "dtv", "ecs"]);
  return {
    label: "output",
    bindings: [
      ["read", "chunks", "i32"],
      ["read", "x"],
      ["read", "C"],
      ["read", "dtv"],
      ["read", "cs"],
      ["read", "ecs"],
      ["read", "cb"],
      ["read", "sin"],
      ...bindingIf(spec.hasD, ["read", "D"]),
      ["read_write", "yh"],
      ["read_write", "y"],
    ],
    tiles: "narrow",
    setup: itemSetup("CHUNK_HEAD", "len", "P"),
    declarations: tokens.declarations,
    prologue: tokens.fill,
    maxRows: spec.chunk,
    maxCols: spec.headDim,
    phases: [{
      lo: "0u",
      hi: "select(0u, N, slot >= 0)",
      a: "C[bc_at(start + mm, g, kk)] * t_ecs[mm]",
      b: "sin[st_at(u32(slot), h, nn, kk)]",
      aAlong: "k",
      bAlong: "k",
    }, {
      lo: "0u",
      hi: "min(len, m0 + BM)",
      a: "cb[off + mm * len + kk] * exp(t_cs[mm] - t_cs[kk]) * t_dtv[kk]",
      aWhere: "kk < mm",
      b: "x[th_at(start + kk, h) * P + nn]",
      aAlong: "k",
      bAlong: "n",
    }],
    emit: `let j = th_at(start + m, h);
      let at = j * P + n;
      yh[at] = v;
      y[at] = v + (cb[off + m * len + m] * t_dtv[m]${skip}) * x[at];`,
  };
}

/**
 * The output y and ŷ, y without its pair (l, l) and D·x, both (tokens, H, P). `sin` holds the
 * state entering every chunk with a slot.
 */
export function chunkOutput(
  spec: SsdSpec,
  t: { chunks: Tensor; count: number; x: Tensor; C: Tensor; D?: Tensor },
  saved: Decays & { cb: Tensor; sin: Tensor },
): { y: Tensor; yh: Tensor } {
  const { batch, length, heads, headDim } = spec;
  const y = Tensor.empty([batch, length, heads, headDim], "f32", "ssdScan");
  const yh = Tensor.empty(y.shape, "f32", "ssdScan ŷ");
  runChunkGemm(spec, outputGemm(spec), t.count * heads, [
    t.chunks,
    t.x,
    t.C,
    saved.dtv,
    saved.cs,
    saved.ecs,
    saved.cb,
    saved.sin,
    ...listed(t.D),
    yh,
    y,
  ]);
  return { y, yh };
}
