/**
 * WebGPU errors turned into exceptions that name the op: the error scopes the runtime opens
 * around compiling, allocating, dispatching and submitting are collected without waiting, and
 * the first error among them is thrown at the next check (readback or sync).
 *
 * @module
 */

/** A WebGPU validation or out-of-memory error, turned into an exception naming the op. */
export class GpuError extends Error {
  /**
   * An error with the op's name in its message.
   * @param message what failed and where
   */
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

/** The error scopes popped since the last check, each with where it was opened. */
export class GpuErrorLog {
  #pending: Promise<string | null>[] = [];

  /** Keeps a popped error scope; `where` says what the scope covered. */
  watch(scope: Promise<GPUError | null>, where: string): void {
    this.#pending.push(
      scope.then((e) => (e ? `${where}: ${e.constructor.name}: ${e.message}` : null)),
    );
  }

  /** Throws a {@link GpuError} for the first error captured since the last check. */
  async check(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    const messages = (await Promise.all(pending)).filter((m): m is string => m !== null);
    if (messages.length > 0) {
      const more = messages.length > 1 ? ` (and ${messages.length - 1} more errors)` : "";
      throw new GpuError(messages[0] + more);
    }
  }
}

/** A command buffer's dispatches for error messages: each op once, with its count. */
export function describeOps(ops: string[]): string {
  const counts = new Map<string, number>();
  for (const o of ops) counts.set(o, (counts.get(o) ?? 0) + 1);
  const list = [...counts].map(([o, c]) => (c > 1 ? `${o}×${c}` : o)).join(", ");
  return `a command buffer of ${ops.length} dispatches (${list})`;
}
