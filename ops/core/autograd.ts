/**
 * Reverse-mode automatic differentiation on a tape of {@link TapeNode}s.
 *
 * Ops call {@link record} after computing their output; {@link backward} walks the tape from a
 * scalar in reverse topological order, accumulating gradients into leaf tensors' `grad`.
 *
 * @module
 */
import { keep, tagPurpose, type Tensor } from "./tensor.ts";
import { accumulateInto, addTensors, clone, fill } from "./unrecorded.ts";

let gradDepth = 0;

/** Whether ops record onto the tape now (false inside {@link noGrad}). */
export function gradEnabled(): boolean {
  return gradDepth === 0;
}

/**
 * Whether an op over `inputs` would be recorded on the tape now: gradients are enabled and one of
 * the inputs requires them. Ops ask it to decide what to save for a backward, or to refuse a form
 * that has none.
 */
export function recordsGradient(inputs: readonly Tensor[]): boolean {
  return gradDepth === 0 && inputs.some((t) => t.requiresGrad);
}

/** Runs `fn` without recording: for evaluation and optimizer updates. */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

/**
 * Records `out = op(inputs)` on the tape when gradients are enabled and any input requires them.
 * `saved` lists tensors the op made only for the backward (freed right after it runs).
 */
export function record(
  out: Tensor,
  op: string,
  inputs: readonly Tensor[],
  backward: (grad: Tensor) => readonly (Tensor | null)[],
  saved: Tensor[] = [],
): Tensor {
  if (!recordsGradient(inputs)) {
    for (const s of saved) s.dispose();
    return out;
  }
  out.requiresGrad = true;
  out.node = { op, inputs, backward, saved };
  return out;
}

/**
 * Marks a tensor as a trainable leaf (its storage counted under `parameters` in
 * `memoryStats().byPurpose`). Returns it for chaining.
 */
export function requireGrad<T extends Tensor>(t: T): T {
  if (t.dtype !== "f32") throw new TypeError(`requireGrad: ${t.describe()} is not f32`);
  t.requiresGrad = true;
  tagPurpose([t], "parameters");
  return t;
}

/**
 * Backpropagates from a one-element tensor, adding into each leaf's `.grad` (which persists
 * across `tidy` scopes until {@link zeroGrad}). Intermediate gradients and the tensors ops saved
 * for their backward are freed as soon as they have been used; the tape is cleared. A tensor read
 * by several ops has their gradients summed in place where the running sum's buffer is its own
 * (bit for bit the out-of-place sum).
 */
export function backward(loss: Tensor): void {
  if (loss.size !== 1) {
    throw new RangeError(`backward: expected a one-element loss, got ${loss.describe()}`);
  }
  if (!loss.requiresGrad) {
    throw new Error(
      `backward: ${loss.describe()} does not depend on any tensor that requires a gradient`,
    );
  }
  const order = topologicalOrder(loss);
  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, fill(loss.shape, 1));
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    grads.delete(t);
    const node = t.node!;
    if (!g) {
      releaseNode(t);
      continue;
    }
    const results = node.backward(g);
    // A gradient returned for several inputs is copied for all but the last, which takes it
    // over (a consumer may free or sum it at once). The output's own gradient is read by nothing
    // once the node's backward has been encoded: passed through (a sum's operands), it is taken
    // over likewise rather than copied.
    const lastTaker = new Map<Tensor, number>();
    results.forEach((r, k) => {
      if (r && node.inputs[k].requiresGrad) lastTaker.set(r, k);
    });
    let gTaken = false;
    node.inputs.forEach((input, k) => {
      const r = results[k];
      if (!r) return;
      if (!input.requiresGrad) {
        if (r !== g && !lastTaker.has(r)) r.dispose();
        return;
      }
      const owned = lastTaker.get(r) === k ? r : clone(r);
      if (owned === g) gTaken = true;
      if (!input.node) {
        if (input.grad) {
          accumulateInto(input.grad, owned);
          owned.dispose();
        } else {
          input.grad = keep(owned);
          tagPurpose([owned], "gradients");
        }
      } else {
        const prev = grads.get(input);
        if (prev && prev.storage.refs === 1) {
          // The running sum's buffer is this tensor's alone: add into it, with the result an
          // out-of-place sum would give, and one buffer fewer alive at once.
          accumulateInto(prev, owned);
          owned.dispose();
        } else if (prev) {
          grads.set(input, addTensors(prev, owned));
          prev.dispose();
          owned.dispose();
        } else {
          grads.set(input, owned);
        }
      }
    });
    if (!gTaken) g.dispose();
    releaseNode(t);
  }
}

function releaseNode(t: Tensor): void {
  const node = t.node;
  if (!node) return;
  for (const s of node.saved) s.dispose();
  t.node = null;
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const inputs = t.node?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const child = inputs[next];
      if (child.node && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      if (t.node) order.push(t);
    }
  }
  return order;
}

/** Frees the gradients of the given parameters. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}
