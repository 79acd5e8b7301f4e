/**
 * Opening a WebGPU device: the adapter is asked for its own maximum limits, and what the runtime
 * needs to know about it (its name, whether it is a CPU implementation, its buffer, workgroup
 * memory, invocation and binding limits) is collected in a {@link GpuInfo}.
 *
 * @module
 */

/** What the runtime knows about the adapter and device it runs on. */
export interface GpuInfo {
  /** Adapter description, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** True on a CPU implementation (lavapipe, llvmpipe, SwiftShader, or a fallback adapter). */
  isCpu: boolean;
  /** The largest storage-buffer binding, in bytes: the largest tensor the device can hold. */
  maxBindingBytes: number;
  /** The largest buffer, in bytes. */
  maxBufferBytes: number;
  /** Workgroup memory available to one workgroup, in bytes. */
  maxWorkgroupBytes: number;
  /** Invocations per workgroup. */
  maxInvocations: number;
  /** Storage buffers one kernel may bind. */
  maxStorageBuffers: number;
  /** Whether the device records timestamps (dispatch profiles, see `startProfile`). */
  timestamps: boolean;
}

/** Options for {@link initGpu}. */
export interface InitOptions {
  /** Ask for the low-power adapter instead of the high-performance one. */
  powerPreference?: GPUPowerPreference;
}

/**
 * Opens a device on `gpu`'s adapter with the adapter's own maximum limits and describes it.
 * Reports a lost device (other than one destroyed on purpose) on the console.
 * @param gpu the WebGPU entry point (`navigator.gpu`)
 * @param options which adapter to ask for
 */
export async function openDevice(
  gpu: GPU,
  options: InitOptions = {},
): Promise<{ device: GPUDevice; info: GpuInfo }> {
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) {
    throw new Error(
      "No WebGPU adapter was found. ssmrec needs a Vulkan, Metal or Direct3D 12 driver: on Linux " +
        "without a GPU install Mesa's CPU Vulkan driver (Debian/Ubuntu: `apt-get install " +
        "mesa-vulkan-drivers`); with an NVIDIA GPU make sure its Vulkan ICD is installed " +
        "(libvulkan1 and the driver's nvidia_icd.json).",
    );
  }
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
  const timestamps = adapter.features.has("timestamp-query");
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: timestamps ? ["timestamp-query"] : [],
  });
  const description = adapter.info.description || adapter.info.vendor || "unknown adapter";
  const isCpu = adapter.info.isFallbackAdapter || isCpuAdapterDescription(description);
  const info: GpuInfo = {
    description,
    isCpu,
    maxBindingBytes: Math.min(
      device.limits.maxStorageBufferBindingSize,
      device.limits.maxBufferSize,
    ),
    maxBufferBytes: device.limits.maxBufferSize,
    maxWorkgroupBytes: device.limits.maxComputeWorkgroupStorageSize,
    maxInvocations: device.limits.maxComputeInvocationsPerWorkgroup,
    maxStorageBuffers: device.limits.maxStorageBuffersPerShaderStage,
    timestamps,
  };
  device.lost.then((lost) => {
    if (lost.reason !== "destroyed") console.error(`ssmrec: WebGPU device lost: ${lost.message}`);
  });
  return { device, info };
}

/** Names that CPU implementations of WebGPU put in their adapter information. */
const CPU_ADAPTER_PATTERN = /llvmpipe|lavapipe|swiftshader|software|\bcpu\b/i;

/**
 * Whether a WebGPU adapter's description (or its vendor, architecture or device string) names a
 * CPU implementation: Mesa's llvmpipe or lavapipe, SwiftShader, a "software" renderer, or the
 * word "cpu" on its own. A fallback adapter (`isFallbackAdapter`) is a CPU one as well, whatever
 * its description says.
 * @param text one field of `GPUAdapterInfo`
 */
export function isCpuAdapterDescription(text: string): boolean {
  return CPU_ADAPTER_PATTERN.test(text);
}
