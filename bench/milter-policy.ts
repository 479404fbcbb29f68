/**
 * bench:milter-policy — complete milter transactions per second, and latency per transaction,
 * with SPF policy on: mailgate's milter (`mailgate serve` with `[milter]` on) against Debian's
 * pyspf-milter (bench/pyspf-milter.ts), in the same run, alternating rounds, at concurrency 1
 * and 50; and mailgate with its metrics on against itself with them off.
 *
 * Contenders: `mailgate`; `mailgate-metrics`, the same configuration plus
 * `[http] listen = ["inet:PORT@127.0.0.1"]` (a free port), which turns the daemon's metrics on
 * (`metrics = true` is the default): the engine, the resolver and the store count and time what
 * they do. It has its own SQLite file, so that both start equal, and is started, warmed and
 * measured exactly like mailgate, in the same rounds. While it runs, this process asks it for
 * http://127.0.0.1:PORT/metrics every 5 s with Prometheus's request headers; a scrape that fails
 * (nothing listening, say) is counted and said once, and the measuring goes on: what is measured
 * is the cost of collecting on the hot path. `pyspf-milter`, the peer. bench/milter.ts has no
 * metrics contender: it measures the bare milter library with a handler that does nothing, and
 * without the policy engine there is nothing for the daemon's metrics to count.
 *
 * Workload (bench/milter-policy-world.ts): 1000 seeded SMTP transactions whose senders' SPF
 * gives pass (50%), fail (20%, rejected at MAIL FROM), softfail from a domain both milters accept
 * softfail from (15%), and none from a client with a verified, non-dynamic PTR (15%; mailgate
 * lets them in by its three strikes, pyspf-milter accepts none as such). One transaction is one
 * milter connection, as Postfix's smtpd makes one per SMTP session: negotiation, CONNECT (client
 * addresses in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, strings inside the protocol only),
 * HELO, MAIL FROM, RCPT TO, DATA, 8 headers, EOH, a 1.4 KB body, end of message
 * (bench/milter-policy-client.ts, with MilterClient from src/milter/testing). It is complete at
 * the milter's final answer: a reject at MAIL FROM ends it there; latency is from opening the
 * connection to that answer. At concurrency C, C such connections run at once, each starting the
 * next transaction when its last one ended.
 *
 * DNS: both milters ask one fixture DNS server process (bench/dns-fixture-process.ts, in a
 * child process, the zone of bench/milter-policy-world.ts, TTLs of an hour). pyspf-milter's DNS
 * library reads /etc/resolv.conf and asks port 53, so the benchmark runs inside a network
 * namespace of its own (bench/netns.ts): it re-runs itself there with `ip netns exec`, which
 * bind-mounts the namespace's resolv.conf (`nameserver 127.0.0.1`) over /etc/resolv.conf, and
 * starts the fixture server on 127.0.0.1:53 in there (bench/dns-fixture-on-port.ts). mailgate is
 * given the same server (`[dns] servers = ["127.0.0.1:53"]`): the same zone data from the same
 * process over the same loopback, so the same DNS latency. mailgate's milter listens on
 * 127.0.0.1 in the namespace, as its configuration says; pyspf-milter on a unix socket in the
 * run's directory, its built-in default (see bench/pyspf-milter.ts for why). The machine's
 * /etc/resolv.conf is never touched; no packet leaves the namespace. Without root (or without
 * the package, when it cannot be installed) there is no peer: the run says so loudly and
 * measures mailgate alone, against a fixture server on an ephemeral port.
 *
 * Caches warm: first an untimed pass over all 1000 transactions on each milter (its answers are
 * shown, by kind), then per concurrency an untimed warm-up round on each and the timed rounds,
 * which go round-robin (the order rotates each round), each starting at the first transaction.
 * tx/s is the median round; the ratio is the median over rounds of the ratio within the round;
 * p50 and p99 are over every transaction of the timed rounds. The metrics cost at a concurrency
 * is 1 - mailgate-metrics/mailgate, that ratio taken the same way, so that both sides of each
 * in-round ratio shared the machine's state. pyspf-milter keeps no DNS cache
 * between messages (pyspf caches within one check): every message asks the DNS server again,
 * which is how it runs in production too (behind a local caching resolver, the part the fixture
 * server plays here).
 *
 * Goals: mailgate ≥ 5x pyspf-milter's transactions/s at concurrency 50; a lower p99 than
 * pyspf-milter at both concurrencies; mailgate-metrics/mailgate ≥ 0.95 at each concurrency
 * (metrics cost at most 5 %). Each is reported met or NOT MET.
 *
 * Settings (argument or environment): --seconds=N per timed round (BENCH_SECONDS, 3),
 * --rounds=N (BENCH_ROUNDS, 5), --warmup-seconds=N (BENCH_WARMUP_SECONDS, 1),
 * --concurrency=1,50 (BENCH_CONCURRENCY), --servers=mailgate,mailgate-metrics,pyspf-milter
 * (BENCH_SERVERS; `null` adds bench/null-milter.ts, which answers every step at once: this
 * client's ceiling here),
 * --from=source|dist (BENCH_FROM, source: `mailgate serve` from the TypeScript sources through
 * test/support/cli-entry.ts; dist: bin/mailgate), --peer-helo-reject=No_Check
 * (BENCH_PEER_HELO_REJECT: pyspf-milter's HELO_reject; Fail is the shipped value),
 * --peer-socket=unix|inet (BENCH_PEER_SOCKET, unix: where pyspf-milter listens), --mailgate-socket=unix|inet
 * (BENCH_MAILGATE_SOCKET, unix: where mailgate and mailgate-metrics listen; the same transport as the peer by default),
 * --profile-dir=DIR (BENCH_PROFILE_DIR: run mailgate and mailgate-metrics under `node --cpu-prof`, each leaving its
 * profile in DIR/NAME, and print their top functions and the time spent in the metrics code), --keep (keep the
 * temporary directory), --aa=1 (BENCH_AA: an A/A run, mailgate-metrics with `metrics = false`:
 * the noise under the metrics cost), --time-limit-ms=N (BENCH_TIME_LIMIT_MS, 300000: give up, exit 1).
 * `--netns=NAME` is internal: it marks the run inside the namespace.
 *
 * For checking the harness only: --mailgate-cmd='COMMAND' (BENCH_MAILGATE_CMD) runs COMMAND as
 * both mailgate contenders instead of `mailgate serve`, with {port}, {config} and {dir} replaced
 * and a first word `node` meaning this node; it must listen on inet:{port}@127.0.0.1. The output then
 * says loudly that the mailgate figures are not mailgate's. E.g. the sample milter:
 * --mailgate-cmd='node bin/mailgate sample-milter --listen inet:{port}@127.0.0.1'.
 *
 * Exits 0 when the measurement completed, whether or not the goals are met; 1 on real errors;
 * 130 on SIGINT. The child processes, the temporary directory and the namespace are always
 * removed.
 *
 * @example
 * node --import tsx bench/milter-policy.ts --seconds=5
 * node --import tsx bench/milter-policy.ts --servers=pyspf-milter --rounds=3
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ChildServer, DnsFixture, printWarnings } from './child.js';
import {
  alternatingRounds,
  fmt,
  freePort,
  guardRun,
  machineCpuSeconds,
  mailgateConfigHead,
  median,
  names,
  serverError,
  setting,
  table,
  wholeNumbers,
} from './common.js';
import { MetricsScraper, printProfile } from './metrics-scraper.js';
import { type Outcome, oneTransaction } from './milter-policy-client.js';
import {
  buildMilterPolicyWorld,
  CASE_COUNT,
  type CaseKind,
  EXPECTED,
  KINDS,
  type MilterCase,
  RECEIVER,
  SOFTFAIL_OK_DOMAIN,
} from './milter-policy-world.js';
import {
  checkInsideNamespace,
  createNamespace,
  deleteNamespace,
  namespaceName,
  removeStaleNamespaces,
  runInNamespace,
  whyNoNamespace,
} from './netns.js';
import {
  describePeerConfig,
  HELO_REJECT_VALUES,
  type HeloReject,
  PEER_NAME,
  PEER_SOCKETS,
  type PeerProgram,
  type PeerSocket,
  peerOrWhyNot,
  startPeer,
} from './pyspf-milter.js';

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

const SERVER_NAMES = ['mailgate', 'mailgate-metrics', PEER_NAME, 'null'] as const;
/** Run unless --servers says otherwise; `null` is for information only. */
const DEFAULT_SERVERS = ['mailgate', 'mailgate-metrics', PEER_NAME] as const;
type ServerName = (typeof SERVER_NAMES)[number];
/** The two runs of `mailgate serve`: metrics off and on. */
type MailgateName = 'mailgate' | 'mailgate-metrics';
type MilterServer = ChildServer<ServerName>;

