/**
 * A slice of a real dataset for quick runs: the interactions of its first users only (the
 * notebooks' quick mode and `deno task train --max-users N`).
 *
 * @module
 */
import type { SequentialDataset } from "../data/dataset.ts";
import { type InteractionFormat, parseInteractions } from "../data/formats.ts";
import type { DatasetSource } from "../data/paths.ts";
import { buildSequentialDataset } from "../data/pipeline.ts";

/**
 * The interaction text restricted to the first `count` users (whitespace formats: `user item`
 * pairs or `user i1 i2 …` lines), for quick runs on a slice of a real dataset.
 */
export function firstUsersText(text: string, count: number): string {
  const kept = new Set<string>();
  const lines: string[] = [];
  for (const line of text.split("\n")) {
    const user = line.trim().split(/\s+/, 1)[0];
    if (!user) continue;
    if (!kept.has(user)) {
      if (kept.size === count) continue;
      kept.add(user);
    }
    lines.push(line);
  }
  return lines.join("\n");
}

/** The name of the slice of the dataset `name` that keeps its first `count` users. */
export function firstUsersName(name: string, count: number): string {
  return `${name} (first ${count} users)`;
}

/**
 * Reads `source`, keeps its first `count` users ({@link firstUsersText}) and runs the pipeline
 * on them; the dataset is named by {@link firstUsersName}. Slices are not cached.
 */
export async function loadFirstUsers(
  source: DatasetSource,
  count: number,
  format?: InteractionFormat,
): Promise<SequentialDataset> {
  const text = firstUsersText(await Deno.readTextFile(source.path), count);
  const loaded = parseInteractions(text, source.path, { format });
  return buildSequentialDataset(loaded, { name: firstUsersName(source.name, count) });
}
