/**
 * The forward passes of the streaming form (`mamba4rec_stream.ts`): one new event per user through the
 * step kernels ({@link stepEvents}), and the full forward over right-padded histories that
 * writes what stepping would have left ({@link forwardHistories}). Both write the users' slots of
 * the pools and run the model's own layer classes bound to its trained tensors.
 *
 * @module
 */
import { Tensor } from "../../ops/core/tensor.ts";
import { embedding } from "../../ops/dense/embedding.ts";
import { layerTail, layerTailInto, type LayerTailTuning } from "../../ops/dense/layer_tail.ts";
import { matmul } from "../../ops/dense/matmul/mod.ts";
import { add, reshape } from "../../ops/pointwise/elementwise.ts";
import { gatherPositions } from "../../ops/pointwise/gather.ts";
import { causalConv1d } from "../../ops/sequence/causal_conv1d.ts";
import {
  mambaStep,
  mambaStepFromHidden,
  type MambaStepTuning,
} from "../../ops/sequence/mamba_step.ts";
import { selectiveScanWithFinalState } from "../../ops/sequence/selective_scan/mod.ts";
import { writeSlotRows } from "../../ops/sequence/selective_step.ts";
import { writeTransposedRows } from "../../ops/sequence/transposed_rows.ts";
import type { DropoutContext, LayerNorm } from "../layers.ts";
import type { Mamba4Rec } from "../mamba4rec.ts";
import type { StepLayer } from "./mamba4rec_layers.ts";

/** What the stream's forward passes read and write. */
export interface StreamNetwork {
  /** The trained model (its item table and configuration). */
  readonly model: Mamba4Rec;
  /** The LayerNorm after the item embedding. */
  readonly embNorm: LayerNorm;
  /** Per Mamba layer its step weights and its pools of user windows and states. */
  readonly layers: readonly StepLayer[];
  /** Dropout off. */
  readonly inference: DropoutContext;
  /** Latest representation per slot `[capacity, d]`. */
  readonly reps: Tensor;
  /** How the fused step kernel waits for memory. */
  readonly stepTuning: MambaStepTuning;
  /** Whether the layers after each block run as one kernel ({@link layerTail}). */
  readonly fusedTail: boolean;
  /** How the fused tail shares its products among invocations. */
  readonly tailTuning: LayerTailTuning;
  /** Whether the step makes the input projection itself ({@link mambaStepFromHidden}). */
  readonly fusedInProjection: boolean;
}

/**
 * One event for distinct slots: the full model's forward for one new token per user. Per Mamba
 * layer one product gives x and z and one kernel ({@link mambaStep}) does the rest of the block
 * up to the output projection, with the user's window and state (with `fusedInProjection` the
 * kernel makes x and z itself, {@link mambaStepFromHidden}); the output projection, LayerNorm and
 * feed-forward network follow as the model's own layers with the residual sums and GELU in their
 * products' epilogues (`FeedForward.inference`), or as one kernel ({@link layerTail}) with
 * `fusedTail`. The item embedding and its LayerNorm are one kernel (`LayerNorm.ofRows`), and the
 * last layer writes its rows straight into the users' representations (`FeedForward.inferenceInto`
 * or {@link layerTailInto}).
 */
export function stepEvents(net: StreamNetwork, slots: Tensor, ids: Tensor): void {
  let h = net.embNorm.ofRows(net.model.itemTable, ids);
  for (const [i, layer] of net.layers.entries()) {
    const y = net.fusedInProjection
      ? mambaStepFromHidden(h, layer.inProjT, layer.step, layer, slots, net.stepTuning)
      : mambaStep(
        matmul(h, layer.inProj, { transB: true }),
        layer.step,
        layer,
        slots,
        net.stepTuning,
      );
    // One layer: no residual around the Mamba block, as in Mamba4Rec.forward.
    const residual = net.layers.length === 1 ? null : h;
    if (net.fusedTail && i === net.layers.length - 1) {
      // The last layer's rows go straight to the users' representations.
      layerTailInto(y, layer.tail, residual, net.reps, slots, net.tailTuning);
      return;
    }
    if (net.fusedTail) {
      h = layerTail(y, layer.tail, residual, net.tailTuning);
      continue;
    }
    const normed = layer.norm.forward(layer.out.forward(y, residual ?? undefined));
    if (i < net.layers.length - 1) {
      h = layer.ffn.inference(normed);
    } else {
      // The last layer's rows go straight to the users' representations.
      layer.ffn.inferenceInto(normed, net.reps, slots);
    }
  }
}

