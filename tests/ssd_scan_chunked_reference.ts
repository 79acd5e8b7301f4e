/**
 * An independent float64 SSD scan in the chunked dual (attention) form with the fused kernel's
 * seqIdx masks, to check the sequential reference against.
 */
import type { SsdScanInputs, SsdScanProblem } from "../ops/sequence/ssd_scan/reference.ts";
import { unaryRef } from "./reference.ts";

/**
 * The chunked dual form (ssd_minimal's steps with the fused kernel's seqIdx masks), written
 * independently of the reference: per chunk of Q tokens, the intra-chunk output is the masked
 * attention Σ_s (C_l·B_s)·exp(cs_l − cs_s)·Δ_s·x_s over earlier tokens of the same segment; the
 * state entering a chunk is carried only while the segment id at the chunk ends is unchanged, and
 * reaches a token only if its id equals the one ending the previous chunk. A segment's initial
 * state enters through the segment's first token, decayed by exp(Σ a) from there.
 */
export function chunkedScan(
  p: SsdScanProblem,
  inp: SsdScanInputs,
  Q: number,
): { y: Float64Array; finalStates: Float64Array } {
  const { batch, length: T, heads: H, headDim: P, groups: G, states: N } = p;
  const PN = P * N;
  const seq = (b: number, t: number) => (inp.seqIdx ? inp.seqIdx[b * T + t] : 0);
  // Segment number and the row position where its segment starts, per token.
  const segOf = new Int32Array(batch * T);
  const segStart = new Int32Array(batch * T);
  let segments = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      const fresh = t === 0 || seq(b, t) !== seq(b, t - 1);
      if (fresh) segments++;
      segOf[b * T + t] = segments - 1;
      segStart[b * T + t] = fresh ? t : segStart[b * T + t - 1];
    }
  }
  const y = new Float64Array(batch * T * H * P);
  const finalStates = new Float64Array(segments * H * PN);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h * G / H);
      const tok = (t: number) => b * T + t;
      const xAt = (t: number, q: number) => inp.x[(tok(t) * H + h) * P + q];
      const bAt = (t: number, n: number) => inp.B[(tok(t) * G + g) * N + n];
      const cAt = (t: number, n: number) => inp.C[(tok(t) * G + g) * N + n];
      const delta = new Float64Array(T);
      const a = new Float64Array(T);
      for (let t = 0; t < T; t++) {
        const raw = inp.dt[tok(t) * H + h] + (inp.dtBias ? inp.dtBias[h] : 0);
        delta[t] = p.dtSoftplus ? unaryRef.softplus.f(raw, 0) : raw;
        a[t] = delta[t] * inp.A[h];
      }
      const initial = (t: number) => {
        const k = segOf[tok(t)];
        return inp.initialStates?.subarray((k * H + h) * PN, (k * H + h + 1) * PN);
      };
      let carried = new Float64Array(PN); // the state entering the current chunk
      for (let c0 = 0; c0 < T; c0 += Q) {
        const c1 = Math.min(T, c0 + Q);
        const cs = new Float64Array(T); // cumulative log-decay within the chunk
        for (let t = c0; t < c1; t++) cs[t] = (t > c0 ? cs[t - 1] : 0) + a[t];
        const takesCarry = (t: number) => c0 > 0 && seq(b, t) === seq(b, c0 - 1);
        const startsHere = (t: number) => segStart[tok(t)] >= c0;
        // Outputs: intra-chunk attention, the initial state, the carried state, D·x.
        for (let l = c0; l < c1; l++) {
          const s0 = segStart[tok(l)];
          const init = initial(l);
          for (let q = 0; q < P; q++) {
            let acc = 0;
            for (let s = c0; s <= l; s++) {
              if (seq(b, s) !== seq(b, l)) continue;
              let cb = 0;
              for (let n = 0; n < N; n++) cb += cAt(l, n) * bAt(s, n);
              acc += cb * Math.exp(cs[l] - cs[s]) * delta[s] * xAt(s, q);
            }
            if (init && startsHere(l)) {
              let sc = 0;
              for (let n = 0; n < N; n++) sc += init[q * N + n] * cAt(l, n);
              acc += Math.exp(cs[l] - cs[s0] + a[s0]) * sc;
            }
            if (takesCarry(l)) {
              let sc = 0;
              for (let n = 0; n < N; n++) sc += carried[q * N + n] * cAt(l, n);
              acc += Math.exp(cs[l]) * sc;
            }
            y[(tok(l) * H + h) * P + q] = acc + (inp.D ? inp.D[h] * xAt(l, q) : 0);
          }
        }
        // The state after token e, from this chunk's tokens of e's segment and what enters it.
        const stateAt = (e: number) => {
          const st = new Float64Array(PN);
          for (let l = c0; l <= e; l++) {
            if (seq(b, l) !== seq(b, e)) continue;
            const w = Math.exp(cs[e] - cs[l]) * delta[l];
            for (let q = 0; q < P; q++) {
              for (let n = 0; n < N; n++) st[q * N + n] += w * xAt(l, q) * bAt(l, n);
            }
          }
          const init = initial(e);
          if (init && startsHere(e)) {
            const s0 = segStart[tok(e)];
            const w = Math.exp(cs[e] - cs[s0] + a[s0]);
            for (let j = 0; j < PN; j++) st[j] += w * init[j];
          }
          if (takesCarry(e)) {
            const w = Math.exp(cs[e]);
            for (let j = 0; j < PN; j++) st[j] += w * carried[j];
          }
          return st;
        };
        for (let e = c0; e < c1; e++) {
          if (e + 1 === T || seq(b, e + 1) !== seq(b, e)) {
            finalStates.set(stateAt(e), (segOf[tok(e)] * H + h) * PN);
          }
        }
        carried = stateAt(c1 - 1);
      }
    }
  }
  return { y, finalStates };
}
