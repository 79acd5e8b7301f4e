import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  foldWorkgroups,
  grid,
  GRID_WGSL,
  launch,
  MATH_WGSL,
  MAX_WORKGROUPS_PER_DIMENSION,
  packParams,
  readTensors,
  runtime,
  Tensor,
  workgroupReduceWgsl,
} from "../ops/mod.ts";
import { stagedProductLayout } from "../ops/wgsl/mod.ts";
import { freshSeed, makeRng } from "./util.ts";

// ---------------------------------------------------------------------------------------------
// MATH_WGSL: sigmoid_, silu_, softplus_ against float64.

const MATH_KERNEL = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${MATH_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) { return; }
  let x = xs[i];
  out[3u * i] = sigmoid_(x);
  out[3u * i + 1u] = silu_(x);
  out[3u * i + 2u] = softplus_(x);
}`;

const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));
const softplus64 = (
  x: number,
) => (x > 20 ? x : Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));

Deno.test("MATH_WGSL: sigmoid, SiLU and softplus match float64 from tiny to beyond the threshold", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const fixed = [
    0,
    -0,
    1e-30,
    -1e-30,
    1e-7,
    -1e-7,
    1e-3,
    -1e-3,
    1,
    -1,
    19.999,
    20,
    20.001,
    21,
    -20,
    -21,
    30,
    -30,
    60,
    -60,
    80,
    -80,
    -87.35,
    1e4,
    -1e4,
  ];
  const random = Array.from({ length: 4000 }, (_, i) => {
    // Half spread over ±40 (both sides of the threshold), half log-uniform magnitudes 1e-30..1e2.
    if (i % 2 === 0) return (rng() * 2 - 1) * 40;
    return (rng() < 0.5 ? -1 : 1) * 10 ** (rng() * 32 - 30);
  });
  const xs = Float32Array.from([...fixed, ...random]);
  const n = xs.length;
  const x = Tensor.from(xs);
  const out = Tensor.empty([3 * n]);
  launch("wgsl math test", MATH_KERNEL, packParams([n]), [x, out], [Math.ceil(n / 64)]);
  const got = await out.toArray();
  // WGSL's exp is exact to 3 + 2|x| ulp, so the bound grows with |x| (about 1e-5 at |x| = 80).
  const tolerance = (v: number) => (4 + 2 * Math.abs(v)) * 2 ** -23;
  let worst = { what: "", err: 0, tol: 1 };
  for (let i = 0; i < n; i++) {
    const v = xs[i];
    const refs = [sigmoid64(v), v * sigmoid64(v), softplus64(v)];
    for (let k = 0; k < 3; k++) {
      const want = refs[k];
      const g = got[3 * i + k];
      // Below the normal f32 range only "tiny and of the right sign" can be asked: where the
      // result is, or where e^x on the way to it is (x < −87.3; SiLU is x·e^x there, up to
      // 87 times larger than e^x itself, and flushed to zero with it).
      if (Math.abs(want) < 1e-36 || (v < 0 && Math.exp(v) < 2 ** -126)) {
        assert(
          Math.abs(g) <= Math.max(1e-36, Math.abs(want)) && g * want >= 0,
          `seed ${seed}: ${["sigmoid", "silu", "softplus"][k]}(${v}) = ${g}, want ${want}`,
        );
        continue;
      }
      const err = Math.abs(g - want) / Math.abs(want);
      if (err / tolerance(v) > worst.err / worst.tol) {
        worst = {
          what: `${["sigmoid", "silu", "softplus"][k]}(${v}) = ${g}, want ${want}`,
          err,
          tol: tolerance(v),
        };
      }
    }
    if (v > 20) {
      assertEquals(got[3 * i + 2], v, `seed ${seed}: softplus(${v}) must return x above 20`);
    }
  }
  assert(
    worst.err <= worst.tol,
    `seed ${seed}: ${worst.what}: relative error ${worst.err} exceeds ${worst.tol}`,
  );
});

// ---------------------------------------------------------------------------------------------
// workgroupReduceWgsl: sum, max and a merge function at awkward sizes.

/** One workgroup per row: each invocation folds a strided part of its row, then the tree. */
function rowReduceKernel(size: number, combine: "sum" | "max"): string {
  const init = combine === "sum" ? "0.0" : "-3.4028235e38";
  const fold = combine === "sum" ? "acc += x[base + c];" : "acc = max(acc, x[base + c]);";
  return /* wgsl */ `
