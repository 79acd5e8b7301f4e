/**
 * The carry between length segments. Where batch × channels cannot fill the GPU, the
 * channel-major kernels split the length into segments scanned in parallel: a local pass gives
 * each segment's end value from zero and its decay Π exp(Δ·A); this kernel carries the true
 * values across segments (the recurrence is linear), x ← decay_k·x + local_k, forward in time
 * for the states and backward for the adjoint, and writes the value entering each segment where
 * the main pass starts from it.
 *
 * @module
 */
import { launch, packParams } from "../../core/launch.ts";
import { grid } from "../../wgsl/grid.ts";
import type { Tensor } from "../../core/tensor.ts";
import { OP, type ScanSpec } from "./options.ts";

/** Invocations per workgroup of the carry kernel. */
const CARRY_THREADS = 64;

/** Carries segment values across segments, x ← decay_k·x + local_k, in either direction. */
const CARRY = /* wgsl */ `
struct P { batch: u32, channels: u32, states: u32, segs: u32, out_m: u32, out_s: u32,
  out_off: u32, backward: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> seg_state: array<f32>;
@group(0) @binding(2) var<storage, read> seg_decay: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${CARRY_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${CARRY_THREADS}u;
  if (i >= p.n) { return; }
  let s = i % p.states;
  let c = (i / p.states) % p.channels;
  let b = i / (p.states * p.channels);
  var x = 0.0;
  for (var j = 0u; j < p.segs; j++) {
    let k = select(j, p.segs - 1u - j, p.backward == 1u);
    let m = k * p.out_s + p.out_off;
    if (m < p.out_m) { out[((b * p.out_m + m) * p.channels + c) * p.states + s] = x; }
    if (j + 1u < p.segs) {
      let li = ((b * p.segs + k) * p.channels + c) * p.states + s;
      x = seg_decay[li] * x + seg_state[li];
    }
  }
}`;

/** Where the carried values go: a (batch, outM, d, n) tensor, segment k at interval k·outS + outOff. */
export interface CarryTarget {
  /** The tensor written, (batch, outM, d, n). */
  out: Tensor;
  /** Its second dimension. */
  outM: number;
  /** Intervals per segment. */
  outS: number;
  /** Interval of segment 0's value. */
  outOff: number;
}

/**
 * Launches the carry over a local pass' per-segment end values and decays, both
 * (batch, segs, d, n); `backward` runs it from the last segment to the first (the adjoint).
 */
export function carry(
  spec: ScanSpec,
  segs: number,
  segState: Tensor,
  segDecay: Tensor,
  target: CarryTarget,
  backward: boolean,
): void {
  const n = spec.batch * spec.channels * spec.states;
  const { out, outM, outS, outOff } = target;
  launch(
    `${OP} carry`,
    CARRY,
    packParams([
      spec.batch,
      spec.channels,
      spec.states,
      segs,
      outM,
      outS,
      outOff,
      backward ? 1 : 0,
      n,
    ]),
    [segState, segDecay, out],
    grid(n, CARRY_THREADS).groups,
  );
}
