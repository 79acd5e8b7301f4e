/**
 * One step of the Mamba block's recurrent core for a batch of independent streams, in one kernel
 * ({@link mambaStep}): from the input projection's x and z halves of one new token per stream,
 * the depthwise causal convolution with SiLU over the stream's window, `x_proj` (Δ's low-rank
 * part, B and C), `dt_proj` with softplus, the selective state update, `C·h + D·x` and the
 * SiLU(z) gate. Each stream keeps its window `[w − 1, d]` and its SSM state in a row ("slot")
 * of two pools, updated in place.
 *
 * One workgroup takes one stream, or a few (`MambaStepTuning.streamsPerWorkgroup`), which then
 * share every weight it reads. Its invocations run over the channels, so every pool access
 * is coalesced: the window is `[slot, w − 1, d]` and the state is kept state-major,
 * `[slot, n, d]` (channel c of state entry k at `k·d + c`), with A transposed alike (`[n, d]`);
 * `x_proj`'s three weights are packed transposed into one `[d, r + 2n]` matrix so that the
 * invocations computing its outputs read it coalesced too. The convolved x and the projections
 * stay in workgroup memory. The two projections sum their products in order with fused
 * multiply-adds, as `matmul` does without a split reduction, and the convolution and the state
 * update are those of `causalConv1dStep` and `selectiveScanStep` (`selective_step.ts`): the step
 * gives the results of those kernels and products, bit for bit. `writeTransposedRows`
 * (`transposed_rows.ts`) lays weights and states out so.
 *
 * {@link mambaStepFromHidden} also makes the input projection itself, from the block's input rows
 * and the projection's weight transposed (`[width, 2d]`), with its sums in the same order:
 * one dispatch and one `[streams, 2d]` tensor fewer, the same results bit for bit. The WGSL is
 * generated in `mamba_step_shader.ts`.
 *
 * Slots of one call must be distinct (the caller splits repeated ones over calls). Inference
 * only: nothing is recorded on the tape. `mambaStepReference` (`mamba_step_reference.ts`) does the
 * same in float64 on the host, in the model's own layouts.
 *
 * @module
 */
import { assertShape, launch, packParams } from "../core/launch.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups } from "../wgsl/grid.ts";
import { invocations, mambaStepWgsl, type StepSizes } from "./mamba_step_shader.ts";
import { WEIGHT_LOADS } from "../wgsl/staged_product.ts";

/**
 * How {@link mambaStep} waits for memory; no setting changes a bit of its results (each state is
 * updated, and its `C·h` term added, in the same order).
 */
export interface MambaStepTuning {
  /**
   * States an invocation loads before it updates them, from 1 to n (default
   * {@link MAMBA_STEP_STATE_BATCH}): that many loads of its state are in flight at once.
   */
  readonly stateBatch?: number;
  /**
   * States of each invocation's row, from 0 to n, loaded when the kernel starts (the first ones),
   * so that those loads overlap the convolution and `x_proj` instead of following them; the rest
   * follow in batches of `stateBatch` (default 0). Each one held costs a register through
   * `x_proj`. Only when one invocation takes one channel: streams per workgroup × d_inner ≤ 256.
   */
  readonly prefetchStates?: number;
  /**
   * Streams one workgroup takes, from 1 to {@link MAMBA_STEP_MAX_STREAMS} (default 1): each
   * `x_proj` weight a workgroup reads then serves that many streams, whose sums run side by
   * side instead of one long chain.
   */
  readonly streamsPerWorkgroup?: number;
  /**
   * Weights of `x_proj` (and of the input projection in {@link mambaStepFromHidden}) an
   * invocation loads before it multiplies them, from 1 to 64 (default `WEIGHT_LOADS`, 8): each
   * stream's products wait on that many loads at a time.
   */
  readonly weightLoads?: number;
}

/** The most streams one {@link mambaStep} workgroup may take. */
export const MAMBA_STEP_MAX_STREAMS = 8;

/**
 * States an invocation reads before it updates them, by default: that many loads of its state
 * are in flight at once, which a memory-bound step needs to approach the memory's bandwidth.
 */
export const MAMBA_STEP_STATE_BATCH = 8;

/**
 * `tuning` with its defaults filled in, or a RangeError naming the setting, for a step of
 * `d` channels (d_inner) and `n` states.
 */
