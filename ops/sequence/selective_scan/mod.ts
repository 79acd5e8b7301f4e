/**
 * The selective scan of Mamba (mamba_ssm `selective_scan_fn` semantics), forward and backward,
 * with a float64 reference to compare runs against.
 *
 * Per batch row b and channel c, with Δ_t = softplus(delta[b,c,t] + deltaBias[c]) (softplus
 * optional):
 *
 *     h_t[s] = exp(Δ_t·A[c,s])·h_{t−1}[s] + Δ_t·B[b,s,t]·u[b,c,t]        (h_{−1} = 0)
 *     y_t    = Σ_s C[b,s,t]·h_t[s] + D[c]·u[b,c,t],    out = y · SiLU(z)  (z optional)
 *
 * Three kernels, each with its sums in registers rather than in workgroup memory:
 *
 * - Forward (channel-major, `channel_major.ts`). One invocation owns a (batch, channel)
 *   recurrence with up to 32 states in registers (more states: several invocations per
 *   channel), so y_t = Σ_s C·h is a register sum and the steps need no barrier. Per block of
 *   steps the workgroup stages (B, C) of its batch row, shared by all its channels, and (Δ, Δ·u,
 *   D·u, SiLU(z)) of its channels, then writes the outputs coalesced. It saves the state entering
 *   every interval of TS steps (checkpoints: b·d·n·l/TS floats, not the b·d·n·l history) and,
 *   with z, y before the gate.
 * - Adjoint (channel-major, the same shape run backwards in time): λ_t = C_t·gy_t +
 *   exp(Δ_{t+1}·A)·λ_{t+1} with gy = ∂L/∂y, in registers; it needs no states. It gives du =
 *   Δ·Σ_s λB + D·gy, the part u·Σ_s λB of dΔ, dz, dD, and λ at every interval end.
 * - States (state-major, `state_major.ts`). One invocation owns a (batch, interval, state) and
 *   loops over the channels: it re-runs the interval from the checkpoint and walks it back from
 *   the saved λ, and sums over channels in registers: dB_t = Σ_c λ·Δu, dC_t = Σ_c gy·h_t, and dA.
 *   The remaining part of dΔ, Σ_s λ·A·exp(ΔA)·h_{t−1}, is the one sum over states done in
 *   workgroup memory.
 *
 * Final state: {@link selectiveScanWithFinalState} runs the same forward and also writes, per
 * batch row, the state after the row's last real token (b·d·n floats), the state a step-by-step
 * recurrence carries on from; it is forward-only.
 *
 * Output at one step per row: {@link selectiveScanAt} gives y at each row's position only, (batch,
 * d), for a model whose loss reads nothing else (the last layer of a prefix-trained Mamba4Rec). Its
 * forward stops each row there and writes y only there, so its output equals, bit for bit, the full
 * scan's gathered at the positions. With the gradient entering at one step the adjoint has a closed
 * form, and one kernel (`rescan.ts`) re-runs the states forward in time beside it, from zero: no
 * states are saved (only the forward's sums of Δ per interval), no adjoint or state pass runs, and
 * every gradient equals the full scan's to rounding. Where that kernel does not apply (length
 * segments, or a row's channels beyond one workgroup) the backward starts the adjoint at the
 * position and the state pass skips whole workgroups of intervals past it; up to the position every
 * kernel then does what {@link selectiveScan}'s does, and every gradient equals the gathered full
 * scan's bit for bit (also with `tuning.rescan: false`). Either way only the steps up to each
 * position cost work: for ML-1M's prefix samples at L = 200 the mean position is 118.5, so 41% of
 * the scan's steps are skipped.
 *
 * Memory: where two or more intervals share a state workgroup (n ≤ 32 by default), the state
 * pass writes its per-row partial sums over the λ rows of its own intervals once it has read them
 * (the checkpoints and λ are laid out over the intervals padded to whole state workgroups for
 * that), so the backward's largest buffers are the checkpoints and λ. A
 * low-rank Δ (`deltaWeight`, Mamba's `dt_proj` weight) is formed where the kernels read it, so
 * the (batch, length, d) Δ is never stored, and `gradsOverBC` has the state pass write dB and dC
 * over B and C.
 *
 * Long sequences: where batch × channels cannot fill the GPU, the channel-major kernels split the
 * length into segments scanned in parallel (`segments.ts`). Parameter gradients are per-row
 * partial sums reduced by `sumLeading` (`finish.ts`). No atomics: every result is deterministic.
 * `plan.ts` picks the interval length and workgroup shapes; `reference.ts` is the float64
 * reference.
 *
 * @module
 */
