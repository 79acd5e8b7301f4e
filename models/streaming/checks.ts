/**
 * The argument checks of the streaming forms (`slot_stream.ts` and its subclasses): user slots, event items and
 * histories, each refusal naming the method, the argument and the entry at fault.
 *
 * @module
 */

/**
 * Throws unless `users` is an Int32Array of slots `0 … capacity − 1`.
 * @param op the method, for messages
 * @param arg the argument's name, for messages
 */
export function checkUserSlots(op: string, arg: string, users: Int32Array, capacity: number): void {
  if (!(users instanceof Int32Array)) {
    throw new TypeError(`${op}: ${arg} must be an Int32Array of user slots`);
  }
  // An Int32Array holds integers only: the range is all there is to check.
  for (let i = 0; i < users.length; i++) {
    if (users[i] < 0 || users[i] >= capacity) {
      throw new RangeError(
        `${op}: ${arg}[${i}] = ${users[i]} is not a user slot 0 … ${capacity - 1}; ` +
          "build the stream with a larger capacity",
      );
    }
  }
}

/** Throws unless every `items[i]` is an item id `1 … numItems − 1` (PAD is no event). */
export function checkEventItems(op: string, items: Int32Array, numItems: number): void {
  for (let i = 0; i < items.length; i++) {
    if (!Number.isInteger(items[i]) || items[i] < 1 || items[i] >= numItems) {
      throw new RangeError(
        `${op}: items[${i}] = ${items[i]} is not an item id 1 … ${numItems - 1} (PAD 0 is ` +
          "not an event)",
      );
    }
  }
}

/**
 * Throws unless `users` are distinct and every history is a non-empty Int32Array of item ids
 * `1 … numItems − 1`.
 */
export function checkHistories(
  op: string,
  users: Int32Array,
  histories: readonly Int32Array[],
  numItems: number,
): void {
  const first = new Map<number, number>();
  users.forEach((u, i) => {
    if (first.has(u)) {
      throw new RangeError(
        `${op}: users[${i}] = ${u} repeats users[${first.get(u)}]; give each user one history`,
      );
    }
    first.set(u, i);
  });
  histories.forEach((h, i) => {
    if (!(h instanceof Int32Array) || h.length === 0) {
      throw new RangeError(
        `${op}: histories[${i}] must be a non-empty Int32Array of item ids; reset() a user ` +
          "to give it no history",
      );
    }
    const bad = h.findIndex((v) => v < 1 || v >= numItems);
    if (bad >= 0) {
      throw new RangeError(
        `${op}: histories[${i}][${bad}] = ${h[bad]} is not an item id 1 … ${numItems - 1}`,
      );
    }
  });
}
