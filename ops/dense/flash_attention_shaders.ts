/**
 * WGSL of the fused (flash-style) attention kernels: the forward here, the two backward kernels
 * in `flash_attention_backward_shaders.ts`, each tiled by a {@link FlashPlan}.
 *
 * Each workgroup serves one (batch, head) and a block of its own rows (queries in the forward
 * and the query-gradient kernel, keys in the key/value-gradient kernel) and walks the other side
 * in tiles staged in workgroup memory, so no `[L, L]` matrix is ever written. An invocation
 * computes a register tile of scores, four own rows by a few tile rows, with each staged vec4
 * read once for all four rows; the tile's probabilities (or their gradients) go to workgroup
 * memory as vec4s over four own rows, and the same invocation multiplies them into its columns
 * of the four rows' accumulators:
 *
 * - forward: per key tile, the scores and each row's tile maximum (a reduction over the
 *   invocations sharing the row); the running maximum `m`, sum `l` and output accumulator are
 *   rescaled by exp(m_old − m_new) (the online softmax), and each visible key adds
 *   exp(s − m) · drop · v. It writes o = acc / l and the row statistics (m, l).
 * - query gradients: D = rowsum(dO ∘ O) first; per key tile, P = exp(s − m) / l recomputed,
 *   dP = drop · dO·v, dS = scale · P · (dP − D), dq += dS · k. It writes dq and D.
 * - key and value gradients: per query tile, the same P, dP and dS; dv += P · drop · dO and
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
 * finds the first and last unpadded keys and skips the tiles that none of its rows sees: key
 * tiles past the causal diagonal or outside the unpadded keys (forward, query gradients), query
 * tiles before the block's keys under the causal mask, or all but the closed rows when the block
 * holds no unpadded key (key gradients).
 *
 * @module
 */
import type { FlashKernel, FlashPlan } from "./flash_attention_plan.ts";
import { keyGradShader, queryGradShader } from "./flash_attention_backward_shaders.ts";
import {
  column,
  columnExists,
  dotLoop,
  FLASH_ENTRY,
  flashPrelude,
  indentWgsl,
  LANE,
  rowAccess,
  stagedDecls,
  type StagedRows,
  stageRows,
  unroll,
} from "./flash_attention_wgsl.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

const OWN_Q: StagedRows = { array: "qs", from: "q", stride: "STRIDE" };
const TILE_K: StagedRows = { array: "ks", from: "k", stride: "STRIDE" };
const TILE_V: StagedRows = { array: "vs", from: "v", stride: "D4" };

