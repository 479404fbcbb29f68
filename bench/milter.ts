/**
 * npm run bench:milter — complete milter transactions per second against three milters in the
 * same run, each a no-op in its own child process (so that the client's CPU is not theirs):
 *
 *   mailgate  createMilterServer with a handler that declares only what a no-op needs (one `eom`
 *             callback), so negotiation asks the MTA to leave out every other step
 *             (bench/mailgate-noop-milter.ts);
 *   pymilter  a Milter.Base subclass with the usual callbacks returning CONTINUE, run by
 *             Milter.runmilter (bench/pymilter_noop.py, Debian's python3-milter);
 *   null      a bare node server with its own framing that answers every step at once and
 *             negotiates like a plain milter, every step sent and answered (bench/null-milter.ts):
 *             the ceiling on this machine, where the client shares the cores;
 *
 * and, for information (the goals are about the three above), two that compare like with like:
 *
 *   mailgate-full  the mailgate no-op with a callback for every step, so that it has the
 *             conversation `null` has (every step sent and awaited): mailgate-full/null is the
 *             library's cost per step, which the round trips saved by negotiation hide;
 *   null-lean the null server negotiating exactly what the mailgate no-op negotiated, so that
 *             mailgate/null-lean is the library's cost for that short conversation.
 *
 * A transaction is one message as Postfix 3.7 plays it, one step at a time, each answered step
 * awaited before the next is sent: per connection the negotiation (version 6, actions 0x1FF,
 * protocol 0x1FFFFF), CONNECT and HELO, then 10 messages of MAIL, 2 RCPT, DATA, 10 headers, EOH,
 * a 20 KB body and end of message, each followed by an ABORT; macros go with each step sent, with
 * Postfix's default macro lists. The MTA side is MilterClient from src/milter/testing. Round trips
 * per transaction count the replies the client waited for (negotiation included).
 *
 * Rounds of a fixed duration go round-robin over the servers (the order rotates each round, so
 * with as many rounds as servers each server runs once in each position), after a discarded
 * warm-up round each; tx/s is the median round, and a ratio is the median over rounds of the
 * ratio within the round. The whole run takes about a minute.
 *
 * Settings (argument or environment): --concurrency=1,50 (BENCH_CONCURRENCY), --rounds=N
 * (BENCH_ROUNDS, 5), --round-ms=N (BENCH_ROUND_MS, 1200), --warmup-ms=N (BENCH_WARMUP_MS, 600),
 * --messages=N per connection (BENCH_MESSAGES, 10),
 * --only=mailgate,pymilter,null,mailgate-full,null-lean (BENCH_ONLY; mailgate is always run), --profile-dir=DIR (BENCH_PROFILE_DIR: run the mailgate milter under
 * `node --cpu-prof` and leave its .cpuprofile there), --time-limit-ms=N (BENCH_TIME_LIMIT_MS,
 * 170000: give up, exit 1).
 *
 * Exits 0 when the measurement completed, whether or not the goals are met; 1 on real errors.
 * The child processes are always stopped (SIGTERM, then SIGKILL).
 *
 * @example
 * node --import tsx bench/milter.ts --concurrency=50 --only=mailgate,null
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Protocol } from '../src/milter/constants.js';
import { MilterClient, type MilterResponse } from '../src/milter/testing/index.js';
import { ChildServer } from './child.js';
import {
  fmt,
  freePort,
  installDebianPackage,
  median,
  names,
  setting,
  table,
  wholeNumbers,
} from './common.js';

// ---------------------------------------------------------------------------------------------
// Settings

function positiveInt(name: string, env: string, fallback: number): number {
  const text = setting(name, env, String(fallback));
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0)) {
    throw new Error(
      `bench:milter: --${name} (${env}) must be a positive whole number, got ${text}`,
    );
  }
  return value;
}

const SERVER_NAMES = ['mailgate', 'pymilter', 'null', 'mailgate-full', 'null-lean'] as const;
type ServerName = (typeof SERVER_NAMES)[number];

interface Settings {
  concurrencies: number[];
  rounds: number;
  roundMs: number;
  warmupMs: number;
  messages: number;
  only: ServerName[];
  profileDir: string | undefined;
}

function readSettings(): Settings {
  const concurrencies = wholeNumbers(
    'concurrency',
    'BENCH_CONCURRENCY',
    '1,50',
    'bench:milter: --concurrency must be positive whole numbers, e.g. 1,50',
  );
  const only = names('only', 'BENCH_ONLY', SERVER_NAMES.join(','), SERVER_NAMES, 'bench:milter');
  if (!only.includes('mailgate')) throw new Error('bench:milter: --only must include mailgate');
  return {
    concurrencies,
    rounds: positiveInt('rounds', 'BENCH_ROUNDS', 5),
    roundMs: positiveInt('round-ms', 'BENCH_ROUND_MS', 1200),
    warmupMs: positiveInt('warmup-ms', 'BENCH_WARMUP_MS', 600),
    messages: positiveInt('messages', 'BENCH_MESSAGES', 10),
    only,
    profileDir: setting('profile-dir', 'BENCH_PROFILE_DIR', '') || undefined,
  };
}

const GOALS = {
  /** mailgate/pymilter at the highest concurrency. */
  vsPymilter: 2,
  /** mailgate/null at the highest concurrency. */
  vsNull: 0.9,
} as const;

const OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

// ---------------------------------------------------------------------------------------------
// The servers, each in a child process

/** A milter under test, in its child process. */
type MilterServer = ChildServer<ServerName>;

/** A node script that prints `listening on SPEC` when ready. */
function startNode(
  name: ServerName,
  script: string,
  args: string[],
  nodeFlags: string[],
): Promise<MilterServer> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  return ChildServer.start({
    name,
    command: process.execPath,
    args: [...nodeFlags, '--import', 'tsx', path, ...args, '--exit-on-stdin-eof'],
    ready: 'listening line',
    readyTimeoutMs: 20_000,
  });
}

/** The pymilter script on a port chosen here; ready once it accepts a connection. */
async function startPymilter(python: string): Promise<MilterServer> {
  const port = await freePort();
  const path = fileURLToPath(new URL('./pymilter_noop.py', import.meta.url));
  return ChildServer.start({
    name: 'pymilter',
    command: python,
    args: [path, `inet:${port}@127.0.0.1`, '--exit-on-stdin-eof'],
    ready: { port },
    readyTimeoutMs: 15_000,
  });
}

// ---------------------------------------------------------------------------------------------
// pymilter: find it, install it as root when missing

interface Python {
  python: string;
  version: string;
}

function findPymilter(): Python | undefined {
  // Debian's python3-milter is built for /usr/bin/python3; a python3 earlier on PATH (pyenv,
  // a venv) may not see it.
  for (const python of ['/usr/bin/python3', 'python3']) {
    const run = spawnSync(python, ['-c', 'import Milter; print(Milter.__version__)'], {
      encoding: 'utf8',
    });
    if (run.status === 0) return { python, version: run.stdout.trim() };
  }
  return undefined;
}

function pymilterOrWhyNot(): Python | { skipped: string } {
  const found = findPymilter();
  if (found) return found;
  const why = installDebianPackage('python3-milter', 'python3-milter (Debian package)');
  if (why) return { skipped: why };
  return (
    findPymilter() ?? { skipped: 'python3-milter installed, but no python3 can import Milter' }
  );
}

// ---------------------------------------------------------------------------------------------
// The MTA side: one connection of Postfix-like transactions

const BODY = (() => {
  const line = 'The quick brown fox jumps over the lazy dog, 0123456789 times over.\r\n';
  return Buffer.from(line.repeat(Math.ceil(20_480 / line.length)).slice(0, 20_480));
})();

const HEADERS: Array<[string, string]> = [
  ['Received', 'from mail.client.example.net (mail.client.example.net [192.0.2.25])'],
  ['Message-ID', '<20240101120000.ABC123@client.example.net>'],
  ['Date', 'Mon, 1 Jan 2024 12:00:00 +0000'],
  ['From', 'Sender <sender@client.example.net>'],
  ['To', 'One <one@example.org>, Two <two@example.org>'],
  ['Subject', 'Quarterly figures'],
  ['MIME-Version', '1.0'],
  ['Content-Type', 'text/plain; charset=utf-8'],
  ['Content-Transfer-Encoding', '8bit'],
  ['X-Mailer', 'bench'],
];

