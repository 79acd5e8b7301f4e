/**
 * Elementwise ops: one parameterized unary kernel (GELU, SiLU, softplus, sigmoid, exp, scale, …)
 * and one binary kernel (add, sub, mul) where the second operand may repeat over leading
 * dimensions (its shape a suffix of the first's, as a bias is). Also re-exports the unrecorded
 * kernels of `core/unrecorded.ts` (fills, copies, sums) that elementwise users reach for.
 *
 * @module
 */
import { gradEnabled, record } from "../core/autograd.ts";
import { assertDType, grid, launch, packParams } from "../core/launch.ts";
import { sumLeading } from "./reduce.ts";
import { numel, Tensor } from "../core/tensor.ts";
import { type BinaryOp, binaryRaw, ELEMENTWISE_WORKGROUP } from "../core/unrecorded.ts";
import { GRID_WGSL } from "../wgsl/grid.ts";
import { GELU_WGSL, MATH_WGSL } from "../wgsl/math.ts";
import { shaderGenerator } from "../wgsl/cache.ts";

export {
  accumulateInto,
  addTensors,
  clone,
  fill,
  fillInto,
  writeAt,
  zeros,
} from "../core/unrecorded.ts";

const WG = ELEMENTWISE_WORKGROUP;

/** WGSL helpers every unary expression may call: GELU, the normal CDF and the shared math. */
const MATH = GELU_WGSL + MATH_WGSL;

/**
 * A unary function: its forward expression in `x` and its derivative in `x`, or in `x` and the
 * output `y` where `readsOutput` says so (only then does the backward bind, and so need, `y`).
 */
interface UnaryDef {
  forward: string;
  derivative: string;
  readsOutput?: true;
}

const UNARY = {
  gelu: {
    forward: "gelu_(x)",
    derivative: "normal_cdf(x) + x * 0.3989422804014327 * exp(-0.5 * x * x)",
  },
  silu: { forward: "silu_(x)", derivative: "sigmoid_(x) * (1.0 + x * sigmoid_(-x))" },
  softplus: { forward: "softplus_(x)", derivative: "sigmoid_(x)" },
  sigmoid: { forward: "sigmoid_(x)", derivative: "sigmoid_(x) * sigmoid_(-x)" },
  exp: { forward: "exp(x)", derivative: "y", readsOutput: true },
  relu: { forward: "max(x, 0.0)", derivative: "select(0.0, 1.0, x > 0.0)" },
  scale: { forward: "p.a * x", derivative: "p.a" },
  addScalar: { forward: "x + p.a", derivative: "1.0" },
} satisfies Record<UnaryName, UnaryDef>;

/** Names of the built-in unary functions. */
export type UnaryName =
  | "gelu"
  | "silu"
  | "softplus"
  | "sigmoid"
  | "exp"
  | "relu"
  | "scale"
  | "addScalar";

/**
 * Which kernel of a unary function: the forward (`x` → out), or the backward reading the
 * incoming gradient `gs` besides `x`, and the output `ys` only when the derivative does.
 */
type UnaryKernel = "forward" | "backward" | "backward reading y";

/** The shader of a unary expression (generated once; the runtime caches pipelines by source). */
const unaryShader = shaderGenerator(
  "unary",
  unaryShaderSource,
  (expr, kernel) => `${kernel}:${expr}`,
);

function unaryShaderSource(expr: string, kernel: UnaryKernel): string {
  const inputs = kernel === "forward" ? ["xs"] : kernel === "backward" ? ["xs", "gs"] : [
    "xs",
    "ys",
    "gs",
  ];
  const bindings = inputs.map((name, k) =>
    `@group(0) @binding(${k + 1}) var<storage, read> ${name}: array<f32>;`
  );
  const body = kernel === "forward"
    ? `out[i] = ${expr};`
    : `${kernel === "backward reading y" ? "let y = ys[i];\n  " : ""}out[i] = gs[i] * (${expr});`;
  return /* wgsl */ `
struct P { n: u32, stride: u32, a: f32 }
@group(0) @binding(0) var<uniform> p: P;
${bindings.join("\n")}
@group(0) @binding(${inputs.length + 1}) var<storage, read_write> out: array<f32>;
${MATH}
${GRID_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  let x = xs[i];
  ${body}
}`;
}

/**
 * Applies a built-in unary function elementwise, recording its backward. The backward reads `x`,
 * and the output only for `exp` (whose derivative is the output): the output of any other
 * function may be freed once read.
 */
