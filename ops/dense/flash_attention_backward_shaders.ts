/**
 * WGSL of the two backward kernels of the fused attention (see `flash_attention_shaders.ts`
 * for the scheme): the query gradients, tiled over keys, and the key and value gradients, tiled
 * over queries. Both recompute each probability from the forward's row statistics.
 *
 * @module
 */
import type { FlashPlan } from "./flash_attention_plan.ts";
import {
  column,
  columnExists,
  dotLoop,
  FLASH_ENTRY,
  flashPrelude,
  LANE,
  overRows,
  rowAccess,
  stagedDecls,
  type StagedRows,
  stageRows,
  unroll,
} from "./flash_attention_wgsl.ts";

/** WGSL statements storing accumulators `<prefix><r>_<n>` of own rows below L into `st_<to>`. */
function storeOwn(plan: FlashPlan, prefix: string, to: string): string {
  return unroll(4, (r) => {
    const stores = unroll(plan.columns, (n) => {
      const st = `st_${to}(base + o0 + ${r}u, ${column(plan, n)}, ${prefix}${r}_${n});`;
      const exists = columnExists(plan, n);
      return exists ? `if (${exists}) { ${st} }` : st;
    });
    return `if (o0 + ${r}u < p.length) {
    ${stores}
  }`;
  });
}

/** WGSL declarations of accumulators `<prefix><r>_<n>`, zero. */
function zeroAccumulators(plan: FlashPlan, prefix: string): string {
  return unroll(4, (r) => unroll(plan.columns, (n) => `var ${prefix}${r}_${n} = vec4f(0.0);`))
    .split("\n").join("\n  ");
}

/** WGSL statements adding `<lanes>.<lane r> · x<n>` to accumulators `<prefix><r>_<n>`. */
function accumulate(plan: FlashPlan, prefix: string, lanes: string, x: string): string {
  return unroll(
    4,
    (r) => unroll(plan.columns, (n) => `${prefix}${r}_${n} += ${lanes}.${LANE[r]} * ${x}${n};`),
  ).split("\n").join("\n      ");
}

/** Rows of the binding `from` staged in the workgroup array `array`, `STRIDE` vec4s apart. */
function staged(array: string, from: string): StagedRows {
  return { array, from, stride: "STRIDE" };
}

/** The rows a backward kernel stages: two of its own block and two of each tile. */
interface BackwardStaging {
  /** Staged once per workgroup from the own rows, where the plan stages them. */
  readonly own: readonly [StagedRows, StagedRows];
  /** Staged per tile. */
  readonly tile: readonly [StagedRows, StagedRows];
}

/**
 * The module scope both backward kernels open with: the prelude, q, k and v at bindings 1–3,
 * the kernel's own `bindings` (4 is the pad ids), then the staged arrays' declarations.
 */
function backwardDecls(plan: FlashPlan, bindings: string, staging: BackwardStaging): string {
  return `${flashPrelude(plan)}
${rowAccess("q", 1, plan.dim, false)}
${rowAccess("k", 2, plan.dim, false)}
${rowAccess("v", 3, plan.dim, false)}
${bindings}
${plan.stageOwn ? stagedDecls("OWN", staging.own) : ""}
${stagedDecls("TILE", staging.tile)}`;
}

/** WGSL statements staging the own rows, where the plan stages them. */
function stageOwn(plan: FlashPlan, staging: BackwardStaging): string {
  return plan.stageOwn ? stageRows("OWN", "r0", staging.own) : "";
}

const OWN_Q = staged("qs", "q");
const OWN_DO = staged("gs", "dout");
const QUERY_STAGING: BackwardStaging = {
  own: [OWN_Q, OWN_DO],
  tile: [staged("ks", "k"), staged("vs", "v")],
};

