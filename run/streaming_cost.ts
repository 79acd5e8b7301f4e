/**
 * The cost of one event per user against the user's history length, two ways: stepping the
 * model's step form (`openStream`; O(1) work per event, whatever the history) and recomputing
 * the window
 * (the full model's forward over the user's last n items, as a recommender without state does
 * on every event). Each point times one event for a batch of users, waiting for the GPU after
 * each repeat, and keeps the median. On a CPU implementation of WebGPU the figures show the
 * shape only; `bench/serve.ts` (`deno task serve-bench`) measures the GPU.
 *
 * @module
 */
import { SeededRandom } from "../data/random.ts";
import { median } from "./number_format.ts";
import { noGrad } from "../ops/core/autograd.ts";
import { tidy } from "../ops/core/tensor.ts";
import { sync } from "../ops/core/runtime.ts";
import { INIT_TOKENS_PER_PASS } from "../models/streaming/mamba4rec_stream.ts";
import {
  fullRepresentations,
  openStream,
  type StreamableModel,
} from "../models/streaming/streams.ts";
import { type PlotlyFigure, plotlyFigure } from "../viz/plotly.ts";

/** One history length's timings. */
export interface StreamingCostPoint {
  /** Items of each user's history (n). */
  readonly length: number;
  /** Users in the batch, one event each. */
  readonly users: number;
  /** Median milliseconds of one observe call for every user. */
  readonly stepMs: number;
  /** Median milliseconds of the full forward over every user's n items. */
  readonly recomputeMs: number;
}

/** Sizes of a {@link measureStreamingCost} run. */
export interface StreamingCostSizes {
  /** Users in the batch. */
  readonly users: number;
  /** History lengths measured, from 1 to the window L (see {@link historyLengths}). */
  readonly points: number;
  /** Timed repeats per point (the median is kept). */
  readonly repeats: number;
}

/** The sizes of the notebook's measurement: small for quick mode (CPU), larger for full. */
export const STREAMING_COST_SIZES: { quick: StreamingCostSizes; full: StreamingCostSizes } = {
  quick: { users: 16, points: 4, repeats: 3 },
  full: { users: 1024, points: 6, repeats: 10 },
};

/** `points` history lengths from 1 to `maxLength`, spread evenly on a log scale, distinct. */
export function historyLengths(maxLength: number, points: number): number[] {
  if (!Number.isInteger(maxLength) || maxLength < 1 || !Number.isInteger(points) || points < 1) {
    throw new RangeError(
      `historyLengths: maxLength (${maxLength}) and points (${points}) must be integers ≥ 1`,
    );
  }
  if (points === 1) return [maxLength];
  const out = new Set<number>();
  for (let i = 0; i < points; i++) {
    out.add(Math.round(Math.pow(maxLength, i / (points - 1))));
  }
  return [...out].sort((a, b) => a - b);
}

/** Milliseconds of `work` (queued GPU work included): one warm-up, then the median of repeats. */
async function timeMs(work: () => void, repeats: number): Promise<number> {
  work();
  await sync();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    work();
    await sync();
    times.push(performance.now() - start);
  }
  return median(times);
}

/**
 * Times one event for `sizes.users` users at each of `lengths`: stepping a stream initialised
 * with histories of that length, and the full forward over windows of that length (in passes of
 * at most {@link INIT_TOKENS_PER_PASS} tokens). Item ids are drawn from `seed`; the cost does
 * not depend on them.
 */
export async function measureStreamingCost(
  model: StreamableModel,
  lengths: readonly number[],
  sizes: Pick<StreamingCostSizes, "users" | "repeats">,
  seed = 2020,
): Promise<StreamingCostPoint[]> {
  const { users, repeats } = sizes;
  if (!Number.isInteger(users) || users < 1 || !Number.isInteger(repeats) || repeats < 1) {
    throw new RangeError(
      `measureStreamingCost: users (${users}) and repeats (${repeats}) must be integers ≥ 1`,
    );
  }
  const rng = new SeededRandom(seed);
  const numItems = model.config.numItems;
  const draw = (count: number) =>
    Int32Array.from({ length: count }, () => 1 + rng.nextInt(numItems - 1));
  const slots = Int32Array.from({ length: users }, (_, i) => i);
  const events = draw(users);
  const out: StreamingCostPoint[] = [];
  for (const length of lengths) {
    const items = draw(users * length);
    const stream = openStream(model, { capacity: users });
    let stepMs: number;
    try {
      stream.initFromHistories(
        slots,
        Array.from(slots, (u) => items.slice(u * length, (u + 1) * length)),
      );
      stepMs = await timeMs(() => stream.observe(slots, events), repeats);
    } finally {
      stream.dispose();
    }
    const perPass = Math.max(1, Math.floor(INIT_TOKENS_PER_PASS / length));
    const recomputeMs = await timeMs(
      () =>
        tidy(() =>
          noGrad(() => {
            for (let at = 0; at < users; at += perPass) {
              const size = Math.min(perPass, users - at);
              const windows = Array.from(
                { length: size },
                (_, b) => items.subarray((at + b) * length, (at + b + 1) * length),
              );
              fullRepresentations(model, windows);
            }
          })
        ),
      repeats,
    );
    out.push({ length, users, stepMs, recomputeMs });
  }
  return out;
}

/** Both lines against the history length: milliseconds per event for the batch. */
export function streamingCostChart(
  points: readonly StreamingCostPoint[],
  adapter: string,
): PlotlyFigure {
  const x = points.map((p) => p.length);
  const users = points[0]?.users ?? 0;
  return plotlyFigure({
    data: [
      {
        type: "scatter",
        mode: "lines+markers",
        name: "step the stream",
        x,
        y: points.map((p) => p.stepMs),
      },
      {
        type: "scatter",
        mode: "lines+markers",
        name: "recompute the window",
        x,
        y: points.map((p) => p.recomputeMs),
      },
    ],
    layout: {
      title: `One event for ${users} users: stepping vs recomputing (${adapter})`,
      xaxis: { title: "history length n (items)" },
      yaxis: { title: "milliseconds per event (whole batch)" },
    },
  });
}
