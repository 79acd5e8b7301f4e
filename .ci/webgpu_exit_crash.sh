#!/usr/bin/env bash
# Reproduces the heap corruption that sometimes kills `deno test` as its process exits, after
# every test has passed: three test modules (three isolates), each opening a WebGPU device,
# running one compute pass and reading it back, with no code of this project. On Mesa's
# lavapipe it aborted (glibc "double free or corruption", exit 134) in 8 of 400 runs; the same
# corruption can also end in a segmentation fault (exit 139), which the project's suite met once.
#
#     .ci/webgpu_exit_crash.sh [runs]   # default 100; prints how many runs died at exit, and how
set -euo pipefail
runs="${1:-100}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
for name in a b c; do
  cat > "$dir/${name}_test.ts" <<'TS'
Deno.test("one compute pass and its readback", async () => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter!.requestDevice();
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < 1000u) { x[g.x] = x[g.x] * 2.0; }
}`,
  });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const data = device.createBuffer({ size: 4000, usage });
  device.queue.writeBuffer(data, 0, new Float32Array(1000).fill(1));
  const read = device.createBuffer({
    size: 4000,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: data } }],
    }),
  );
  pass.dispatchWorkgroups(16);
  pass.end();
  encoder.copyBufferToBuffer(data, 0, read, 0, 4000);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const values = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  if (values[999] !== 2) throw new Error(`expected 2, got ${values[999]}`);
});
TS
done
aborted=0
faulted=0
for _ in $(seq 1 "$runs"); do
  status=0
  (cd "$dir" && npx --yes deno@2.9.6 test -A --no-check --no-config ./*_test.ts) \
    >"$dir/log" 2>&1 || status=$?
  if [ "$status" -eq 134 ]; then aborted=$((aborted + 1)); elif [ "$status" -eq 139 ]; then
    faulted=$((faulted + 1))
  elif [ "$status" -ne 0 ]; then
    cat "$dir/log"
    exit "$status"
  fi
done
echo "$aborted of $runs runs aborted at exit (134), $faulted faulted (139)"
