/**
 * npm run bench:policy — Postfix policy-delegation requests per second over loopback, with a warm
 * DNS cache, against four servers in the same run, each in its own child process:
 *
 *   mailgate  `mailgate serve` with a configuration written for the run: SQLite store, a block
 *             list and a white list served by the fixture DNS server, the same whitelist files as
 *             postgrey, log level `warn`; everything else as shipped, so the decision log (one
 *             store row per request) stays on (from the TypeScript sources by default, or the
 *             built bin/mailgate with --from=dist);
 *   mailgate-metrics  the same configuration plus `[http] listen = ["inet:PORT@127.0.0.1"]` (a
 *             free port), which turns the daemon's metrics on (`metrics = true` is the default):
 *             every store operation, DNS lookup and greylisting check is counted and timed. Its own
 *             SQLite file, so that both start equal; started, warmed and measured exactly like
 *             mailgate, in the same rounds. While it runs, this process asks it for
 *             http://127.0.0.1:PORT/metrics every 5 s with Prometheus's request headers; a scrape
 *             that fails (nothing listening, say) is counted and said once, and the measuring
 *             goes on: what is measured is the cost of collecting on the hot path;
 *   postgrey  Debian's postgrey (Perl, Berkeley DB), installed when missing and running as root,
 *             with its own database directory, the same whitelist files, `--delay` equal to
 *             mailgate's greylisting period, `--lookup-by-host` (mailgate keys by address
 *             too, except that a sender whose SPF passes is keyed by its domain, as shipped),
 *             `-q` (no line per request, like mailgate at `warn`);
 *   trivial   a server that reads each request up to its empty line and answers DUNNO
 *             (bench/policy-null-server.ts): the ceiling on this machine.
 *
 * The fixture DNS server (bench/dns-fixture-process.ts) runs in its own child process with the
 * zone of bench/policy-world.ts. The client is this process: C connections (C = 1 and 50), each
 * sending one request and waiting for its reply before the next, as Postfix's smtpd does. Every
 * server gets the same requests in the same order (bench/policy-world.ts: 1200 requests at RCPT
 * from 300 clients, some on the block list, some on the white list, mixed HELO quality).
 *
 * First a pass over the whole set on each server: it fills mailgate's DNS cache and creates every
 * triplet (its answers are shown per client kind). Then, per concurrency, an untimed warm-up
 * round on each server and timed rounds that go round-robin over the servers (the order rotates
 * each round); each round starts at the first request. req/s is the median round; a ratio is the
 * median over rounds of the ratio within the round. The metrics cost at a concurrency is
 * 1 - mailgate-metrics/mailgate, that ratio taken the same way, so that both sides of each
 * in-round ratio shared the machine's state; the goal is a ratio ≥ 0.95 (metrics cost at most
 * 5 %), and the output says plainly when it is missed. Answers are counted by action word; a
 * server that answers mostly errors (a 4.3.0 temporary failure) fails the run. The timed rounds replay
 * known triplets, each within seconds of the last time (real retries come minutes apart), which
 * the output says: mailgate writes nothing for attempts of a greylisted triplet under a minute
 * apart, postgrey writes on every request.
 *
 * Settings (argument or environment): --seconds=N per timed round (BENCH_SECONDS, 3),
 * --rounds=N (BENCH_ROUNDS, 5), --warmup-seconds=N (BENCH_WARMUP_SECONDS, 1),
 * --only=c1|c50 (BENCH_ONLY), --servers=mailgate,mailgate-metrics,postgrey,trivial
 * (BENCH_SERVERS), --from=source|dist (BENCH_FROM, source), --profile-dir=DIR
 * (BENCH_PROFILE_DIR: run mailgate and mailgate-metrics under `node --cpu-prof`, each leaving its
 * profile in DIR/NAME, and print their top functions and the time spent in the metrics code),
 * --keep (keep the temporary directory), --aa=1 (BENCH_AA: an A/A run, mailgate-metrics with
 * `metrics = false`: the noise under the metrics cost), --time-limit-ms=N (BENCH_TIME_LIMIT_MS,
 * 300000).
 *
 * Exits 0 when the measurement completed, whether or not the goals are met; 1 on real errors.
 * The child processes are always stopped (SIGTERM, then SIGKILL).
 *
 * @example
 * node --import tsx bench/policy.ts --only=c50 --seconds=5
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ChildServer, DnsFixture, printWarnings } from './child.js';
import {
  alternatingRounds,
  fmt,
  freePort,
  installDebianPackage,
  mailgateConfigHead,
  median,
  names,
  serverError,
  setting,
  table,
} from './common.js';
import { MetricsScraper, printProfile } from './metrics-scraper.js';
import {
  buildPolicyWorld,
  CLIENT_COUNT,
  CLIENT_KINDS,
  DNSBL_ZONE,
  DNSWL_ZONE,
  type PolicyRequest,
  REQUEST_COUNT,
} from './policy-world.js';

/**
 * An A/A run (--aa=1, BENCH_AA=1): mailgate-metrics keeps its HTTP listener and its scrapes but
 * counts nothing (`metrics = false`), so its ratio to mailgate shows how far two equal daemons
 * differ here: the noise under the metrics cost.
 */
