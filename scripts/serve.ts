/**
 * `deno task serve --checkpoint FILE [--port P] [--hostname H] [--state-dir DIR] [--token T]
 * [--capacity N]`: serves recommendations of the model in FILE (Mamba4Rec, or a one-layer
 * SSD4Rec) over HTTP (see `run/serve/http.ts` for the endpoints). Accepted events are logged in
 * DIR (default `serve-state`) and replayed on the next start. Port default 8000 (0: any free
 * one), capacity default 10000 user slots (each holds every layer's state: lower it when the pools
 * do not fit the device). With --token, `POST /events` needs `Authorization: Bearer T`. Stops on
 * Ctrl-C (SIGINT) or SIGTERM, after answering the waiting requests. Errors print one `error: …`
 * line: exit status 2 for a bad command line, 1 for anything else.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  loadStreamableCheckpoint,
  RecommendationService,
  serveRecommendations,
} from "../run/serve/mod.ts";

const USAGE = "usage: deno task serve --checkpoint FILE [--port P] [--hostname H] " +
  "[--state-dir DIR] [--token T] [--capacity N]";

class UsageError extends Error {}

function integerFlag(name: string, text: string | undefined, fallback: number, min: number) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${text}`);
  }
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        checkpoint: { type: "string" },
        port: { type: "string" },
        hostname: { type: "string" },
        "state-dir": { type: "string" },
        token: { type: "string" },
        capacity: { type: "string" },
      },
    }));
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${USAGE}`);
  }
  if (!values.checkpoint) throw new UsageError(`--checkpoint is required\n${USAGE}`);
  const port = integerFlag("port", values.port, 8000, 0);
  const capacity = integerFlag("capacity", values.capacity, 10000, 1);
  if (values.token === "") throw new UsageError("--token must not be empty");
  const stateDir = values["state-dir"] ?? "serve-state";
  const model = await loadStreamableCheckpoint(values.checkpoint);
  const service = await RecommendationService.start(model, { capacity, stateDir });
  const server = await serveRecommendations(service, {
    port,
    hostname: values.hostname,
    token: values.token,
  });
  const health = service.health();
  console.log(
    `serving ${values.checkpoint} on http://${values.hostname ?? "127.0.0.1"}:${server.port} ` +
      `(${health.users} users, ${health.events} events restored from ${stateDir})`,
  );
  const stop = () => {
    server.shutdown().then(() => Deno.exit(0), (e) => {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(1);
    });
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
}

try {
  await main();
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(e instanceof UsageError ? 2 : 1);
}
