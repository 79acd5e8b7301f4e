/**
 * HTTP recommendation service over a model's streaming step form (Mamba4Rec, a one-layer
 * SSD4Rec), with a durable event log.
 *
 * @module
 */
export {
  EVENT_LOG_FILE,
  EventStore,
  type LoggedEvent,
  type RestoredState,
  type ServiceSnapshot,
  SNAPSHOT_FILE,
} from "./event_store.ts";
export {
  DEFAULT_K,
  handleRequest,
  type HttpOptions,
  MAX_BODY_BYTES,
  MAX_K,
  type Recommender,
  type RunningServer,
  serveRecommendations,
} from "./http.ts";
export { loadMamba4RecCheckpoint, loadStreamableCheckpoint } from "./model_loader.ts";
export {
  FLUSH_EVENTS,
  FLUSH_INTERVAL_MS,
  RecommendationService,
  ServiceError,
  type ServiceEvent,
  type ServiceHealth,
  type ServiceOptions,
  SNAPSHOT_EVERY_EVENTS,
  type UserRecommendations,
} from "./service.ts";