struct P { cols: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, ${size}>;
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = wid.x * p.cols;
  var acc = ${init};
  for (var c = lid; c < p.cols; c += ${size}u) { ${fold} }
  ${workgroupReduceWgsl({ array: "red", size, combine, value: "acc" })}
  if (lid == 0u) { out[wid.x] = red[0]; }
}`;
}

/** The same reduction in f32 on the host, in the generator's documented order. */
function emulateTree(row: Float32Array, size: number, combine: "sum" | "max"): number {
  const f = Math.fround;
  const op = combine === "sum" ? (a: number, b: number) => f(a + b) : Math.max;
  const slots = new Array<number>(size).fill(combine === "sum" ? 0 : -3.4028234663852886e38);
  for (let lid = 0; lid < size; lid++) {
    for (let c = lid; c < row.length; c += size) slots[lid] = op(slots[lid], row[c]);
  }
  for (let half = size / 2; half >= 1; half /= 2) {
    for (let lid = 0; lid < half; lid++) slots[lid] = op(slots[lid], slots[lid + half]);
  }
  return slots[0];
}

/** The largest power-of-two 1-D workgroup this device runs. */
function largestWorkgroup(): number {
  const rt = runtime();
  const most = Math.min(rt.info.maxInvocations, rt.device.limits.maxComputeWorkgroupSizeX);
  return 2 ** Math.floor(Math.log2(most));
}

for (const combine of ["sum", "max"] as const) {
  Deno.test(`workgroupReduceWgsl ${combine}: every workgroup size and awkward row lengths`, async () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const rows = 3;
    const cases: { size: number; cols: number; xs: Float32Array; out: Tensor }[] = [];
    for (const size of [1, 2, 64, 256, largestWorkgroup()]) {
      for (const cols of [1, 7, 255, 1000, 2 * size + 3]) {
        const xs = Float32Array.from({ length: rows * cols }, () => (rng() * 2 - 1) * 100);
        const out = Tensor.empty([rows]);
        launch(
          `wgsl reduce test ${combine} ${size}`,
          rowReduceKernel(size, combine),
          packParams([cols]),
          [Tensor.from(xs, [rows, cols]), out],
          [rows],
        );
        cases.push({ size, cols, xs, out });
      }
    }
    const results = await readTensors(cases.map((c) => c.out));
    cases.forEach(({ size, cols, xs }, k) => {
      const got = results[k];
      for (let r = 0; r < rows; r++) {
        const row = xs.subarray(r * cols, (r + 1) * cols);
        const what = `seed ${seed}: ${combine} of ${cols} values, workgroup ${size}, row ${r}`;
        if (combine === "max") {
          assertEquals(got[r], Math.max(...row), what);
        } else {
          let exact = 0, magnitude = 0;
          for (const v of row) {
            exact += v;
            magnitude += Math.abs(v);
          }
          const bound = cols * 2 ** -23 * magnitude;
          assert(Math.abs(got[r] - exact) <= bound, `${what}: ${got[r]} vs ${exact}`);
        }
        // The order is the documented tree, so the f32 result is reproducible on the host.
        assertEquals(got[r], emulateTree(row, size, combine), `${what}: not the tree's order`);
      }
    });
  });
}

Deno.test("workgroupReduceWgsl: teams, several arrays, an early stop and a merge function", async () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const WG = 64, T = 8;
  // Teams of T lanes each reduce their own slots; then the whole workgroup folds the 8 team
  // results of arrays a and b (down to T slots, with until) and lane 0 merges (max, count).
  const kernel = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> a: array<f32, ${WG}>;
var<workgroup> b: array<f32, ${WG}>;
var<workgroup> m: array<vec2f, ${WG}>;
const T = ${T}u;
fn keep_larger(u: vec2f, v: vec2f) -> vec2f { return select(u, v, v.x > u.x); }
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  ${workgroupReduceWgsl({ array: "a", size: "T", rank: "lane", combine: "sum", value: "x[lid]" })}
  out[lid] = a[lid - lane];
  a[lid] = x[lid];
  b[lid] = 2.0 * x[lid];
  workgroupBarrier();
  ${workgroupReduceWgsl({ array: ["a", "b"], size: WG, until: "T", combine: "sum" })}
  if (lid < T) { out[${WG}u + lid] = a[lid]; out[${WG + T}u + lid] = b[lid]; }
  ${
    workgroupReduceWgsl({
      array: "m",
      size: WG,
      combine: { merge: "keep_larger" },
      value: "vec2f(x[lid], f32(lid))",
    })
  }
  if (lid == 0u) { out[${WG + 2 * T}u] = m[0].x; out[${WG + 2 * T + 1}u] = m[0].y; }
}`;
  const xs = Float32Array.from(
    { length: WG },
    () => Math.fround(Math.round((rng() * 2 - 1) * 1000) / 8),
  );
  const x = Tensor.from(xs);
  const out = Tensor.empty([WG + 2 * T + 2]);
  launch("wgsl reduce variants test", kernel, packParams([WG]), [x, out], [1]);
  const got = await out.toArray();
  // Multiples of 1/8 below 2^10 add exactly in f32, so sums compare exactly.
  for (let lid = 0; lid < WG; lid++) {
    const team = lid - (lid % T);
    const want = xs.subarray(team, team + T).reduce((s, v) => s + v, 0);
    assertEquals(got[lid], want, `seed ${seed}: team sum seen by invocation ${lid}`);
  }
  for (let lane = 0; lane < T; lane++) {
    let want = 0;
    for (let j = lane; j < WG; j += T) want += xs[j];
    assertEquals(got[WG + lane], want, `seed ${seed}: strided sum ${lane} stopped at T`);
    assertEquals(got[WG + T + lane], 2 * want, `seed ${seed}: second array, strided sum ${lane}`);
  }
  const max = Math.max(...xs);
  assertEquals(got[WG + 2 * T], max, `seed ${seed}: merged maximum`);
  assertEquals(xs[got[WG + 2 * T + 1]], max, `seed ${seed}: merged maximum's index`);
});

