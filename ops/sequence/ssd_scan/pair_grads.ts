/**
 * dB and dC of the SSD scan, the gradients summed over the heads of a group. Inside a chunk both
 * come from one matrix per (chunk, group) over the chunk's token pairs,
 *
 *     W[l, s] = Σ_h exp(cs_l − cs_s) · (∂y_l · Δ_s·x_s)        (s ≤ l, h in the group; else 0)
 *
 * and across chunks from the state S_in entering the chunk and the gradient U leaving it:
 *
 *     dC_l = Σ_h exp(cs_l) · ∂y_lᵀ·S_in  +  Σ_{s≤l} W[l, s]·B_s
 *     dB_s = Σ_h exp(cs_end − cs_s) · Δ_s · x_sᵀ·U  +  Σ_{l≥s} W[l, s]·C_l
 *
 * All three are chunk products: W a product over the group's channels cut into one slab per head
 * (each head's decay weighs its slab), dC and dB products over the channels (the state term)
 * followed by one over the chunk's tokens (the pair term).
 *
 * @module
 */
import { Tensor } from "../../core/tensor.ts";
import { type ChunkGemm, runChunkGemm } from "./chunk_gemm.ts";
import type { Decays } from "./forward.ts";
import type { SsdSpec } from "./options.ts";
import { groupTokens, itemSetup } from "./prelude.ts";

/** W per (chunk, group), stored like C·Bᵀ (row l holds W[l, ·]). */
function pairWeights(spec: SsdSpec): ChunkGemm {
  return {
    label: "pair weights",
    bindings: [
      ["read", "chunks", "i32"],
      ["read", "x"],
      ["read", "gy"],
      ["read", "dtv"],
      ["read", "cs"],
      ["read_write", "w"],
    ],
    tiles: "wide",
    setup: itemSetup("CHUNK_GROUP", "len", "len"),
    declarations: groupTokens(spec, ["cs", "dtv"]).declarations,
    prologue: groupTokens(spec, ["cs", "dtv"]).fill,
    maxRows: spec.chunk,
    maxCols: spec.chunk,
    phases: [{
      lo: "0u",
      hi: "0u",
      a: "gy[hp_at(start + mm, hb, kk)]",
      b: "x[hp_at(start + nn, hb, kk)] * g_dtv[nn * HG + kk / P]",
      aAlong: "k",
      bAlong: "k",
      slab: {
        count: "HG",
        size: "P",
        weight: "select(0.0, exp(g_cs[m * HG + slab] - g_cs[n * HG + slab]), n <= m)",
      },
    }],
    emit: "w[off + m * len + n] = v;",
  };
}

/** dC (role "C") or dB (role "B") per (chunk, group): the state term, then the pair term. */
function pairGrad(spec: SsdSpec, role: "B" | "C"): ChunkGemm {
  const forC = role === "C";
  const head = "th_at(start + mm, hb + kk / P)";
  const stateA = forC
    ? `gy[hp_at(start + mm, hb, kk)] * ecs[${head}]`
    : `x[hp_at(start + mm, hb, kk)] * dtv[${head}] * eend[${head}]`;
  return {
    label: `d${role}`,
    bindings: [
      ["read", "chunks", "i32"],
      ["read", forC ? "gy" : "x"],
      ["read", "dtv"],
      ["read", forC ? "ecs" : "eend"],
      ["read", "st"],
      ["read", "w"],
      ["read", "other"],
      ["read_write", "out"],
    ],
    tiles: "wide",
    setup: itemSetup("CHUNK_GROUP", "len", "N"),
    maxRows: spec.chunk,
    maxCols: spec.states,
    phases: [
      {
        lo: "0u",
        hi: "select(0u, HG * P, slot >= 0)",
        a: stateA,
        b: "st[st_at(u32(slot), hb, kk, nn)]",
        aAlong: "k",
        bAlong: "n",
      },
      forC
        ? {
          lo: "0u",
          hi: "min(len, m0 + BM)",
          a: "w[off + mm * len + kk]",
          b: "other[bc_at(start + kk, g, nn)]",
          aAlong: "k",
          bAlong: "n",
        }
        : {
          lo: "m0",
          hi: "len",
          a: "w[off + kk * len + mm]",
          b: "other[bc_at(start + kk, g, nn)]",
          aAlong: "m",
          bAlong: "n",
        },
    ],
    emit: "out[bc_at(start + m, g, n)] = v;",
  };
}

/** dB and dC, each shaped like B. */
export function pairGrads(
  spec: SsdSpec,
  t: { chunks: Tensor; count: number; x: Tensor; B: Tensor; C: Tensor; blockSize: number },
  s: Decays & { gy: Tensor; sin: Tensor; ub: Tensor },
): { dB: Tensor; dC: Tensor } {
  const items = t.count * spec.groups;
  const w = Tensor.empty([Math.max(1, spec.groups * t.blockSize)], "f32", "ssdScan pair weights");
  runChunkGemm(spec, pairWeights(spec), items, [t.chunks, t.x, s.gy, s.dtv, s.cs, w]);
  const grad = (role: "B" | "C") => {
    const out = Tensor.empty(t.B.shape, "f32", `ssdScan d${role}`);
    const forC = role === "C";
    runChunkGemm(spec, pairGrad(spec, role), items, [
      t.chunks,
      forC ? s.gy : t.x,
      s.dtv,
      forC ? s.ecs : s.eend,
      forC ? s.sin : s.ub,
      w,
      forC ? t.B : t.C,
      out,
    ]);
    return out;
  };
  const dC = grad("C");
  const dB = grad("B");
  w.dispose();
  return { dB, dC };
}
