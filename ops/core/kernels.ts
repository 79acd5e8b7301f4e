/**
 * Compiled kernels: the record of one compute pipeline, the bind-group layout read from a
 * kernel's WGSL declarations, and the check of its storage buffers against the device's limit.
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

/**
 * Throws a RangeError naming kernel `name` when its layout `entries` hold more storage buffers
 * than `limit`, the device's (`description`) per-kernel maximum: the device would refuse the
 * pipeline, and this says which kernel and by how many.
 */
export function checkStorageBindings(
  name: string,
  entries: readonly GPUBindGroupLayoutEntry[],
  limit: number,
  description: string,
): void {
  const storage = entries.filter((e) => e.buffer?.type !== "uniform").length;
  if (storage > limit) {
    throw new RangeError(
      `${name}: the kernel binds ${storage} storage buffers, more than the ${limit} this device ` +
        `allows one kernel (${description}); this op needs a device with a higher ` +
        "maxStorageBuffersPerShaderStage",
    );
  }
}