import { record, recordsGradient } from "../../core/autograd.ts";
import { Tensor } from "../../core/tensor.ts";
import { zeros } from "../../core/unrecorded.ts";
import { scanAdjoint, scanForward, type ScanTensors } from "./channel_major.ts";
import { type BackwardParts, lowRankDeltaGrads, parameterGrads } from "./finish.ts";
import {
  listed,
  OP,
  type ScanSpec,
  scanSpec,
  type SelectiveScanFinalStateOptions,
  type SelectiveScanOptions,
} from "./options.ts";
import { planScan, type ScanPlan, segmentsFor } from "./plan.ts";
import { rescanBackward, rescanShape } from "./rescan.ts";
import { scanStates } from "./state_major.ts";

export { SELECTIVE_SCAN_MAX_STATES } from "./options.ts";
export type {
  SelectiveScanFinalStateOptions,
  SelectiveScanOptions,
  SelectiveScanTuning,
} from "./options.ts";
export {
  selectiveScanReference,
  selectiveScanReferenceAt,
  selectiveScanReferenceAtBackward,
  selectiveScanReferenceBackward,
  selectiveScanReferenceFinalState,
} from "./reference.ts";
export type { SelectiveScanGrads, SelectiveScanInputs, SelectiveScanProblem } from "./reference.ts";

/**
 * The selective scan of Mamba (mamba_ssm `selective_scan_fn`, v1.1.4 semantics), recorded on the
 * tape with gradients for every tensor argument.
 *
 * Per (b, c): Δ_t = delta[b,c,t] + deltaBias[c] (softplus'd when `deltaSoftplus`), h_t[s] =
 * exp(Δ_t·A[c,s])·h_{t−1}[s] + Δ_t·B[b,s,t]·u[b,c,t] from h_{−1} = 0, y_t = Σ_s C[b,s,t]·h_t[s] +
 * D[c]·u[b,c,t], and the output is y·SiLU(z) when z is given. {@link selectiveScanReference}
 * computes the same in float64.
 *
 * For the backward it keeps the state entering every interval of 16 steps (b·d·n·l/16 floats)
 * and, with z, y before the gate (b·d·l floats).
 *
 * @param u input (batch, d, length); (batch, length, d) with `layout: "bld"`
 * @param delta step sizes before bias/softplus, shaped like u; with `deltaWeight` their low-rank
 *   factor, (batch, length, R)
 * @param A state matrix (d, n), real (negative in practice); n ≤ 256
 * @param B input-dependent input matrix (batch, n, length); (batch, length, n) with "bld"
 * @param C input-dependent output matrix, shaped like B
 * @param options D, z, deltaBias, deltaWeight, gradsOverBC, deltaSoftplus, layout, tuning
 * @returns the output, shaped like u
 */
export function selectiveScan(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  options: SelectiveScanOptions = {},
): Tensor {
  const spec = scanSpec(u, delta, A, B, C, options);
  const { D, z, deltaBias, deltaWeight } = options;
  const inputs = [u, delta, A, B, C, D, z, deltaBias, deltaWeight].filter((t): t is Tensor =>
    t !== undefined
  );
  const save = recordsGradient(inputs);
  const plan = planScan(spec.channels, spec.states, spec.length, options.tuning ?? {});
  const x: ScanTensors = { u, delta, A, B, C, D, z, deltaBias, deltaWeight };
  const { out, ck, ysave } = scanForward(spec, plan, x, save, segmentation(spec, plan, options));
  if (!save) {
    ck.dispose();
    return out;
  }
  return record(
    out,
    OP,
    inputs,
    (gout) => scanBackward(spec, plan, options, x, gout, ck, ysave),
    [ck, ...listed(ysave)],
  );
}

