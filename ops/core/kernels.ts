/**
 * Compiled kernels: the record of one compute pipeline and the bind-group layout read from a
 * kernel's WGSL declarations.
 *
 * @module
 */

/** A compiled compute kernel: its pipeline and bind-group layout. */
export interface Kernel {
  /** Name used in error messages. */
  readonly name: string;
  /** The compute pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** Layout of bind group 0 (binding 0 is the parameter block, 1.. the storage buffers). */
  readonly layout: GPUBindGroupLayout;
  /** A small unique number, part of bind-group cache keys. */
  readonly id: number;
}

/**
 * The bind-group layout entries a kernel declares: binding 0 its uniform parameter block (with a
 * dynamic offset into the parameter ring), the others storage buffers, read-only or read-write as
 * the WGSL says.
 */
export function bindingsOf(wgsl: string): GPUBindGroupLayoutEntry[] {
  const entries: GPUBindGroupLayoutEntry[] = [];
  const re = /@binding\((\d+)\)\s*var<\s*(uniform|storage)\s*(?:,\s*(read_write|read))?\s*>/g;
  for (const m of wgsl.matchAll(re)) {
    const binding = Number(m[1]);
    const buffer: GPUBufferBindingLayout = m[2] === "uniform"
      ? { type: "uniform", hasDynamicOffset: true }
      : { type: m[3] === "read_write" ? "storage" : "read-only-storage" };
    entries.push({ binding, visibility: GPUShaderStage.COMPUTE, buffer });
  }
  return entries;
}
