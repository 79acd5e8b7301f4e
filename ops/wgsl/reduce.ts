/**
 * The workgroup tree reduction as a WGSL generator: each step halves the number of live slots
 * and combines slot `i` with slot `i + half`, with a barrier after every step, so the order of
 * the combines is fixed and results are deterministic.
 *
 * @module
 */

/** An element of workgroup memory: a plain array name, or a function from a slot expression. */
export type ReduceArray = string | ((slot: string) => string);

/** How two partial values are combined. */
export type ReduceCombine =
  /** `a += b`. */
  | "sum"
  /** `a = max(a, b)`. */
  | "max"
  /** `a = merge(a, b)` with a WGSL function of the caller's, named here. */
  | { merge: string };

/** The shape of one tree reduction, see {@link workgroupReduceWgsl}. */
export interface WorkgroupReduce {
  /**
   * The workgroup memory reduced: one array, or several reduced in the same steps (one barrier
   * per step for all). A name `red` is indexed as `red[slot]`; a function maps a slot
   * expression to the element (e.g. `(i) => \`tree[k * 256u + ${i}]\``).
   */
  array: ReduceArray | readonly ReduceArray[];
  /**
   * Slots taking part per reduction (a power of two; a number or a WGSL u32 expression). The
   * first step pairs rank r < size / 2 with rank r + size / 2.
   */
  size: number | string;
  /** How partners are combined. */
  combine: ReduceCombine;
  /**
   * The invocation's rank within its reduction (default `lid`); ranks below the current half
   * combine. Several independent reductions side by side (teams) pass their lane here.
   */
  rank?: string;
  /** The invocation's own slot (default `lid`). */
  slot?: string;
  /** Slots between ranks r and r + 1 (default 1), for interleaved reductions. */
  spacing?: number | string;
  /**
   * The smallest half combined (default 1: down to one value). A larger value stops early,
   * leaving `until` partial results in ranks below it.
   */
  until?: number | string;
  /**
   * A WGSL loop header wrapping each step's combines, e.g. `for (var k = 0u; k < S; k++)`, for
   * many arrays interleaved in one block of workgroup memory.
   */
  each?: string;
  /**
   * The invocation's own value, stored at its slot (followed by a barrier) before the tree.
   * Only with one array and no `each`. Without it the caller stores and synchronizes first.
   */
  value?: string;
}

/** A number as a WGSL u32 literal, an expression as itself. */
function u32Expr(v: number | string): string {
  return typeof v === "number" ? `${v}u` : v;
}

/** The first half: a literal for a numeric size, `size / 2u` otherwise. */
function firstHalf(size: number | string): string {
  if (typeof size === "number") {
    if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0) {
      throw new RangeError(`workgroupReduceWgsl: size must be a power of two, got ${size}`);
    }
    return `${size / 2}u`;
  }
  return `${size} / 2u`;
}

function element(array: ReduceArray, slot: string): string {
  return typeof array === "string" ? `${array}[${slot}]` : array(slot);
}

function combineInto(combine: ReduceCombine, own: string, partner: string): string {
  if (combine === "sum") return `${own} += ${partner};`;
  const fn = combine === "max" ? "max" : combine.merge;
  return `${own} = ${fn}(${own}, ${partner});`;
}

/**
 * WGSL statements of a workgroup tree reduction, to paste inside a compute entry point after
 * every slot holds its value (and a barrier has passed, unless `value` stores it). Each step runs
 * `if (rank < half) { a[slot] = combine(a[slot], a[slot + half * spacing]); }` then
 * `workgroupBarrier()`, for half = size / 2, size / 4, …, until. Every invocation of the
 * workgroup must execute it (barriers are in uniform control flow). The result of reduction r
 * is at the slot of its rank 0.
 * @param r the arrays, size, combine and indexing
 * @returns WGSL statements (the loop variable is `tree_half`)
 */
export function workgroupReduceWgsl(r: WorkgroupReduce): string {
  const arrays = Array.isArray(r.array) ? r.array : [r.array as ReduceArray];
  if (arrays.length === 0) throw new RangeError("workgroupReduceWgsl: no array to reduce");
  const rank = r.rank ?? "lid";
  const slot = r.slot ?? "lid";
  const spacing = r.spacing === undefined || r.spacing === 1 ? "" : ` * ${u32Expr(r.spacing)}`;
  const stop = r.until === undefined || r.until === 1
    ? "tree_half > 0u"
    : `tree_half >= ${u32Expr(r.until)}`;
  const partnerSlot = `${slot} + tree_half${spacing}`;
  let combines = arrays.map((a) =>
    combineInto(r.combine, element(a, slot), element(a, partnerSlot))
  ).join(" ");
  if (r.each) combines = `${r.each} { ${combines} }`;
  let store = "";
  if (r.value !== undefined) {
    if (arrays.length !== 1 || r.each) {
      throw new RangeError("workgroupReduceWgsl: value needs exactly one array and no each");
    }
    store = `${element(arrays[0], slot)} = ${r.value};\n  workgroupBarrier();\n  `;
  }
  // One slot is already reduced: no steps.
  if (r.size === 1) return store.trimEnd();
  return `${store}for (var tree_half = ${firstHalf(r.size)}; ${stop}; tree_half >>= 1u) {
    if (${rank} < tree_half) { ${combines} }
    workgroupBarrier();
  }`;
}
