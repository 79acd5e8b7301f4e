/**
 * The SSD (Mamba-2 state space duality) scan over packed variable-length sequences, forward and
 * backward, with mamba_ssm 2.2's `mamba_chunk_scan_combined` semantics and a float64 reference.
 *
 * Per segment (a run of equal segment ids within a row) and head h, from the segment's initial
 * state (zero unless given), with Δ_t = softplus(dt_t + dtBias) (softplus optional):
 *
 *     S_t = exp(Δ_t·A_h)·S_{t−1} + Δ_t · x_t ⊗ B_t        S ∈ R^{P×N}
 *     y_t = S_t·C_t + D_h·x_t
 *
 * Every segment is cut into chunks of at most `chunkSize` tokens (`pieces.ts`, on the host: the
 * segment ids are host data, as a loader builds them), so no kernel ever masks across segments and
 * the quadratic work inside a chunk is bounded by the segment's own length. With up to 64 states
 * the forward is the recurrence itself, one invocation per (segment, head, channel) holding its
 * row of the state in registers (`recurrent.ts`); otherwise the chunked dual form: small
 * register-tiled matrix products per chunk (`chunk_gemm.ts`) whose operands carry the decays as
 * they are staged, the output over the chunk's tokens plus the entering state (`forward.ts`, with
 * the chunk's C·Bᵀ), states crossing the chunks of a cut segment by a short carry (`states.ts`).
 * The backward is chunked: the gradient leaving each chunk is carried back, then products per
 * chunk give dx and one kernel per (chunk, head) ∂dt and the parameter partial sums
 * (`backward.ts`), and a per-chunk pair matrix W gives dB and dC (`pair_grads.ts`). `prelude.ts`
 * holds what the kernels share. Strict float32, no atomics: results are repeatable bit for bit.
 *
 * `ssdScanLast` (`last.ts`) is the scan read at each segment's last token only, for a model whose
 * loss reads nothing else: a weighted sum over the segment's tokens, forward and backward, with no
 * state and no other token's output.
 *
 * @module
 */
import { record, recordsGradient } from "../../core/autograd.ts";
import type { Tensor } from "../../core/tensor.ts";
import { zeros } from "../../core/unrecorded.ts";
import { headGrads } from "./backward.ts";
import { pairGrads } from "./pair_grads.ts";
import { chunkOutput, type Decays, pairProducts, prepare } from "./forward.ts";
import { listed, OP, piecesOf, type SsdScanOptions, type SsdSpec, ssdSpec } from "./options.ts";
import type { PieceTables, SsdPieces } from "./pieces.ts";
import { carryStates, chunkStates } from "./states.ts";
import { sumHeadParts } from "./prelude.ts";
import { recurrentForward } from "./recurrent.ts";

export { SSD_DEFAULT_CHUNK, SSD_MAX_CHUNK } from "./options.ts";
export type { SsdScanOptions } from "./options.ts";
export { SsdPieces, ssdPieces } from "./pieces.ts";
export { ssdScanLast } from "./last.ts";
export type { SsdScanLastOptions } from "./last.ts";
export type { PieceTables } from "./pieces.ts";
export { ssdScanReference, ssdScanReferenceBackward, ssdSegmentStarts } from "./reference.ts";
export type { SsdScanGrads, SsdScanInputs, SsdScanProblem } from "./reference.ts";

/** What `ssdScan` returns. */
export interface SsdScanResult {
  /** The output, (batch, length, heads, headDim); recorded on the tape. */
  y: Tensor;
  /** The state after each segment's last token, (segments, heads, headDim, states), when asked. */
  finalStates?: Tensor;
}

/**
 * The SSD scan (mamba_ssm 2.2 `mamba_chunk_scan_combined`, with `seq_idx`), recorded on the tape
 * with gradients for x, dt, A, B, C, D, dtBias and the initial states.
 *
 * Per segment and head h: Δ_t = dt_t + dtBias_h (softplus'd when `dtSoftplus`), S_t =
 * exp(Δ_t·A_h)·S_{t−1} + Δ_t·x_t ⊗ B_t from the segment's initial state, y_t = S_t·C_t + D_h·x_t;
 * head h reads group ⌊h / (H/G)⌋ of B and C. {@link ssdScanReference} computes the same in float64.
 * A segment is a run of equal `seqIdx` within a row; segments never see each other.
 *
 * @param x input (batch, length, heads H, headDim P)
 * @param dt step sizes before bias and softplus, (batch, length, H)
 * @param A per-head decay rate (H), negative in practice (mamba's −exp(A_log))
 * @param B input matrix (batch, length, groups G, states N), H divisible by G
 * @param C output matrix, shaped like B
 * @param options D, dtBias, dtSoftplus, seqIdx, initialStates, finalStates, chunkSize, forward,
 *   releaseInputs
 * @returns y (batch, length, H, P), and the final states when asked for
 */
