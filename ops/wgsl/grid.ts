/**
 * Grids of more than 65,535 workgroups: WebGPU caps each dispatch dimension at 65,535, so a long
 * 1-D range of workgroups is folded into rows of at most that many, and shaders unfold it again.
 *
 * @module
 */

/** The most workgroups a dispatch may have along one dimension (WebGPU's default limit). */
export const MAX_WORKGROUPS_PER_DIMENSION = 65535;

/**
 * `count` workgroups (at least one) folded into `[gx, gy]` with gx, gy ≤ 65,535 and
 * gx · gy ≥ count; the rows are as even as possible. Workgroup (x, y) is number x + y · gx;
 * numbers ≥ count must be skipped by the shader.
 */
export function foldWorkgroups(count: number): [number, number] {
  const total = Math.max(1, count);
  const gy = Math.ceil(total / MAX_WORKGROUPS_PER_DIMENSION);
  const gx = Math.ceil(total / gy);
  if (gy > MAX_WORKGROUPS_PER_DIMENSION) {
    throw new RangeError(
      `foldWorkgroups: ${count} workgroups exceed ${MAX_WORKGROUPS_PER_DIMENSION}² even folded; ` +
        "split the work over several dispatches",
    );
  }
  return [gx, gy];
}

/** A 2-D grid covering `n` invocations in workgroups of `workgroupSize`. */
export interface Grid {
  /** Workgroup counts. */
  groups: [number, number];
  /** Invocations per grid row: a shader's linear index is `gid.x + gid.y * stride`. */
  stride: number;
}

/** The grid for `n` independent invocations (`n` may exceed 65,535 workgroups). */
export function grid(n: number, workgroupSize: number): Grid {
  const groups = foldWorkgroups(Math.ceil(n / workgroupSize));
  return { groups, stride: groups[0] * workgroupSize };
}

/**
 * WGSL `fn grid_index(id: vec3u, width: u32) -> u32`: the linear number of a folded grid
 * position, `id.x + id.y * width`. Pass `global_invocation_id` with {@link Grid.stride}, or
 * `workgroup_id` with the `gx` of {@link foldWorkgroups}.
 */
export const GRID_WGSL: string = /* wgsl */ `
fn grid_index(id: vec3u, width: u32) -> u32 {
  return id.x + id.y * width;
}
`;