export function checkMambaStepTuning(
  tuning: MambaStepTuning,
  d: number,
  n: number,
): { stateBatch: number; prefetch: number; streams: number; weightLoads: number } {
  const stateBatch = tuning.stateBatch ?? MAMBA_STEP_STATE_BATCH;
  if (
    tuning.stateBatch !== undefined &&
    !(Number.isInteger(stateBatch) && stateBatch >= 1 && stateBatch <= n)
  ) {
    throw new RangeError(
      `mambaStep: tuning.stateBatch must be an integer from 1 to n (${n}), got ${stateBatch}`,
    );
  }
  const streams = tuning.streamsPerWorkgroup ?? 1;
  if (!(Number.isInteger(streams) && streams >= 1 && streams <= MAMBA_STEP_MAX_STREAMS)) {
    throw new RangeError(
      `mambaStep: tuning.streamsPerWorkgroup must be an integer from 1 to ` +
        `${MAMBA_STEP_MAX_STREAMS}, got ${streams}`,
    );
  }
  const prefetch = tuning.prefetchStates ?? 0;
  if (
    !(Number.isInteger(prefetch) && prefetch >= 0 && prefetch <= n) ||
    (prefetch > 0 && invocations(streams * d) < streams * d)
  ) {
    throw new RangeError(
      `mambaStep: tuning.prefetchStates must be an integer from 0 to n (${n}), and above 0 ` +
        `only with streams per workgroup × d_inner ≤ 256 (one channel per invocation), got ` +
        `${prefetch} with ${streams} × d_inner ${d}`,
    );
  }
  const weightLoads = tuning.weightLoads ?? WEIGHT_LOADS;
  if (!(Number.isInteger(weightLoads) && weightLoads >= 1 && weightLoads <= 64)) {
    throw new RangeError(
      `mambaStep: tuning.weightLoads must be an integer from 1 to 64, got ${weightLoads}`,
    );
  }
  return { stateBatch, prefetch, streams, weightLoads };
}

/** The step's weights, in the layouts {@link mambaStep} reads. */
export interface MambaStepWeights {
  /** Depthwise convolution weight `[d, w]`, w 2, 3 or 4. */
  readonly convWeight: Tensor;
  /** Convolution bias `[d]`. */
  readonly convBias: Tensor;
  /**
   * `x_proj`'s weights transposed and side by side, `[d, r + 2n]`: columns `[0, r)` give Δ's
   * low-rank part, `[r, r + n)` B and `[r + n, r + 2n)` C.
   */
  readonly xProjT: Tensor;
  /** `dt_proj`'s weight `[d, r]`. */
  readonly dtWeight: Tensor;
  /** `dt_proj`'s bias `[d]`, added before the softplus. */
  readonly dtBias: Tensor;
  /** The state matrix A transposed, `[n, d]` (negative). */
  readonly aT: Tensor;
  /** The skip D `[d]`. */
  readonly D: Tensor;
}

/** The pools {@link mambaStep} updates in place, one row per slot. */
export interface MambaStepPools {
  /** Each stream's last `w − 1` convolution inputs, oldest first: `[slots, w − 1, d]`. */
  readonly window: Tensor;
  /** Each stream's SSM state, state-major: `[slots, n, d]`. */
  readonly state: Tensor;
}

const check = (what: string, t: Tensor, shape: readonly number[], dtype = "f32") =>
  assertShape("mambaStep", what, t, shape, dtype);

/** The step's input: x and z made before, or the hidden rows and the projection to make them. */
type StepInput =
  | { readonly xz: Tensor }
  | { readonly hidden: Tensor; readonly inProjT: Tensor };

function sizesOf(
  input: StepInput,
  weights: MambaStepWeights,
  pools: MambaStepPools,
  tuning: MambaStepTuning,
): StepSizes {
  const [n, d] = weights.aT.shape;
  const w = weights.convWeight.shape[1];
  const r = weights.dtWeight.shape[1];
  if (weights.aT.shape.length !== 2 || !(w >= 2 && w <= 4) || !(r >= 1)) {
    throw new RangeError(
      `mambaStep: aT must be [n, d], convWeight [d, 2..4] and dtWeight [d, r ≥ 1], got ` +
        `${weights.aT.describe()}, ${weights.convWeight.describe()} and ` +
        `${weights.dtWeight.describe()}`,
    );
  }
  let inputWidth = 0;
  if ("xz" in input) {
    const { xz } = input;
    check("xz (the x and z halves of the input projection)", xz, [xz.shape[0], 2 * d]);
  } else {
    const { hidden, inProjT } = input;
    inputWidth = hidden.shape[1];
    if (hidden.shape.length !== 2 || !(inputWidth >= 1)) {
      throw new RangeError(
        `mambaStep: hidden must be [streams, width ≥ 1], got ${hidden.describe()}`,
      );
    }
    check("hidden (the block's input rows)", hidden, [hidden.shape[0], inputWidth]);
    check("inProjT (the input projection transposed)", inProjT, [inputWidth, 2 * d]);
  }
  check("convWeight", weights.convWeight, [d, w]);
  check("convBias", weights.convBias, [d]);
  check("xProjT", weights.xProjT, [d, r + 2 * n]);
  check("dtWeight", weights.dtWeight, [d, r]);
  check("dtBias", weights.dtBias, [d]);
  check("D", weights.D, [d]);
  check("window", pools.window, [pools.window.shape[0], w - 1, d]);
  check("state", pools.state, [pools.window.shape[0], n, d]);
  const tuned = checkMambaStepTuning(tuning, d, n);
  const floats = d + r + 2 * n + (inputWidth > 0 ? inputWidth + 2 * d : 0);
  const bytes = 4 * tuned.streams * floats;
  if (bytes > runtime().info.maxWorkgroupBytes) {
    throw new RangeError(
      `mambaStep: ${tuned.streams} stream(s)' workgroup rows (${floats} floats each: d ${d}, ` +
        `r ${r}, 2·n ${2 * n}${
          inputWidth > 0 ? `, the input ${inputWidth} and x, z ${2 * d}` : ""
        }; ${bytes} bytes) exceed the device's ${runtime().info.maxWorkgroupBytes} bytes of ` +
        "workgroup memory; take fewer streams per workgroup, or run the block unfused " +
        "(causalConv1dStep, the products, selectiveScanStep)",
    );
  }
  return { d, n, r, w, ...tuned, inputWidth };
}