const GOALS = {
  /** mailgate/pyspf-milter transactions per second at the highest concurrency. */
  vsPeer: 5,
  /** mailgate-metrics/mailgate transactions per second at each concurrency: metrics cost ≤ 5 %. */
  metricsOn: 0.95,
} as const;

/** How often mailgate-metrics is scraped: a busy Prometheus job's interval (the default is 1 min). */
const SCRAPE_EVERY_MS = 5000;

interface Settings {
  concurrencies: number[];
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  servers: ServerName[];
  from: 'source' | 'dist';
  mailgateCmd: string | undefined;
  peerHeloReject: HeloReject;
  peerSocket: PeerSocket;
  /** Where mailgate listens: a unix socket (as the peer, by default) or TCP on loopback. */
  mailgateSocket: PeerSocket;
  /** Where the mailgate contenders leave their CPU profiles, each under its name; absolute. */
  profileDir: string | undefined;
  keep: boolean;
  timeLimitMs: number;
  /** Set in the run inside the namespace: its name. */
  netns: string | undefined;
}

function positiveNumber(name: string, env: string, fallback: number, whole = true): number {
  const text = setting(name, env, String(fallback));
  const value = Number(text);
  if (!(value > 0 && (!whole || Number.isInteger(value)))) {
    throw new Error(
      `bench:milter-policy: --${name} (${env}) must be a positive ${whole ? 'whole ' : ''}number, got ${text}`,
    );
  }
  return value;
}