/** The query-gradient kernel: dq per block of queries, and D = rowsum(dO ∘ O). */
export function queryGradShader(plan: FlashPlan): string {
  const rk = plan.perInvocation;
  return /* wgsl */ `
${
    backwardDecls(
      plan,
      `${rowAccess("o", 5, plan.dim, false)}
${rowAccess("dout", 6, plan.dim, false)}
@group(0) @binding(7) var<storage, read> stats: array<vec2f>;
${rowAccess("dq", 8, plan.dim, true)}
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;`,
      QUERY_STAGING,
    )
  }
// dS of the tile, a vec4 over four own rows: [tile row][own group].
var<workgroup> ws: array<vec4f, TILE * WSTRIDE>;
// Per own row: (m, 1 / l, D).
var<workgroup> rstat: array<vec4f, OWN>;
${FLASH_ENTRY}
  ${stageOwn(plan, QUERY_STAGING)}
  if (lid < OWN) {
    var st = vec4f(0.0);
    if (r0 + lid < p.length) {
      let row = base + r0 + lid;
      var dsum = 0.0;
      for (var c = 0u; c < D4; c++) { dsum += dot(ld_dout(row, c), ld_o(row, c)); }
      let ml = stats[row];
      st = vec4f(ml.x, 1.0 / ml.y, dsum, 0.0);
      delta[row] = dsum;
    }
    rstat[lid] = st;
  }
  workgroupBarrier();
  ${unroll(4, (r) => `let st${r} = rstat[4u * og + ${r}u];`).split("\n").join("\n  ")}
  let mrow = ${overRows((r) => `st${r}.x`)};
  let inv = ${overRows((r) => `st${r}.y`)};
  let dd = ${overRows((r) => `st${r}.z`)};
  let open = select(vec4<bool>(span.x < p.length), vec4u(span.x) <= own4, p.causal != 0u);
  ${zeroAccumulators(plan, "a")}
  let keys = key_range(r0, span);
  for (var t0 = keys.x; t0 < keys.y; t0 += TILE) {
    workgroupBarrier();
    ${stageRows("TILE", "t0", QUERY_STAGING.tile)}
    for (var t = lid; t < TILE; t += WG) { tstate[t] = key_state(b, t0 + t); }
    workgroupBarrier();
    ${unroll(rk, (n) => `var s${n} = vec4f(0.0);\n    var g${n} = vec4f(0.0);`)}
    if (live4.x) {
    ${dotLoop(plan, "s", OWN_Q, "ks")}
    ${dotLoop(plan, "g", OWN_DO, "vs")}
    }
    ${
    unroll(rk, (n) =>
      `let j${n} = tg + ${n}u * GROUPS;
    let seen${n} = sees(own4, open, vec4u(t0 + j${n}), vec4u(tstate[j${n}])) & live4;
    let p${n} = select(vec4f(0.0), exp(s${n} * p.scale - mrow) * inv, seen${n});
    let f${n} = drop4((vec4u(base) + own4) * p.length + vec4u(t0 + j${n}), seen${n});
    ws[j${n} * WSTRIDE + og] = p.scale * p${n} * (f${n} * g${n} - dd);`)
  }
    workgroupBarrier();
    if (live4.x) {
    for (var j = 0u; j < TILE; j++) {
      let dj = ws[j * WSTRIDE + og];
      ${unroll(plan.columns, (n) => `let x${n} = ks[j * STRIDE + ${column(plan, n)}];`)}
      ${accumulate(plan, "a", "dj", "x")}
    }
    }
  }
  ${storeOwn(plan, "a", "dq")}
}`;
}

const OWN_K = staged("ko", "k");
const OWN_V = staged("vo", "v");
const KEY_STAGING: BackwardStaging = {
  own: [OWN_K, OWN_V],
  tile: [staged("qt", "q"), staged("gt", "dout")],
};

