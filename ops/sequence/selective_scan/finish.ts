/**
 * The selective scan's parameter gradients: the adjoint and the state pass leave per-row partial
 * sums (no atomics, so every result is deterministic); `sumLeading` adds the rows and one small
 * kernel splits the sums into dA, dD and d deltaBias.
 *
 * @module
 */
import { launch, packParams } from "../../core/launch.ts";
import { Tensor } from "../../core/tensor.ts";
import { sumLeading } from "../../pointwise/reduce.ts";
import { product } from "../../dense/matmul/product.ts";
import { listed, OP, type ScanSpec } from "./options.ts";
import { bind, type Binding } from "./prelude.ts";
import { shaderGenerator } from "../../wgsl/cache.ts";

/** Invocations per workgroup of the finishing kernel. */
const FINISH_THREADS = 64;

/**
 * Splits the summed partial rows into dA, dD and d deltaBias: `adj` holds [dD | d deltaBias] per
 * (channel, invocation of the channel), `st` dA per (channel, state) and, where `stBias`, then
 * the state kernel's share of d deltaBias per (channel, state).
 */
const finishShader = shaderGenerator("selectiveScan finish", finishShaderSource);

function finishShaderSource(hasD: boolean, hasBias: boolean, tpc: number, stBias: boolean): string {
  const list: Binding[] = [["read", "adj"], ["read", "st"], ["read_write", "dA"]];
  if (hasD) list.push(["read_write", "dD"]);
  if (hasBias) list.push(["read_write", "dbias"]);
  const writeD = hasD ? "dD[c] = sd;" : "";
  const writeBias = hasBias ? "dbias[c] = sb;" : "";
  return /* wgsl */ `
struct P { channels: u32, states: u32 }
@group(0) @binding(0) var<uniform> p: P;
${bind(list)}
const TPC: u32 = ${tpc}u;
@compute @workgroup_size(${FINISH_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let na = p.channels * p.states;
  if (i < na) {
    dA[i] = st[i];
    return;
  }
  let c = i - na;
  if (c >= p.channels) { return; }
  var sd = 0.0;
  var sb = 0.0;
  ${stBias ? "for (var s = 0u; s < p.states; s++) { sb += st[na + c * p.states + s]; }" : ""}
  for (var g = 0u; g < TPC; g++) {
    sd += adj[c * TPC + g];
    sb += adj[(p.channels + c) * TPC + g];
  }
  ${writeD}
  ${writeBias}
}`;
}

/**
 * What either backward leaves before the parameters' gradients are summed: the per-step
 * gradients and the per-row partial sums `parameterGrads` reduces.
 */
export interface BackwardParts {
  /** ∂L/∂u, like u. */
  du: Tensor;
  /** ∂L/∂Δ (after the softplus' slope), like u. */
  ddelta: Tensor;
  /** ∂L/∂z, with z. */
  dz?: Tensor;
  /** ∂L/∂B, like B (a view of B's storage with `gradsOverBC`). */
  dB: Tensor;
  /** ∂L/∂C, like C (a view of C's storage with `gradsOverBC`). */
  dC: Tensor;
  /** Per-row partials (rows, 2 · d · invocations per channel): [dD | d deltaBias]. */
  adj: Tensor;
  /** Per-row partials: dA per (channel, state), then possibly d deltaBias per (channel, state). */
  spart: Tensor;
}

/** dA, and dD and d deltaBias where the scan has them. */
export interface ParameterGrads {
  /** ∂L/∂A, (d, n). */
  dA: Tensor;
  /** ∂L/∂D, (d). */
  dD?: Tensor;
  /** ∂L/∂deltaBias, (d). */
  dbias?: Tensor;
}

/**
 * Reduces the row partials `adj` ([dD | d deltaBias] per channel and invocation) and `spart`
 * (dA per channel and state, then, where its rows are wider, the state pass' share of d
 * deltaBias per channel and state) to the parameter gradients; disposes both.
 */
export function parameterGrads(
  spec: ScanSpec,
  tpc: number,
  adj: Tensor,
  spart: Tensor,
): ParameterGrads {
  const name = `${OP} backward`;
  const { channels, states, hasD, hasBias } = spec;
  const adjSum = sumLeading(adj, [adj.shape[1]]);
  const stSum = sumLeading(spart, [spart.shape[1]]);
  const stBias = spart.shape[1] > channels * states;
  adj.dispose();
  spart.dispose();
  const dA = Tensor.empty([channels, states], "f32", name);
  const dD = hasD ? Tensor.empty([channels], "f32", name) : undefined;
  const dbias = hasBias ? Tensor.empty([channels], "f32", name) : undefined;
  launch(
    `${name} (parameters)`,
    finishShader(hasD, hasBias, tpc, stBias),
    packParams([channels, states]),
    [adjSum, stSum, dA, ...listed(dD), ...listed(dbias)],
    [Math.ceil((channels * states + channels) / FINISH_THREADS)],
  );
  adjSum.dispose();
  stSum.dispose();
  return { dA, dD, dbias };
}

/** The gradients of a low-rank Δ's factors. */
export interface LowRankDeltaGrads {
  /** ∂L/∂delta, (batch, length, R). */
  dFactor: Tensor;
  /** ∂L/∂deltaWeight, (d, R). */
  dWeight: Tensor;
}

/**
 * The gradients of Δ = delta · deltaWeightᵀ's factors from dΔ (batch, length, d), as the
 * products of `matmul(delta, deltaWeight, { transB: true })`'s backward: dΔ · deltaWeight, and
 * dΔᵀ · delta summed over the batch.
 */
export function lowRankDeltaGrads(
  ddelta: Tensor,
  delta: Tensor,
  deltaWeight: Tensor,
): LowRankDeltaGrads {
  const name = `${OP} backward`;
  const [batch, length, channels] = ddelta.shape;
  const rank = deltaWeight.shape[1];
  const g = { t: ddelta, batch, rows: length, cols: channels, trans: false };
  const dFactor = product(
    name,
    g,
    { t: deltaWeight, batch: 1, rows: channels, cols: rank, trans: false },
    false,
    delta.shape,
  );
  const dWeight = product(
    name,
    { ...g, trans: true },
    { t: delta, batch, rows: length, cols: rank, trans: false },
    true,
    deltaWeight.shape,
  );
  return { dFactor, dWeight };
}