export function ssdScan(
  x: Tensor,
  dt: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  options: SsdScanOptions = {},
): SsdScanResult {
  const { pieces, owned } = piecesOf(x, options);
  const spec = ssdSpec(x, dt, A, B, C, options, pieces.segments, pieces.chunk);
  const tables = pieces.tables(spec.hasInit || spec.wantFinal);
  const { D, dtBias, initialStates } = options;
  const count = pieces.chunks;
  const decays = prepare(spec, tables.chunks, count, dt, A, dtBias);
  const cb = pairProducts(spec, tables.chunks, count, pieces.blockSize, B, C);
  const { y, yh, sin, finalStates } = spec.recurrent
    ? recurrentForward(spec, {
      chunks: tables.chunks,
      segments: pieces.segmentTable(),
      segmentCount: pieces.segments,
      slots: tables.slots,
      x,
      B,
      C,
      D,
      init: initialStates,
    }, { ...decays, cb })
    : chunkedForward(spec, pieces, tables, { x, B, C, D, initialStates }, { ...decays, cb });
  // The decays are four (tokens, H) tensors per scan: the backward recomputes them from dt, A
  // and dtBias (the same kernel on the same inputs, so the same values) rather than keep them.
  for (const t of Object.values(decays)) t.dispose();
  const inputs = [x, dt, A, B, C, D, dtBias, initialStates].filter((t): t is Tensor => !!t);
  const recording = recordsGradient(inputs);
  const ownedTables = owned ? pieces.tensors() : [];
  const handed = options.releaseInputs ? [x, dt, B, C] : [];
  if (!recording) {
    for (const t of [cb, sin, yh, ...ownedTables, ...handed]) t.dispose();
    return finalStates ? { y, finalStates } : { y };
  }
  const saved = { cb, sin, yh };
  const out = record(
    y,
    OP,
    inputs,
    (gy) => scanBackward(spec, pieces, tables, { x, dt, A, B, C, D, dtBias }, gy, saved),
    [...Object.values(saved), ...ownedTables, ...handed],
  );
  return finalStates ? { y: out, finalStates } : { y: out };
}

/**
 * The forward in the chunked (dual) form, for states too many for registers: each chunk's local
 * state, the carry across chunks, then the output products.
 */
function chunkedForward(
  spec: SsdSpec,
  pieces: SsdPieces,
  tables: PieceTables,
  t: { x: Tensor; B: Tensor; C: Tensor; D?: Tensor; initialStates?: Tensor },
  saved: Decays & { cb: Tensor },
): { y: Tensor; yh: Tensor; sin: Tensor; finalStates?: Tensor } {
  let sin: Tensor;
  let finalStates: Tensor | undefined;
  if (tables.slots > 0) {
    const local = chunkStates(spec, tables, "forward", t.x, t.B, saved);
    const carried = carryStates(
      spec,
      tables,
      pieces.segments,
      "forward",
      local,
      saved.cs,
      t.initialStates,
    );
    local.dispose();
    sin = carried.entering;
    finalStates = carried.edge;
  } else {
    sin = zeros([1]);
  }
  const { y, yh } = chunkOutput(
    spec,
    { chunks: tables.chunks, count: pieces.chunks, x: t.x, C: t.C, D: t.D },
    { ...saved, sin },
  );
  return finalStates ? { y, yh, sin, finalStates } : { y, yh, sin };
}

/**
 * The backward: the gradient leaving every chunk, then the per-(chunk, head) and per-(chunk,
 * group) kernels. Returns the gradients in the tape's input order (x, dt, A, B, C, then D, dtBias,
 * initial states where given).
 */
function scanBackward(
  spec: SsdSpec,
  pieces: SsdPieces,
  tables: PieceTables,
  t: { x: Tensor; dt: Tensor; A: Tensor; B: Tensor; C: Tensor; D?: Tensor; dtBias?: Tensor },
  gy: Tensor,
  kept: { cb: Tensor; sin: Tensor; yh: Tensor },
): (Tensor | null)[] {
  const { cb, sin, yh } = kept;
  const count = pieces.chunks;
  const decays = prepare(spec, tables.chunks, count, t.dt, t.A, t.dtBias);
  const saved = { ...decays, ...kept };
  let ub: Tensor;
  let dInit: Tensor | undefined;
  if (tables.slots > 0) {
    const rho = chunkStates(spec, tables, "backward", gy, t.C, saved);
    const carried = carryStates(spec, tables, pieces.segments, "backward", rho, saved.cs);
    rho.dispose();
    ub = carried.entering;
    dInit = carried.edge;
  } else {
    ub = zeros([1]);
  }
  const base = { chunks: tables.chunks, count, ...t };
  const { dx, ddt, parts } = headGrads(spec, base, { ...saved, gy, yh, cb, sin, ub });
  const { dB, dC } = pairGrads(spec, { ...base, blockSize: pieces.blockSize }, {
    ...saved,
    gy,
    sin,
    ub,
  });
  ub.dispose();
  for (const d of Object.values(decays)) d.dispose();
  const [dA, dD, dBias] = sumHeadParts(parts);
  const optional = [...(spec.hasD ? [dD] : []), ...(spec.hasBias ? [dBias] : [])];
  if (!spec.hasD) dD.dispose();
  if (!spec.hasBias) dBias.dispose();
  return [dx, ddt, dA, dB, dC, ...optional, ...listed(dInit)];
}