/**
 * The selective scan's output at one step per row: `out[b, c] = y[b, c, positions[b]]` of
 * {@link selectiveScan} (gated where z is given), (batch, d) in either layout, recorded on the
 * tape with gradients for every tensor argument. The forward stops each row at its position and
 * the backward ends there: steps past it cost nothing but writing zero gradients. The output
 * equals, bit for bit, `selectiveScan` followed by a gather at the positions; the gradients equal
 * its backward's to rounding (bit for bit with `tuning.rescan: false`, or where the module
 * documentation says the re-scan does not apply). Positions are clamped to [0, length), as
 * `gatherPositions` clamps them. {@link selectiveScanReferenceAt} computes the same in float64.
 *
 * For the backward it keeps, with z, y before the gate at the positions (b·d floats), and the sums
 * of Δ from every interval of 16 steps to the position (b·d·l/16 floats), or where the re-scan does
 * not apply the state entering every interval (b·d·n·l/16 floats).
 *
 * @param u input (batch, d, length); (batch, length, d) with `layout: "bld"`
 * @param delta step sizes before bias/softplus, shaped like u; with `deltaWeight` their low-rank
 *   factor, (batch, length, R)
 * @param A state matrix (d, n); n ≤ 256
 * @param B input matrix (batch, n, length); (batch, length, n) with "bld"
 * @param C output matrix, shaped like B
 * @param positions i32 (batch): the step each row is read at (its last real token's index)
 * @param options D, z, deltaBias, deltaWeight, gradsOverBC, deltaSoftplus, layout, tuning
 * @returns the output at the positions, (batch, d)
 */
export function selectiveScanAt(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  positions: Tensor,
  options: SelectiveScanOptions = {},
): Tensor {
  const spec = scanSpec(u, delta, A, B, C, options, false, positions);
  const { D, z, deltaBias, deltaWeight } = options;
  const inputs = [u, delta, A, B, C, D, z, deltaBias, deltaWeight].filter((t): t is Tensor =>
    t !== undefined
  );
  const save = recordsGradient(inputs);
  const plan = planScan(spec.channels, spec.states, spec.length, options.tuning ?? {});
  const x: ScanTensors = { u, delta, A, B, C, D, z, deltaBias, deltaWeight, positions };
  const segments = segmentation(spec, plan, options);
  // One kernel re-scans forward in time where it applies; it needs no checkpoints.
  const shape = segments.segs === 1 && options.tuning?.rescan !== false
    ? rescanShape(spec, plan)
    : undefined;
  const sums = save && shape
    ? Tensor.empty([spec.batch, spec.channels, plan.intervals], "f32", `${OP} Δ sums`)
    : undefined;
  const { out, ck, ysave } = scanForward(spec, plan, x, save, segments, {
    checkpoints: save && !shape,
    deltaSums: sums,
  });
  if (!save) {
    ck.dispose();
    return out;
  }
  const backward = shape && sums
    ? (gout: Tensor) =>
      finishGrads(spec, shape.tpc, x, rescanBackward(spec, plan, shape, x, gout, ysave, sums))
    : (gout: Tensor) => scanBackward(spec, plan, options, x, gout, ck, ysave);
  return record(out, `${OP}At`, inputs, backward, [ck, ...listed(ysave), ...listed(sums)]);
}

/** What {@link selectiveScanWithFinalState} returns. */
export interface SelectiveScanWithState {
  /** The scan's output, shaped like u (as {@link selectiveScan} gives it). */
  out: Tensor;
  /** Per row, the state after its last real token, (batch, d, n). */
  state: Tensor;
}

/**
 * The selective scan's forward ({@link selectiveScan}'s output, bit for bit) together with each
 * row's final state: h after step `lengths[b] − 1`, (batch, d, n), the state from which a
 * step-by-step recurrence (`selectiveScanStep`) continues the row. Rows are right-padded: steps
 * past a row's length do not change its final state. Forward only: it throws when a gradient is
 * being recorded for any input (run it inside `noGrad`, or use {@link selectiveScan} to train).
 * {@link selectiveScanReferenceFinalState} computes the state in float64.
 *
 * @param u input (batch, d, length); (batch, length, d) with `layout: "bld"`
 * @param delta step sizes before bias/softplus, shaped like u; with `deltaWeight` their low-rank
 *   factor, (batch, length, R)
 * @param A state matrix (d, n); n ≤ 256
 * @param B input matrix (batch, n, length); (batch, length, n) with "bld"
 * @param C output matrix, shaped like B
 * @param options the scan's options and `lengths`, i32 (batch) (default: every row full)
 * @returns the output and the final states; the caller disposes both
 */
