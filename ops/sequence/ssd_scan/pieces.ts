/**
 * The launch plan of the SSD scan, built on the host from the segment ids: every segment (a run of
 * equal ids within a row) is cut into chunks of at most `chunk` tokens, and every kernel works on
 * whole chunks, so no workgroup ever sees two segments and nothing needs masking. Chunks of a
 * segment that is cut carry their state across: those chunks (and, when initial states go in or
 * final states come out, every chunk) get a state slot.
 *
 * Chunk table, 8 i32 per chunk: first token (flat index b·length + t), length, segment, flags (1:
 * first of its segment, 2: last), state slot (−1: none), offset of its C·Bᵀ block, and two unused
 * words. Carry table, 4 i32 per segment with slots: segment, first chunk, chunk count, unused.
 *
 * @module
 */
import { keep, Tensor } from "../../core/tensor.ts";
import { ssdSegmentStarts } from "./reference.ts";

/** The op name in kernel labels and error messages. */
export const OP = "ssdScan";

/** Chunk length used when the options name none. */
export const SSD_DEFAULT_CHUNK = 64;

/** Longest chunk supported (one workgroup invocation per token of a chunk). */
export const SSD_MAX_CHUNK = 256;

/** Words per chunk in the chunk table. */
export const CHUNK_WORDS = 8;
/** Words per segment in the carry table. */
export const CARRY_WORDS = 4;

/** The GPU tables of one slot rule. */
export interface PieceTables {
  /** Chunk table, i32 (chunks · 8). */
  chunks: Tensor;
  /** Carry table, i32 (carried segments · 4); absent when nothing is carried. */
  carry?: Tensor;
  /** Chunk of every slot, i32 (slots). */
  slotChunks?: Tensor;
  /** Slots. */
  slots: number;
  /** Segments with slots. */
  carried: number;
}

/**
 * The chunking of one packing of segments, with its GPU tables built on first use. Build it once
 * per batch with {@link ssdPieces} when several scans share the packing (both directions and every
 * layer of a model); {@link SsdPieces.dispose} frees the tables.
 */
export class SsdPieces {
  /** Batch rows. */
  readonly batch: number;
  /** Tokens per row. */
  readonly length: number;
  /** Longest chunk. */
  readonly chunk: number;
  /** Flat index of every segment's first token. */
  readonly starts: Int32Array;
  /** Chunks: first token, length and segment of each. */
  readonly chunkStart: Int32Array;
  /** Length of each chunk. */
  readonly chunkLength: Int32Array;
  /** Segment of each chunk. */
  readonly chunkSegment: Int32Array;
  /** Σ over chunks of length², the size of the C·Bᵀ blocks per group. */
  readonly blockSize: number;
  #tables = new Map<boolean, PieceTables>();
  #segmentTable?: Tensor;
  #owned: boolean;

  /** Chunks the segments of `starts` (flat first tokens) into runs of at most `chunk` tokens. */
  constructor(batch: number, length: number, starts: Int32Array, chunk: number, owned = true) {
    this.batch = batch;
    this.length = length;
    this.chunk = chunk;
    this.starts = starts;
    this.#owned = owned;
    const cs: number[] = [], cl: number[] = [], cg: number[] = [];
    let block = 0;
    for (let s = 0; s < starts.length; s++) {
      const begin = starts[s];
      const rowEnd = (Math.floor(begin / length) + 1) * length;
      const end = s + 1 < starts.length ? Math.min(starts[s + 1], rowEnd) : rowEnd;
      for (let t = begin; t < end; t += chunk) {
        const len = Math.min(chunk, end - t);
        cs.push(t);
        cl.push(len);
        cg.push(s);
        block += len * len;
      }
    }
    this.chunkStart = Int32Array.from(cs);
    this.chunkLength = Int32Array.from(cl);
    this.chunkSegment = Int32Array.from(cg);
    this.blockSize = block;
  }

  /** Segments. */
  get segments(): number {
    return this.starts.length;
  }

  /** Chunks. */
  get chunks(): number {
    return this.chunkStart.length;
  }

  /**
   * The GPU tables where cut segments carry their state (`everySegment` false), or where every
   * segment does (initial states in or final states out).
   */
  tables(everySegment: boolean): PieceTables {
    let t = this.#tables.get(everySegment);
    if (!t) {
      t = this.#build(everySegment);
      this.#tables.set(everySegment, t);
    }
    return t;
  }

