/**
 * The HTTP server: /metrics, /healthz and the status page on the listen specs the daemon gives
 * it, read-only and small. Requests are bounded before any work is done (GET and HEAD only, no
 * body read, a capped URL, header and idle timeouts), since the port may face a network where
 * anyone can reach it; the token, when set, guards everything but /healthz.
 */
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { type BoundAddress, type ListenOptions, listenOn } from '../listen/index.js';
import type { Logger } from '../observe/index.js';
import { logValue } from '../text/index.js';
import { admit, TOKEN_PARAMETER } from './auth.js';
import { boundedHealth, healthText } from './health.js';
import type { StatusSource } from './source.js';
import { DEFAULT_READ_TIMEOUT_MS, readStatus } from './status-data.js';
import { renderStatusPage, STATUS_PAGE_CSP } from './status-page.js';

/** Longest request target answered; the page's own links stay far below it. */
export const MAX_URL_LENGTH = 2048;
/** How long /healthz waits for the source before it answers 503. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 2500;
/** How long `close()` lets requests in flight finish by default. */
export const DEFAULT_HTTP_CLOSE_DEADLINE_MS = 5000;

// Bounds of one connection. Headers must arrive within HEADERS_TIMEOUT_MS (slow-loris), the
// whole request within REQUEST_TIMEOUT_MS; an idle keep-alive connection goes after
// KEEP_ALIVE_MS, any connection silent for IDLE_TIMEOUT_MS (a scrape never takes that long).
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 20_000;
const KEEP_ALIVE_MS = 5000;
const IDLE_TIMEOUT_MS = 30_000;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_CONNECTIONS = 256;
const MAX_REQUESTS_PER_SOCKET = 1000;

/** What /metrics serves: prom-client's Registry fits. */
export interface MetricsRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface HttpServerOptions {
  source: StatusSource;
  /** Served at /metrics; without it /metrics is 404. */
  registry?: MetricsRegistry;
  /** Required by every route but /healthz when set. */
  token?: string;
  logger: Logger;
  /** The time the page says it is; Date.now by default. */
  clock?: () => number;
  /** How long /healthz waits for `source.health()` (default 2.5 s). */
  healthTimeoutMs?: number;
  /** How long each store read of the status page may take (default 5 s). */
  readTimeoutMs?: number;
}

export interface HttpServer {
  /**
   * Listens on each spec (`inet:PORT@HOST`, port 0 for any; `unix:/path`) and resolves with
   * where it listens. When one fails, those bound in the same call are closed again and it
   * rejects. May be called more than once.
   */
  listen(specs: readonly string[], options?: ListenOptions): Promise<BoundAddress[]>;
  /** The token for the next requests (a reload); undefined opens the door. */
  setToken(token: string | undefined): void;
  /** Where it listens now (effective specs). */
  readonly addresses: string[];
  /** Connections open now on the listener with this effective spec (0 when unknown). */
  connections(spec: string): number;
  /**
   * Stops listening, lets requests in flight finish for up to `deadlineMs` (default 5 s), then
   * drops what is left. Idempotent.
   */
  close(deadlineMs?: number): Promise<void>;
}

interface Listener {
  server: Server;
  spec: string;
  /** Each open connection, and when it will have closed. */
  sockets: Map<Socket, Promise<void>>;
}

type Reply = {
  status: number;
  headers?: OutgoingHttpHeaders;
  body: string;
  /** Logged with the failure (never shown to the client beyond `body`). */
  reason?: string;
  err?: unknown;
};

const COMMON_HEADERS: OutgoingHttpHeaders = {
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
};
const TEXT = 'text/plain; charset=utf-8';

/** Refused requests logged per minute at most; a scanner or a probe loop says the rest in one line. */
export const FAILURE_LINES_PER_MINUTE = 20;

/**
 * How many refused requests (4xx, a 503 health check) get a line of their own: a scanner or a
 * load balancer probing a failing /healthz every second must not fill the log. Past the budget
 * of a minute they are counted, and the next minute opens with one line saying how many went
 * unlogged. Server errors (5xx) are always logged.
 */
class FailureLogBudget {
  #windowStart = Number.NEGATIVE_INFINITY;
  #used = 0;
  #suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly clock: () => number,
  ) {}

  /** Whether this failure gets its line. */
  take(): boolean {
    const now = this.clock();
    if (now - this.#windowStart >= 60_000) {
      if (this.#suppressed > 0) {
        this.logger.warn(
          { suppressed: this.#suppressed, perMinute: FAILURE_LINES_PER_MINUTE },
          'http-request-failures-unlogged',
        );
      }
      this.#windowStart = now;
      this.#used = 0;
      this.#suppressed = 0;
    }
    if (this.#used < FAILURE_LINES_PER_MINUTE) {
      this.#used++;
      return true;
    }
    this.#suppressed++;
    return false;
  }
}

