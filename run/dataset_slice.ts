/**
 * A slice of a real dataset for quick runs: the interactions of its first users only (the
 * notebooks' quick mode and `deno task train --max-users N`).
 *
 * @module
 */
import type { SequentialDataset } from "../data/dataset.ts";
import { type InteractionFormat, parseInteractions, parseKuaiRandLogs } from "../data/formats.ts";
import { generatedInteractions } from "../data/load.ts";
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

/**
 * CSV logs with a header (KuaiRand's) restricted to the first `count` users, read by the
 * `user_id` column, in file order across the logs: each log keeps its header and the rows of those
 * users. Throws naming the log when its header has no `user_id` column.
 */
export function firstUsersCsv(
  logs: readonly { source: string; text: string }[],
  count: number,
): { source: string; text: string }[] {
  const kept = new Set<string>();
  return logs.map(({ source, text }) => {
    const lines = text.split("\n");
    const header = lines[0].replace(/^\ufeff/, "");
    const column = header.trim().split(",").indexOf("user_id");
    if (column < 0) {
      throw new RangeError(
        `${source}: the header has no user_id column (got "${header.trim().slice(0, 80)}"); ` +
          "pass a KuaiRand log CSV",
      );
    }
    const out = [header];
    for (const line of lines.slice(1)) {
      const user = line.split(",")[column]?.trim();
      if (!user) continue;
      if (!kept.has(user)) {
        if (kept.size === count) continue;
        kept.add(user);
      }
      out.push(line);
    }
    return { source, text: out.join("\n") };
  });
}

/** The name of the slice of the dataset `name` that keeps its first `count` users. */
export function firstUsersName(name: string, count: number): string {
  return `${name} (first ${count} users)`;
}

/**
 * Reads `source`, keeps its first `count` users ({@link firstUsersText}; for CSV logs such as
 * KuaiRand's, one or several, {@link firstUsersCsv}; a generated dataset generates only them) and
 * runs the pipeline on them; the dataset is named by {@link firstUsersName}. Slices are not cached.
 */
export async function loadFirstUsers(
  source: DatasetSource,
  count: number,
  format?: InteractionFormat,
): Promise<SequentialDataset> {
  const name = firstUsersName(source.name, count);
  if (source.generated) {
    return buildSequentialDataset(generatedInteractions(source.name, { firstUsers: count }), {
      name,
    });
  }
  const files = source.files;
  if (files.every((f) => f.toLowerCase().endsWith(".csv"))) {
    const logs = await Promise.all(
      files.map(async (f) => ({ source: f, text: await Deno.readTextFile(f) })),
    );
    const sliced = firstUsersCsv(logs, count);
    const loaded = sliced.length === 1
      ? parseInteractions(sliced[0].text, sliced[0].source, { format })
      : parseKuaiRandLogs(sliced, source.path);
    return buildSequentialDataset(loaded, { name });
  }
  const text = firstUsersText(await Deno.readTextFile(files[0]), count);
  const loaded = parseInteractions(text, files[0], { format });
  return buildSequentialDataset(loaded, { name });
}
