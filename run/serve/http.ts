/**
 * The recommendation service over HTTP with Deno's built-in server:
 *
 * - `POST /events` (JSON, one `{user, item}` or an array of them, at most
 *   {@link MAX_BODY_BYTES}): answered `{accepted, events}` once every event is logged on disk and
 *   applied; an entry that is not an event fails the whole request (400, naming the entry) and
 *   applies nothing; new users beyond the capacity: 503. With a token, the request must carry
 *   `Authorization: Bearer <token>` (else 401).
 * - `GET /recommend?user=U&k=K` (k from 1, default {@link DEFAULT_K}, at most {@link MAX_K}):
 *   `{user, items, scores}`; a user without events gets 404.
 * - `GET /health`: `{ok, users, events, capacity}`.
 *
 * User ids are strings or integers; an integer and its decimal string name the same user. Every
 * error is a JSON `{error}` with a 4xx/5xx status, and changes nothing.
 *
 * @module
 */
import { type RecommendationService, ServiceError, type ServiceEvent } from "./service.ts";

/** Largest accepted request body, in bytes. */
export const MAX_BODY_BYTES = 1 << 20;
/** Items per recommendation when the request names no k. */
export const DEFAULT_K = 10;
/** Most items per recommendation. */
export const MAX_K = 1000;

/**
 * What the HTTP layer serves: a {@link RecommendationService}, or another recommender answering
 * the same calls (the load benchmark serves the same requests by recomputing each user's window).
 */
export type Recommender = Pick<
  RecommendationService,
  "numItems" | "submit" | "recommend" | "health" | "close"
>;

/** Options of {@link serveRecommendations}. */
export interface HttpOptions {
  /** Port (0: any free one). */
  readonly port: number;
  /** Interface to listen on (default 127.0.0.1). */
  readonly hostname?: string;
  /** When set, `POST` requests must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
}

/** A running HTTP service. */
export interface RunningServer {
  /** The port it listens on. */
  readonly port: number;
  /** Stops accepting requests, finishes the waiting ones and closes the service. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function fail(status: number, error: string): Response {
  return json(status, { error });
}

/** The body as text, or an error response when it is larger than {@link MAX_BODY_BYTES}. */
async function readBody(request: Request): Promise<string | Response> {
  const tooLarge = () =>
    fail(413, `request body is larger than ${MAX_BODY_BYTES} bytes; send fewer events per request`);
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) return tooLarge();
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(bytes);
}

/** A user id's string form, or null when `value` is not a user id. */
function userId(value: unknown): string | null {
  if (typeof value === "string" && value.length > 0) return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return null;
}

/** The body's events, or an error message naming the first bad entry. */
function parseEvents(body: unknown): ServiceEvent[] | string {
  const list = Array.isArray(body) ? body : [body];
  const events: ServiceEvent[] = [];
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    const where = Array.isArray(body) ? `entry ${i}` : "the event";
    if (typeof e !== "object" || e === null || Array.isArray(e)) {
      return `${where} is not an object {user, item}`;
    }
    const user = userId((e as Record<string, unknown>).user);
    if (user === null) {
      return `${where}: user must be a non-empty string or an integer, got ${
        JSON.stringify((e as Record<string, unknown>).user) ?? "nothing"
      }`;
    }
    const item = (e as Record<string, unknown>).item;
    if (typeof item !== "number" || !Number.isInteger(item)) {
      return `${where}: item must be an integer item id, got ${JSON.stringify(item) ?? "nothing"}`;
    }
    events.push({ user, item });
  }
  return events;
}

/** Answers one request. */
export async function handleRequest(
  service: Recommender,
  request: Request,
  token?: string,
): Promise<Response> {
  const path = new URL(request.url).pathname;
  const routes: Record<string, string> = {
    "/events": "POST",
    "/recommend": "GET",
    "/health": "GET",
  };
  const method = routes[path];
  if (!method) {
    return fail(404, `no endpoint ${path}; use POST /events, GET /recommend or GET /health`);
  }
  if (request.method !== method) {
    return fail(405, `${path} takes ${method}, not ${request.method}`);
  }
  try {
    if (path === "/events") return await postEvents(service, request, token);
    if (path === "/recommend") return await getRecommend(service, new URL(request.url));
    return json(200, { ok: true, ...service.health() });
  } catch (e) {
    if (e instanceof ServiceError) return fail(e.status, e.message);
    return fail(500, `internal error: ${(e as Error).message}`);
  }
}

async function postEvents(
  service: Recommender,
  request: Request,
  token?: string,
): Promise<Response> {
  if (token !== undefined && request.headers.get("authorization") !== `Bearer ${token}`) {
    return fail(401, "POST /events needs the header Authorization: Bearer <token>");
  }
  const type = request.headers.get("content-type") ?? "";
  if (type.split(";")[0].trim().toLowerCase() !== "application/json") {
    return fail(415, `POST /events takes content-type application/json, got ${type || "none"}`);
  }
  const text = await readBody(request);
  if (text instanceof Response) return text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return fail(400, `request body is not JSON: ${(e as Error).message}`);
  }
  const events = parseEvents(body);
  if (typeof events === "string") return fail(400, `${events}; nothing was applied`);
  await service.submit(events);
  return json(200, { accepted: events.length, events: service.health().events });
}

async function getRecommend(service: Recommender, url: URL): Promise<Response> {
  const user = url.searchParams.get("user");
  if (!user) return fail(400, "GET /recommend needs ?user=<id>");
  const kText = url.searchParams.get("k");
  const k = kText === null ? DEFAULT_K : Number(kText);
  const most = Math.min(MAX_K, service.numItems - 1);
  if (!Number.isInteger(k) || k < 1 || k > most || (kText !== null && !/^\d+$/.test(kText))) {
    return fail(400, `k must be an integer 1 … ${most}, got ${kText}`);
  }
  const recs = await service.recommend(user, k);
  return json(200, { user, ...recs });
}

/** Serves `service` over HTTP; shutting down the server closes the service too. */
export function serveRecommendations(
  service: Recommender,
  options: HttpOptions,
): Promise<RunningServer> {
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve(
    {
      port: options.port,
      hostname: options.hostname ?? "127.0.0.1",
      onListen: ({ port }) => listening.resolve(port),
    },
    (request) => handleRequest(service, request, options.token),
  );
  return listening.promise.then((port) => ({
    port,
    finished: server.finished,
    async shutdown() {
      await server.shutdown();
      await service.close();
    },
  }));
}
