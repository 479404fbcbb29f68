/**
 * What the HTTP tests share: a plain HTTP client over TCP or a unix socket, a real pino logger
 * whose lines are kept, a status source over a real store, and a decision log to look at.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import { checkStore, type StatusSource } from '../../src/http/index.js';
import type { BoundAddress } from '../../src/listen/index.js';
import { createLogger } from '../../src/observe/index.js';
import type { Decision, Store } from '../../src/store/index.js';

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a connection of its own. */
export function request(
  bound: BoundAddress,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        ...(bound.kind === 'unix'
          ? { socketPath: bound.path }
          : { host: bound.host, port: bound.port }),
        path,
        method: init.method ?? 'GET',
        // A body is always framed by its length: without one Node sends a DELETE's body bare.
        headers: {
          ...(init.body === undefined ? {} : { 'Content-Length': Buffer.byteLength(init.body) }),
          ...init.headers,
        },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** The base URL of a TCP listener. */
export function baseUrl(bound: BoundAddress): string {
  if (bound.kind === 'unix') throw new Error('a unix socket has no URL');
  return bound.kind === 'inet6'
    ? `http://[${bound.host}]:${bound.port}`
    : `http://${bound.host}:${bound.port}`;
}

/** A pino logger (the daemon's own) writing JSON lines into `lines`. */
export function keptLogger(): {
  logger: ReturnType<typeof createLogger>;
  lines: string[];
  records(): Record<string, unknown>[];
} {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(line);
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  return {
    logger,
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A status source over a store, as the daemon builds one. */
export function sourceOver(
  store: Store,
  overrides: Partial<StatusSource> & { startedAt?: number } = {},
): StatusSource {
  const startedAt = overrides.startedAt ?? Date.now() - 3_723_000;
  return {
    info: () => ({
      hostname: 'mx1.example.net',
      configFile: '/etc/mailgate/mailgate.toml',
      listeners: [
        { door: 'policy', spec: 'inet:10027@127.0.0.1' },
        { door: 'milter', spec: 'unix:/run/mailgate/milter.sock' },
      ],
      startedAt,
    }),
    store: () => store,
    whitelistAt: () => 1,
    chartHours: () => 3,
    health: async () => {
      const check = await checkStore(store);
      return { ok: check.ok, checks: [check, { name: 'listen:policy', ok: true }] };
    },
    ...overrides,
  };
}

/** A decision-log line with the fields a test does not care about filled in. */
export function decision(fields: Partial<Decision> & { time: number }): Decision {
  return {
    host: 'mx1.example.net',
    client: '198.51.100.1',
    sender: 'someone@example.org',
    recipient: 'postmaster@example.net',
    action: 'pass',
    reason: 'known',
    ...fields,
  };
}

/** The row ids of the decision-log table of a status page, in page order. */
export function decisionIds(html: string): number[] {
  return [...html.matchAll(/<tr class="decision" data-id="(\d+)"/g)].map((m) => Number(m[1]));
}

/** An attribute value as the page wrote it, unescaped (the page escapes `&` in links). */
export function unescapeAttribute(value: string): string {
  return value
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}
