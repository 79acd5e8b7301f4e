/**
 * A bandwidth-bound copy kernel: the reference point for every memory-bound kernel (the
 * benchmark reports it as the device's achievable bandwidth) and a fast way to duplicate a tensor.
 *
 * Floor: a copy of n bytes moves 2n bytes (read + write). On an NVIDIA H200, 4.3 TB/s (PyTorch's
 * copy) gives 0.50 ms for 1 GiB. Keeping that rate needs several MB in flight (about bandwidth ×
 * latency ≈ 4.3 TB/s × 0.8 µs), so each thread issues all of its vec4 reads before its writes,
 * and a workgroup covers one contiguous block in which consecutive threads touch consecutive vec4s
 * (every warp-wide access is whole 128-byte lines). Only the last, partial block is bounds checked.
 * Measured on the H200: 3.70 TB/s for 1 GiB (0.580 ms); 1 to 8 vec4s per thread and workgroups of
 * 128 to 512 threads all land within 3.3–3.7 TB/s.
 *
 * @module
 */
import { launch, packParams } from "../core/launch.ts";
import { Tensor } from "../core/tensor.ts";
import { foldWorkgroups, GRID_WGSL } from "../wgsl/grid.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

/** The shape of the copy kernel's work split. */
export interface CopyConfig {
  /** Threads per workgroup. */
  workgroup: number;
  /** vec4s (16 bytes) each thread moves. */
  vec4PerThread: number;
}

/** The configuration {@link copyTensor} uses unless told otherwise. */
export const DEFAULT_COPY_CONFIG: CopyConfig = { workgroup: 256, vec4PerThread: 4 };

/** Generates the WGSL of the copy kernel for one configuration. */
export function copyShader(c: CopyConfig): string {
  const reads: string[] = [], writes: string[] = [], guarded: string[] = [];
  for (let j = 0; j < c.vec4PerThread; j++) {
    const i = `base + ${j * c.workgroup}u`;
    reads.push(`    let v${j} = src[${i}];`);
    writes.push(`    dst[${i}] = v${j};`);
    guarded.push(`    if (${i} < p.n4) { dst[${i}] = src[${i}]; }`);
  }
  const block = c.workgroup * c.vec4PerThread;
  return /* wgsl */ `// copy ${JSON.stringify(c)}
struct P { n4: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec4u>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4u>;
${GRID_WGSL}
@compute @workgroup_size(${c.workgroup})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let start = grid_index(wid, p.gx) * ${block}u;
  let base = start + lid;
  if (start + ${block}u <= p.n4) {
${reads.join("\n")}
${writes.join("\n")}
  } else {
${guarded.join("\n")}
  }
}`;
}

/** {@link copyShader}, generated once per configuration. */
const copySource = shaderGenerator(
  "copy",
  copyShader,
  (c) => `${c.workgroup}x${c.vec4PerThread}`,
);

/**
 * A copy of `src` in new storage, of any dtype (the bits are copied). Not recorded on the tape;
 * use `clone` from the elementwise ops inside differentiated code.
 */
export function copyTensor(src: Tensor, config: CopyConfig = DEFAULT_COPY_CONFIG): Tensor {
  const op = "copyTensor";
  const { workgroup, vec4PerThread } = config;
  if (
    !Number.isInteger(workgroup) || workgroup < 1 || !Number.isInteger(vec4PerThread) ||
    vec4PerThread < 1
  ) {
    throw new RangeError(`${op}: invalid configuration ${JSON.stringify(config)}`);
  }
  const dst = Tensor.empty(src.shape, src.dtype, op);
  // Pooled buffers hold a multiple of 16 bytes, so the last vec4 may run into the padding of
  // both buffers (harmless: nothing lives there).
  const n4 = Math.ceil(src.size / 4);
  if (n4 === 0) return dst;
  const [gx, gy] = foldWorkgroups(Math.ceil(n4 / (workgroup * vec4PerThread)));
  launch(op, copySource(config), packParams([n4, gx]), [src, dst], [gx, gy]);
  return dst;
}
