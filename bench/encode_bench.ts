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
import { matmul } from "../ops/matmul.ts";
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
    note: "Linear·GELU·Linear·residual·SiLU + backward",
  });
}

stepBenchmark("encode training step", true);
stepBenchmark("encode step, no error scopes", false);