function readSettings(): Settings {
  const concurrencies = wholeNumbers(
    'concurrency',
    'BENCH_CONCURRENCY',
    '1,50',
    'bench:milter-policy: --concurrency takes positive whole numbers, e.g. 1,50',
  );
  const servers = names(
    'servers',
    'BENCH_SERVERS',
    DEFAULT_SERVERS.join(','),
    SERVER_NAMES,
    'bench:milter-policy',
    { skipEmpty: true },
  );
  if (servers.length === 0) throw new Error('bench:milter-policy: --servers names no server');
  const from = setting('from', 'BENCH_FROM', 'source');
  if (from !== 'source' && from !== 'dist') {
    throw new Error(`bench:milter-policy: --from takes source or dist, got ${from}`);
  }
  const heloReject = setting('peer-helo-reject', 'BENCH_PEER_HELO_REJECT', 'No_Check');
  if (!(HELO_REJECT_VALUES as readonly string[]).includes(heloReject)) {
    throw new Error(
      `bench:milter-policy: --peer-helo-reject takes ${HELO_REJECT_VALUES.join(', ')}; got ${heloReject}`,
    );
  }
  const peerSocket = setting('peer-socket', 'BENCH_PEER_SOCKET', 'unix');
  if (!(PEER_SOCKETS as readonly string[]).includes(peerSocket)) {
    throw new Error(
      `bench:milter-policy: --peer-socket takes ${PEER_SOCKETS.join(' or ')}; got ${peerSocket}`,
    );
  }
  const mailgateSocket = setting('mailgate-socket', 'BENCH_MAILGATE_SOCKET', 'unix');
  if (!(PEER_SOCKETS as readonly string[]).includes(mailgateSocket)) {
    throw new Error(
      `bench:milter-policy: --mailgate-socket takes ${PEER_SOCKETS.join(' or ')}; got ${mailgateSocket}`,
    );
  }
  const profileDir = setting('profile-dir', 'BENCH_PROFILE_DIR', '');
  return {
    concurrencies,
    seconds: positiveNumber('seconds', 'BENCH_SECONDS', 3, false),
    rounds: positiveNumber('rounds', 'BENCH_ROUNDS', 5),
    warmupSeconds: positiveNumber('warmup-seconds', 'BENCH_WARMUP_SECONDS', 1, false),
    servers,
    from,
    mailgateCmd: setting('mailgate-cmd', 'BENCH_MAILGATE_CMD', '').trim() || undefined,
    peerHeloReject: heloReject as HeloReject,
    peerSocket: peerSocket as PeerSocket,
    mailgateSocket: mailgateSocket as PeerSocket,
    // Absolute: the run inside the namespace, and the servers, have working directories of their own.
    profileDir: profileDir ? resolve(profileDir) : undefined,
    keep: process.argv.includes('--keep'),
    timeLimitMs: positiveNumber('time-limit-ms', 'BENCH_TIME_LIMIT_MS', 300_000),
    netns:
      process.argv
        .slice(2)
        .find((a) => a.startsWith('--netns='))
        ?.slice('--netns='.length) || undefined,
  };
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** Set by SIGINT or SIGTERM: the errors of transactions cut short are no news then. */
let interrupted = false;
const LOUD = '!'.repeat(100);

function loud(lines: string[]): string {
  return [LOUD, ...lines.map((l) => `!!! ${l}`), LOUD].join('\n');
}

// ---------------------------------------------------------------------------------------------
// mailgate

/**
 * The configuration of the brief, with `[log] level = "warn"` (no line per message); with
 * `httpPort`, `[http]` listens there, which turns the metrics on. Each contender has its own
 * SQLite file.
 */
function mailgateConfig(
  name: MailgateName,
  listen: string,
  dir: string,
  dnsAddress: string,
  httpPort?: number,
): string {
  return [
    ...mailgateConfigHead('bench/milter-policy.ts', RECEIVER, dnsAddress, join(dir, `${name}.db`)),
    '',
    '[policyd]',
    'enabled = false',
    '',
    '[milter]',
    'enabled = true',
    `listen = ["${listen}"]`,
    // The peer checks neither CSA nor a localhost PTR: the same policy leaves both out here.
    'csa = "off"',
    'reject_ptr_localhost = false',
    '',
    '[spf]',
    `accept_softfail = ["${SOFTFAIL_OK_DOMAIN}"]`,
    '',
    '[cbv]',
    'enabled = false',
    '',
    '[greylist]',
    'enabled = false',
    '',
    ...(httpPort === undefined
      ? []
      : [
          '[http]',
          `listen = ["inet:${httpPort}@127.0.0.1"]`,
          ...(AA_RUN ? ['metrics = false'] : []),
          '',
        ]),
  ].join('\n');
}

/** The command that runs the mailgate side, and what to call it in the output. */
function mailgateCommand(
  settings: Settings,
  port: number,
  config: string,
  dir: string,
  profileDir: string | undefined,
): { command: string; args: string[]; what: string } {
  if (settings.mailgateCmd) {
    const words = settings.mailgateCmd
      .split(/\s+/)
      .filter(Boolean)
      .map((w) =>
        w
          .replaceAll('{port}', String(port))
          .replaceAll('{config}', config)
          .replaceAll('{dir}', dir),
      );
    const [first, ...args] = words;
    return {
      command: first === 'node' ? process.execPath : first!,
      args,
      what: `STAND-IN (--mailgate-cmd): ${words.join(' ')}`,
    };
  }
  const entry =
    settings.from === 'dist'
      ? [join(REPO, 'bin', 'mailgate')]
      : ['--import', 'tsx', join(REPO, 'test', 'support', 'cli-entry.ts')];
  const nodeFlags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return {
    command: process.execPath,
    args: [...nodeFlags, ...entry, 'serve', '--config', config],
    what: `mailgate serve ${settings.from === 'dist' ? '(bin/mailgate, dist/)' : '(TypeScript sources, tsx)'}`,
  };
}

async function startMailgate(
  settings: Settings,
  dir: string,
  dnsAddress: string,
  name: MailgateName,
  httpPort?: number,
): Promise<{ server: MilterServer; what: string }> {
  const port = await freePort();
  const socketPath = join(dir, `${name}.sock`);
  // A stand-in command listens where {port} says; mailgate itself where --mailgate-socket says.
  const unix = settings.mailgateSocket === 'unix' && !settings.mailgateCmd;
  const config = join(dir, `${name}.toml`);
  writeFileSync(
    config,
    mailgateConfig(
      name,
      unix ? `unix:${socketPath}` : `inet:${port}@127.0.0.1`,
      dir,
      dnsAddress,
      httpPort,
    ),
  );
  const profileDir = settings.profileDir ? join(settings.profileDir, name) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const { command, args, what } = mailgateCommand(settings, port, config, dir, profileDir);
  const server = await ChildServer.start<ServerName>({
    name,
    command,
    args,
    cwd: REPO,
    // `serve` logs "started" at info, which `warn` leaves out: the socket says when it is ready.
    ready: unix ? { path: socketPath } : { port },
    readyTimeoutMs: 30_000,
    // Writing a CPU profile on the way out takes a while.
    stopGraceMs: profileDir ? 20_000 : 5000,
  });
  return { server, what };
}

// ---------------------------------------------------------------------------------------------
// Rounds

/** Endings counted by kind, with a few examples of unexpected ones. */
class Tally {
  readonly byKind = new Map<CaseKind, Map<string, number>>();
  readonly headers = new Map<CaseKind, number>();
  readonly unexpected = new Map<string, number>();
  total = 0;

  add(c: MilterCase, outcome: Outcome): void {
    this.total++;
    const counts = this.byKind.get(c.kind) ?? new Map<string, number>();
    this.byKind.set(c.kind, counts);
    counts.set(outcome.ending, (counts.get(outcome.ending) ?? 0) + 1);
    if (outcome.spfHeader) this.headers.set(c.kind, (this.headers.get(c.kind) ?? 0) + 1);
    if (outcome.ending !== EXPECTED[c.kind]) {
      const key = `${c.kind} → ${outcome.ending}${outcome.reply ? ` (${outcome.reply.slice(0, 90)})` : ''}`;
      if (this.unexpected.size < 6 || this.unexpected.has(key)) {
        this.unexpected.set(key, (this.unexpected.get(key) ?? 0) + 1);
      }
    }
  }

  merge(other: Tally): void {
    for (const [kind, counts] of other.byKind) {
      const mine = this.byKind.get(kind) ?? new Map<string, number>();
      this.byKind.set(kind, mine);
      for (const [ending, n] of counts) mine.set(ending, (mine.get(ending) ?? 0) + n);
    }
    for (const [kind, n] of other.headers)
      this.headers.set(kind, (this.headers.get(kind) ?? 0) + n);
    for (const [key, n] of other.unexpected) {
      if (this.unexpected.size < 6 || this.unexpected.has(key)) {
        this.unexpected.set(key, (this.unexpected.get(key) ?? 0) + n);
      }
    }
    this.total += other.total;
  }

  count(predicate: (kind: CaseKind, ending: string) => boolean): number {
    let n = 0;
    for (const [kind, counts] of this.byKind) {
      for (const [ending, k] of counts) if (predicate(kind, ending)) n += k;
    }
    return n;
  }

  text(kind: CaseKind): string {
    const counts = [...(this.byKind.get(kind) ?? new Map<string, number>())].sort(
      (a, b) => b[1] - a[1],
    );
    const parts = counts.map(([ending, n]) => `${ending} ${n}`);
    const headers = this.headers.get(kind) ?? 0;
    return `${parts.join(', ') || 'none'}; SPF header ${headers}`;
  }
}

interface Round {
  server: ServerName;
  concurrency: number;
  tx: number;
  seconds: number;
  perSecond: number;
  latencies: number[];
  tally: Tally;
  dnsQueries: number;
  /** CPU during the round, 1 = one core. */
  serverCpu: number | undefined;
  dnsCpu: number;
  clientCpu: number;
  /** CPU of every other process on the machine during the round; undefined off Linux. */
  otherCpu: number | undefined;
}

/**
 * Transactions for `seconds` (or, without `seconds`, each case once) on `concurrency`
 * connections at a time, starting at the first case.
 */
async function round(
  server: MilterServer,
  cases: MilterCase[],
  concurrency: number,
  seconds: number | undefined,
  dns: DnsFixture,
): Promise<Round> {
  const tally = new Tally();
  const latencies: number[] = [];
  let next = 0;
  const dns0 = await dns.stats();
  const cpu0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const machine0 = machineCpuSeconds();
  const start = performance.now();
  const end = seconds === undefined ? Number.POSITIVE_INFINITY : start + seconds * 1000;
  const more = () => (seconds === undefined ? next < cases.length : performance.now() < end);
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (more()) {
          const c = cases[next++ % cases.length]!;
          const outcome = await oneTransaction(server.listen, c);
          latencies.push(outcome.ms);
          tally.add(c, outcome);
        }
      }),
    );
  } catch (err) {
    throw serverError(server, err);
  }
  const elapsed = (performance.now() - start) / 1000;
  const cpu1 = server.cpuSeconds();
  const client = process.cpuUsage(client0);
  const machine1 = machineCpuSeconds();
  const dns1 = await dns.stats();
  if (server.exited) throw new Error(`${server.name} exited during a round:\n${server.said}`);
  const serverCpu = cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / elapsed;
  const dnsCpu = (dns1.cpuMicros - dns0.cpuMicros) / 1e6 / elapsed;
  const clientCpu = (client.user + client.system) / 1e6 / elapsed;
  const otherCpu =
    machine0 === undefined || machine1 === undefined || serverCpu === undefined
      ? undefined
      : Math.max(0, (machine1 - machine0) / elapsed - serverCpu - dnsCpu - clientCpu);
  return {
    server: server.name,
    concurrency,
    tx: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    latencies,
    tally,
    dnsQueries: dns1.queries - dns0.queries,
    serverCpu,
    dnsCpu,
    clientCpu,
    otherCpu,
  };
}

