/**
 * Kernels over packed lists of tensors, shared by the optimizer and the gradient norm.
 *
 * Dispatches, not bytes, are what a training step costs (each dispatch carries a fixed cost of
 * tens of microseconds in Deno's WebGPU), so one dispatch works on many tensors at once:
 * workgroups are assigned to tensors by ranges of their index (a generated chain of branches,
 * since WGSL cannot index bindings), and as many tensors go in one dispatch as the parameter
 * block and the device's storage bindings allow.
 *
 * @module
 */
import { runtime } from "../core/runtime.ts";

/** Invocations per workgroup of the packed-list kernels. */
export const WG = 256;
/** Words of the parameter block (the runtime's 256-byte uniform slot). */
export const PARAM_WORDS = 64;

/** Splits `items` into consecutive runs of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** How many tensors one dispatch may bind besides `shared` fixed ones, at `per` each. */
export function bindable(shared: number, per: number): number {
  const limit = runtime().info.maxStorageBuffers;
  return Math.max(1, Math.floor((limit - shared) / per));
}

/**
 * WGSL that runs one branch per tensor of a packed list: workgroups [end(k−1), end(k)) work on
 * tensor k, with `j` their index within it. `body(k)` is the branch's code.
 */
export function perTensorBranches(count: number, body: (k: number) => string): string {
  const branches: string[] = [];
  for (let k = 0; k < count; k++) {
    const start = k === 0 ? "0u" : `p.end${k - 1}`;
    branches.push(`if (w < p.end${k}) {\n    let j = w - ${start};\n${body(k)}\n  }`);
  }
  return branches.join(" else ");
}