/** Postfix 3.7's default macro lists, with plausible values. */
const MACROS = {
  connect: {
    j: 'mx.example.org',
    '{daemon_name}': 'mx.example.org',
    '{daemon_addr}': '198.51.100.1',
    v: 'Postfix 3.7.11',
    _: 'mail.client.example.net [192.0.2.25]',
  },
  helo: {
    '{tls_version}': 'TLSv1.3',
    '{cipher}': 'TLS_AES_256_GCM_SHA384',
    '{cipher_bits}': '256',
  },
  mail: { i: '4ABC123DEF', '{mail_addr}': 'sender@client.example.net', '{mail_mailer}': 'smtp' },
  rcpt: { '{rcpt_addr}': 'one@example.org', '{rcpt_mailer}': 'local' },
  data: { i: '4ABC123DEF' },
  eom: { i: '4ABC123DEF' },
} as const;

interface Counters {
  tx: number;
  /** Replies the client waited for. */
  awaited: number;
  connections: number;
}

/** Negotiate like Postfix; returns the milter's protocol flags. */
async function openSession(socket: string): Promise<{ client: MilterClient; protocol: number }> {
  const client = await MilterClient.connect(socket, { log: false, timeoutMs: 10_000 });
  try {
    const { protocol } = await client.negotiate(OFFER);
    return { client, protocol };
  } catch (err) {
    await client.close();
    throw err;
  }
}

function expectContinue(step: string, response: MilterResponse | undefined): void {
  if (response !== undefined && response.verdict !== 'continue') {
    throw new Error(`${step}: the no-op milter answered ${response.verdict}`);
  }
}

/**
 * One SMTP connection: negotiation, CONNECT, HELO, then up to `messages` messages (fewer when
 * `stop()` says so between messages), each followed by ABORT, then QUIT.
 */
