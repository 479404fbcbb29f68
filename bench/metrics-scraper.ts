/**
 * The Prometheus side of the benchmarks that measure the cost of metrics (bench:policy,
 * bench:milter-policy): a scraper of a /metrics page every few seconds while the rounds run, and
 * the profile of a mailgate contender with the share of its time spent in the metrics code.
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
import { Agent as HttpAgent, get as httpGet } from 'node:http';
import { join } from 'node:path';
import { fmt } from './common.js';
import { formatSummary, summariseProfile } from './cpuprofile-top.js';

/** What a Prometheus 2 server sends when it scrapes a target. */
const SCRAPE_HEADERS = {
  accept:
    'application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,' +
    'text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
  'accept-encoding': 'gzip',
  'user-agent': 'Prometheus/2.53.0',
  'x-prometheus-scrape-timeout-seconds': '10',
} as const;

/**
 * Asks a /metrics page for its text every `everyMs`, one request at a time over a kept-alive
 * connection, as Prometheus does. A server that is not there does not stop the measuring: the
 * cost measured is that of collecting on the hot path, so a failure is counted, said once on
 * stderr, and the scraping goes on.
 */
export class MetricsScraper {
  ok = 0;
  failed = 0;
  /** The size of the last page that came (compressed, when the server compresses). */
  lastBytes = 0;
  firstFailure: string | undefined;
  readonly #agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  readonly #timer: NodeJS.Timeout;
  #inFlight: Promise<void> | undefined;

  constructor(
    readonly url: string,
    readonly everyMs: number,
  ) {
    this.#timer = setInterval(() => {
      // A scrape still under way when the next is due is skipped, as Prometheus skips it.
      this.#inFlight ??= this.#scrape().finally(() => {
        this.#inFlight = undefined;
      });
    }, everyMs);
  }

  #scrape(): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (failure?: string) => {
        if (settled) return;
        settled = true;
        if (failure === undefined) this.ok++;
        else this.#fail(failure);
        resolve();
      };
      const request = httpGet(
        this.url,
        { agent: this.#agent, headers: SCRAPE_HEADERS, timeout: 10_000 },
        (response) => {
          let bytes = 0;
          response.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
          });
          response.on('end', () => {
            if (response.statusCode !== 200) return settle(`HTTP ${response.statusCode}`);
            this.lastBytes = bytes;
            settle();
          });
          response.on('error', (err) => settle(err.message));
        },
      );
      request.on('timeout', () => request.destroy(new Error('no answer within 10 s')));
      request.on('error', (err) => settle(err.message));
    });
  }

  #fail(why: string): void {
    this.failed++;
    if (this.firstFailure !== undefined) return;
    this.firstFailure = why;
    process.stderr.write(
      `  scraping ${this.url} failed (${why}); counting failures and measuring on\n`,
    );
  }

  /** What came of the scrapes, for the report. */
  describe(): string {
    const last = this.ok ? `, the last page ${fmt(this.lastBytes)} bytes` : '';
    const first = this.firstFailure ? ` (the first: ${this.firstFailure})` : '';
    return `${this.ok} ok, ${this.failed} failed${last}${first}`;
  }

  /** The line the benchmarks print under the metrics cost. */
  summary(): string {
    return (
      `mailgate-metrics scrapes of ${this.url} every ${this.everyMs / 1000} s: ${this.describe()}` +
      (this.ok === 0
        ? '; no page came, so the cost above is that of collecting alone, without serving /metrics'
        : '')
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#inFlight;
    this.#agent.destroy();
  }
}

/** The code that exists for the metrics: prom-client and our glue to it (sources or dist/). */
const METRICS_CODE =
  /node_modules\/prom-client\/|(^|[ /])src\/(observe\/metrics|serve\/metering)\.[jt]s:/;

/**
 * The busiest profile a mailgate wrote in this run under `dir/name` (node writes one per thread;
 * the module loader's thread is nearly idle), summarised; for mailgate-metrics also the share of
 * its busy time spent in the metrics code itself, by function.
 */
export function printProfile(dir: string, name: string, since: number): void {
  const own = join(dir, name);
  const files = existsSync(own) ? readdirSync(own) : [];
  const summaries = files
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(own, f))
    .filter((f) => statSync(f).mtimeMs >= since)
    .map((file) => ({ file, summary: summariseProfile(file, 30) }))
    .sort((a, b) => b.summary.busyMs - a.summary.busyMs);
  const busiest = summaries[0];
  if (!busiest) {
    console.log(`\nno ${name} profile was written to ${own}`);
    return;
  }
  console.log(`\n${name} profile ${busiest.file} (its busiest thread):`);
  console.log(formatSummary(busiest.summary));
  if (name !== 'mailgate-metrics') return;
  // Every function, so that the metrics code is summed whole, not only what made the top 30.
  const all = summariseProfile(busiest.file, Number.MAX_SAFE_INTEGER);
  const metrics = all.functions.filter((e) => METRICS_CODE.test(e.name));
  const share = metrics.reduce((sum, e) => sum + e.share, 0);
  console.log(
    `\nself time in the metrics code (prom-client, src/observe/metrics.ts, src/serve/metering.ts): ` +
      `${(100 * share).toFixed(1)}% of the busy time (builtins they call, such as performance.now, and the ` +
      'garbage they leave are counted apart); by function:',
  );
  for (const e of metrics.slice(0, 20)) {
    console.log(`  ${(100 * e.share).toFixed(1).padStart(5)}%  ${e.name}`);
  }
}