const AA_RUN = setting('aa', 'BENCH_AA', '0') === '1';
/** How the output describes mailgate-metrics' metrics. */
const METRICS_SAID = AA_RUN
  ? 'metrics = false: an A/A run, whose ratio is the noise, not a cost'
  : 'metrics on, metrics = true by default';
// ---------------------------------------------------------------------------------------------
// Settings

function positiveNumber(name: string, env: string, fallback: number, whole = true): number {
  const text = setting(name, env, String(fallback));
  const value = Number(text);
  if (!(value > 0 && (!whole || Number.isInteger(value)))) {
    throw new Error(`bench:policy: --${name} (${env}) must be a positive number, got ${text}`);
  }
  return value;
}

const SERVER_NAMES = ['mailgate', 'mailgate-metrics', 'postgrey', 'trivial'] as const;
type ServerName = (typeof SERVER_NAMES)[number];
/** The two runs of `mailgate serve`: metrics off and on. */
type MailgateName = 'mailgate' | 'mailgate-metrics';
/** A server under test, in its child process. */
type PolicyServer = ChildServer<ServerName>;

const CONCURRENCIES = { c1: 1, c50: 50 } as const;

interface Settings {
  concurrencies: number[];
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  servers: ServerName[];
  from: 'source' | 'dist';
  profileDir: string | undefined;
  keep: boolean;
}

function readSettings(): Settings {
  const only = setting('only', 'BENCH_ONLY', '');
  if (only !== '' && !(only in CONCURRENCIES)) {
    throw new Error(`bench:policy: --only takes c1 or c50, got ${only}`);
  }
  const servers = names(
    'servers',
    'BENCH_SERVERS',
    SERVER_NAMES.join(','),
    SERVER_NAMES,
    'bench:policy',
  );
  const from = setting('from', 'BENCH_FROM', 'source');
  if (from !== 'source' && from !== 'dist') {
    throw new Error(`bench:policy: --from takes source or dist, got ${from}`);
  }
  return {
    concurrencies: only ? [CONCURRENCIES[only as keyof typeof CONCURRENCIES]] : [1, 50],
    seconds: positiveNumber('seconds', 'BENCH_SECONDS', 3, false),
    rounds: positiveNumber('rounds', 'BENCH_ROUNDS', 5),
    warmupSeconds: positiveNumber('warmup-seconds', 'BENCH_WARMUP_SECONDS', 1, false),
    servers,
    from,
    profileDir: setting('profile-dir', 'BENCH_PROFILE_DIR', '') || undefined,
    keep: process.argv.includes('--keep'),
  };
}

const GOALS = {
  /** mailgate/postgrey at each concurrency. */
  vsPostgrey: 5,
  /** mailgate/trivial at each concurrency. */
  vsTrivial: 0.5,
  /** mailgate-metrics/mailgate at each concurrency: metrics cost at most 5 %. */
  metricsOn: 0.95,
} as const;

/** How often mailgate-metrics is scraped: a busy Prometheus job's interval (the default is 1 min). */
const SCRAPE_EVERY_MS = 5000;

/** mailgate's default greylisting period (29 min), given to postgrey as its --delay. */
const GREYLIST_DELAY_SECONDS = 29 * 60;

const REPO = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// The servers

/**
 * `mailgate serve`; as `mailgate-metrics`, with `[http]` listening on `httpPort`, which is what
 * turns the daemon's metrics on. Each has its own configuration and SQLite file.
 */