  /**
   * The segments longest first, i32 (segments · 4): first token, length, first chunk and the
   * segment's number. Kernels that give a segment its own workgroups start the longest ones
   * first, so that the last to finish are short.
   */
  segmentTable(): Tensor {
    if (!this.#segmentTable) {
      const n = this.segments;
      const first = new Int32Array(n).fill(-1);
      const length = new Int32Array(n);
      for (let k = 0; k < this.chunks; k++) {
        const seg = this.chunkSegment[k];
        if (first[seg] < 0) first[seg] = k;
        length[seg] += this.chunkLength[k];
      }
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
        length[b] - length[a] || a - b
      );
      const words = new Int32Array(4 * n);
      order.forEach((seg, i) => {
        words.set([this.chunkStart[first[seg]], length[seg], first[seg], seg], 4 * i);
      });
      const table = Tensor.from(words, [words.length], "i32");
      this.#segmentTable = this.#owned ? keep(table) : table;
    }
    return this.#segmentTable;
  }

  /** Every GPU table built so far. */
  tensors(): Tensor[] {
    const tables = [...this.#tables.values()].flatMap((t) =>
      [t.chunks, t.carry, t.slotChunks].filter((x): x is Tensor => x !== undefined)
    );
    return this.#segmentTable ? [...tables, this.#segmentTable] : tables;
  }

  /** Frees the GPU tables. */
  dispose(): void {
    for (const t of this.tensors()) t.dispose();
    this.#tables.clear();
    this.#segmentTable = undefined;
  }

  #build(everySegment: boolean): PieceTables {
    const n = this.chunks;
    const table = new Int32Array(n * CHUNK_WORDS);
    const carry: number[] = [];
    const slotChunks: number[] = [];
    let block = 0;
    for (let k = 0; k < n;) {
      const seg = this.chunkSegment[k];
      let m = k;
      while (m < n && this.chunkSegment[m] === seg) m++;
      const carried = everySegment || m - k > 1;
      if (carried) carry.push(seg, k, m - k, 0);
      for (let j = k; j < m; j++) {
        const w = j * CHUNK_WORDS;
        table[w] = this.chunkStart[j];
        table[w + 1] = this.chunkLength[j];
        table[w + 2] = seg;
        table[w + 3] = (j === k ? 1 : 0) | (j === m - 1 ? 2 : 0);
        table[w + 4] = carried ? slotChunks.length : -1;
        table[w + 5] = block;
        if (carried) slotChunks.push(j);
        block += this.chunkLength[j] ** 2;
      }
      k = m;
    }
    const own = <T extends Tensor>(t: T) => (this.#owned ? keep(t) : t);
    return {
      chunks: own(Tensor.from(table, [table.length], "i32")),
      carry: carry.length
        ? own(Tensor.from(Int32Array.from(carry), [carry.length], "i32"))
        : undefined,
      slotChunks: slotChunks.length
        ? own(Tensor.from(Int32Array.from(slotChunks), [slotChunks.length], "i32"))
        : undefined,
      slots: slotChunks.length,
      carried: carry.length / CARRY_WORDS,
    };
  }
}

/**
 * The chunking of a packing for `ssdScan`: segment ids `seqIdx` ((batch·length) values,
 * non-decreasing within each row; absent: one segment per row) cut into chunks of at most `chunk`
 * tokens (default 64). Pass it as `seqIdx` to every scan of the batch; dispose it after the
 * backward.
 */
export function ssdPieces(
  batch: number,
  length: number,
  seqIdx?: ArrayLike<number>,
  chunk: number = SSD_DEFAULT_CHUNK,
): SsdPieces {
  checkChunk(chunk);
  return new SsdPieces(batch, length, ssdSegmentStarts(batch, length, seqIdx), chunk);
}

/** Throws unless `chunk` is an integer in [1, SSD_MAX_CHUNK]. */
export function checkChunk(chunk: number): void {
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > SSD_MAX_CHUNK) {
    throw new RangeError(
      `${OP}: chunkSize must be an integer in [1, ${SSD_MAX_CHUNK}], got ${chunk}`,
    );
  }
}
