/**
 * Host cost of encoding: a synthetic training step built from the existing ops (two Linear
 * layers with GELU, a residual, SiLU, a squared-mean loss and the full backward), timed on the
 * host only. Reports the dispatches one step encodes and the host time for 500 dispatches.
 *
 * @module
 */
import {
  add,
  backward,
  gelu,
  meanAll,
  mul,
  requireGrad,
  runtime,
  silu,
  type Tensor,
  tidy,
  zeroGrad,
} from "../ops/mod.ts";
import { matmul } from "../ops/dense/matmul/mod.ts";
import { benchmark, randomTensor } from "./harness.ts";

interface StepState {
  x: Tensor;
  params: Tensor[];
}

/** One forward and backward pass of the synthetic block; gradients are freed afterwards. */
function trainingStep({ x, params: [w1, b1, w2, b2] }: StepState): void {
  tidy(() => {
    const h = gelu(matmul(x, w1, { transB: true, bias: b1 }));
    const y = silu(add(matmul(h, w2, { transB: true, bias: b2 }), x));
    backward(meanAll(mul(y, y)));
  });
}

function stepBenchmark(name: string, errorScopes: boolean): void {
  benchmark<StepState>({
    name,
    kind: "host",
    setup: () => {
      const d = 64, hidden = 256;
      return {
        x: randomTensor([8, 50, d], 3),
        params: [
          requireGrad(randomTensor([hidden, d], 4)),
          requireGrad(randomTensor([hidden], 5)),
          requireGrad(randomTensor([d, hidden], 6)),
          requireGrad(randomTensor([d], 7)),
        ],
      };
    },
    run: (s) => {
      const rt = runtime();
      const saved = rt.errorScopes;
      rt.errorScopes = errorScopes;
      try {
        trainingStep(s);
      } finally {
        rt.errorScopes = saved;
      }
      zeroGrad(s.params);
    },
    teardown: (s) => {
      s.x.dispose();
      for (const p of s.params) p.dispose();
    },
    note: "Linear·GELU·Linear·SiLU + backward",
  });
}

stepBenchmark("encode training step", true);
stepBenchmark("encode step, no error scopes", false);

// Where the host time of a dispatch goes: each of these iterations makes 500 calls, so their
// "ms host" is directly comparable with "encoding 500 dispatches".

const PROBE = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < p.n) { dst[gid.x] = src[gid.x]; }
}`;

interface ProbeState {
  src: Tensor;
  dst: Tensor;
  params: GPUBuffer;
}

function probeState(): ProbeState {
  return {
    src: randomTensor([64], 8),
    dst: randomTensor([64], 9),
    params: runtime().device.createBuffer({
      size: 256,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    }),
  };
}

function probeBindGroup(s: ProbeState): GPUBindGroup {
  const rt = runtime();
  return rt.device.createBindGroup({
    layout: rt.kernel("probe", PROBE).layout,
    entries: [
      { binding: 0, resource: { buffer: s.params } },
      { binding: 1, resource: { buffer: s.src.storage.buffer } },
      { binding: 2, resource: { buffer: s.dst.storage.buffer } },
    ],
  });
}

function freeProbe(s: ProbeState): void {
  s.src.dispose();
  s.dst.dispose();
  s.params.destroy();
}

benchmark<ProbeState>({
  name: "500 × createBindGroup",
  kind: "host",
  setup: probeState,
  run: (s) => {
    for (let i = 0; i < 500; i++) probeBindGroup(s);
  },
  teardown: freeProbe,
  note: "WebGPU call alone",
});

benchmark<ProbeState & { group: GPUBindGroup }>({
  name: "500 × dispatch, same group",
  kind: "host",
  setup: () => {
    const s = probeState();
    return { ...s, group: probeBindGroup(s) };
  },
  run: (s) => {
    const rt = runtime();
    const encoder = rt.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const pipeline = rt.kernel("probe", PROBE).pipeline;
    for (let i = 0; i < 500; i++) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, s.group);
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    rt.device.queue.submit([encoder.finish()]);
  },
  teardown: freeProbe,
  note: "setPipeline, setBindGroup, dispatch",
});

benchmark<{ a: Tensor; b: Tensor }>({
  name: "500 × matmul encode",
  kind: "host",
  setup: () => ({ a: randomTensor([50, 64], 10), b: randomTensor([256, 64], 11) }),
  run: ({ a, b }) => {
    for (let i = 0; i < 500; i++) matmul(a, b, { transB: true }).dispose();
  },
  teardown: ({ a, b }) => {
    a.dispose();
    b.dispose();
  },
  note: "op call incl. runtime dispatch",
});