/** The key/value-gradient kernel: dk and dv per block of keys. */
export function keyGradShader(plan: FlashPlan): string {
  const rk = plan.perInvocation;
  return /* wgsl */ `
${
    backwardDecls(
      plan,
      `${rowAccess("dout", 5, plan.dim, false)}
@group(0) @binding(6) var<storage, read> stats: array<vec2f>;
@group(0) @binding(7) var<storage, read> delta: array<f32>;
${rowAccess("dk", 8, plan.dim, true)}
${rowAccess("dv", 9, plan.dim, true)}`,
      KEY_STAGING,
    )
  }
// P · drop and dS of the tile, vec4s over four own keys: [tile row][own group].
var<workgroup> pw: array<vec4f, TILE * WSTRIDE>;
var<workgroup> dsw: array<vec4f, TILE * WSTRIDE>;
// Per staged query: (m, 1 / l, D).
var<workgroup> qstat: array<vec4f, TILE>;
${FLASH_ENTRY}
  ${stageOwn(plan, KEY_STAGING)}
  let kst = vec4u(${unroll(4, (r) => `key_state(b, o0 + ${r}u)`).split("\n").join(", ")});
  ${zeroAccumulators(plan, "dk")}
  ${zeroAccumulators(plan, "dv")}
  // Closed rows see every key; open rows only a block with an unpadded key, and under the
  // causal mask only from the block's first key on.
  let closed_end = select(select(0u, p.length, span.x >= p.length), span.x, p.causal != 0u);
  let has_keys = span.x < min(r0 + OWN, p.length) && span.y > r0;
  let open_start = select(p.length, select(0u, max(r0, span.x), p.causal != 0u), has_keys);
  for (var t0 = select(open_start / TILE * TILE, 0u, closed_end > 0u); t0 < p.length; t0 += TILE) {
    if (t0 >= closed_end && min(t0 + TILE, p.length) <= open_start) { continue; }
    workgroupBarrier();
    ${stageRows("TILE", "t0", KEY_STAGING.tile)}
    for (var t = lid; t < TILE; t += WG) {
      let i = t0 + t;
      var st = vec4f(0.0);
      var state = 2u;
      if (i < p.length) {
        let ml = stats[base + i];
        st = vec4f(ml.x, 1.0 / ml.y, delta[base + i], 0.0);
        state = select(1u, 0u, row_open(i, span.x));
      }
      qstat[t] = st;
      tstate[t] = state;
    }
    workgroupBarrier();
    ${unroll(rk, (n) => `var s${n} = vec4f(0.0);\n    var g${n} = vec4f(0.0);`)}
    if (live4.x) {
    ${dotLoop(plan, "s", OWN_K, "qt")}
    ${dotLoop(plan, "g", OWN_V, "gt")}
    }
    ${
    unroll(rk, (n) =>
      `let i${n} = tg + ${n}u * GROUPS;
    let qst${n} = tstate[i${n}];
    let st${n} = qstat[i${n}];
    let seen${n} = sees(vec4u(t0 + i${n}), vec4<bool>(qst${n} == 0u), own4, kst) &
      vec4<bool>(qst${n} != 2u);
    let p${n} = select(vec4f(0.0), exp(s${n} * p.scale - st${n}.x) * st${n}.y, seen${n});
    let f${n} = drop4(vec4u((base + t0 + i${n}) * p.length) + own4, seen${n});
    pw[i${n} * WSTRIDE + og] = p${n} * f${n};
    dsw[i${n} * WSTRIDE + og] = p.scale * p${n} * (f${n} * g${n} - st${n}.z);`)
  }
    workgroupBarrier();
    if (live4.x) {
    for (var t = 0u; t < TILE; t++) {
      let pt = pw[t * WSTRIDE + og];
      let dt = dsw[t * WSTRIDE + og];
      ${unroll(plan.columns, (n) => `let x${n} = gt[t * STRIDE + ${column(plan, n)}];`)}
      ${unroll(plan.columns, (n) => `let y${n} = qt[t * STRIDE + ${column(plan, n)}];`)}
      ${accumulate(plan, "dv", "pt", "x")}
      ${accumulate(plan, "dk", "dt", "y")}
    }
    }
  }
  ${storeOwn(plan, "dk", "dk")}
  ${storeOwn(plan, "dv", "dv")}
}`;
}
