/**
 * The selective scan's planner: for a problem's sizes, the device's limits and the caller's
 * tuning, the time blocking (interval length, the checkpoint spacing), the workgroup shapes of
 * the channel-major and state-major kernels, and the number of length segments scanned in
 * parallel.
 *
 * Defaults: 16-step intervals (shorter where workgroup memory runs out), 4 staged steps and 64
 * invocations per channel-major workgroup, up to 64 invocations (intervals × states) and 8 staged
 * channels per state-major workgroup. `bench/selective_scan.ts` measures the alternatives.
 *
 * @module
 */
import { runtime } from "../../core/runtime.ts";
import { OP, type SelectiveScanTuning } from "./options.ts";

/** Most states one channel-major invocation keeps in registers. */
const MAX_STATES_PER_THREAD = 32;
/** Invocations wanted in flight on a discrete GPU before the length is split into segments. */
const TARGET_THREADS = 32768;
/** Interval lengths tried, longest first, when the tuning names none. */
const DEFAULT_INTERVALS = [16, 8, 4, 2, 1];
/** Default channel-major invocations per workgroup. */
const DEFAULT_CHANNEL_THREADS = 64;
/** Default steps staged at a time by the channel-major kernels. */
const DEFAULT_CHANNEL_STEPS = 4;
/** Default state-major invocations (intervals × states) per workgroup. */
const DEFAULT_STATE_THREADS = 64;
/**
 * Default channels staged at a time by the state-major kernel, measured best on an H100
 * (`bench/selective_scan.ts --variants`: 13.0 ms forward + backward at batch 2048 × 200, against
 * 15.7 staging 8 channels, 15.2 staging 4 and 13.7 staging 1). Fewer staged channels shrink the
 * workgroup memory (by a quarter from 8 to 2 at n 32 with 16-step intervals), which may let
 * more workgroups share an SM; each staged channel costs a barrier.
 */
const DEFAULT_STATE_CHUNK = 2;

/** Workgroup of the channel-major kernels: one invocation per (channel, ≤ 32 states). */
export interface ChannelShape {
  /** Invocations per channel: ceil(n / 32). */
  tpc: number;
  /** States per invocation, in registers. */
  spt: number;
  /** Channels per workgroup. */
  cpg: number;
  /** Invocations per workgroup: cpg × tpc. */
  threads: number;
  /** Steps staged at a time (divides the interval). */
  steps: number;
  /** Channel blocks: ceil(d / cpg). */
  cblocks: number;
}

/** Workgroup of the state-major kernel: one invocation per (interval, state). */
export interface StateShape {
  /** Intervals per workgroup. */
  rows: number;
  /** Invocations per workgroup: rows × n. */
  threads: number;
  /** Channels staged at a time. */
  chunk: number;
}

/** Workgroup shapes and time blocking, fixed per (n, d, l, device). */
export interface ScanPlan {
  /** Steps per interval: the checkpoint spacing. */
  ts: number;
  /** Intervals covering the length. */
  intervals: number;
  /**
   * Intervals of the per-interval tensors' layout (checkpoints and λ, (batch, ckIntervals, d,
   * n)): the intervals padded to whole state-major workgroups (a multiple of `st.rows`), so
   * that each workgroup owns `st.rows` whole rows of λ to write its partial sums over.
   */
  ckIntervals: number;
  /** Channel-major kernels. */
  ch: ChannelShape;
  /** State-major kernel. */
  st: StateShape;
}

/** The smallest odd number ≥ v: a padded row length that avoids workgroup-memory bank conflicts. */
export const odd = (v: number): number => (v % 2 === 0 ? v + 1 : v);

/** Workgroup-memory words of a channel-major kernel. */
function channelWords(c: Omit<ChannelShape, "steps" | "cblocks">, steps: number): number {
  return steps * (2 * c.tpc * c.spt + 4 * c.cpg + c.cpg * c.tpc);
}

/** Slices the state-major kernel splits each step's sum over the n states into. */
export function stateParts(n: number, ts: number): number {
  return Math.max(1, Math.floor(n / ts));
}