Deno.test("workgroupReduceWgsl rejects a size that is not a power of two and misuse of value", () => {
  assertThrows(
    () => workgroupReduceWgsl({ array: "red", size: 96, combine: "sum" }),
    RangeError,
    "power of two",
  );
  assertThrows(
    () => workgroupReduceWgsl({ array: ["a", "b"], size: 64, combine: "sum", value: "v" }),
    RangeError,
    "exactly one array",
  );
});

// ---------------------------------------------------------------------------------------------
// Grid folding.

Deno.test("foldWorkgroups and grid cover long ranges within 65,535 workgroups per dimension", () => {
  const limit = MAX_WORKGROUPS_PER_DIMENSION;
  assertEquals(limit, 65535);
  const seed = freshSeed();
  const rng = makeRng(seed);
  const counts = [0, 1, 2, limit - 1, limit, limit + 1, 2 * limit, 2 * limit + 1, limit * limit];
  for (let i = 0; i < 50; i++) counts.push(1 + Math.floor(rng() * limit * 300));
  for (const count of counts) {
    const [gx, gy] = foldWorkgroups(count);
    const what = `seed ${seed}: ${count} workgroups folded to ${gx}×${gy}`;
    assert(gx >= 1 && gy >= 1 && gx <= limit && gy <= limit, what);
    assert(gx * gy >= Math.max(1, count), `${what}: too few`);
    assert(gx * (gy - 1) < Math.max(1, count), `${what}: a whole spare row`);
    if (count <= limit) assertEquals(gy, 1, what);
  }
  assertThrows(() => foldWorkgroups(limit * limit + 1), RangeError, "exceed");
  for (const [n, wg] of [[0, 256], [1, 256], [256 * limit + 1, 256], [1e9, 64], [777, 1]]) {
    const g = grid(n, wg);
    assertEquals(g.stride, g.groups[0] * wg, `grid(${n}, ${wg}) stride`);
    assert(g.groups[0] * g.groups[1] * wg >= n, `grid(${n}, ${wg}) covers n`);
    assert(g.groups.every((d) => d >= 1 && d <= limit), `grid(${n}, ${wg}) within the limit`);
  }
});

Deno.test("GRID_WGSL: grid_index numbers a folded dispatch 0..n−1 once each", async () => {
  const wg = 4, n = 37;
  // A tiny fold: 3 workgroups per row (as if the limit were 3), so rows wrap.
  const [gx, gy] = [3, Math.ceil(n / wg / 3)];
  const stride = gx * wg;
  const kernel = /* wgsl */ `
struct P { n: u32, stride: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
${GRID_WGSL}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let i = grid_index(gid, p.stride);
  if (i >= p.n) { return; }
  out[2u * i] = i + 1u;
  out[2u * i + 1u] = grid_index(wid, p.gx);
}`;
  const out = Tensor.from(new Uint32Array(2 * n), [2 * n], "u32");
  launch("grid_index test", kernel, packParams([n, stride, gx]), [out], [gx, gy]);
  const got = await out.toArray();
  for (let i = 0; i < n; i++) {
    assertEquals(got[2 * i], i + 1, `linear index ${i} written once`);
    assertEquals(got[2 * i + 1], Math.floor(i / wg), `workgroup number of index ${i}`);
  }
});

Deno.test("stagedProductLayout: vector columns, row slices no more than rows, rows per invocation", () => {
  // 64 columns on 256 invocations: 4 slices of rows, or 16 with four columns an invocation.
  assertEquals(stagedProductLayout(64, 16, 256, { spreadRows: true }), {
    columns: 64,
    slices: 4,
    perThread: 4,
    paddedRows: 16,
  });
  assertEquals(stagedProductLayout(64, 16, 256, { spreadRows: true, vectorColumns: true }), {
    columns: 16,
    slices: 16,
    perThread: 1,
    paddedRows: 16,
  });
  // One row: one slice, whatever the invocations left over; 13 rows by 4 at least: 4 slices.
  assertEquals(
    stagedProductLayout(64, 1, 256, { spreadRows: true, vectorColumns: true }).paddedRows,
    1,
  );
  assertEquals(
    stagedProductLayout(64, 13, 256, {
      spreadRows: true,
      vectorColumns: true,
      rowsPerInvocation: 4,
    }),
    { columns: 16, slices: 4, perThread: 4, paddedRows: 16 },
  );
  // Without spreading, every invocation sums every row.
  assertEquals(stagedProductLayout(300, 3, 128, { spreadRows: false }).slices, 1);
  assertThrows(
    () => stagedProductLayout(66, 4, 256, { spreadRows: true, vectorColumns: true }),
    RangeError,
    "multiple of 4",
  );
});
