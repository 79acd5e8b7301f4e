/**
 * Which GPU a training worker uses: the NVIDIA GPUs of the host (counted with `nvidia-smi`), the
 * environment that pins a WebGPU process (wgpu on Vulkan) to one of them, and the variables that
 * tell the process which GPU that is ({@link pinnedGpu}), since WebGPU's adapter information has
 * no PCI address: a worker's run record keeps them.
 *
 * The method is Mesa's Vulkan device-select layer (`VK_LAYER_MESA_device_select`, an implicit
 * layer that Debian's and Ubuntu's `mesa-vulkan-drivers` install): it reorders the physical
 * devices of every Vulkan driver, NVIDIA's included, so that the one whose PCI address matches
 * `DRI_PRIME=pci-DDDD_BB_DD_F` comes first, and with
 * `MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1` it shows that one alone, so wgpu cannot pick
 * another. The PCI address is the only thing that tells two cards of the same model apart: the
 * layer's `MESA_VK_DEVICE_SELECT=vendor:device`, the Vulkan loader's `VK_LOADER_DEVICE_SELECT`
 * (same form, reorders only) and `VK_LOADER_DEVICE_ID_FILTER` (loader 1.4.326 and later) all
 * match PCI vendor and device ids, which identical GPUs share.
 *
 * Mesa 22.3's layer (Debian 12) already reads both variables. Without the layer they do nothing
 * and every worker uses the first GPU;
 * {@link deviceSelectLayerFound} says whether its manifest is installed. The pinning is not yet
 * measured on a multi-GPU host: check `nvidia-smi` while workers run.
 *
 * @module
 */
import { join } from "node:path";
import { env, isFile } from "../host/mod.ts";

/** One NVIDIA GPU as `nvidia-smi` lists it. */
export interface GpuDevice {
  /** Its index in `nvidia-smi`'s list (PCI order). */
  readonly index: number;
  /** Its product name (`NVIDIA H100 80GB HBM3`). */
  readonly name: string;
  /** Its PCI address as `nvidia-smi` writes it (`00000000:19:00.0`), when known. */
  readonly pciBusId: string | undefined;
}

/** The GPU a process was pinned to: what its run record keeps (`RunRecord.gpu`). */
export interface PinnedGpu {
  /** Its index in `nvidia-smi`'s list on the host that ran it. */
  readonly index: number;
  /** Its PCI address as `nvidia-smi` writes it (`00000000:19:00.0`). */
  readonly pciAddress: string;
}

/** The variable that tells a pinned worker its GPU's index in `nvidia-smi`'s list. */
export const PINNED_GPU_INDEX_VARIABLE: string = "SSMREC_GPU_INDEX";

/** The variable that tells a pinned worker its GPU's PCI address. */
export const PINNED_GPU_PCI_ADDRESS_VARIABLE: string = "SSMREC_GPU_PCI_ADDRESS";

/** A PCI address as `nvidia-smi` (`00000000:19:00.0`) or sysfs (`0000:19:00.0`) writes it. */
const PCI_ADDRESS = /^[0-9a-f]+:[0-9a-f]{1,2}:[0-9a-f]{1,2}\.[0-7]$/i;

/** The manifest file of Mesa's device-select layer. */
export const DEVICE_SELECT_LAYER_MANIFEST: string = "VkLayer_MESA_device_select.json";

/**
 * The GPUs of `nvidia-smi --query-gpu=index,name,pci.bus_id --format=csv,noheader` output, one
 * line each (`0, NVIDIA H100 80GB HBM3, 00000000:19:00.0`); lines of another form are skipped.
 */
export function parseNvidiaSmiGpus(text: string): GpuDevice[] {
  const gpus: GpuDevice[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 3 || !/^\d+$/.test(fields[0])) continue;
    const pciBusId = fields[fields.length - 1];
    gpus.push({
      index: Number(fields[0]),
      name: fields.slice(1, -1).join(","),
      pciBusId: PCI_ADDRESS.test(pciBusId) ? pciBusId : undefined,
    });
  }
  return gpus;
}