export function selectiveScanWithFinalState(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  options: SelectiveScanFinalStateOptions = {},
): SelectiveScanWithState {
  const spec = scanSpec(u, delta, A, B, C, options, true);
  const { D, z, deltaBias, deltaWeight } = options;
  const inputs = [u, delta, A, B, C, D, z, deltaBias, deltaWeight].filter((t): t is Tensor =>
    t !== undefined
  );
  if (recordsGradient(inputs)) {
    throw new Error(
      `${OP}WithFinalState: the final-state output has no backward, but a gradient is being ` +
        "recorded for an input; call it inside noGrad() (inference), or train with selectiveScan",
    );
  }
  const plan = planScan(spec.channels, spec.states, spec.length, options.tuning ?? {});
  const x: ScanTensors = { u, delta, A, B, C, D, z, deltaBias, deltaWeight };
  const lengths = options.lengths ??
    Tensor.from(new Int32Array(spec.batch).fill(spec.length), [spec.batch], "i32");
  const state = zeros([spec.batch, spec.channels, spec.states]);
  const { out, ck } = scanForward(spec, plan, x, false, segmentation(spec, plan, options), {
    final: { lengths, state },
  });
  ck.dispose();
  if (!options.lengths) lengths.dispose();
  return { out, state };
}

/** The length segments of the channel-major passes: the tuning's, or enough to fill the GPU. */
function segmentation(spec: ScanSpec, plan: ScanPlan, options: SelectiveScanOptions) {
  const { ch } = plan;
  return segmentsFor(plan, ch.threads * ch.cblocks * spec.batch, options.tuning?.segments);
}

/**
 * The backward: the adjoint pass, the state pass, then the parameter gradients. Returns the
 * gradients in the tape's input order (u, delta, A, B, C, then D, z, deltaBias, deltaWeight where
 * given; with a low-rank Δ the (batch, length, d) dΔ becomes its factors' gradients).
 * With positions (`spec.atPositions`) `gout` is the (batch, d) gradient at those steps.
 */
function scanBackward(
  spec: ScanSpec,
  plan: ScanPlan,
  options: SelectiveScanOptions,
  x: ScanTensors,
  gout: Tensor,
  ck: Tensor,
  ysave: Tensor | undefined,
): (Tensor | null)[] {
  const segments = segmentation(spec, plan, options);
  const { lam, du, ddelta, dz, adj } = scanAdjoint(spec, plan, x, gout, ysave, segments);
  const { delta, u, A, B, C, z, deltaBias, deltaWeight } = x;
  const { dB, dC, spart } = scanStates(
    spec,
    plan,
    { gout, delta, u, A, B, C },
    [...listed(z), ...listed(deltaBias), ...listed(deltaWeight)],
    { ck, lam, ddelta },
    x.positions,
  );
  lam.dispose();
  return finishGrads(spec, plan.ch.tpc, x, { du, ddelta, dz, dB, dC, adj, spart });
}

/**
 * The gradients in the tape's input order from the per-step ones and the row partials of the
 * parameters' (`adj` and `spart`, summed by `parameterGrads`); with a low-rank Δ the
 * (batch, length, d) dΔ becomes its factors' gradients.
 */
function finishGrads(
  spec: ScanSpec,
  tpc: number,
  x: ScanTensors,
  g: BackwardParts,
): (Tensor | null)[] {
  const { du, ddelta, dz, dB, dC, adj, spart } = g;
  const { dA, dD, dbias } = parameterGrads(spec, tpc, adj, spart);
  const grads = [du, ddelta, dA, dB, dC, ...listed(dD), ...listed(dz), ...listed(dbias)];
  if (!x.deltaWeight) return grads;
  const { dFactor, dWeight } = lowRankDeltaGrads(ddelta, x.delta, x.deltaWeight);
  ddelta.dispose();
  grads[1] = dFactor;
  return [...grads, dWeight];
}