export function unary(name: UnaryName, x: Tensor, a = 0): Tensor {
  assertDType(name, x, "f32");
  const def: UnaryDef = UNARY[name];
  const y = Tensor.empty(x.shape, "f32", name);
  const g = grid(x.size, WG);
  launch(
    name,
    unaryShader(def.forward, "forward"),
    packParams([x.size, g.stride], [a]),
    [x, y],
    g.groups,
  );
  return record(y, name, [x], (dy) => {
    const dx = Tensor.empty(x.shape, "f32", `${name} backward`);
    launch(
      `${name} backward`,
      unaryShader(def.derivative, def.readsOutput ? "backward reading y" : "backward"),
      packParams([x.size, g.stride], [a]),
      def.readsOutput ? [x, y, dy, dx] : [x, dy, dx],
      g.groups,
    );
    return [dx];
  });
}

/** Exact (erf) GELU, as PyTorch's `nn.GELU()`. */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
/** SiLU (swish): `x · sigmoid(x)`. */
export const silu = (x: Tensor): Tensor => unary("silu", x);
/** Softplus with PyTorch's threshold: `x` above 20, `log(1 + eˣ)` below. */
export const softplus = (x: Tensor): Tensor => unary("softplus", x);
/** Logistic sigmoid. */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** Elementwise exponential. */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Rectified linear unit. */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** Multiplies by a constant. */
export const scale = (x: Tensor, factor: number): Tensor => unary("scale", x, factor);
/** Adds a constant. */
export const addScalar = (x: Tensor, c: number): Tensor => unary("addScalar", x, c);

function checkBroadcast(op: string, a: Tensor, b: Tensor): void {
  assertDType(op, a, "f32");
  assertDType(op, b, "f32");
  const k = b.shape.length;
  const suffix = a.shape.slice(a.shape.length - k);
  if (k > a.shape.length || suffix.some((d, i) => d !== b.shape[i]) || b.size === 0) {
    throw new RangeError(
      `${op}: shapes do not match: [${a.shape.join(", ")}] and [${b.shape.join(", ")}] ` +
        `(the second shape must equal the first or a suffix of it)`,
    );
  }
}

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  checkBroadcast(op, a, b);
  const out = binaryRaw(op, a, b);
  if (!gradEnabled()) return out;
  const reduceB = (g: Tensor) => (b.size === a.size ? g : sumLeading(g, b.shape));
  return record(out, op, [a, b], (g) => {
    if (op === "add") return [g, b.requiresGrad ? reduceB(g) : null];
    if (op === "sub") {
      return [g, b.requiresGrad ? negateOwned(reduceB(g), g) : null];
    }
    const ga = a.requiresGrad ? binaryRaw("mul", g, b, "mul backward") : null;
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      const ab = binaryRaw("mul", g, a, "mul backward");
      gb = b.size === a.size ? ab : sumLeading(ab, b.shape);
      if (gb !== ab) ab.dispose();
    }
    return [ga, gb];
  });
}

function negateOwned(t: Tensor, passthrough: Tensor): Tensor {
  const n = unaryRaw("scale", t, -1);
  if (t !== passthrough) t.dispose();
  return n;
}

function unaryRaw(name: UnaryName, x: Tensor, a: number): Tensor {
  const y = Tensor.empty(x.shape, "f32", name);
  const g = grid(x.size, WG);
  launch(
    name,
    unaryShader(UNARY[name].forward, "forward"),
    packParams([x.size, g.stride], [a]),
    [x, y],
    g.groups,
  );
  return y;
}

/** `a + b`; `b` may be a suffix-shaped operand repeated over `a`'s leading dimensions. */
export const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);
/** `a − b`, broadcasting `b` as {@link add} does. */
export const sub = (a: Tensor, b: Tensor): Tensor => binary("sub", a, b);
/** `a ⊙ b`, broadcasting `b` as {@link add} does. */
export const mul = (a: Tensor, b: Tensor): Tensor => binary("mul", a, b);

/** The same values with another shape of equal size; shares storage (no copy). Recorded. */
export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  if (numel(shape) !== t.size) {
    throw new RangeError(`reshape: cannot view ${t.describe()} as [${shape.join(", ")}]`);
  }
  const view = new Tensor(t.storage, shape, t.dtype);
  return record(view, "reshape", [t], (g) => [new Tensor(g.storage, t.shape, "f32")]);
}