/** The host's NVIDIA GPUs from `nvidia-smi`; none when it is missing or fails. */
export async function listNvidiaGpus(): Promise<GpuDevice[]> {
  try {
    const output = await new Deno.Command("nvidia-smi", {
      args: ["--query-gpu=index,name,pci.bus_id", "--format=csv,noheader"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return output.success ? parseNvidiaSmiGpus(new TextDecoder().decode(output.stdout)) : [];
  } catch {
    return [];
  }
}

/**
 * The device-select layer's tag of a PCI address: `00000000:19:00.0` (`nvidia-smi`) or
 * `0000:19:00.0` (sysfs) becomes `pci-0000_19_00_0`. Fails on another form.
 */
export function driPrimeTag(pciBusId: string): string {
  const text = pciBusId.trim();
  if (!PCI_ADDRESS.test(text)) {
    throw new Error(
      `PCI address '${pciBusId}' is not of the form domain:bus:device.function ` +
        "(00000000:19:00.0)",
    );
  }
  const hex = (text: string, width: number) => parseInt(text, 16).toString(16).padStart(width, "0");
  const [domain, bus, device, fn] = text.split(/[:.]/);
  return `pci-${hex(domain, 4)}_${hex(bus, 2)}_${hex(device, 2)}_${fn}`;
}

/**
 * The environment variables that pin worker `index` to GPU `index mod gpus.length` through Mesa's
 * device-select layer (see the module documentation) and name that GPU
 * ({@link PINNED_GPU_INDEX_VARIABLE}, {@link PINNED_GPU_PCI_ADDRESS_VARIABLE}): none when there
 * is at most one GPU, or when that GPU's PCI address is unknown.
 */
export function gpuPinningEnvironment(
  index: number,
  gpus: readonly GpuDevice[],
): Record<string, string> {
  if (gpus.length <= 1) return {};
  const gpu = gpus[index % gpus.length];
  if (gpu.pciBusId === undefined) return {};
  return {
    DRI_PRIME: driPrimeTag(gpu.pciBusId),
    MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: "1",
    [PINNED_GPU_INDEX_VARIABLE]: String(gpu.index),
    [PINNED_GPU_PCI_ADDRESS_VARIABLE]: gpu.pciBusId,
  };
}

/**
 * The GPU this process was pinned to, from {@link PINNED_GPU_INDEX_VARIABLE} and
 * {@link PINNED_GPU_PCI_ADDRESS_VARIABLE} (the run scheduler sets both); `undefined` when neither
 * is set. Fails, naming the variable, when one is set without the other or is malformed.
 */
export function pinnedGpu(): PinnedGpu | undefined {
  const index = env(PINNED_GPU_INDEX_VARIABLE);
  const pciAddress = env(PINNED_GPU_PCI_ADDRESS_VARIABLE);
  if (index === undefined && pciAddress === undefined) return undefined;
  const fix = "set both as the run scheduler does, or neither";
  if (index === undefined || !/^\d+$/.test(index)) {
    throw new Error(
      `$${PINNED_GPU_INDEX_VARIABLE} should be the GPU's index in nvidia-smi's list, got ` +
        `'${index ?? ""}': ${fix}`,
    );
  }
  if (pciAddress === undefined || !PCI_ADDRESS.test(pciAddress)) {
    throw new Error(
      `$${PINNED_GPU_PCI_ADDRESS_VARIABLE} should be the GPU's PCI address (00000000:19:00.0), ` +
        `got '${pciAddress ?? ""}': ${fix}`,
    );
  }
  return { index: Number(index), pciAddress };
}

/** A pinned GPU for people: `GPU 1, PCI 00000000:3B:00.0`. */
export function describePinnedGpu(gpu: PinnedGpu): string {
  return `GPU ${gpu.index}, PCI ${gpu.pciAddress}`;
}

/**
 * Whether the device-select layer's manifest is in one of the Vulkan loader's implicit layer
 * folders (`$XDG_DATA_DIRS`, `/usr/local/share`, `/usr/share`, `/etc`, `$VK_ADD_IMPLICIT_LAYER_PATH`).
 */
export function deviceSelectLayerFound(): boolean {
  const dataDirs = (Deno.env.get("XDG_DATA_DIRS") ?? "/usr/local/share:/usr/share").split(":");
  const added = (Deno.env.get("VK_ADD_IMPLICIT_LAYER_PATH") ?? "").split(":");
  const folders = [
    ...dataDirs.map((d) => join(d, "vulkan", "implicit_layer.d")),
    "/usr/share/vulkan/implicit_layer.d",
    "/etc/vulkan/implicit_layer.d",
    ...added,
  ].filter((f) => f !== "");
  return folders.some((f) => isFile(join(f, DEVICE_SELECT_LAYER_MANIFEST)));
}