/** Checks the slots and launches the step on `input`. */
function launchStep(
  input: StepInput,
  weights: MambaStepWeights,
  pools: MambaStepPools,
  slots: Tensor,
  tuning: MambaStepTuning,
): Tensor {
  const sizes = sizesOf(input, weights, pools, tuning);
  const rows = "xz" in input ? input.xz : input.hidden;
  const streams = rows.shape[0];
  check("slots", slots, [streams], "i32");
  if (streams === 0) {
    throw new RangeError("mambaStep: no streams; give at least one slot");
  }
  const out = Tensor.empty([streams, sizes.d], "f32", "mambaStep");
  const groups = foldWorkgroups(Math.ceil(streams / sizes.streams));
  const { convWeight, convBias, xProjT, dtWeight, dtBias, aT, D } = weights;
  launch(
    "mambaStep",
    mambaStepWgsl(sizes),
    packParams([streams, groups[0]]),
    [
      rows,
      slots,
      convWeight,
      convBias,
      xProjT,
      dtWeight,
      dtBias,
      aT,
      D,
      pools.window,
      pools.state,
      out,
      ...("xz" in input ? [] : [input.inProjT]),
    ],
    groups,
  );
  return out;
}

/**
 * One step of the Mamba block's core per stream: with `xz[s] = [x | z]` (the input projection
 * of the stream's new token), `u = SiLU(conv(window[slot], x))`, `[δ | B | C] = u · x_projᵀ`,
 * `Δ = softplus(dt_proj.weight · δ + dt_proj.bias)`, `h ← exp(Δ·A) ⊙ h + Δ·B·u` on the stream's
 * state, and `y = (C·h + D·u) · SiLU(z)`; the window shifts in x. A fresh slot (zeros) is a
 * stream before its first event.
 * @param xz `[streams, 2d]`: the input projection's x (columns `[0, d)`) and z (`[d, 2d)`)
 * @param weights the step's weights
 * @param pools the windows and states, updated in place
 * @param slots i32 `[streams]`: each stream's row of the pools, distinct and in range
 * @param tuning how the kernel waits for memory (the results are the same whatever it says)
 * @returns y `[streams, d]`, the output projection's input
 */
export function mambaStep(
  xz: Tensor,
  weights: MambaStepWeights,
  pools: MambaStepPools,
  slots: Tensor,
  tuning: MambaStepTuning = {},
): Tensor {
  return launchStep({ xz }, weights, pools, slots, tuning);
}

/**
 * {@link mambaStep} from the block's input rows: the input projection `[x | z] = hidden ·
 * inProjT` is made inside the step, its sums in the order `matmul` gives them, so the results
 * are those of `mambaStep(matmul(hidden, inProjTᵀ…))` bit for bit, one dispatch fewer.
 * @param hidden `[streams, width]`: each stream's input to the Mamba block
 * @param inProjT `[width, 2d]`: the input projection's weight transposed, x's columns first
 * @param weights the step's weights
 * @param pools the windows and states, updated in place
 * @param slots i32 `[streams]`: each stream's row of the pools, distinct and in range
 * @param tuning how the kernel waits for memory (the results are the same whatever it says)
 * @returns y `[streams, d]`, the output projection's input
 */
export function mambaStepFromHidden(
  hidden: Tensor,
  inProjT: Tensor,
  weights: MambaStepWeights,
  pools: MambaStepPools,
  slots: Tensor,
  tuning: MambaStepTuning = {},
): Tensor {
  return launchStep({ hidden, inProjT }, weights, pools, slots, tuning);
}
