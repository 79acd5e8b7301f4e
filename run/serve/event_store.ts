/**
 * The recommendation service's durable state in a directory: `events.jsonl`, an append-only log
 * with one JSON line `{"user": "<id>", "item": <id>}` per accepted event, fsynced before any
 * event of it is acknowledged, and `snapshot.json`, written atomically from time to time, with
 * the user → slot map and the number of logged events it covers.
 *
 * Slots are given in order of a user's first logged event, so replaying the log rebuilds the same
 * map; on restart the whole log is replayed (the GPU state is not stored) and the snapshot is
 * checked against it. A last line cut short by a crash was never acknowledged: it is dropped.
 *
 * @module
 */
import { writeFileAtomic } from "../../host/mod.ts";

/** One event as logged: the user's id (its string form) and the item id. */
export interface LoggedEvent {
  /** User id. */
  readonly user: string;
  /** Item id. */
  readonly item: number;
}

/** The snapshot file's content. */
export interface ServiceSnapshot {
  /** Logged events the snapshot covers. */
  readonly events: number;
  /** `[user, slot]` pairs. */
  readonly users: readonly (readonly [string, number])[];
}

/** The log file's name inside the state directory. */
export const EVENT_LOG_FILE = "events.jsonl";
/** The snapshot file's name inside the state directory. */
export const SNAPSHOT_FILE = "snapshot.json";

/** What a state directory holds when the service starts. */
export interface RestoredState {
  /** Every logged event, in order. */
  readonly events: LoggedEvent[];
  /** The latest snapshot, if any. */
  readonly snapshot: ServiceSnapshot | null;
}

/** Append-only, fsynced event log plus atomic snapshots in one directory. */
export class EventStore {
  /** The state directory. */
  readonly dir: string;
  readonly #log: Deno.FsFile;

  private constructor(dir: string, log: Deno.FsFile) {
    this.dir = dir;
    this.#log = log;
  }

  /**
   * Opens (creating it if needed) the state directory and reads what it holds; a torn last log
   * line is cut off the file.
   */
  static async open(dir: string): Promise<{ store: EventStore; restored: RestoredState }> {
    await Deno.mkdir(dir, { recursive: true });
    const logPath = `${dir}/${EVENT_LOG_FILE}`;
    const events = await readLog(logPath);
    const snapshot = await readSnapshot(`${dir}/${SNAPSHOT_FILE}`);
    if (snapshot && snapshot.events > events.length) {
      throw new Error(
        `state dir ${dir}: ${SNAPSHOT_FILE} covers ${snapshot.events} events but ` +
          `${EVENT_LOG_FILE} holds only ${events.length}; the log was truncated or replaced, ` +
          "restore it or start with an empty state dir",
      );
    }
    const log = await Deno.open(logPath, { append: true, create: true });
    return { store: new EventStore(dir, log), restored: { events, snapshot } };
  }

  /** Appends `events` as JSON lines and waits until they are on disk (fsync). */
  async append(events: readonly LoggedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const text = events.map((e) => JSON.stringify({ user: e.user, item: e.item }) + "\n").join("");
    const bytes = new TextEncoder().encode(text);
    let at = 0;
    while (at < bytes.length) at += await this.#log.write(bytes.subarray(at));
    await this.#log.sync();
  }

  /** Writes the snapshot atomically. */
  async writeSnapshot(snapshot: ServiceSnapshot): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(snapshot) + "\n");
    await writeFileAtomic(`${this.dir}/${SNAPSHOT_FILE}`, bytes);
  }

  /** Closes the log. */
  close(): void {
    this.#log.close();
  }
}

/** Reads the log's events; a torn (unterminated) last line is removed from the file. */
async function readLog(path: string): Promise<LoggedEvent[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const end = text.lastIndexOf("\n") + 1;
  if (end < text.length) {
    await Deno.truncate(path, new TextEncoder().encode(text.slice(0, end)).length);
  }
  const lines = text.slice(0, end).split("\n");
  lines.pop();
  return lines.map((line, i) => {
    try {
      const e = JSON.parse(line);
      if (typeof e.user === "string" && Number.isInteger(e.item)) return e as LoggedEvent;
    } catch {
      // reported below
    }
    throw new Error(
      `${path}: line ${i + 1} is not an event {"user": string, "item": integer}: ${line}; ` +
        "the log is damaged, repair or remove that line",
    );
  });
}

async function readSnapshot(path: string): Promise<ServiceSnapshot | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    const s = JSON.parse(text);
    if (Number.isInteger(s.events) && Array.isArray(s.users)) return s as ServiceSnapshot;
  } catch {
    // reported below
  }
  throw new Error(`${path}: not a service snapshot {events, users}; remove it to rebuild it`);
}
