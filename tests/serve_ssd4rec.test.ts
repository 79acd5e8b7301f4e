/**
 * The recommendation service over a one-layer SSD4Rec checkpoint: its recommendations equal the
 * step form's fed the same events, before and after a restart that replays the event log, and a
 * checkpoint of a two-layer SSD4Rec is refused with the reason.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { SSD4RecStream } from "../models/streaming/ssd4rec_stream.ts";
import { writeCheckpoint } from "../models/training/checkpoint.ts";
import { loadStreamableCheckpoint, RecommendationService } from "../run/serve/mod.ts";
import { perturb, tinyModel } from "./ssd4rec_cases.ts";
import { withTempDir } from "./temp_files.ts";
import { assertClose, freshSeed, makeRng } from "./util.ts";

/** Writes a perturbed tiny SSD4Rec of `numLayers` layers as a trainer-style checkpoint. */
async function ssd4recCheckpoint(path: string, seed: number, numLayers: number) {
  const model = tinyModel(seed, { numLayers, beta: 0.4 });
  await perturb(model, makeRng(seed));
  await writeCheckpoint(
    path,
    model.params.entries().map(([n, t]) => [`model.${n}`, t]),
    { model: model.name, modelConfig: JSON.stringify(model.config) },
  );
  return model;
}

Deno.test("serve: a one-layer SSD4Rec checkpoint is served, and replayed after a restart", async () => {
  const seed = freshSeed() % 100000;
  const rng = makeRng(seed + 1);
  await withTempDir("ssmrec-serve-ssd4rec-", async (dir) => {
    const checkpoint = `${dir}/model.safetensors`;
    const stateDir = `${dir}/state`;
    const model = await ssd4recCheckpoint(checkpoint, seed, 1);
    const numItems = model.config.numItems;
    const direct = new SSD4RecStream(model, { capacity: 3 });
    // Users take slots in order of their first event: ann 0, bo 1.
    const users = ["ann", "bo"];
    const histories = [7, 2].map((n) =>
      Array.from({ length: n }, () => 1 + Math.floor(rng() * (numItems - 1)))
    );
    const start = async () =>
      await RecommendationService.start(await loadStreamableCheckpoint(checkpoint), {
        capacity: 3,
        stateDir,
      });
    const same = async (service: RecommendationService, when: string) => {
      for (const [slot, user] of users.entries()) {
        const got = await service.recommend(user, 5);
        const want = await direct.recommend(Int32Array.of(slot), 5);
        assertEquals(got.items, Array.from(want.items), `seed ${seed}: ${user} ${when}`);
        assertClose(got.scores, want.scores, 1e-5, `seed ${seed}: ${user}'s scores ${when}`);
      }
    };
    let service = await start();
    try {
      for (let t = 0; t < 7; t++) {
        const events = users.flatMap((user, u) =>
          t < histories[u].length ? [{ user, item: histories[u][t] }] : []
        );
        await service.submit(events);
        direct.observe(
          Int32Array.from(events, (e) => users.indexOf(e.user)),
          Int32Array.from(events, (e) => e.item),
        );
      }
      await same(service, "served");
      await service.close();
      service = await start();
      await same(service, "after a restart");
    } finally {
      await service.close();
      direct.dispose();
    }
  });
});

Deno.test("serve: a two-layer SSD4Rec checkpoint is refused, saying why", async () => {
  await withTempDir("ssmrec-serve-ssd4rec-", async (dir) => {
    const path = `${dir}/two.safetensors`;
    await ssd4recCheckpoint(path, freshSeed() % 100000, 2);
    await assertRejects(() => loadStreamableCheckpoint(path), Error, "only a one-layer SSD4Rec");
  });
});