/** Workgroup-memory words of the state-major kernel. */
function stateWords(n: number, ts: number, rows: number, chunk: number): number {
  const span = rows * ts;
  return span * (5 * chunk + 2 * odd(n) + 2 * stateParts(n, ts)) + 4 * rows * n;
}

/** The state-major workgroup for intervals of `ts` steps, or undefined where none fits. */
function stateShape(
  states: number,
  ts: number,
  tuning: SelectiveScanTuning,
  budget: number,
  maxInvocations: number,
): StateShape | undefined {
  const rowsWanted = tuning.stateRows ??
    Math.max(1, Math.floor(DEFAULT_STATE_THREADS / states));
  // Halve the rows until they fit, unless the tuning fixes them.
  for (let rows = rowsWanted; rows >= 1; rows = tuning.stateRows ? 0 : rows >> 1) {
    const chunk = [tuning.stateChunk ?? DEFAULT_STATE_CHUNK, 4, 2, 1].find((c) =>
      stateWords(states, ts, rows, c) <= budget
    );
    if (chunk && rows * states <= maxInvocations) return { rows, threads: rows * states, chunk };
  }
  return undefined;
}

/**
 * Plans one scan: the longest interval (16 steps by default, or the tuning's) whose kernels fit
 * the device's workgroup memory and invocation limits. Throws a RangeError when none fits.
 */
export function planScan(
  channels: number,
  states: number,
  length: number,
  tuning: SelectiveScanTuning,
): ScanPlan {
  const info = runtime().info;
  const budget = Math.floor(info.maxWorkgroupBytes / 4);
  const tpc = Math.ceil(states / MAX_STATES_PER_THREAD);
  const spt = Math.ceil(states / tpc);
  const cpg = Math.max(
    1,
    Math.min(channels, Math.floor((tuning.channelThreads ?? DEFAULT_CHANNEL_THREADS) / tpc)),
  );
  const chBase = { tpc, spt, cpg, threads: cpg * tpc };
  if (chBase.threads > info.maxInvocations) {
    throw new RangeError(
      `${OP}: tuning.channelThreads gives ${chBase.threads} invocations per workgroup, more than ` +
        `this device's ${info.maxInvocations}`,
    );
  }
  for (const ts of tuning.interval ? [tuning.interval] : DEFAULT_INTERVALS) {
    const steps = [tuning.channelSteps ?? DEFAULT_CHANNEL_STEPS, 2, 1].find((v) =>
      v <= ts && ts % v === 0 && channelWords(chBase, v) <= budget
    );
    const st = stateShape(states, ts, tuning, budget, info.maxInvocations);
    if (steps && st) {
      const intervals = Math.ceil(length / ts);
      return {
        ts,
        intervals,
        ckIntervals: Math.ceil(intervals / st.rows) * st.rows,
        ch: { ...chBase, steps, cblocks: Math.ceil(channels / cpg) },
        st,
      };
    }
  }
  throw new RangeError(
    `${OP}: n = ${states} states do not fit this device's workgroup memory ` +
      `(${info.maxWorkgroupBytes} bytes; tuning ${JSON.stringify(tuning)})`,
  );
}

/** How a channel-major pass splits the length into segments scanned in parallel. */
export interface Segmentation {
  /** Segments. */
  segs: number;
  /** Intervals per segment (the last may have fewer). */
  ips: number;
}

/**
 * Segments for a channel-major pass that already has `threads` invocations per segment: enough
 * to put about 32,768 invocations in flight on a discrete GPU, one on a CPU implementation, or
 * the tuning's `wanted`; never more than the intervals.
 */
export function segmentsFor(plan: ScanPlan, threads: number, wanted?: number): Segmentation {
  const auto = runtime().info.isCpu ? 1 : Math.ceil(TARGET_THREADS / threads);
  const k = Math.max(1, Math.min(plan.intervals, Math.floor(wanted ?? auto)));
  const ips = Math.ceil(plan.intervals / k);
  return { segs: Math.ceil(plan.intervals / ips), ips };
}
