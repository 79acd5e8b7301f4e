import { assertEquals } from "@std/assert";
import {
  add,
  keep,
  memoryStats,
  releasePooledMemory,
  resetPeakMemory,
  runtime,
  settleDestroyedBuffers,
  sizeClass,
  sync,
  type Tensor,
  tidy,
  zeros,
} from "../ops/mod.ts";
import "./util.ts";

/** The pool's size class of an f32 tensor of `n` elements. */
const classOf = (n: number) => sizeClass(Math.max(n * 4, 16));

Deno.test("creating and disposing tensors moves live bytes by their size classes", async () => {
  await sync();
  const before = memoryStats().liveBytes;
  const a = zeros([1000]); // 4,000 bytes: class 4,096
  const b = zeros([3, 700]); // 8,400 bytes: class 10,240 (a quarter of 8,192 past it)
  assertEquals(memoryStats().liveBytes - before, classOf(1000) + classOf(2100));
  assertEquals(classOf(2100), 10240);
  a.dispose();
  assertEquals(memoryStats().liveBytes - before, classOf(2100));
  a.dispose(); // idempotent: releases nothing twice
  assertEquals(memoryStats().liveBytes - before, classOf(2100));
  b.dispose();
  assertEquals(memoryStats().liveBytes, before);
  const { allocatedBytes, liveBytes } = memoryStats();
  assertEquals(allocatedBytes >= liveBytes + classOf(1000) + classOf(2100), true);
});

Deno.test("the peak survives a dispose and resets to what is live", () => {
  resetPeakMemory();
  const base = memoryStats();
  assertEquals(base.peakLiveBytes, base.liveBytes);
  const big = zeros([5000]);
  const small = zeros([10]);
  const high = base.liveBytes + classOf(5000) + classOf(10);
  big.dispose();
  assertEquals(memoryStats().peakLiveBytes, high);
  assertEquals(memoryStats().liveBytes, base.liveBytes + classOf(10));
  resetPeakMemory();
  assertEquals(memoryStats().peakLiveBytes, base.liveBytes + classOf(10));
  small.dispose();
  assertEquals(memoryStats().peakLiveBytes, base.liveBytes + classOf(10));
  assertEquals(memoryStats().liveBytes, base.liveBytes);
});

Deno.test("a tidy scope releases its tensors but not those it returns or keeps", () => {
  const before = memoryStats().liveBytes;
  const kept: Tensor[] = [];
  const returned = tidy(() => {
    const x = zeros([300]);
    const y = zeros([300]);
    kept.push(keep(zeros([64])));
    return add(x, y);
  });
  assertEquals(memoryStats().liveBytes - before, classOf(300) + classOf(64));
  returned.dispose();
  kept[0].dispose();
  assertEquals(memoryStats().liveBytes, before);
});

/**
 * Runs `fn` with the pool emptied and its slack at 64 KiB, so that a few small tensors make it
 * evict; the slack comes back afterwards.
 */
async function withSmallPoolSlack(fn: (rt: ReturnType<typeof runtime>) => Promise<void>) {
  const rt = runtime();
  const slack = rt.poolSlackBytes;
  rt.poolSlackBytes = 64 * 1024;
  try {
    await sync();
    rt.trimPool();
    await sync();
    await fn(rt);
  } finally {
    rt.poolSlackBytes = slack;
    await sync();
  }
}

Deno.test("batches of ever new sizes keep the pool within the most live bytes plus its slack", async () => {
  await withSmallPoolSlack(async (rt) => {
    // Like packed batches of varying token counts: each "step" holds a few tensors of a size
    // class no earlier step used, then frees them.
    for (let step = 0; step < 24; step++) {
      const n = 3000 + step * 1500;
      const held = [zeros([n]), zeros([n]), zeros([2 * n])];
      const sum = add(held[0], held[1]);
      sum.dispose();
      held.forEach((t) => t.dispose());
      await sync();
      const { allocatedBytes } = memoryStats();
      // Pooled bytes stay within the limit when a buffer is made; what is freed after adds to
      // them until the next one: at most twice the most ever live, plus the slack.
      const bound = 2 * rt.mostLiveBytes + rt.poolSlackBytes;
      assertEquals(
        allocatedBytes <= bound,
        true,
        `step ${step}: ${allocatedBytes} bytes allocated, over ${bound}`,
      );
    }
    // A size class in use is still served from the pool.
    const a = zeros([3000]);
    a.dispose();
    const before = memoryStats().allocatedBytes;
    const b = zeros([3000]);
    assertEquals(memoryStats().allocatedBytes, before, "a freed buffer of the class is reused");
    b.dispose();
  });
});

Deno.test("releasing the pool leaves only live buffers allocated; live tensors stay usable", async () => {
  const live = zeros([2000]);
  zeros([5000]).dispose();
  zeros([7000]).dispose();
  assertEquals(memoryStats().allocatedBytes > memoryStats().liveBytes, true);
  await releasePooledMemory();
  const { allocatedBytes, liveBytes, byPurpose } = memoryStats();
  assertEquals(allocatedBytes, liveBytes);
  assertEquals(byPurpose.pool.liveBytes, 0);
  const doubled = add(live, live);
  assertEquals((await doubled.toArray()).every((v) => v === 0), true);
  doubled.dispose();
  live.dispose();
});

Deno.test("destroyed buffers are counted until a wait, which settling makes past the slack", async () => {
  await withSmallPoolSlack(async (rt) => {
    assertEquals(rt.destroyedSinceSync, 0);
    // Steps of ever new sizes, queued without waiting: the pool destroys what it cannot reuse.
    let destroyed = 0;
    for (let step = 0; step < 12 && destroyed <= rt.poolSlackBytes; step++) {
      const n = 20_000 + step * 9_000;
      const held = [zeros([n]), zeros([2 * n])];
      add(held[0], held[0]).dispose();
      held.forEach((t) => t.dispose());
      assertEquals(rt.destroyedSinceSync >= destroyed, true, "the count only grows between waits");
      destroyed = rt.destroyedSinceSync;
    }
    assertEquals(destroyed > rt.poolSlackBytes, true, `only ${destroyed} bytes destroyed`);
    // Past the slack, settling waits for the GPU, after which nothing destroyed is outstanding.
    await settleDestroyedBuffers();
    assertEquals(rt.destroyedSinceSync, 0);
    // Under the slack it returns without waiting and leaves the count as it is.
    zeros([30_000]).dispose();
    zeros([31_000]).dispose();
    const under = rt.destroyedSinceSync;
    assertEquals(under <= rt.poolSlackBytes, true);
    await settleDestroyedBuffers();
    assertEquals(rt.destroyedSinceSync, under);
  });
});