/** The p-th percentile by nearest rank (p in 0–100). */
function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** Fails the run when a server answered mostly tempfail; warns when answers were unexpected. */
function checkAnswers(name: string, what: string, tally: Tally, warnings: string[]): void {
  if (tally.total === 0) throw new Error(`${name} completed no transaction in ${what}`);
  // The null milter accepts everything by design.
  if (name === 'null') return;
  const tempfails = tally.count((_, ending) => ending.startsWith('tempfail'));
  const examples = [...tally.unexpected].map(([k, n]) => `${n}× ${k}`).join('; ');
  if (tempfails * 2 >= tally.total) {
    throw new Error(
      `${name} answered ${tempfails} of ${tally.total} transactions in ${what} with a tempfail (${examples}): ` +
        'a failed benchmark (DNS not reached?), not a fast one',
    );
  }
  const unexpected = tally.count((kind, ending) => ending !== EXPECTED[kind]);
  if (unexpected > 0) {
    warnings.push(
      `${name}, ${what}: ${unexpected} of ${tally.total} transactions did not end as the policy says: ${examples}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics on vs off

/**
 * The metrics cost: mailgate-metrics/mailgate per concurrency against its goal, with the ratios
 * of every round (their spread is the noise the median has to beat), the server CPU per
 * transaction of each, which tells a cost in CPU from one in waiting, and p99 off and on; then
 * plainly whether it was met.
 */
function printMetricsCost(
  concurrencies: number[],
  of: (name: ServerName, c: number) => Round[],
  ratio: (a: ServerName, b: ServerName, c: number) => number | undefined,
  p: (name: ServerName, c: number, q: number) => number | undefined,
  scraper: MetricsScraper | undefined,
  standIn: boolean,
): void {
  const usPerTx = (name: ServerName, c: number) => {
    const mine = of(name, c);
    const cpuSeconds = mine.reduce((s, x) => s + (x.serverCpu ?? Number.NaN) * x.seconds, 0);
    return (cpuSeconds / mine.reduce((s, x) => s + x.tx, 0)) * 1e6;
  };
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${fmt(100 * x, 1)} %`;
  const allowed = fmt(100 * (1 - GOALS.metricsOn));
  console.log(
    'Metrics cost: mailgate-metrics/mailgate tx/s (metrics on / off), the median of in-round ratios; cost = 1 - ratio',
  );
  const rows: string[][] = [
    ['goal', 'measured', 'in-round ratios', 'server µs/tx off → on', 'p99 ms off → on', 'met'],
  ];
  const missed: string[] = [];
  for (const c of concurrencies) {
    const r = ratio('mailgate-metrics', 'mailgate', c);
    const on = of('mailgate-metrics', c);
    const off = of('mailgate', c);
    const offUs = usPerTx('mailgate', c);
    const onUs = usPerTx('mailgate-metrics', c);
    const met = r !== undefined && r >= GOALS.metricsOn;
    if (!met) missed.push(`C=${c}`);
    rows.push([
      `C=${c}: mailgate-metrics ≥ ${GOALS.metricsOn}x mailgate (metrics cost at most ${allowed} %)`,
      r === undefined ? '-' : `${fmt(r, 3)}x (cost ${fmt(100 * (1 - r), 1)} %)`,
      on.map((x, i) => fmt(x.perSecond / off[i]!.perSecond, 2)).join(' / '),
      `${fmt(offUs)} → ${fmt(onUs)} (${pct(onUs / offUs - 1)})`,
      `${fmt(p('mailgate', c, 99), 2)} → ${fmt(p('mailgate-metrics', c, 99), 2)}`,
      standIn ? 'not judged' : met ? 'met' : 'NOT MET',
    ]);
  }
  console.log(table(rows, [0, 2]));
  if (standIn) {
    console.log('Metrics cost goal not judged: both sides were the stand-in, not mailgate.');
  } else {
    console.log(
      missed.length === 0
        ? `Metrics cost goal met at ${concurrencies.map((c) => `C=${c}`).join(' and ')}: metrics on costs at most ${allowed} % of tx/s.`
        : `Metrics cost goal NOT MET at ${missed.join(' and ')}: with metrics on, mailgate completes fewer than ${GOALS.metricsOn}x the transactions per second it completes with them off (more than ${allowed} % lost).`,
    );
  }
  if (scraper) console.log(scraper.summary());
}

// ---------------------------------------------------------------------------------------------
// The run (inside the namespace when there is a peer)

interface RunOptions {
  peer: PeerProgram | undefined;
  /** Said before anything else, loudly when it is bad news. */
  notes: string[];
  /** The fixture DNS server's port: 53 inside the namespace, else an ephemeral one. */
  dnsPort: number | undefined;
}

async function runBenchmark(settings: Settings, options: RunOptions): Promise<number> {
  const cpuList = cpus();
  const startedAt = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-bench-milter-policy-'));
  // The peer drops to its own user after start-up; it reads nothing here after that.
  chmodSync(dir, 0o755);
  const servers: MilterServer[] = [];
  let dns: DnsFixture | undefined;
  let scraper: MetricsScraper | undefined;
  let cleaned = false;
  const removeDir = () => {
    if (!settings.keep) rmSync(dir, { recursive: true, force: true });
  };
  const killAll = () => {
    for (const s of servers) s.killNow();
    dns?.killNow();
    if (!cleaned) removeDir();
  };
  process.once('exit', killAll);
  const stopAll = async () => {
    await scraper?.stop();
    await Promise.all([...servers.map((s) => s.stop()), dns?.stop()]);
  };
  const release = guardRun('bench:milter-policy', settings.timeLimitMs, stopAll, () => {
    interrupted = true;
  });

  try {
    const world = buildMilterPolicyWorld();
    const { cases } = world;
    const zoneFile = join(dir, 'zone.json');
    writeFileSync(zoneFile, JSON.stringify(world.zone));

    console.log(
      'mailgate milter SPF-policy benchmark: one message per milter connection, Postfix-like MTA client (MilterClient)',
    );
    console.log(
      `node ${process.version}, ${cpuList[0]?.model.trim() ?? 'unknown CPU'} × ${cpuList.length}, ${process.platform}/${process.arch}`,
    );
    const kindCounts = KINDS.map(
      (k) => `${k} ${cases.filter((c) => c.kind === k).length} (${EXPECTED[k]})`,
    );
    console.log(
      `workload: ${CASE_COUNT} seeded transactions, SPF ${kindCounts.join(', ')}; ` +
        `softfail only from ${SOFTFAIL_OK_DOMAIN} (configured accepted); none from verified non-dynamic PTRs with a HELO that does not resolve; ` +
        'mailgate with CSA and the localhost-PTR check off (the peer has neither), Received-SPF and Authentication-Results (SPF for MAIL FROM and HELO) on',
    );
    console.log(
      'transaction: negotiation, CONNECT (client in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), HELO, MAIL FROM, RCPT TO, ' +
        "DATA, 8 headers, EOH, 1.4 KB body, end of message, with Postfix's macros; complete at the final answer " +
        '(a reject at MAIL FROM ends it); latency: connection opened → final answer',
    );
    console.log(
      `client: this process, C connections at once, C = ${settings.concurrencies.join(' and ')}; ` +
        `an untimed pass over all ${CASE_COUNT} on each milter, then per C a ${settings.warmupSeconds} s warm-up round each and ` +
        `${settings.rounds} timed rounds × ${settings.seconds} s each, round-robin; tx/s: median round; ratio: median of in-round ratios; ` +
        'p50/p99: all transactions of the timed rounds',
    );

    dns = await DnsFixture.start(
      options.dnsPort === undefined ? { zoneFile } : { zoneFile, port: options.dnsPort },
    );
    if (settings.netns) {
      console.log(
        `DNS: one fixture DNS server process at ${dns.address} inside network namespace ${settings.netns} (lo only), ` +
          `for both milters: pyspf-milter finds it through /etc/resolv.conf there (ip netns exec bind-mounts ` +
          `/etc/netns/${settings.netns}/resolv.conf, "nameserver 127.0.0.1"), mailgate through [dns] servers; ` +
          'the same zone, process and loopback path for both',
      );
    } else {
      console.log(`DNS: fixture DNS server process at ${dns.address} (mailgate only)`);
    }
    const notes = [...options.notes];
    const names: ServerName[] = [];
    const profiled = (name: MailgateName) =>
      settings.profileDir && !settings.mailgateCmd
        ? `; under --cpu-prof, profile in ${join(settings.profileDir, name)}`
        : '';
    const standIn =
      settings.mailgateCmd !== undefined &&
      (settings.servers.includes('mailgate') || settings.servers.includes('mailgate-metrics'));
    if (settings.servers.includes('mailgate')) {
      const { server, what } = await startMailgate(settings, dir, dns.address, 'mailgate');
      servers.push(server);
      names.push('mailgate');
      if (standIn) {
        notes.push(
          loud([
            `the mailgate side is a ${what}`,
            'its figures are NOT mailgate figures: this run only checks the harness',
          ]),
        );
      } else {
        notes.push(
          `mailgate      ${what}: [milter] on, [policyd] off, [spf] accept_softfail = ["${SOFTFAIL_OK_DOMAIN}"], ` +
            '[cbv] off, [greylist] off, SQLite store, [log] level warn; everything else as shipped' +
            profiled('mailgate'),
        );
      }
    }
    if (settings.servers.includes('mailgate-metrics')) {
      const httpPort = await freePort();
      const { server } = await startMailgate(
        settings,
        dir,
        dns.address,
        'mailgate-metrics',
        httpPort,
      );
      servers.push(server);
      names.push('mailgate-metrics');
      scraper = new MetricsScraper(`http://127.0.0.1:${httpPort}/metrics`, SCRAPE_EVERY_MS);
      notes.push(
        `mailgate-metrics  ${standIn ? 'the same STAND-IN' : 'the same as mailgate'} plus [http] listen = ["inet:${httpPort}@127.0.0.1"] ` +
          `(${METRICS_SAID}), its own SQLite file; ${scraper.url} scraped every ` +
          `${SCRAPE_EVERY_MS / 1000} s with Prometheus request headers from start to end` +
          profiled('mailgate-metrics'),
      );
    }
    if (settings.servers.includes(PEER_NAME) && options.peer) {
      const port = settings.peerSocket === 'inet' ? await freePort() : 0;
      servers.push(
        await startPeer({
          program: options.peer,
          dir,
          socket: settings.peerSocket,
          port,
          heloReject: settings.peerHeloReject,
          authservId: RECEIVER,
        }),
      );
      names.push(PEER_NAME);
      notes.push(
        `pyspf-milter  ${options.peer.path} (${options.peer.versions}), as shipped but: ${describePeerConfig(settings.peerHeloReject, settings.peerSocket)}`,
      );
    }
    if (settings.servers.includes('null')) {
      servers.push(
        await ChildServer.start<ServerName>({
          name: 'null',
          command: process.execPath,
          args: [
            '--import',
            'tsx',
            fileURLToPath(new URL('./null-milter.ts', import.meta.url)),
            '--listen=inet:0@127.0.0.1',
            '--protocol=0',
            '--exit-on-stdin-eof',
          ],
          cwd: REPO,
          ready: 'listening line',
          readyTimeoutMs: 20_000,
        }),
      );
      names.push('null');
      notes.push(
        'null          bench/null-milter.ts: answers every step at once, no SPF, no DNS (for information: the ceiling ' +
          'of this client on this machine; its answers do not follow the policy)',
      );
    }
    for (const note of notes) console.log(note);
    for (const s of servers) console.log(`  ${s.name.padEnd(16)} pid ${s.pid} on ${s.listen}`);
    console.log('');

    const warnings: string[] = [];

    // The first pass: every transaction once on each; fills mailgate's cache.
    const firstPass = new Map<ServerName, Round>();
    for (const server of servers) {
      const pass = await round(server, cases, 10, undefined, dns);
      firstPass.set(server.name, pass);
      checkAnswers(server.name, 'the first pass', pass.tally, warnings);
      process.stderr.write(
        `  first pass ${server.name}: ${fmt(pass.seconds, 1)} s, ${fmt(pass.dnsQueries)} DNS queries\n`,
      );
    }
    if (names.includes(PEER_NAME) && firstPass.get(PEER_NAME)!.dnsQueries === 0) {
      throw new Error(
        'pyspf-milter asked the fixture DNS server nothing in the first pass: it is not using it',
      );
    }

    // The timed rounds.
    const fixture = dns;
    const rounds = await alternatingRounds(servers, settings, 'tx/s', (server, c, seconds) =>
      round(server, cases, c, seconds, fixture),
    );

    // Answers.
    console.log('First pass (each transaction once), final answers by SPF kind:');
    const kindRows: string[][] = [['kind', 'n', 'expected', ...names]];
    for (const kind of KINDS) {
      kindRows.push([
        kind,
        String(cases.filter((c) => c.kind === kind).length),
        EXPECTED[kind],
        ...names.map((n) => firstPass.get(n)!.tally.text(kind)),
      ]);
    }
    console.log(table(kindRows, [0, 2, ...names.map((_, i) => i + 3)]));
    console.log('');

    const of = (name: ServerName, c: number) =>
      rounds.filter((x) => x.server === name && x.concurrency === c);
    for (const c of settings.concurrencies) {
      for (const name of names) {
        const tally = new Tally();
        for (const x of of(name, c)) tally.merge(x.tally);
        checkAnswers(name, `the timed rounds at C=${c}`, tally, warnings);
      }
    }

    // Figures.
    const rate = (name: ServerName, c: number) =>
      of(name, c).length ? median(of(name, c).map((x) => x.perSecond)) : undefined;
    const sortedLatencies = (name: ServerName, c: number) =>
      of(name, c)
        .flatMap((x) => x.latencies)
        .sort((a, b) => a - b);
    const p = (name: ServerName, c: number, q: number) => percentile(sortedLatencies(name, c), q);
    const ratio = (a: ServerName, b: ServerName, c: number) => {
      const ours = of(a, c);
      const theirs = of(b, c);
      if (!ours.length || !theirs.length) return undefined;
      return median(ours.map((x, i) => x.perSecond / theirs[i]!.perSecond));
    };
    const rows: string[][] = [['server', 'C', 'tx/s', 'p50 ms', 'p99 ms', 'rounds tx/s']];
    for (const c of settings.concurrencies) {
      for (const name of names) {
        rows.push([
          name,
          String(c),
          fmt(rate(name, c)),
          fmt(p(name, c, 50), 2),
          fmt(p(name, c, 99), 2),
          of(name, c)
            .map((x) => fmt(x.perSecond))
            .join(' / '),
        ]);
      }
    }
    console.log(table(rows, [0, 5]));
    console.log('');

    const both = names.includes('mailgate') && names.includes(PEER_NAME);
    if (both) {
      const ratioRows: string[][] = [
        ['mailgate/pyspf-milter', ...settings.concurrencies.map((c) => `C=${c}`)],
      ];
      ratioRows.push([
        'tx/s',
        ...settings.concurrencies.map((c) => `${fmt(ratio('mailgate', PEER_NAME, c), 2)}x`),
      ]);
      for (const q of [50, 99]) {
        ratioRows.push([
          `p${q} latency`,
          ...settings.concurrencies.map((c) => {
            const a = p('mailgate', c, q);
            const b = p(PEER_NAME, c, q);
            return a === undefined || b === undefined ? '-' : `${fmt(a / b, 2)}x`;
          }),
        ]);
      }
      console.log(table(ratioRows));
      console.log('');
    }
    if (names.includes('null')) {
      const nullRows: string[][] = [['tx/s ratio', ...settings.concurrencies.map((c) => `C=${c}`)]];
      for (const name of names.filter((n) => n !== 'null')) {
        nullRows.push([
          `${name}/null`,
          ...settings.concurrencies.map((c) => `${fmt(ratio(name, 'null', c), 2)}x`),
        ]);
      }
      console.log(table(nullRows));
      console.log('');
    }

    const detail: string[][] = [
      [
        'server',
        'C',
        'DNS q/tx',
        'server CPU',
        'server µs/tx',
        'DNS server CPU',
        'client CPU',
        'other CPU',
      ],
    ];
    for (const c of settings.concurrencies) {
      for (const name of names) {
        const mine = of(name, c);
        const tx = mine.reduce((s, x) => s + x.tx, 0);
        const cpu = mine.map((x) => x.serverCpu).filter((x): x is number => x !== undefined);
        const cpuSeconds = mine.reduce((s, x) => s + (x.serverCpu ?? Number.NaN) * x.seconds, 0);
        const avg = (f: (x: Round) => number) =>
          `${fmt((100 * mine.reduce((s, x) => s + f(x), 0)) / mine.length)}%`;
        detail.push([
          name,
          String(c),
          fmt(mine.reduce((s, x) => s + x.dnsQueries, 0) / tx, 2),
          cpu.length ? `${fmt((100 * cpu.reduce((s, x) => s + x, 0)) / cpu.length)}%` : '-',
          fmt((cpuSeconds / tx) * 1e6),
          avg((x) => x.dnsCpu),
          avg((x) => x.clientCpu),
          mine.some((x) => x.otherCpu === undefined) ? '-' : avg((x) => x.otherCpu!),
        ]);
      }
    }
    console.log(table(detail));
    console.log(
      'DNS q/tx: queries the fixture server received per transaction in the timed rounds; CPU: share of one core\n' +
        '(server: its process, all threads; DNS server: the fixture process; client: this process, which drives\n' +
        'every milter; other: every other process on the machine, and time stolen by the hypervisor); server µs/tx:\n' +
        `its CPU time per transaction. ${cpuList.length} cores in all.`,
    );
    console.log('');

    // Goals.
    const high = Math.max(...settings.concurrencies);
    const goals: string[][] = [['goal', 'measured', 'met']];
    const verdict = (ok: boolean | undefined) =>
      ok === undefined ? 'not judged' : ok ? 'met' : 'NOT MET';
    const unjudged = !both
      ? `not measured: no ${names.includes('mailgate') ? 'peer' : 'mailgate'}`
      : standIn
        ? 'stand-in, not mailgate'
        : undefined;
    const vs = both ? ratio('mailgate', PEER_NAME, high) : undefined;
    goals.push([
      `C=${high}: mailgate tx/s ≥ ${GOALS.vsPeer}x pyspf-milter's`,
      vs === undefined ? (unjudged ?? '-') : `${fmt(vs, 2)}x${unjudged ? ` (${unjudged})` : ''}`,
      unjudged ? 'not judged' : verdict(vs === undefined ? undefined : vs >= GOALS.vsPeer),
    ]);
    for (const c of settings.concurrencies) {
      const ours = both ? p('mailgate', c, 99) : undefined;
      const theirs = both ? p(PEER_NAME, c, 99) : undefined;
      const measured =
        ours === undefined || theirs === undefined
          ? (unjudged ?? '-')
          : `${fmt(ours, 2)} ms vs ${fmt(theirs, 2)} ms${unjudged ? ` (${unjudged})` : ''}`;
      goals.push([
        `C=${c}: mailgate p99 < pyspf-milter's`,
        measured,
        unjudged || ours === undefined || theirs === undefined
          ? 'not judged'
          : verdict(ours < theirs),
      ]);
    }
    console.log(table(goals));
    const missed = goals.slice(1).filter((g) => g[2] === 'NOT MET').length;
    if (!unjudged) {
      console.log(
        missed === 0
          ? 'All goals met.'
          : `${missed} of ${goals.length - 1} goals NOT MET: pyspf-milter wins ${missed === 1 ? 'that one' : 'those'}.`,
      );
    }

    if (both) {
      // The client, mailgate and the DNS server share the machine: say what the goal leaves
      // mailgate, so that a miss caused by the client is told from one caused by mailgate.
      const need = GOALS.vsPeer * (rate(PEER_NAME, high) ?? Number.NaN);
      const mine = of('mailgate', high);
      const tx = mine.reduce((sum, x) => sum + x.tx, 0);
      const perTx = (f: (x: Round) => number) =>
        (mine.reduce((sum, x) => sum + f(x) * x.seconds, 0) / tx) * 1e6;
      const budget = (cpuList.length / need) * 1e6;
      const clientUs = perTx((x) => x.clientCpu);
      console.log(
        `note: ${GOALS.vsPeer}x pyspf-milter at C=${high} is ${fmt(need)} tx/s, ${fmt(budget)} µs of CPU per transaction ` +
          `on ${cpuList.length} cores for client, milter and DNS server together; this client used ${fmt(clientUs)} µs ` +
          `per mailgate transaction, which leaves mailgate ${fmt(budget - clientUs)} µs (it used ${fmt(perTx((x) => x.serverCpu ?? Number.NaN))})`,
      );
    }

    if (names.includes('mailgate') && names.includes('mailgate-metrics')) {
      console.log('');
      printMetricsCost(settings.concurrencies, of, ratio, p, scraper, standIn);
    }

    const others = rounds.map((x) => x.otherCpu).filter((x): x is number => x !== undefined);
    const busiest = others.length ? Math.max(...others) : 0;
    if (busiest > 0.25) {
      warnings.push(
        `other processes used up to ${fmt(busiest * 100)}% of a core during a round (mean ${fmt(
          (100 * others.reduce((sum, x) => sum + x, 0)) / others.length,
        )}%): the machine was shared, so these figures (ratios too) are less trustworthy; run again when it is quiet`,
      );
    }

    printWarnings(
      warnings,
      servers.filter(
        (s) =>
          !(
            ((s.name === 'mailgate' || s.name === 'mailgate-metrics') && standIn) ||
            s.name === 'null'
          ),
      ),
    );
    const bad = options.notes.filter((n) => n.startsWith(LOUD));
    if (bad.length || standIn) {
      console.log('');
      for (const n of bad) console.log(n);
      if (standIn)
        console.log(loud(['the mailgate side was a STAND-IN: no mailgate figures above']));
    }
    return 0;
  } finally {
    release();
    if (!interrupted) await stopAll();
    if (settings.profileDir && !settings.mailgateCmd && !interrupted) {
      for (const name of ['mailgate', 'mailgate-metrics'] as const) {
        if (servers.some((s) => s.name === name))
          printProfile(settings.profileDir, name, startedAt);
      }
    }
    process.off('exit', killAll);
    removeDir();
    cleaned = true;
    if (settings.keep) console.log(`kept ${dir}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Where to run: in a namespace of our own when there is a peer

async function main(): Promise<number> {
  const settings = readSettings();
  if (settings.netns) {
    // The run inside the namespace: the peer was found (or installed) outside.
    checkInsideNamespace(settings.netns);
    const peer = settings.servers.includes(PEER_NAME) ? peerOrWhyNot() : undefined;
    if (peer && 'missing' in peer) throw new Error(`inside the namespace: ${peer.missing}`);
    return runBenchmark(settings, { peer, notes: [], dnsPort: 53 });
  }

  const notes: string[] = [];
  let peer: PeerProgram | undefined;
  if (settings.servers.includes(PEER_NAME)) {
    const found = peerOrWhyNot();
    const why = 'missing' in found ? found.missing : whyNoNamespace();
    if (why) {
      notes.push(
        loud([
          'PEER MISSING: pyspf-milter is not measured.',
          why,
          'pyspf-milter must run in a network namespace of ours to reach the fixture DNS server,',
          'so it needs the package and root. Measuring mailgate ALONE: no comparison, no goal judged.',
        ]),
      );
    } else {
      peer = found as PeerProgram;
    }
  }
  if (!peer) {
    const rest = settings.servers.filter((s) => s !== PEER_NAME);
    if (rest.length === 0) {
      for (const n of notes) console.log(n);
      throw new Error('nothing to measure: the peer is missing and --servers names no other');
    }
    return runBenchmark(
      { ...settings, servers: rest },
      { peer: undefined, notes, dnsPort: undefined },
    );
  }

  for (const stale of removeStaleNamespaces()) {
    console.log(`removed network namespace ${stale}, left by an earlier run that was killed`);
  }
  const name = namespaceName();
  createNamespace(name);
  const cleanup = () => deleteNamespace(name);
  process.once('exit', cleanup);
  try {
    const script = fileURLToPath(import.meta.url);
    return await runInNamespace(name, process.execPath, [
      ...process.execArgv,
      script,
      ...process.argv.slice(2),
      `--netns=${name}`,
    ]);
  } finally {
    deleteNamespace(name);
    process.off('exit', cleanup);
  }
}

main().then(
  // Exit outright: after an error, steps still in flight must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    if (interrupted) process.exit(130);
    console.error(
      `bench:milter-policy failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
