/**
 * Copy bandwidth: the achievable memory bandwidth every memory-bound kernel is compared with.
 * Counts bytes read plus bytes written.
 *
 * @module
 */
import type { Tensor } from "../ops/mod.ts";
import { copyTensor } from "../ops/pointwise/copy.ts";
import { benchmark, randomTensor } from "./harness.ts";

benchmark<{ src: Tensor; bytes: number }>({
  name: "copy",
  setup: ({ quick }) => {
    const n = quick ? 1 << 20 : 1 << 28; // 4 MiB or 1 GiB
    return { src: randomTensor([n]), bytes: n * 4 };
  },
  run: ({ src }) => copyTensor(src).dispose(),
  teardown: ({ src }) => src.dispose(),
  bytes: ({ bytes }) => 2 * bytes,
  note: ({ bytes }) => `${bytes / 2 ** 20} MiB, read + write`,
});
