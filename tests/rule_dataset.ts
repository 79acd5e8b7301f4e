/**
 * A synthetic dataset the training tests learn: every item has one successor, so a model that
 * learns the rule ranks every target first.
 */
import { assert } from "@std/assert";
import { parseInteractions } from "../data/formats.ts";
import type { TrainResult } from "../models/training/trainer.ts";
import { buildSequentialDataset } from "../data/pipeline.ts";
import type { SequentialDataset } from "../data/dataset.ts";
import { makeRng } from "./util.ts";

/**
 * `users` users whose sequences (of `length − 3` to `length` items, drawn from `seed`) follow a
 * deterministic next-item rule over `items` items. Nothing is filtered out: RecBole's 5-core
 * filter would cut the rule's chains and, on small draws, cascade until no interaction is left.
 */
export function ruleDataset(
  seed: number,
  users = 160,
  items = 40,
  length = 12,
): SequentialDataset {
  const rng = makeRng(seed);
  const next = (i: number) => ((i * 7 + 3) % items) + 1;
  const lines: string[] = [];
  for (let u = 1; u <= users; u++) {
    let item = 1 + Math.floor(rng() * items);
    const len = length - Math.floor(rng() * 4);
    for (let t = 0; t < len; t++) {
      lines.push(`${u} ${item}`);
      item = next(item);
    }
  }
  const loaded = parseInteractions(lines.join("\n"), "rule.txt", { format: "user-item-pairs" });
  return buildSequentialDataset(loaded, {
    name: "rule",
    minUserInteractions: 0,
    minItemInteractions: 0,
  });
}

/**
 * Asserts that a training run learned the rule: its loss fell from the first epoch to the last and
 * its test HR@10 exceeds 0.9. Messages name the seed and the losses.
 */
export function assertLearnedRule(seed: number, result: TrainResult): void {
  const losses = result.history.map((h) => h.loss);
  assert(losses.at(-1)! < losses[0], `seed ${seed}: loss did not fall: ${losses}`);
  assert(
    result.test["hit@10"] > 0.9,
    `seed ${seed}: test HR@10 ${result.test["hit@10"]} ≤ 0.9 (losses ${
      losses.map((l) => l.toFixed(3))
    })`,
  );
}
