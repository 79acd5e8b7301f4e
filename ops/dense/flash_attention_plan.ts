/**
 * The tiling of the fused attention kernels for one head size: how many rows of its own side a
 * workgroup serves, how many rows of the other side it stages per tile, how its invocations
 * share them, and the workgroup memory that takes.
 *
 * Every kernel runs {@link FLASH_INVOCATIONS} invocations per workgroup. Its own side (queries
 * in the forward and the query-gradient kernel, keys in the key/value-gradient kernel) is a
 * block of `own` rows; invocation `lid` holds {@link FLASH_ROWS_PER_INVOCATION} of them, rows
 * `4·og … 4·og + 3` with `og = lid / groups`, as the four lanes of its vec4 registers. The other
 * side is walked in tiles of `tile` rows staged in workgroup memory; the invocation's share of
 * a tile is rows `tg, tg + groups, …` (`perInvocation` of them, `tg = lid % groups`), so it
 * computes a register tile of 4 × `perInvocation` scores, each staged vec4 read once for four
 * rows or for `perInvocation` columns. In the products with a tile (P·V and its kin) the same
 * invocation accumulates columns `tg, tg + groups, …` (`columns` vec4s) of its four rows.
 *
 * Rows read while computing scores are staged with an odd stride of vec4s (`stride`), so the
 * rows one warp reads start in different banks. The own rows are staged too when the memory
 * allows it (`stageOwn`); otherwise they are read from the tensors (large head sizes in the
 * backward).
 *
 * @module
 */

/** Invocations per workgroup of every fused-attention kernel. */
export const FLASH_INVOCATIONS = 64;

/** Own rows per invocation: the lanes of its vec4 registers. */
export const FLASH_ROWS_PER_INVOCATION = 4;

/** The kernels of the fused attention. */
export type FlashKernel = "forward" | "query grads" | "key grads";

/** The tiling of one fused-attention kernel, see the module comment. */
export interface FlashPlan {
  /** Which kernel. */
  readonly kernel: FlashKernel;
  /** The head size d. */
  readonly dim: number;
  /** vec4s per row, ⌈d / 4⌉. */
  readonly dim4: number;
  /** Own rows per workgroup. */
  readonly own: number;
  /** Other-side rows staged per tile. */
  readonly tile: number;
  /** Invocations sharing one group of four own rows (`tg` ranges over them). */
  readonly groups: number;
  /** Groups of four own rows per workgroup (`og` ranges over them). */
  readonly ownGroups: number;
  /** Tile rows per invocation in the scores, `tile / groups`. */
  readonly perInvocation: number;
  /** vec4 columns per invocation in the products with a tile, ⌈dim4 / groups⌉. */
  readonly columns: number;
  /** vec4s between staged rows read in the scores: dim4, made odd. */
  readonly stride: number;
  /** Whether the own rows are staged in workgroup memory. */
  readonly stageOwn: boolean;
  /** Workgroup memory in bytes. */
  readonly bytes: number;
}

/** Own rows per workgroup for `dim4` vec4s per row: fewer for wider rows. */
export function flashOwnRows(dim: number): number {
  const dim4 = Math.ceil(dim / 4);
  return dim4 <= 8 ? 64 : dim4 <= 16 ? 32 : 16;
}

/** Workgroup memory of a plan (vec4s are 16 bytes). */
function planBytes(
  kernel: FlashKernel,
  own: number,
  tile: number,
  dim4: number,
  stride: number,
  stageOwn: boolean,
): number {
  // vec4s per tile row of weights over the own groups, one more than the groups.
  const weights = own / FLASH_ROWS_PER_INVOCATION + 1;
  // The (first, last + 1) unpadded keys reduced over the workgroup: one vec2u per invocation.
  const span = 8 * FLASH_INVOCATIONS;
  if (kernel === "forward") {
    // Own q; staged k (scores) and v (product); weights; two row reductions; key states.
    return 16 * ((stageOwn ? own * stride : 0) + tile * stride + tile * dim4 + tile * weights) +
      2 * 16 * FLASH_INVOCATIONS + span + 4 * tile;
  }
  const ownRows = stageOwn ? 2 * own * stride : 0;
  if (kernel === "query grads") {
    // Own q and dO; staged k and v; dS; own row statistics; key states.
    return 16 * (ownRows + 2 * tile * stride + tile * weights + own) + span + 4 * tile;
  }
  // Own k and v; staged q and dO; P·drop and dS; statistics and states of staged queries.
  return 16 * (ownRows + 2 * tile * stride + 2 * tile * weights + tile) + span + 4 * tile;
}

/**
 * The tiling of `kernel` for head size `dim` within `maxBytes` of workgroup memory: the own rows
 * staged when they fit, else read from the tensors.
 * @param kernel which kernel
 * @param dim the head size d (1 … 128)
 * @param maxBytes the device's workgroup memory per workgroup
 */
export function flashPlan(kernel: FlashKernel, dim: number, maxBytes: number): FlashPlan {
  const dim4 = Math.ceil(dim / 4);
  const own = flashOwnRows(dim);
  const ownGroups = own / FLASH_ROWS_PER_INVOCATION;
  const groups = FLASH_INVOCATIONS / ownGroups;
  const tile = kernel === "forward" && dim4 <= 8 ? 32 : 16;
  const stride = dim4 | 1;
  let stageOwn = true;
  let bytes = planBytes(kernel, own, tile, dim4, stride, true);
  if (bytes > maxBytes) {
    stageOwn = false;
    bytes = planBytes(kernel, own, tile, dim4, stride, false);
  }
  if (bytes > maxBytes) {
    throw new RangeError(
      `attention: the fused ${kernel} kernel for head size ${dim} needs ${bytes} bytes of ` +
        `workgroup memory; the device has ${maxBytes}. Pass fused: false for the unfused form`,
    );
  }
  return {
    kernel,
    dim,
    dim4,
    own,
    tile,
    groups,
    ownGroups,
    perInvocation: tile / groups,
    columns: Math.ceil(dim4 / groups),
    stride,
    stageOwn,
    bytes,
  };
}
