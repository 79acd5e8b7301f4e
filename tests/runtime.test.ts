import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import {
  exp,
  isCpuAdapterDescription,
  launch,
  readTensors,
  runtime,
  sync,
  Tensor,
} from "../ops/mod.ts";
import { openRuntime } from "../ops/core/runtime.ts";
import { freshSeed, makeRng, randn } from "./util.ts";

Deno.test("no adapter: the error says what is missing and how to get it", async () => {
  const noAdapter = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  const e = await assertRejects(() => openRuntime(noAdapter), Error, "No WebGPU adapter");
  assertStringIncludes(e.message, "mesa-vulkan-drivers");
});

Deno.test("a tensor over the binding limit names the limit and the size asked for", () => {
  const limit = runtime().info.maxBindingBytes;
  const elements = Math.floor(limit / 4) + 1;
  const e = assertThrows(() => Tensor.empty([elements], "f32", "bigOp"), RangeError);
  assertStringIncludes(e.message, `bigOp: a tensor of ${elements * 4} bytes`);
  assertStringIncludes(e.message, `storage binding limit of ${limit} bytes`);
});

Deno.test("a disposed tensor is an error, never a read of reused memory", async () => {
  const t = Tensor.from([1, 2, 3]);
  t.dispose();
  t.dispose(); // idempotent
  assertThrows(() => exp(t), ReferenceError, "use of a disposed tensor [3] f32");
  await assertRejects(() => t.toArray(), ReferenceError, "disposed");
});

Deno.test("WebGPU validation errors are thrown, naming the op", async () => {
  const bad = /* wgsl */ `
@group(0) @binding(0) var<uniform> p: vec4u;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = undefined_symbol; }`;
  const t = Tensor.from([1]);
  launch("brokenKernel", bad, null, [t], [1]);
  await assertRejects(() => sync(), Error, "brokenKernel");
  const twoBindings = /* wgsl */ `
@group(0) @binding(0) var<uniform> p: vec4u;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = a[0] + f32(p.x); }`;
  launch("missingBinding", twoBindings, null, [t], [1]);
  await assertRejects(() => sync(), Error, "missingBinding");
  // The runtime keeps working after an error.
  assertEquals([...await exp(Tensor.from([0])).toArray()], [1]);
});

Deno.test("pooled buffers are reused without corrupting pending work", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const first = Float32Array.from(randn(rng, 1000));
  const second = Float32Array.from(randn(rng, 1000));
  const a = Tensor.from(first);
  const b = exp(a); // encoded, not yet submitted
  a.dispose(); // a's buffer returns to the pool while b's dispatch still reads it
  const c = Tensor.from(second); // reuses that buffer: the upload must not overtake the dispatch
  const [hb, hc] = await readTensors([b, c]);
  for (let i = 0; i < 1000; i++) {
    const want = Math.exp(first[i]);
    if (Math.abs(hb[i] - want) > 1e-5 * want) {
      throw new Error(`seed ${seed}: exp corrupted at ${i}`);
    }
  }
  assertEquals([...hc], [...second]);
});

Deno.test("one readback returns several tensors of every dtype", async () => {
  const f = Tensor.from([1.5, -2.25]);
  const i = Tensor.from(new Int32Array([-7, 3, 9]));
  const u = Tensor.from(new Uint32Array([4294967295, 0]));
  const [hf, hi, hu] = await readTensors([f, i, u]);
  assertEquals([...hf], [1.5, -2.25]);
  assertEquals([...hi], [-7, 3, 9]);
  assertEquals([...hu], [4294967295, 0]);
});

Deno.test("the Jupyter display shows shape, dtype, device and values", async () => {
  const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  t.name = "weights";
  const hook = (t as unknown as Record<symbol, () => Promise<Record<string, string>>>)[
    Symbol.for("Jupyter.display")
  ];
  const bundle = await hook.call(t);
  assertStringIncludes(bundle["text/plain"], "Tensor weights [2, 3] f32 on ");
  assertStringIncludes(bundle["text/plain"], "[4, 5, 6]");
  assertStringIncludes(bundle["text/html"], runtime().info.description.replace(/&/g, "&amp;"));
});

Deno.test("empty tensors upload and read back without touching the GPU queue", async () => {
  const t = Tensor.from(new Float32Array(0), [2, 0]);
  assertEquals(t.size, 0);
  assertEquals([...await t.toArray()], []);
});

Deno.test("isCpuAdapterDescription knows the CPU implementations and no GPU", () => {
  for (
    const cpu of [
      "llvmpipe (LLVM 15.0.6, 256 bits)",
      "Lavapipe",
      "SwiftShader Device (Subzero)",
      "Microsoft Basic Render Driver (software)",
      "cpu",
      "Generic CPU device",
    ]
  ) {
    assertEquals(isCpuAdapterDescription(cpu), true, cpu);
  }
  for (
    const gpu of ["NVIDIA H200", "NVIDIA GeForce RTX 4090", "Apple M2", "AMD Radeon", "cpuid", ""]
  ) {
    assertEquals(isCpuAdapterDescription(gpu), false, gpu);
  }
});
