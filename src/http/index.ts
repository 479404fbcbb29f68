/**
 * src/http — the HTTP door: /metrics for Prometheus, /healthz for load balancers and service
 * managers, and the status page for the postmaster (the daemon, decisions per minute, the
 * decision log with search and paging, greylisting, recent tempfails). A read-only view: it
 * decides nothing about mail and keeps nothing; the daemon binds it to a StatusSource and a
 * metrics registry and tells it the token on reload.
 *
 * May import src/observe (charts, HTML escaping, the logger type), src/store's types,
 * src/listen, src/text and src/version; never serve, policy or a protocol library.
 */
export { admit, bearerToken, type Credential, TOKEN_PARAMETER, tokenMatches } from './auth.js';
export {
  boundedHealth,
  checkStore,
  DEFAULT_STORE_PING_TIMEOUT_MS,
  type HealthCheck,
  type HealthReport,
  healthText,
  TimeoutError,
  withTimeout,
} from './health.js';
export {
  createHttpServer,
  DEFAULT_HEALTH_TIMEOUT_MS,
  DEFAULT_HTTP_CLOSE_DEADLINE_MS,
  FAILURE_LINES_PER_MINUTE,
  type HttpServer,
  type HttpServerOptions,
  MAX_URL_LENGTH,
  type MetricsRegistry,
} from './server.js';
export type { StatusInfo, StatusListener, StatusSource } from './source.js';
export {
  type ChartData,
  type DecisionPage,
  PAGE_SIZE,
  type Part,
  readStatus,
  type StatusData,
  type StatusQuery,
  TEMPFAIL_COUNT,
} from './status-data.js';
export { type PageLinks, renderStatusPage, STATUS_PAGE_CSP, uptime } from './status-page.js';