async function startMailgate(
  settings: Settings,
  dir: string,
  dnsAddress: string,
  name: MailgateName,
  httpPort?: number,
): Promise<PolicyServer> {
  const port = await freePort();
  const config = join(dir, `${name}.toml`);
  const db = join(dir, name === 'mailgate' ? 'bench.db' : `${name}.db`);
  writeFileSync(
    config,
    [
      ...mailgateConfigHead('bench/policy.ts', 'mx.bench.test', dnsAddress, db),
      '',
      '[policyd]',
      `listen = ["inet:${port}@127.0.0.1"]`,
      // Greylisting alone, as postgrey does it: no HELO, SPF or call-back policy.
      'policy = false',
      '',
      '[milter]',
      'enabled = false',
      '',
      '[greylist]',
      `dnsbl = ["${DNSBL_ZONE}"]`,
      `dnswl = ["${DNSWL_ZONE}"]`,
      `whitelist_clients = "${join(dir, 'whitelist_clients')}"`,
      `whitelist_recipients = "${join(dir, 'whitelist_recipients')}"`,
      'decision_log = true',
      '',
      ...(httpPort === undefined
        ? []
        : [
            '[http]',
            `listen = ["inet:${httpPort}@127.0.0.1"]`,
            ...(AA_RUN ? ['metrics = false'] : []),
            '',
          ]),
    ].join('\n'),
  );
  const nodeFlags = settings.profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${join(settings.profileDir, name)}`]
    : [];
  const entry =
    settings.from === 'dist'
      ? [join(REPO, 'bin', 'mailgate')]
      : ['--import', 'tsx', join(REPO, 'test', 'support', 'cli-entry.ts')];
  return ChildServer.start<ServerName>({
    name,
    command: process.execPath,
    args: [...nodeFlags, ...entry, 'serve', '--config', config],
    cwd: REPO,
    ready: { port },
    readyTimeoutMs: 30_000,
    // Writing a CPU profile on the way out takes a while.
    stopGraceMs: settings.profileDir ? 20_000 : 5000,
  });
}

/** Whether a source file under src/ is newer than the built command. */
function distIsStale(): boolean {
  const built = join(REPO, 'dist', 'src', 'cli', 'index.js');
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return newer(path);
      return entry.name.endsWith('.ts') && statSync(path).mtimeMs > builtAt;
    });
  return newer(join(REPO, 'src'));
}

async function startTrivial(): Promise<PolicyServer> {
  const port = await freePort();
  const script = fileURLToPath(new URL('./policy-null-server.ts', import.meta.url));
  return ChildServer.start({
    name: 'trivial',
    command: process.execPath,
    args: ['--import', 'tsx', script, `--port=${port}`, '--exit-on-stdin-eof'],
    cwd: REPO,
    ready: { port },
    readyTimeoutMs: 20_000,
  });
}

function findPostgrey(): string | undefined {
  for (const path of ['/usr/sbin/postgrey', '/usr/local/sbin/postgrey']) {
    if (existsSync(path)) return path;
  }
  const which = spawnSync('sh', ['-c', 'command -v postgrey'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

function postgreyVersion(path: string): string {
  const run = spawnSync(path, ['--version'], { encoding: 'utf8' });
  return (run.stdout || run.stderr || '').trim().split('\n')[0] ?? 'postgrey';
}

/** postgrey's path, after installing it as root when missing; or why it is skipped. */
function postgreyOrWhyNot(): { path: string } | { skipped: string } {
  const found = findPostgrey();
  if (found) return { path: found };
  // The package would start a system postgrey on port 10023; noStart stops it.
  const why = installDebianPackage('postgrey', 'postgrey (Debian package postgrey)', {
    noStart: true,
  });
  if (why) return { skipped: why };
  const path = findPostgrey();
  return path ? { path } : { skipped: 'postgrey installed, but not found on PATH' };
}

/** A user and group that exist, for postgrey to drop to when started as root. */
function postgreyAccount(): { user: string; group: string; uid: number; gid: number } {
  for (const [user, group] of [
    ['postgrey', 'postgrey'],
    ['nobody', 'nogroup'],
  ] as const) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('getent', ['group', group], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) {
      return { user, group, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.split(':')[2]) };
    }
  }
  throw new Error('bench:policy: neither the postgrey user nor nobody/nogroup exists');
}

async function startPostgrey(path: string, dir: string): Promise<PolicyServer> {
  const port = await freePort();
  const dbdir = join(dir, 'postgrey');
  mkdirSync(dbdir);
  const args = [
    `--inet=127.0.0.1:${port}`,
    `--dbdir=${dbdir}`,
    `--delay=${GREYLIST_DELAY_SECONDS}`,
    '--lookup-by-host',
    `--whitelist-clients=${join(dir, 'whitelist_clients')}`,
    `--whitelist-recipients=${join(dir, 'whitelist_recipients')}`,
    '--hostname=mx.bench.test',
    '--quiet',
  ];
  if (process.getuid?.() === 0) {
    // postgrey refuses to run as root; it drops to --user, which must be able to write the dbdir.
    const account = postgreyAccount();
    chmodSync(dir, 0o755);
    chownSync(dbdir, account.uid, account.gid);
    args.push(`--user=${account.user}`, `--group=${account.group}`);
  }
  return ChildServer.start({
    name: 'postgrey',
    command: path,
    args,
    cwd: REPO,
    ready: { port },
    readyTimeoutMs: 30_000,
  });
}

// ---------------------------------------------------------------------------------------------
// The MTA side: Postfix-style policy connections

const END = Buffer.from('\n\n');

/** One connection, one request at a time. */
class PolicyConnection {
  readonly #socket: Socket;
  #pending: Buffer | undefined;
  #resolve: ((reply: string) => void) | undefined;
  #reject: ((err: Error) => void) | undefined;
  #failure: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('the server closed the connection')));
  }

  static open(port: number): Promise<PolicyConnection> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host: '127.0.0.1' });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new PolicyConnection(socket));
      });
    });
  }

  /** Send one request; resolves with the reply's text (its lines, without the empty line). */
  ask(request: Buffer): Promise<string> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#socket.write(request);
    });
  }

  #onData(chunk: Buffer): void {
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    const end = buf.indexOf(END);
    if (end < 0) {
      this.#pending = buf;
      return;
    }
    if (end + 2 < buf.length) {
      this.#fail(new Error(`a reply nobody asked for: ${JSON.stringify(buf.toString('latin1'))}`));
      return;
    }
    this.#pending = undefined;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (!resolve) {
      this.#fail(new Error(`a reply nobody asked for: ${JSON.stringify(buf.toString('latin1'))}`));
      return;
    }
    resolve(buf.toString('latin1', 0, end));
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const reject = this.#reject;
    this.#resolve = undefined;
    this.#reject = undefined;
    reject?.(err);
  }

  close(): void {
    this.#failure ??= new Error('closed');
    this.#socket.destroy();
  }
}

const REPLY_CLASSES = ['DUNNO', 'PREPEND', 'DEFER_IF_PERMIT', 'error', 'other'] as const;
type ReplyClass = (typeof REPLY_CLASSES)[number];
type ReplyCounts = Record<ReplyClass, number>;

const noCounts = (): ReplyCounts => ({
  DUNNO: 0,
  PREPEND: 0,
  DEFER_IF_PERMIT: 0,
  error: 0,
  other: 0,
});

/**
 * A reply's class: its action word, or `error` for the temporary failures a policy server answers
 * when it could not decide (mailgate's `error_action` and store `fail_action` say 4.3.0).
 */
function classify(reply: string): ReplyClass {
  if (!reply.startsWith('action=')) return 'other';
  const action = reply.slice(7);
  if (/\b4\.3\.0\b|temporary (policy )?failure|internal error/i.test(action)) return 'error';
  const space = action.indexOf(' ');
  const word = (space < 0 ? action : action.slice(0, space)).split('\n')[0]!.toUpperCase();
  return word === 'DUNNO' || word === 'PREPEND' || word === 'DEFER_IF_PERMIT' ? word : 'other';
}

/** Replies counted by class, with a few examples of the unusual ones. */
class Tally {
  counts = noCounts();
  readonly examples = new Map<string, number>();
  add(reply: string): ReplyClass {
    const cls = classify(reply);
    this.counts[cls]++;
    if ((cls === 'error' || cls === 'other') && this.examples.size < 5) {
      this.examples.set(reply, (this.examples.get(reply) ?? 0) + 1);
    }
    return cls;
  }
  get total(): number {
    return REPLY_CLASSES.reduce((s, c) => s + this.counts[c], 0);
  }
}

/** Every request once, `concurrency` connections at a time; the classes by request index. */
async function fullPass(
  server: PolicyServer,
  requests: PolicyRequest[],
  concurrency: number,
): Promise<{ classes: ReplyClass[]; tally: Tally; seconds: number }> {
  const classes: ReplyClass[] = new Array(requests.length);
  const tally = new Tally();
  let next = 0;
  const start = performance.now();
  const connections = await Promise.all(
    Array.from({ length: concurrency }, () => PolicyConnection.open(server.port)),
  ).catch((err: unknown) => {
    throw serverError(server, err);
  });
  try {
    await Promise.all(
      connections.map(async (connection) => {
        while (next < requests.length) {
          const i = next++;
          classes[i] = tally.add(await connection.ask(requests[i]!.bytes));
        }
      }),
    );
  } catch (err) {
    throw serverError(server, err);
  } finally {
    for (const c of connections) c.close();
  }
  return { classes, tally, seconds: (performance.now() - start) / 1000 };
}

interface Round {
  server: ServerName;
  concurrency: number;
  requests: number;
  seconds: number;
  perSecond: number;
  tally: Tally;
  /** Server CPU during the round, 1 = one core. */
  serverCpu: number | undefined;
  clientCpu: number;
  dnsQueries: number;
}

/** Connect, then send requests for `seconds`, starting at the first request of the set. */
async function timedRound(
  server: PolicyServer,
  requests: PolicyRequest[],
  concurrency: number,
  seconds: number,
  dns: DnsFixture,
): Promise<Round> {
  const connections = await Promise.all(
    Array.from({ length: concurrency }, () => PolicyConnection.open(server.port)),
  ).catch((err: unknown) => {
    throw serverError(server, err);
  });
  const tally = new Tally();
  let next = 0;
  let done = 0;
  const queries0 = await dns.queries();
  const cpu0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  // A server that stops answering fails the round instead of hanging it.
  const hang = setTimeout(
    () => {
      for (const c of connections) c.close();
    },
    seconds * 1000 + 15_000,
  );
  try {
    await Promise.all(
      connections.map(async (connection) => {
        while (performance.now() < end) {
          const i = next++ % requests.length;
          tally.add(await connection.ask(requests[i]!.bytes));
          done++;
        }
      }),
    );
  } catch (err) {
    throw serverError(server, err);
  } finally {
    clearTimeout(hang);
    for (const c of connections) c.close();
  }
  const elapsed = (performance.now() - start) / 1000;
  const cpu1 = server.cpuSeconds();
  const client = process.cpuUsage(client0);
  const queries1 = await dns.queries();
  if (server.exited) throw new Error(`${server.name} exited during a round:\n${server.said}`);
  return {
    server: server.name,
    concurrency,
    requests: done,
    seconds: elapsed,
    perSecond: done / elapsed,
    tally,
    serverCpu: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / elapsed,
    clientCpu: (client.user + client.system) / 1e6 / elapsed,
    dnsQueries: queries1 - queries0,
  };
}

// ---------------------------------------------------------------------------------------------
// Scraping mailgate-metrics

// ---------------------------------------------------------------------------------------------
// Printing

const SHORT: Record<ReplyClass, string> = {
  DUNNO: 'dunno',
  PREPEND: 'prepend',
  DEFER_IF_PERMIT: 'defer',
  error: 'ERROR',
  other: 'other',
};

function countsText(counts: ReplyCounts): string {
  const parts = REPLY_CLASSES.filter((c) => counts[c] > 0).map((c) => `${SHORT[c]} ${counts[c]}`);
  return parts.length ? parts.join(', ') : 'none';
}

/** Fails the run when a server's answers are mostly errors; warns when some are. */
function checkAnswers(name: string, what: string, tally: Tally, warnings: string[]): void {
  const total = tally.total;
  const bad = tally.counts.error + tally.counts.other;
  const examples = [...tally.examples].map(([r, n]) => `${n}× ${JSON.stringify(r)}`).join('; ');
  if (total === 0) throw new Error(`${name} gave no answers in ${what}`);
  if (tally.counts.error * 2 >= total) {
    throw new Error(
      `${name} answered ${tally.counts.error} of ${total} requests in ${what} with errors (${examples}): a failed benchmark, not a fast one`,
    );
  }
  if (bad > 0)
    warnings.push(`${name}, ${what}: ${bad} of ${total} answers unexpected: ${examples}`);
}

/**
 * The metrics cost: mailgate-metrics/mailgate per concurrency against its goal, with the ratios
 * of every round (their spread is the noise the median has to beat) and the server CPU per
 * request of each, which tells a cost in CPU from one in waiting; then plainly whether it was met.
 */
function printMetricsCost(
  concurrencies: number[],
  of: (name: ServerName, c: number) => Round[],
  ratio: (a: ServerName, b: ServerName, c: number) => number | undefined,
  scraper: MetricsScraper | undefined,
): void {
  const usPerRequest = (name: ServerName, c: number) => {
    const mine = of(name, c);
    const cpuSeconds = mine.reduce((s, x) => s + (x.serverCpu ?? Number.NaN) * x.seconds, 0);
    return (cpuSeconds / mine.reduce((s, x) => s + x.requests, 0)) * 1e6;
  };
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${fmt(100 * x, 1)} %`;
  console.log(
    'Metrics cost: mailgate-metrics/mailgate req/s (metrics on / off), the median of in-round ratios; cost = 1 - ratio',
  );
  const rows: string[][] = [
    ['goal', 'measured', 'in-round ratios', 'server µs/req off → on', 'met'],
  ];
  const missed: string[] = [];
  for (const c of concurrencies) {
    const r = ratio('mailgate-metrics', 'mailgate', c);
    const on = of('mailgate-metrics', c);
    const off = of('mailgate', c);
    const offUs = usPerRequest('mailgate', c);
    const onUs = usPerRequest('mailgate-metrics', c);
    const met = r !== undefined && r >= GOALS.metricsOn;
    if (!met) missed.push(`C=${c}`);
    rows.push([
      `C=${c}: mailgate-metrics ≥ ${GOALS.metricsOn}x mailgate (metrics cost at most ${fmt(100 * (1 - GOALS.metricsOn))} %)`,
      r === undefined ? '-' : `${fmt(r, 3)}x (cost ${fmt(100 * (1 - r), 1)} %)`,
      on.map((x, i) => fmt(x.perSecond / off[i]!.perSecond, 2)).join(' / '),
      `${fmt(offUs)} → ${fmt(onUs)} (${pct(onUs / offUs - 1)})`,
      met ? 'pass' : 'MISS',
    ]);
  }
  console.log(table(rows, [0, 2]));
  console.log(
    missed.length === 0
      ? `Metrics cost goal met at ${concurrencies.map((c) => `C=${c}`).join(' and ')}: metrics on costs at most ${fmt(100 * (1 - GOALS.metricsOn))} % of req/s.`
      : `Metrics cost goal MISSED at ${missed.join(' and ')}: with metrics on, mailgate answers fewer than ${GOALS.metricsOn}x the requests per second it answers with them off (more than ${fmt(100 * (1 - GOALS.metricsOn))} % lost).`,
  );
  if (scraper) console.log(scraper.summary());
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const settings = readSettings();
  const startedAt = Date.now();
  const limitMs = positiveNumber('time-limit-ms', 'BENCH_TIME_LIMIT_MS', 300_000);
  const cpuList = cpus();
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-bench-policy-'));
  const servers: PolicyServer[] = [];
  let dns: DnsFixture | undefined;
  let scraper: MetricsScraper | undefined;
  const killAll = () => {
    for (const s of servers) s.killNow();
    dns?.killNow();
  };
  process.once('exit', killAll);
  const onSignal = () => process.exit(130);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchdog = setTimeout(() => {
    console.error(`bench:policy: still running after ${limitMs} ms; giving up`);
    process.exit(1);
  }, limitMs);
  watchdog.unref();

  try {
    const world = buildPolicyWorld();
    const { requests } = world;
    writeFileSync(join(dir, 'zone.json'), JSON.stringify(world.zone));
    writeFileSync(join(dir, 'whitelist_clients'), world.whitelistClients, { mode: 0o644 });
    writeFileSync(join(dir, 'whitelist_recipients'), world.whitelistRecipients, { mode: 0o644 });
    if (settings.profileDir) mkdirSync(settings.profileDir, { recursive: true });

    console.log(
      'mailgate policy benchmark: Postfix policy delegation over loopback, warm DNS cache',
    );
    console.log(
      `node ${process.version}, ${cpuList[0]?.model.trim() ?? 'unknown CPU'} × ${cpuList.length}, ${process.platform}/${process.arch}`,
    );
    console.log(
      `requests: ${REQUEST_COUNT} at RCPT as Postfix 3.7 sends them, ${CLIENT_COUNT} clients ` +
        `(kinds: ${CLIENT_KINDS.map((k) => `${k} ${requests.filter((r) => r.kind === k).length}`).join(', ')}), ` +
        'each request its own triplet; the same requests in the same order for every server',
    );
    console.log(
      `client: this process, C connections each sending one request and awaiting its reply; ` +
        `C = ${settings.concurrencies.join(' and ')}; ${settings.rounds} timed rounds × ${settings.seconds} s per server ` +
        `after a ${settings.warmupSeconds} s warm-up round each, round-robin; req/s: median round; ratio: median of in-round ratios`,
    );

    dns = await DnsFixture.start({ zoneFile: join(dir, 'zone.json') });
    const notes: string[] = [];
    const names: ServerName[] = [];
    const profiled = (name: MailgateName) =>
      settings.profileDir
        ? `; under --cpu-prof, profile in ${join(settings.profileDir, name)}`
        : '';
    const anyMailgate =
      settings.servers.includes('mailgate') || settings.servers.includes('mailgate-metrics');
    if (anyMailgate && settings.from === 'dist' && distIsStale()) {
      notes.push(
        'mailgate  WARNING: dist/ is older than src/; `npm run build` measures the current code',
      );
    }
    if (settings.servers.includes('mailgate')) {
      servers.push(await startMailgate(settings, dir, dns.address, 'mailgate'));
      names.push('mailgate');
      notes.push(
        `mailgate  ${settings.from === 'dist' ? 'bin/mailgate (dist/)' : 'from the TypeScript sources (tsx)'} serve: ` +
          `SQLite store (WAL), DNS lists ${DNSBL_ZONE} and ${DNSWL_ZONE} at ${dns.address}, [log] level warn; ` +
          'decision logging to the store stays on (decision_log = true, one row per request), as shipped' +
          profiled('mailgate'),
      );
    }
    if (settings.servers.includes('mailgate-metrics')) {
      const httpPort = await freePort();
      servers.push(await startMailgate(settings, dir, dns.address, 'mailgate-metrics', httpPort));
      names.push('mailgate-metrics');
      scraper = new MetricsScraper(`http://127.0.0.1:${httpPort}/metrics`, SCRAPE_EVERY_MS);
      notes.push(
        `mailgate-metrics  the same configuration plus [http] listen = ["inet:${httpPort}@127.0.0.1"] (${METRICS_SAID}` +
          `), its own SQLite file; ${scraper.url} scraped every ${SCRAPE_EVERY_MS / 1000} s ` +
          'with Prometheus request headers from start to end' +
          profiled('mailgate-metrics'),
      );
    }
    if (settings.servers.includes('postgrey')) {
      const found = postgreyOrWhyNot();
      if ('skipped' in found) {
        notes.push(`postgrey  SKIPPED: ${found.skipped}`);
      } else {
        servers.push(await startPostgrey(found.path, dir));
        names.push('postgrey');
        notes.push(
          `postgrey  ${postgreyVersion(found.path)} (${found.path}): Berkeley DB, --delay=${GREYLIST_DELAY_SECONDS} ` +
            "(mailgate's period), --lookup-by-host, auto-whitelisting after 5 as shipped, --quiet",
        );
      }
    }
    if (settings.servers.includes('trivial')) {
      servers.push(await startTrivial());
      names.push('trivial');
      notes.push('trivial   reads up to the empty line, answers action=DUNNO (the ceiling)');
    }
    notes.push(
      `both greylisters read the same whitelist files (${world.whitelistClients.split('\n').filter((l) => l && !l.startsWith('#')).length} client entries, postmaster@ and abuse@)`,
    );
    notes.push(
      `timed rounds replay the same ${REQUEST_COUNT} triplets, so each recurs within seconds (real retries come minutes apart): ` +
        'mailgate takes attempts of a greylisted triplet less than a minute apart as one and writes nothing for them, ' +
        'postgrey updates its database on every request',
    );
    for (const note of notes) console.log(note);
    for (const s of servers)
      console.log(`  ${s.name.padEnd(16)} pid ${s.pid} on 127.0.0.1:${s.port}`);
    console.log('');

    const warnings: string[] = [];

    // The first pass: fills the DNS cache and creates every triplet.
    const firstPass = new Map<ServerName, ReplyClass[]>();
    const dnsBefore = await dns.queries();
    for (const server of servers) {
      const dnsStart = await dns.queries();
      const pass = await fullPass(server, requests, 10);
      firstPass.set(server.name, pass.classes);
      checkAnswers(server.name, 'the first pass', pass.tally, warnings);
      process.stderr.write(
        `  first pass ${server.name}: ${fmt(pass.seconds, 1)} s, ${countsText(pass.tally.counts)}, ` +
          `${(await dns.queries()) - dnsStart} DNS queries\n`,
      );
    }
    const firstDnsQueries = (await dns.queries()) - dnsBefore;

    // The timed rounds.
    const fixture = dns;
    const rounds = await alternatingRounds(servers, settings, 'req/s', (server, c, seconds) =>
      timedRound(server, requests, c, seconds, fixture),
    );

    // Answers.
    console.log(
      `First pass (new triplets; ${firstDnsQueries} DNS queries in all), answers by client kind:`,
    );
    const kindRows: string[][] = [['kind', 'requests', ...names]];
    for (const kind of CLIENT_KINDS) {
      const idx = requests.flatMap((r, i) => (r.kind === kind ? [i] : []));
      const row = [kind, String(idx.length)];
      for (const name of names) {
        const counts = noCounts();
        for (const i of idx) counts[firstPass.get(name)![i]!]++;
        row.push(countsText(counts));
      }
      kindRows.push(row);
    }
    console.log(table(kindRows, [0, ...names.map((_, i) => i + 2)]));
    console.log('');

    const of = (name: ServerName, concurrency: number) =>
      rounds.filter((x) => x.server === name && x.concurrency === concurrency);
    console.log('Timed rounds (known triplets), answers:');
    const answerRows: string[][] = [
      ['server', 'C', ...REPLY_CLASSES.map((c) => SHORT[c]), 'DNS queries'],
    ];
    for (const c of settings.concurrencies) {
      for (const name of names) {
        const tally = new Tally();
        for (const round of of(name, c)) {
          for (const cls of REPLY_CLASSES) tally.counts[cls] += round.tally.counts[cls];
          for (const [r, n] of round.tally.examples) {
            if (tally.examples.size < 5) tally.examples.set(r, (tally.examples.get(r) ?? 0) + n);
          }
        }
        checkAnswers(name, `the timed rounds at C=${c}`, tally, warnings);
        answerRows.push([
          name,
          String(c),
          ...REPLY_CLASSES.map((cls) => fmt(tally.counts[cls])),
          fmt(of(name, c).reduce((s, x) => s + x.dnsQueries, 0)),
        ]);
      }
    }
    console.log(table(answerRows));
    console.log('');

    // Figures.
    const rate = (name: ServerName, c: number) =>
      of(name, c).length ? median(of(name, c).map((x) => x.perSecond)) : undefined;
    /** a/b: the median over rounds of the ratio within a round. */
    const ratio = (a: ServerName, b: ServerName, c: number) => {
      const ours = of(a, c);
      const theirs = of(b, c);
      if (!ours.length || !theirs.length) return undefined;
      return median(ours.map((x, i) => x.perSecond / theirs[i]!.perSecond));
    };
    const rows: string[][] = [
      ['server', 'C', 'req/s', 'rounds', 'server CPU', 'server µs/req', 'client CPU'],
    ];
    for (const c of settings.concurrencies) {
      for (const name of names) {
        const mine = of(name, c);
        const reqs = mine.reduce((s, x) => s + x.requests, 0);
        const cpus = mine.map((x) => x.serverCpu).filter((x): x is number => x !== undefined);
        const cpuSeconds = mine.reduce((s, x) => s + (x.serverCpu ?? Number.NaN) * x.seconds, 0);
        rows.push([
          name,
          String(c),
          fmt(rate(name, c)),
          mine.map((x) => fmt(x.perSecond)).join(' / '),
          cpus.length ? `${fmt((100 * cpus.reduce((s, x) => s + x, 0)) / cpus.length)}%` : '-',
          fmt((cpuSeconds / reqs) * 1e6),
          `${fmt((100 * mine.reduce((s, x) => s + x.clientCpu, 0)) / mine.length)}%`,
        ]);
      }
    }
    console.log(table(rows, [0, 3]));
    console.log(
      'server CPU: share of one core during the rounds (its process, all threads); server µs/req: its CPU time\n' +
        `per request; client CPU: this process, which drives every server. ${cpuList.length} cores in all.`,
    );
    console.log('');

    const ratioRows: string[][] = [['ratio', ...settings.concurrencies.map((c) => `C=${c}`)]];
    for (const other of ['postgrey', 'trivial'] as const) {
      if (!names.includes('mailgate') || !names.includes(other)) continue;
      ratioRows.push([
        `mailgate/${other}`,
        ...settings.concurrencies.map((c) => `${fmt(ratio('mailgate', other, c), 2)}x`),
      ]);
    }
    if (names.includes('mailgate') && names.includes('mailgate-metrics')) {
      ratioRows.push([
        'mailgate-metrics/mailgate',
        ...settings.concurrencies.map(
          (c) => `${fmt(ratio('mailgate-metrics', 'mailgate', c), 2)}x`,
        ),
      ]);
    }
    if (names.includes('postgrey') && names.includes('trivial')) {
      ratioRows.push([
        'postgrey/trivial',
        ...settings.concurrencies.map((c) => `${fmt(ratio('postgrey', 'trivial', c), 2)}x`),
      ]);
    }
    if (ratioRows.length > 1) {
      console.log(table(ratioRows));
      console.log('');
    }

    const goals: string[][] = [['goal', 'measured', 'met']];
    for (const c of settings.concurrencies) {
      const vsPostgrey = names.includes('mailgate') ? ratio('mailgate', 'postgrey', c) : undefined;
      goals.push([
        `C=${c}: mailgate ≥ ${GOALS.vsPostgrey}x postgrey`,
        vsPostgrey === undefined ? 'skipped' : `${fmt(vsPostgrey, 2)}x`,
        vsPostgrey === undefined ? '-' : vsPostgrey >= GOALS.vsPostgrey ? 'pass' : 'MISS',
      ]);
      const vsTrivial = names.includes('mailgate') ? ratio('mailgate', 'trivial', c) : undefined;
      goals.push([
        `C=${c}: mailgate ≥ ${GOALS.vsTrivial}x trivial`,
        vsTrivial === undefined ? 'skipped' : `${fmt(vsTrivial, 2)}x`,
        vsTrivial === undefined ? '-' : vsTrivial >= GOALS.vsTrivial ? 'pass' : 'MISS',
      ]);
    }
    console.log(table(goals));
    // Both goals at once ask the trivial server to be 2 x 5 = 10x postgrey. Where it is less,
    // the postgrey goal asks mailgate for this share of a server that does nothing; say so.
    if (names.includes('postgrey') && names.includes('trivial')) {
      for (const c of settings.concurrencies) {
        const ceiling = ratio('postgrey', 'trivial', c);
        if (ceiling === undefined || ceiling * GOALS.vsPostgrey <= GOALS.vsTrivial) continue;
        console.log(
          `note: at C=${c} the trivial server is ${fmt(1 / ceiling, 2)}x postgrey here, so ` +
            `${GOALS.vsPostgrey}x postgrey means ${fmt(ceiling * GOALS.vsPostgrey, 2)}x the trivial server` +
            (ceiling * GOALS.vsPostgrey >= 1
              ? ' (more than a server that answers without reading)'
              : ''),
        );
      }
    }

    if (names.includes('mailgate') && names.includes('mailgate-metrics')) {
      console.log('');
      printMetricsCost(settings.concurrencies, of, ratio, scraper);
    }

    printWarnings(
      warnings,
      servers.filter((s) => s.name !== 'trivial'),
    );
    return 0;
  } finally {
    clearTimeout(watchdog);
    await scraper?.stop();
    await Promise.all([...servers.map((s) => s.stop()), dns?.stop()]);
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (settings.profileDir) {
      for (const name of ['mailgate', 'mailgate-metrics'] as const) {
        if (servers.some((s) => s.name === name))
          printProfile(settings.profileDir, name, startedAt);
      }
    }
    if (settings.keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  // Exit outright: after an error, requests still in flight must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      `bench:policy failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