/**
 * The HTTP door over a status source.
 *
 * @example
 * const http = createHttpServer({ source, registry: metrics.registry, token, logger });
 * const [bound] = await http.listen(['inet:9100@127.0.0.1']);
 * // on SIGHUP:
 * http.setToken(config.http.token);
 * // on shutdown:
 * await http.close(2000);
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const { source, registry, logger } = options;
  const clock = options.clock ?? Date.now;
  const healthTimeoutMs = positive(options.healthTimeoutMs, DEFAULT_HEALTH_TIMEOUT_MS);
  const readTimeoutMs = positive(options.readTimeoutMs, DEFAULT_READ_TIMEOUT_MS);
  let token = checkedToken(options.token);
  const failures = new FailureLogBudget(logger, clock);
  const listeners: Listener[] = [];
  let closing: Promise<void> | undefined;

  const route = async (req: IncomingMessage, path: string, query: URLSearchParams) => {
    if (path === '/healthz') {
      const report = await boundedHealth(() => source.health(), healthTimeoutMs);
      const reply: Reply = {
        status: report.ok ? 200 : 503,
        headers: { 'Content-Type': TEXT },
        body: healthText(report),
      };
      if (!report.ok) reply.reason = 'health check failed';
      return reply;
    }
    const credential = admit(token, req.headers.authorization, query.get(TOKEN_PARAMETER));
    if (credential === undefined) {
      const reply: Reply = {
        status: 401,
        headers: { 'Content-Type': TEXT, 'WWW-Authenticate': 'Bearer realm="mailgate"' },
        body: 'a token is required\n',
        reason: 'no valid token',
      };
      return reply;
    }
    if (path === '/metrics' && registry) {
      try {
        const body = await registry.metrics();
        return { status: 200, headers: { 'Content-Type': registry.contentType }, body } as Reply;
      } catch (err) {
        return { status: 500, body: 'metrics failed\n', reason: 'metrics failed', err } as Reply;
      }
    }
    if (path === '/') return statusPage(query, credential === 'query' ? token : undefined);
    return { status: 404, headers: { 'Content-Type': TEXT }, body: 'not found\n' } as Reply;
  };

  const statusPage = async (query: URLSearchParams, linkToken: string | undefined) => {
    const before = query.get('before');
    let beforeId: number | undefined;
    if (before !== null && before !== '') {
      if (!/^[1-9][0-9]{0,15}$/u.test(before) || !Number.isSafeInteger(Number(before))) {
        const reply: Reply = {
          status: 400,
          headers: { 'Content-Type': TEXT },
          body: 'before must be a line number\n',
          reason: 'bad before parameter',
        };
        return reply;
      }
      beforeId = Number(before);
    }
    const search = query.get('q') ?? '';
    const data = await readStatus(
      source,
      { search, ...(beforeId === undefined ? {} : { beforeId }) },
      clock(),
      readTimeoutMs,
    );
    const failed = (
      [
        ['chart', data.chart],
        ['greylist', data.greylist],
        ['tempfails', data.tempfails],
        ['decisions', data.decisions],
      ] as const
    ).flatMap(([part, value]) => (value.ok ? [] : [`${part}: ${value.error}`]));
    if (failed.length > 0) {
      logger.warn(
        { store: data.store, failed: failed.map((f) => logValue(f, 300)) },
        'status-page-store-failed',
      );
    }
    const reply: Reply = {
      status: 200,
      headers: {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': STATUS_PAGE_CSP,
        'X-Frame-Options': 'DENY',
      },
      body: renderStatusPage(data, linkToken === undefined ? {} : { token: linkToken }),
    };
    return reply;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const target = req.url ?? '/';
    const mark = target.indexOf('?');
    const path = mark < 0 ? target : target.slice(0, mark);
    let reply: Reply;
    if (target.length > MAX_URL_LENGTH) {
      reply = { status: 414, body: 'URI too long\n', reason: 'URI too long' };
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply = {
        status: 405,
        headers: { Allow: 'GET, HEAD' },
        body: 'method not allowed\n',
        reason: 'method not allowed',
      };
    } else {
      try {
        reply = await route(req, path, new URLSearchParams(mark < 0 ? '' : target.slice(mark + 1)));
      } catch (err) {
        reply = { status: 500, body: 'internal error\n', reason: 'internal error', err };
      }
    }
    if (reply.status >= 400 && reply.status !== 404) {
      // The path only: the query may hold the token, and the headers do.
      const fields: Record<string, unknown> = {
        status: reply.status,
        method: logValue(req.method ?? '', 16),
        path: logValue(path, 200),
        remote: req.socket.remoteAddress ?? 'unix',
      };
      if (reply.reason !== undefined) fields['reason'] = reply.reason;
      if (reply.err !== undefined) fields['err'] = reply.err;
      if (reply.status >= 500 && reply.status !== 503) logger.error(fields, 'http-request-failed');
      else if (failures.take()) logger.warn(fields, 'http-request-failed');
    }
    send(req, res, reply, closing !== undefined);
  };

  const listenOne = async (
    spec: string,
    listenOptions?: ListenOptions,
  ): Promise<{ listener: Listener; bound: BoundAddress }> => {
    const server = createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_MS,
    });
    server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
    server.maxConnections = MAX_CONNECTIONS;
    server.setTimeout(IDLE_TIMEOUT_MS, (socket) => socket.destroy());
    const listener: Listener = { server, spec, sockets: new Map() };
    server.on('connection', (socket: Socket) => {
      listener.sockets.set(
        socket,
        new Promise<void>((resolve) =>
          socket.once('close', () => {
            listener.sockets.delete(socket);
            resolve();
          }),
        ),
      );
    });
    server.on('request', (req, res) => {
      handle(req, res).catch((err) => {
        logger.error({ err }, 'http server error');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // A peer that went away is not a request that failed.
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? 431
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 408
            : 400;
      if (failures.take()) {
        logger.warn(
          {
            status,
            code: logValue(String(err.code ?? 'unknown'), 40),
            remote: socket.remoteAddress ?? 'unix',
          },
          'http-request-failed',
        );
      }
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
    });
    const bound = await listenOn(server, spec, listenOptions);
    listener.spec = bound.spec;
    server.on('error', (err) => {
      // After listening, errors are accept failures (EMFILE...): log, keep serving.
      logger.error({ err, listen: listener.spec }, 'http server error');
    });
    listeners.push(listener);
    logger.info({ listen: bound.spec }, 'http server listening');
    return { listener, bound };
  };

  return {
    async listen(specs, listenOptions) {
      if (closing) throw new Error('http server: listen() after close()');
      const done: { listener: Listener; bound: BoundAddress }[] = [];
      try {
        for (const spec of specs) {
          done.push(await listenOne(spec, listenOptions));
        }
      } catch (err) {
        for (const { listener } of done) {
          listeners.splice(listeners.indexOf(listener), 1);
          await new Promise<void>((resolve) => listener.server.close(() => resolve()));
        }
        throw err;
      }
      return done.map((d) => d.bound);
    },
    setToken(next) {
      token = checkedToken(next);
    },
    get addresses() {
      return listeners.map((l) => l.spec);
    },
    connections(spec) {
      return listeners.find((l) => l.spec === spec)?.sockets.size ?? 0;
    },
    close(deadlineMs = DEFAULT_HTTP_CLOSE_DEADLINE_MS) {
      if (closing) return closing;
      closing = (async () => {
        const stopped = listeners.map(
          (l) =>
            new Promise<void>((resolve) => {
              if (!l.server.listening) resolve();
              else l.server.close(() => resolve());
              l.server.closeIdleConnections();
            }),
        );
        // The server's own close comes before the last socket's: wait for both.
        const finished = Promise.all([
          ...stopped,
          ...listeners.flatMap((l) => [...l.sockets.values()]),
        ]);
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<'deadline'>((resolve) => {
          timer = setTimeout(() => resolve('deadline'), Math.max(0, deadlineMs));
        });
        const outcome = await Promise.race([finished, deadline]);
        clearTimeout(timer);
        if (outcome === 'deadline') {
          for (const l of listeners) l.server.closeAllConnections();
          await finished;
        }
      })();
      return closing;
    },
  };
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply, closing: boolean): void {
  const body = Buffer.from(reply.body, 'utf8');
  const headers: OutgoingHttpHeaders = {
    'Content-Type': TEXT,
    ...COMMON_HEADERS,
    ...reply.headers,
    'Content-Length': body.length,
  };
  // A body we will not read would be the next request's start; close instead of reading it.
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (closing || hasBody) headers['Connection'] = 'close';
  res.writeHead(reply.status, headers);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

function checkedToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || token.length === 0) {
    throw new RangeError('http server: the token must be a non-empty string');
  }
  return token;
}

function positive(value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`http server: a timeout must be a positive number, not ${value}`);
  }
  return value;
}