/**
 * One pass of `Mamba4RecStream.initFromHistories`: the full model's forward over `items`
 * (`[B, L]`, right-padded, `lengths[b]` real items), writing each layer's window and final
 * state and the last position's representation into the distinct `slots`.
 */
export function forwardHistories(
  net: StreamNetwork,
  slots: Int32Array,
  items: Int32Array,
  lengths: Int32Array,
): void {
  const batch = lengths.length;
  const length = items.length / batch;
  const { dConv } = net.model.config;
  const slotTensor = Tensor.from(slots, [batch], "i32");
  const last = Tensor.from(lengths.map((n) => n - 1), [batch], "i32");
  const lengthTensor = Tensor.from(lengths, [batch], "i32");
  const ids = Tensor.from(items, [batch, length], "i32");
  let h = net.embNorm.forward(embedding(ids, net.model.itemTable, { paddingIdx: 0 }));
  net.layers.forEach((layer, i) => {
    const xin = layer.inX.forward(h);
    writeWindow(layer.window, xin, slots, lengths, dConv);
    const x = causalConv1d(xin, layer.convWeight, layer.convBias, {
      activation: "silu",
      layout: "bld",
    });
    const { out, state } = selectiveScanWithFinalState(
      x,
      // As in MambaBlock.forward: Δ = dt_proj.weight · dt, the bias added inside the scan.
      matmul(layer.xDt.forward(x), layer.dtProj.weight, { transB: true }),
      layer.a,
      layer.xB.forward(x),
      layer.xC.forward(x),
      {
        D: layer.dSkip,
        z: layer.inZ.forward(h),
        deltaBias: layer.dtProj.bias!,
        deltaSoftplus: true,
        layout: "bld",
        lengths: lengthTensor,
      },
    );
    // The scan's states are channel-major [B, d_inner, d_state]; the pool is state-major.
    writeTransposedRows(layer.state, slotTensor, state);
    let m = layer.out.forward(out);
    let residual = h;
    if (i === net.layers.length - 1) {
      // The layers after the Mamba block act per position: only the last one is needed.
      m = gatherPositions(m, last);
      residual = gatherPositions(h, last);
    }
    // One layer: no residual around the Mamba block, as in Mamba4Rec.forward.
    const normed = layer.norm.forward(net.layers.length === 1 ? m : add(m, residual));
    h = layer.ffn.forward(normed, net.inference);
  });
  writeSlotRows(net.reps, slotTensor, h);
}

/**
 * Writes each history's convolution inputs at its last `dConv − 1` positions (`xin` is
 * `[B, L, d_inner]`) into its slot's window, oldest first, zeros before the first item.
 */
function writeWindow(
  window: Tensor,
  xin: Tensor,
  slots: Int32Array,
  lengths: Int32Array,
  dConv: number,
): void {
  const taps = dConv - 1;
  const inner = xin.shape[2];
  // The pool as one row per (slot, tap), so each tap is one row write per user.
  const rows = reshape(window, [window.shape[0] * taps, inner]);
  for (let k = 0; k < taps; k++) {
    const at = lengths.map((n) => n - taps + k);
    const target = slots.map((s) => s * taps + k);
    const positions = Tensor.from(at.map((t) => Math.max(t, 0)), [at.length], "i32");
    writeSlotRows(
      rows,
      Tensor.from(target, [target.length], "i32"),
      gatherPositions(xin, positions),
    );
    const before = target.filter((_, b) => at[b] < 0);
    if (before.length > 0) writeSlotRows(rows, Tensor.from(before, [before.length], "i32"), null);
  }
}
