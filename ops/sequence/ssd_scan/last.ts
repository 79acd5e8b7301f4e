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
 * One kernel each way, a workgroup per segment (`last_shaders.ts`). The results equal the full
 * scan's output and gradients at the last tokens to rounding (the sums run in another order); no
 * atomics, so they repeat bit for bit.
 *
 * @module
 */
import { record } from "../../core/autograd.ts";
import { Tensor } from "../../core/tensor.ts";
import { shaderOf } from "./last_shaders.ts";
import { listed, OP, piecesOf, type SsdScanOptions, ssdSpec } from "./options.ts";
import { launchPerItem, sumHeadParts } from "./prelude.ts";

/** Options of {@link ssdScanLast}: those of `ssdScan` without initial or final states. */
export type SsdScanLastOptions = Pick<
  SsdScanOptions,
  "D" | "dtBias" | "dtSoftplus" | "seqIdx" | "chunkSize" | "releaseInputs"
>;

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
  // Unless recorded, the owned tables and the handed inputs are freed at once.
  return record(y, `${OP}Last`, inputs, (gy) => {
    const dx = Tensor.empty(x.shape, "f32", `${OP}Last dx`);
    const ddt = Tensor.empty(dt.shape, "f32", `${OP}Last ddt`);
    const dB = Tensor.empty(B.shape, "f32", `${OP}Last dB`);
    const dC = Tensor.empty(C.shape, "f32", `${OP}Last dC`);
    const wsum = Tensor.empty(dt.shape, "f32", `${OP}Last weights`);
    // dA's, then dD's and d dtBias's per-segment sums, in one tensor (one binding).
    const sums = 1 + optional.length;
    const parts = Tensor.empty([segments, sums, H], "f32", `${OP}Last head sums`);
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
      parts,
    ]);
    wsum.dispose();
    const [dA, ...rest] = sumHeadParts(parts);
    return [dx, ddt, dA, dB, dC, ...rest];
  }, [...ownedTables, ...handed]);
}
