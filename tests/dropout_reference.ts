/**
 * Host twin of the dropout mask: the same keyed PCG hash in 32-bit integer arithmetic, so the
 * tests can predict every kept position bit for bit.
 */

function pcgPermute(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The hash of element `i` under (seed, counter). */
export function dropoutHashRef(seed: number, counter: number, i: number): number {
  const [slo, shi] = [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  const [clo, chi] = [counter % 2 ** 32, Math.floor(counter / 2 ** 32)];
  const k0 = pcgPermute(slo ^ pcgPermute(shi));
  const k1 = pcgPermute(clo ^ pcgPermute(chi ^ k0));
  const k2 = pcgPermute(k0 ^ k1);
  return pcgPermute(pcgPermute(pcgPermute(i ^ k0) ^ k1) ^ k2);
}

/** The keep mask (1 kept, 0 dropped) of `n` elements. */
export function dropoutMaskRef(seed: number, counter: number, p: number, n: number): Uint8Array {
  const threshold = Math.ceil(p * 2 ** 24);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = dropoutHashRef(seed, counter, i) >>> 8 >= threshold ? 1 : 0;
  return mask;
}