function forwardShader(plan: FlashPlan): string {
  const rk = plan.perInvocation;
  const cols = plan.columns;
  const acc = (r: number, n: number) => `a${r}_${n}`;
  return /* wgsl */ `
${flashPrelude(plan)}
${rowAccess("q", 1, plan.dim, false)}
${rowAccess("k", 2, plan.dim, false)}
${rowAccess("v", 3, plan.dim, false)}
${rowAccess("o", 5, plan.dim, true)}
@group(0) @binding(6) var<storage, read_write> stats: array<vec2f>;
${plan.stageOwn ? stagedDecls("OWN", [OWN_Q]) : ""}
${stagedDecls("TILE", [TILE_K, TILE_V])}
// The tile's weights exp(s − m) · drop, a vec4 over four own rows: [tile row][own group].
var<workgroup> ws: array<vec4f, TILE * WSTRIDE>;
var<workgroup> red_max: array<vec4f, WG>;
var<workgroup> red_sum: array<vec4f, WG>;
${FLASH_ENTRY}
  ${plan.stageOwn ? stageRows("OWN", "r0", [OWN_Q]) : ""}
  let open = select(vec4<bool>(span.x < p.length), vec4u(span.x) <= own4, p.causal != 0u);
  var m = vec4f(LOWEST);
  var l = vec4f(0.0);
  ${
    unroll(4, (r) => unroll(cols, (n) => `var ${acc(r, n)} = vec4f(0.0);`)).split("\n").join("\n  ")
  }
  let keys = key_range(r0, span);
  for (var t0 = keys.x; t0 < keys.y; t0 += TILE) {
    workgroupBarrier();
    ${stageRows("TILE", "t0", [TILE_K, TILE_V])}
    for (var t = lid; t < TILE; t += WG) { tstate[t] = key_state(b, t0 + t); }
    workgroupBarrier();
    // Scores of the four own rows (lanes) against tile rows tg + n · GROUPS.
    ${unroll(rk, (n) => `var s${n} = vec4f(0.0);`)}
    if (live4.x) {
    ${dotLoop(plan, "s", OWN_Q, "ks")}
    }
    var tmax = vec4f(LOWEST);
    ${
    unroll(rk, (n) =>
      `let j${n} = tg + ${n}u * GROUPS;
    let seen${n} = sees(own4, open, vec4u(t0 + j${n}), vec4u(tstate[j${n}])) & live4;
    s${n} = select(vec4f(LOWEST), s${n} * p.scale, seen${n});
    tmax = max(tmax, s${n});`)
  }
    red_max[lid] = tmax;
    workgroupBarrier();
    var mt = red_max[og * GROUPS];
    for (var g = 1u; g < GROUPS; g++) { mt = max(mt, red_max[og * GROUPS + g]); }
    let mn = max(m, mt);
    let alpha = exp(m - mn);
    var part = vec4f(0.0);
    ${
    unroll(rk, (n) =>
      `let e${n} = select(vec4f(0.0), exp(s${n} - mn), seen${n});
    part += e${n};
    ws[j${n} * WSTRIDE + og] = e${n} *
      drop4((vec4u(base) + own4) * p.length + vec4u(t0 + j${n}), seen${n});`)
  }
    red_sum[lid] = part;
    workgroupBarrier();
    var ts = red_sum[og * GROUPS];
    for (var g = 1u; g < GROUPS; g++) { ts += red_sum[og * GROUPS + g]; }
    l = l * alpha + ts;
    m = mn;
    ${
    unroll(4, (r) => unroll(cols, (n) => `${acc(r, n)} *= alpha.${LANE[r]};`)).split("\n").join(
      "\n    ",
    )
  }
    if (live4.x) {
    for (var j = 0u; j < TILE; j++) {
      let wj = ws[j * WSTRIDE + og];
      ${unroll(cols, (n) => `let x${n} = vs[j * D4 + ${column(plan, n)}];`)}
      ${
    unroll(4, (r) => unroll(cols, (n) => `${acc(r, n)} += wj.${LANE[r]} * x${n};`)).split("\n")
      .join("\n      ")
  }
    }
    }
  }
  let inv = 1.0 / l;
  ${
    unroll(4, (r) => {
      const stores = unroll(cols, (n) => {
        const st = `st_o(base + o0 + ${r}u, ${column(plan, n)}, ${acc(r, n)} * inv.${LANE[r]});`;
        const exists = columnExists(plan, n);
        return exists ? `if (${exists}) { ${st} }` : st;
      });
      return `if (o0 + ${r}u < p.length) {
    ${stores}
    if (tg == 0u) { stats[base + o0 + ${r}u] = vec2f(m.${LANE[r]}, l.${LANE[r]}); }
  }`;
    })
  }
}`;
}

/** Each fused-attention kernel's generator. */
const FLASH_KERNELS: Record<FlashKernel, (plan: FlashPlan) => string> = {
  "forward": forwardShader,
  "query grads": queryGradShader,
  "key grads": keyGradShader,
};

/** The WGSL of the fused-attention kernel a plan describes (generated once per plan). */
export const flashShader: (plan: FlashPlan) => string = shaderGenerator(
  "flashAttention",
  (plan: FlashPlan) => indentWgsl(FLASH_KERNELS[plan.kernel](plan)),
  (plan) => `${plan.kernel} ${plan.dim} ${plan.stageOwn}`,
);