async function oneConnection(
  socket: string,
  messages: number,
  stop: () => boolean,
  counters: Counters,
): Promise<void> {
  const { client, protocol } = await openSession(socket);
  counters.connections++;
  counters.awaited++;
  // Postfix sends a step's macros only with the step itself.
  const sends = (no: number) => (protocol & no) === 0;
  const awaited = (r: MilterResponse | undefined, step: string) => {
    if (r !== undefined) counters.awaited++;
    expectContinue(step, r);
  };
  try {
    if (sends(Protocol.NOCONNECT)) await client.macro('C', MACROS.connect);
    awaited(
      await client.connect('mail.client.example.net', 'inet', 40025, '192.0.2.25'),
      'connect',
    );
    if (sends(Protocol.NOHELO)) await client.macro('H', MACROS.helo);
    awaited(await client.helo('mail.client.example.net'), 'helo');
    for (let m = 0; m < messages && !stop(); m++) {
      if (sends(Protocol.NOMAIL)) await client.macro('M', MACROS.mail);
      awaited(await client.mail('<sender@client.example.net>', ['SIZE=21000']), 'mail');
      for (const rcpt of ['<one@example.org>', '<two@example.org>']) {
        if (sends(Protocol.NORCPT)) await client.macro('R', MACROS.rcpt);
        awaited(await client.rcpt(rcpt), 'rcpt');
      }
      if (sends(Protocol.NODATA)) await client.macro('T', MACROS.data);
      awaited(await client.data(), 'data');
      for (const [name, value] of HEADERS) awaited(await client.header(name, value), 'header');
      awaited(await client.eoh(), 'eoh');
      awaited(await client.body(BODY), 'body');
      await client.macro('E', MACROS.eom);
      const eom = await client.eom();
      counters.awaited++;
      expectContinue('eom', eom.verdict);
      if (eom.modifications.length > 0) throw new Error('the no-op milter modified the message');
      await client.abort();
      counters.tx++;
    }
    await client.quit();
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds

interface Round {
  server: ServerName;
  concurrency: number;
  tx: number;
  seconds: number;
  perSecond: number;
  awaitedPerTx: number;
  /** Server CPU during the round, 1 = one core. */
  serverCpu: number | undefined;
  clientCpu: number;
}

async function timedRound(
  server: MilterServer,
  concurrency: number,
  durationMs: number,
  messages: number,
): Promise<Round> {
  const counters: Counters = { tx: 0, awaited: 0, connections: 0 };
  const cpu0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const start = performance.now();
  const end = start + durationMs;
  const stop = () => performance.now() >= end;
  const worker = async () => {
    try {
      while (!stop()) await oneConnection(server.listen, messages, stop, counters);
    } catch (err) {
      const why = server.exited ? ` (it exited: ${server.said})` : '';
      throw new Error(`${server.name}: ${(err as Error).message}${why}`, { cause: err });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const cpu1 = server.cpuSeconds();
  const client = process.cpuUsage(client0);
  if (server.exited) throw new Error(`${server.name} exited during a round: ${server.said}`);
  return {
    server: server.name,
    concurrency,
    tx: counters.tx,
    seconds,
    perSecond: counters.tx / seconds,
    awaitedPerTx: counters.awaited / counters.tx,
    serverCpu: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / seconds,
    clientCpu: (client.user + client.system) / 1e6 / seconds,
  };
}

// ---------------------------------------------------------------------------------------------
// Printing

const STEP_FLAG_NAMES: Array<[string, number, number]> = [
  ['conn', Protocol.NOCONNECT, Protocol.NR_CONN],
  ['helo', Protocol.NOHELO, Protocol.NR_HELO],
  ['mail', Protocol.NOMAIL, Protocol.NR_MAIL],
  ['rcpt', Protocol.NORCPT, Protocol.NR_RCPT],
  ['data', Protocol.NODATA, Protocol.NR_DATA],
  ['hdr', Protocol.NOHDRS, Protocol.NR_HDR],
  ['eoh', Protocol.NOEOH, Protocol.NR_EOH],
  ['body', Protocol.NOBODY, Protocol.NR_BODY],
];

/** Which steps a negotiated protocol has answered, sent without reply, or left out. */
function describeProtocol(protocol: number): string {
  const parts = STEP_FLAG_NAMES.map(([name, no, nr]) =>
    protocol & no ? `-${name}` : protocol & nr ? `${name}(no reply)` : name,
  );
  return `0x${protocol.toString(16).padStart(6, '0')}: ${parts.join(' ')} eom`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const settings = readSettings();
  const cpuList = cpus();
  const limitMs = positiveInt('time-limit-ms', 'BENCH_TIME_LIMIT_MS', 170_000);
  const servers: MilterServer[] = [];
  const killAll = () => {
    for (const s of servers) s.killNow();
  };
  process.once('exit', killAll);
  const onSignal = () => process.exit(130);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A hung step must not hang the run: give up loudly (the exit handler kills the children).
  const watchdog = setTimeout(() => {
    console.error(`bench:milter: still running after ${limitMs} ms; giving up`);
    process.exit(1);
  }, limitMs);
  watchdog.unref();

  try {
    console.log('mailgate milter benchmark: no-op milters, Postfix-like MTA client (MilterClient)');
    console.log(
      `node ${process.version}, ${cpuList[0]?.model.trim() ?? 'unknown CPU'} × ${cpuList.length}, ${process.platform}/${process.arch}`,
    );
    console.log(
      `transaction: MAIL, 2 RCPT, DATA, ${HEADERS.length} headers, EOH, ${BODY.length} byte body, EOM, ABORT; ` +
        `${settings.messages} per connection (plus negotiation, CONNECT, HELO); Postfix's macros with each step sent`,
    );
    console.log(
      `concurrency ${settings.concurrencies.join(' and ')}; ${settings.rounds} rounds × ${settings.roundMs} ms per server, ` +
        `round-robin, after a ${settings.warmupMs} ms warm-up each; tx/s: median round; ratio: median of in-round ratios`,
    );

    // Start the servers.
    const nodeFlags = settings.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${settings.profileDir}`]
      : [];
    const mailgate = await startNode(
      'mailgate',
      './mailgate-noop-milter.ts',
      ['--listen=inet:0@127.0.0.1'],
      nodeFlags,
    );
    servers.push(mailgate);
    const probe = await openSession(mailgate.listen);
    const mailgateProtocol = probe.protocol;
    await probe.client.quit();
    await probe.client.close();

    const notes: string[] = [];
    if (settings.only.includes('pymilter')) {
      const py = pymilterOrWhyNot();
      if ('skipped' in py) {
        notes.push(`pymilter column SKIPPED: ${py.skipped}`);
      } else {
        servers.push(await startPymilter(py.python));
        notes.push(`pymilter ${py.version} (${py.python}, libmilter underneath)`);
      }
    }
    if (settings.only.includes('null')) {
      servers.push(
        await startNode(
          'null',
          './null-milter.ts',
          ['--listen=inet:0@127.0.0.1', '--protocol=0'],
          [],
        ),
      );
    }
    if (settings.only.includes('mailgate-full')) {
      servers.push(
        await startNode(
          'mailgate-full',
          './mailgate-noop-milter.ts',
          ['--listen=inet:0@127.0.0.1', '--every-step'],
          [],
        ),
      );
    }
    if (settings.only.includes('null-lean')) {
      servers.push(
        await startNode(
          'null-lean',
          './null-milter.ts',
          ['--listen=inet:0@127.0.0.1', `--protocol=0x${mailgateProtocol.toString(16)}`],
          [],
        ),
      );
    }
    if (settings.profileDir)
      notes.push(`mailgate milter under --cpu-prof, profile in ${settings.profileDir}`);
    for (const note of notes) console.log(note);

    // What each negotiated, and a check that one whole connection works.
    console.log('');
    const negotiated = new Map<ServerName, number>();
    for (const server of servers) {
      const session = await openSession(server.listen);
      negotiated.set(server.name, session.protocol);
      await session.client.quit();
      await session.client.close();
      await oneConnection(server.listen, 1, () => false, { tx: 0, awaited: 0, connections: 0 });
      console.log(
        `${server.name.padEnd(13)} pid ${server.pid} ${server.listen}, negotiated ${describeProtocol(negotiated.get(server.name)!)}`,
      );
    }
    console.log('');

    // The rounds.
    const rounds: Round[] = [];
    for (const concurrency of settings.concurrencies) {
      for (const server of servers) {
        await timedRound(server, concurrency, settings.warmupMs, settings.messages);
      }
      for (let r = 0; r < settings.rounds; r++) {
        const order = servers.map((_, i) => servers[(i + r) % servers.length]!);
        const line: string[] = [];
        for (const server of order) {
          const round = await timedRound(server, concurrency, settings.roundMs, settings.messages);
          rounds.push(round);
          line.push(`${server.name} ${fmt(round.perSecond)}`);
        }
        process.stderr.write(`  c=${concurrency} round ${r + 1}: ${line.join(', ')} tx/s\n`);
      }
    }

    // Results.
    const names = servers.map((s) => s.name);
    const of = (name: ServerName, concurrency: number) =>
      rounds.filter((x) => x.server === name && x.concurrency === concurrency);
    const rate = (name: ServerName, concurrency: number) =>
      of(name, concurrency).length
        ? median(of(name, concurrency).map((x) => x.perSecond))
        : undefined;
    /** a/b: the median over rounds of the ratio within a round. */
    const ratio = (a: ServerName, b: ServerName, concurrency: number) => {
      const ours = of(a, concurrency);
      const theirs = of(b, concurrency);
      if (!ours.length || !theirs.length) return undefined;
      return median(ours.map((x, i) => x.perSecond / theirs[i]!.perSecond));
    };
    const rows: string[][] = [['concurrency', ...names.map((n) => `${n} tx/s`)]];
    for (const c of settings.concurrencies) {
      rows.push([String(c), ...names.map((n) => fmt(rate(n, c)))]);
    }
    console.log(table(rows));
    console.log('');

    const pairs: Array<[ServerName, ServerName, string]> = [
      ['mailgate', 'pymilter', 'each as written plainly'],
      ['mailgate', 'null', 'each as written plainly'],
      ['mailgate', 'null-lean', 'the same short conversation'],
      ['mailgate-full', 'null', 'the same full conversation'],
      ['mailgate-full', 'pymilter', 'full conversations (pymilter skips DATA)'],
    ];
    const ratioRows: string[][] = [
      ['ratio', ...settings.concurrencies.map((c) => `c=${c}`), 'what is compared'],
    ];
    for (const [a, b, what] of pairs) {
      if (!names.includes(a) || !names.includes(b)) continue;
      ratioRows.push([
        `${a}/${b}`,
        ...settings.concurrencies.map((c) => `${fmt(ratio(a, b, c), 2)}x`),
        what,
      ]);
    }
    console.log(table(ratioRows, [0, settings.concurrencies.length + 1]));
    console.log('');

    const detail: string[][] = [
      ['server', 'round trips/tx', 'rounds tx/s', 'server CPU', 'server µs/tx', 'client CPU'],
    ];
    for (const c of settings.concurrencies) {
      for (const n of names) {
        const mine = of(n, c);
        const tx = mine.reduce((s, x) => s + x.tx, 0);
        const awaited = mine.reduce((s, x) => s + x.awaitedPerTx * x.tx, 0);
        const cpu = mine.map((x) => x.serverCpu).filter((x): x is number => x !== undefined);
        const cpuSeconds = mine.reduce((s, x) => s + (x.serverCpu ?? Number.NaN) * x.seconds, 0);
        detail.push([
          `c=${c} ${n}`,
          fmt(awaited / tx, 2),
          mine.map((x) => fmt(x.perSecond)).join(' / '),
          cpu.length ? `${fmt((100 * cpu.reduce((s, x) => s + x, 0)) / cpu.length)}%` : '-',
          fmt((cpuSeconds / tx) * 1e6),
          `${fmt((100 * mine.reduce((s, x) => s + x.clientCpu, 0)) / mine.length)}%`,
        ]);
      }
    }
    console.log(table(detail));
    console.log(
      [
        '',
        'round trips/tx: replies the client waited for per transaction, the negotiation, CONNECT and',
        `HELO shared by the ${settings.messages} messages of a connection. CPU: share of one core during the rounds`,
        '(server: its process, all threads; client: this process, which drives every server); server',
        'µs/tx: server CPU time per transaction, the cost of a milter when the client is the limit.',
        '',
      ].join('\n'),
    );

    // Goals.
    const high = Math.max(...settings.concurrencies);
    const low = Math.min(...settings.concurrencies);
    const rtOf = (n: ServerName) => {
      const mine = of(n, low);
      const tx = mine.reduce((s, x) => s + x.tx, 0);
      return mine.reduce((s, x) => s + x.awaitedPerTx * x.tx, 0) / tx;
    };
    const goals: string[][] = [['goal', 'measured', 'met']];
    const vsPy = ratio('mailgate', 'pymilter', high);
    goals.push([
      `c=${high}: mailgate ≥ ${GOALS.vsPymilter}x pymilter`,
      vsPy === undefined ? 'skipped' : `${fmt(vsPy, 2)}x`,
      vsPy === undefined ? '-' : vsPy >= GOALS.vsPymilter ? 'yes' : 'NO',
    ]);
    const vsNull = ratio('mailgate', 'null', high);
    goals.push([
      `c=${high}: mailgate ≥ ${GOALS.vsNull * 100}% of null`,
      vsNull === undefined ? 'skipped' : `${fmt(vsNull * 100)}%`,
      vsNull === undefined ? '-' : vsNull >= GOALS.vsNull ? 'yes' : 'NO',
    ]);
    const py = names.includes('pymilter') ? rtOf('pymilter') : undefined;
    const ours = rtOf('mailgate');
    goals.push([
      `c=${low}: fewer round trips/tx than pymilter`,
      py === undefined ? 'skipped' : `${fmt(ours, 2)} vs ${fmt(py, 2)}`,
      py === undefined ? '-' : ours < py ? 'yes' : 'NO',
    ]);
    console.log(table(goals));
    return 0;
  } finally {
    clearTimeout(watchdog);
    await Promise.all(servers.map((s) => s.stop()));
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  // Exit outright: after an error, steps still in flight must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      `bench:milter failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
