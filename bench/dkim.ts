/**
 * npm run bench:dkim — DKIM verification in two parts, each contender measured in the same run,
 * in alternating rounds.
 *
 * Part 1, verifications per second (`verify`). The same messages for every contender
 * (bench/dkim-world.ts): bodies of 1 KB, 16 KB, 128 KB and 1 MB of text lines of about 72
 * characters, each signed once by mailgate's signDkim, relaxed/relaxed, h= From, To, Subject,
 * Date and Message-ID, with an RSA-2048 key and with an ed25519 key. One verification is one
 * whole message, one at a time, in this process:
 *
 *   mailgate  verifyDkim (src/checks/dkim) with a resolver of its own (createResolver, cache on)
 *             pointed at the fixture DNS server (bench/dns-fixture-process.ts, a child process)
 *             that publishes the keys; warm: every key is in the resolver's cache before timing,
 *             so the key record is parsed from a cached answer at each verification, as in the
 *             daemon;
 *   mailauth  mailauth@4's dkimVerify(message, { resolver }) with a resolver function answering
 *             TXT from an in-memory map, mailauth's documented way to supply DNS and its
 *             warm-cache configuration (it keeps no key cache of its own: it parses the record
 *             and makes a KeyObject at each verification);
 *   floor     node:crypto only (bench/dkim-floor.ts): the message is canonicalized and the key
 *             made a KeyObject outside the timed loop; in it, SHA-256 over the canonical body,
 *             compared with bh=, and crypto.verify of b= over the precomputed canonical header
 *             data. Nothing else: the cost no verifier can go below here.
 *
 * Before timing, each contender must say pass for every signed message and fail for its
 * tampered copy (the Subject changed); otherwise the run stops. Per size and key type the
 * contenders take turns (alternatingRounds in bench/common.ts: a warm-up round each, then the
 * timed rounds with the first place moving along), a full garbage collection before each round.
 * verifications/s is the median round; a ratio is the median over rounds of the ratio within
 * the round. Goals: mailgate ≥ 3x mailauth and ≥ 0.8x the floor, each size and key type.
 *
 * Part 2, milter transactions per second (`milter`), at concurrency 1 and 50, each milter in a
 * child process of its own:
 *
 *   mailgate  `mailgate serve` from the TypeScript sources (test/support/cli-entry.ts), the
 *             milter only, with [dkim] verify = true and [dmarc] enabled = true (record = false:
 *             the aggregate-report rows are reporting, not verification), and every other check
 *             the configuration can turn off turned off: ARC, CSA, the localhost-PTR check,
 *             greylisting, call-backs, reputation (the registry check is off by default). SPF
 *             cannot be turned off in the milter: it is checked at MAIL FROM, and DMARC uses it;
 *             its record (a pass for the client), the client's PTR and the DMARC record come from
 *             the same fixture DNS server, through mailgate's cache, warm after the first pass;
 *   opendkim  Debian's /usr/sbin/opendkim in verify mode (Mode v, Socket inet:PORT@127.0.0.1
 *             as mailgate listens, AuthservID the receiver, Syslog no, in the foreground), its
 *             keys from a TestPublicKeys file: OpenDKIM's documented test option for reading
 *             public keys from a file instead of DNS (as test/support/dkim-peers.ts runs it),
 *             which is its warm cache here (bench/dkim-opendkim.ts). It checks DKIM only, no SPF
 *             or DMARC. Over TCP its libmilter answers end of message only after the client's
 *             delayed ACK of the header it adds (about 40 ms here), which decides its figures at
 *             C=1 and weighs on C=50; --socket=unix puts both milters on unix sockets, where
 *             there is no such wait.
 *
 * The MTA side is this process (bench/dkim-milter-client.ts, MilterClient from
 * src/milter/testing): per transaction one connection, as Postfix's smtpd makes one per SMTP
 * session: negotiation, CONNECT, HELO, MAIL, RCPT, DATA (when the milter wants it), the header
 * fields of the 16 KB RSA-2048 message (and a Received field of the MTA's), EOH, the body in
 * packets of at most 64 KB, end of message, QUIT, with Postfix's macros. Before timing, the
 * first transaction on each is shown (the steps the milter negotiated, the replies waited for,
 * the fields it added) and must have an Authentication-Results with dkim=pass (and dmarc=pass
 * from mailgate); every timed transaction is held to the same, and counted when it is not. At
 * concurrency C, C connections run at once, each starting the next transaction when its last
 * one ended. tx/s is the median round, the ratio the median of in-round ratios, p50 and p99 over
 * every transaction of the timed rounds. Goal: mailgate more tx/s than OpenDKIM at C=50.
 *
 * Settings (argument or environment): --only=verify,milter (BENCH_ONLY), --sizes=1k,16k,128k,1m
 * (BENCH_SIZES, part 1), --concurrency=1,50 (BENCH_CONCURRENCY, part 2), --rounds=N
 * (BENCH_ROUNDS, 5), --round-ms=N (BENCH_ROUND_MS; a timed round of either part; by default 500
 * for part 1 and 2000 for part 2; the warm-up rounds are half as long), --profile-dir=DIR
 * (BENCH_PROFILE_DIR: a CPU profile of mailgate's timed verification rounds, taken in this
 * process through the inspector, and the mailgate milter run under `node --cpu-prof`; read them
 * with bench/cpuprofile-top.ts), --socket=inet|unix (BENCH_SOCKET, inet: where both milters
 * listen, TCP on 127.0.0.1 or a unix socket in the run's directory), --keep (keep the temporary directory), --time-limit-ms=N
 * (BENCH_TIME_LIMIT_MS, 170000: give up, exit 1). The whole run takes about two minutes.
 *
 * Exits 0 when the measurement completed, whether or not the goals are met; 1 on real errors
 * (a contender that does not verify included); 130 on SIGINT. The child processes and the
 * temporary directory are always removed.
 *
 * @example
 * node --import tsx bench/dkim.ts --only=verify --sizes=16k,1m --rounds=3
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { verifyDkim } from '../src/checks/dkim/index.js';
import { createResolver, type StubResolver } from '../src/dns/index.js';
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
import { type FloorPrepared, prepareFloor, verifyFloor } from './dkim-floor.js';
import {
  describeProtocol,
  type MilterMessage,
  milterMessage,
  type Outcome,
  oneTransaction,
} from './dkim-milter-client.js';
import {
  MILTER_SOCKETS,
  type MilterSocket,
  opendkimOrWhyNot,
  startOpendkim,
} from './dkim-opendkim.js';
import {
  type BenchMessage,
  buildDkimWorld,
  KEY_LABEL,
  parseSize,
  RECEIVER,
  sizeLabel,
} from './dkim-world.js';

// ---------------------------------------------------------------------------------------------
// Settings

const PARTS = ['verify', 'milter'] as const;
type Part = (typeof PARTS)[number];

const GOALS = {
  /** mailgate/mailauth verifications per second, each size and key type. */
  vsMailauth: 3,
  /** mailgate/floor verifications per second, each size and key type. */
  vsFloor: 0.8,
  /** mailgate/opendkim transactions per second at the highest concurrency: more than 1. */
  vsOpendkim: 1,
} as const;

/** The message of part 2. */
const MILTER_SIZE = 16 * 1024;

interface Settings {
  only: Part[];
  sizes: number[];
  concurrencies: number[];
  rounds: number;
  verifyRoundMs: number;
  milterRoundMs: number;
  profileDir: string | undefined;
  socket: MilterSocket;
  keep: boolean;
  timeLimitMs: number;
}

function positiveInt(name: string, env: string, fallback: number): number {
  const text = setting(name, env, String(fallback));
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0)) {
    throw new Error(`bench:dkim: --${name} (${env}) must be a positive whole number, got ${text}`);
  }
  return value;
}

function readSettings(): Settings {
  const only = names('only', 'BENCH_ONLY', PARTS.join(','), PARTS, 'bench:dkim', {
    skipEmpty: true,
  });
  if (only.length === 0) throw new Error('bench:dkim: --only names no part');
  const sizes = setting('sizes', 'BENCH_SIZES', '1k,16k,128k,1m')
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => {
      const size = parseSize(s);
      if (size === undefined || size < 64) {
        throw new Error(
          `bench:dkim: --sizes takes sizes of 64 bytes or more (1k, 16k, 1m), got ${s}`,
        );
      }
      return size;
    });
  if (only.includes('verify') && sizes.length === 0)
    throw new Error('bench:dkim: --sizes names no size');
  const roundMs = setting('round-ms', 'BENCH_ROUND_MS', '');
  const round = roundMs === '' ? undefined : positiveInt('round-ms', 'BENCH_ROUND_MS', 1);
  const profileDir = setting('profile-dir', 'BENCH_PROFILE_DIR', '').trim();
  const socket = setting('socket', 'BENCH_SOCKET', 'inet');
  if (!(MILTER_SOCKETS as readonly string[]).includes(socket)) {
    throw new Error(`bench:dkim: --socket takes ${MILTER_SOCKETS.join(' or ')}; got ${socket}`);
  }
  return {
    only,
    sizes: [...new Set(sizes)],
    concurrencies: wholeNumbers(
      'concurrency',
      'BENCH_CONCURRENCY',
      '1,50',
      'bench:dkim: --concurrency takes positive whole numbers, e.g. 1,50',
    ),
    rounds: positiveInt('rounds', 'BENCH_ROUNDS', 5),
    verifyRoundMs: round ?? 500,
    milterRoundMs: round ?? 2000,
    profileDir: profileDir === '' ? undefined : profileDir,
    socket: socket as MilterSocket,
    keep: process.argv.includes('--keep'),
    timeLimitMs: positiveInt('time-limit-ms', 'BENCH_TIME_LIMIT_MS', 170_000),
  };
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** Set by SIGINT or SIGTERM: the errors of work cut short are no news then. */
let interrupted = false;

/** A full collection before a round, so one contender's garbage is not collected on another's time. */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  return typeof gc === 'function' ? (gc as () => void) : () => {};
})();

/** The p-th percentile by nearest rank (p in 0–100). */
function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** a/b: the median over rounds of the ratio within a round (the i-th of each ran in round i). */
function inRoundRatio<R extends { perSecond: number }>(ours: R[], theirs: R[]): number | undefined {
  if (!ours.length || ours.length !== theirs.length) return undefined;
  return median(ours.map((x, i) => x.perSecond / theirs[i]!.perSecond));
}

// ---------------------------------------------------------------------------------------------
// Part 1: verifications per second

const VERIFIERS = ['mailgate', 'mailauth', 'floor'] as const;
type VerifierName = (typeof VERIFIERS)[number];

interface Verdict {
  word: string;
  /** Why, for the check's report. */
  detail: string;
}

/** What a verifier is given: the message, and for the floor what it prepared before timing. */
interface Input {
  message: Buffer;
  floor: FloorPrepared;
}

interface Verifier {
  name: VerifierName;
  /** The result of the message's one signature. */
  verify(input: Input): Verdict | Promise<Verdict>;
}

function mailgateVerifier(resolver: StubResolver): Verifier {
  return {
    name: 'mailgate',
    verify: (input) =>
      verifyDkim(input.message, {}, { resolver }).then((results) => ({
        word: results[0]?.result ?? 'none',
        detail: results[0]?.reason ?? 'no signature found',
      })),
  };
}

/** TXT answers from memory, in the shape of dns.promises.resolve (a record is its strings). */
function memoryResolver(keyRecords: Record<string, string>) {
  const answers = new Map(
    Object.entries(keyRecords).map(([name, txt]) => [name.toLowerCase(), [[txt]]]),
  );
  return async (name: string, rrtype: string): Promise<string[][]> => {
    const answer = rrtype === 'TXT' ? answers.get(name.toLowerCase()) : undefined;
    if (answer) return answer;
    throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  };
}

function mailauthVerifier(keyRecords: Record<string, string>): Verifier {
  const resolver = memoryResolver(keyRecords);
  return {
    name: 'mailauth',
    verify: (input) =>
      dkimVerify(input.message, { resolver }).then((r) => ({
        word: r.results[0]?.status.result ?? 'none',
        detail: r.results[0]?.status.comment ?? '',
      })),
  };
}

const FLOOR_VERDICTS = {
  pass: { word: 'pass', detail: 'body hash and signature verified' },
  fail: { word: 'fail', detail: 'body hash or signature did not verify' },
} as const;

const floorVerifier: Verifier = {
  name: 'floor',
  verify: (input) => FLOOR_VERDICTS[verifyFloor(input.floor)],
};

interface VerifyCase {
  message: BenchMessage;
  signed: Input;
  tampered: Input;
  label: string;
}

interface VerifyRound {
  name: VerifierName;
  verifications: number;
  seconds: number;
  perSecond: number;
  /** Timed verifications that did not say pass. */
  drift: number;
  /** CPU of every other process during the round, 1 = one core; undefined off Linux. */
  otherCpu: number | undefined;
}

async function verifyRound(
  verifier: Verifier,
  input: Input,
  seconds: number,
): Promise<VerifyRound> {
  collectGarbage();
  let verifications = 0;
  let drift = 0;
  const machine0 = machineCpuSeconds();
  const self0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  do {
    const outcome = verifier.verify(input);
    const verdict = outcome instanceof Promise ? await outcome : outcome;
    if (verdict.word !== 'pass') drift++;
    verifications++;
  } while (performance.now() < end);
  const elapsed = (performance.now() - start) / 1000;
  const self = process.cpuUsage(self0);
  const machine1 = machineCpuSeconds();
  return {
    name: verifier.name,
    verifications,
    seconds: elapsed,
    perSecond: verifications / elapsed,
    drift,
    otherCpu:
      machine0 === undefined || machine1 === undefined
        ? undefined
        : Math.max(0, (machine1 - machine0 - (self.user + self.system) / 1e6) / elapsed),
  };
}

/** Each verifier on each signed message and its tampered copy; throws when one is wrong. */
async function checkVerifiers(verifiers: Verifier[], cases: VerifyCase[]): Promise<void> {
  const wrong: string[] = [];
  for (const c of cases) {
    for (const v of verifiers) {
      const good = await v.verify(c.signed);
      const bad = await v.verify(c.tampered);
      if (good.word !== 'pass')
        wrong.push(`${v.name}, ${c.label}, signed: ${good.word} (${good.detail})`);
      if (bad.word !== 'fail')
        wrong.push(`${v.name}, ${c.label}, tampered: ${bad.word} (${bad.detail})`);
    }
  }
  if (wrong.length) {
    throw new Error(`a verifier is wrong, so its speed means nothing:\n  ${wrong.join('\n  ')}`);
  }
  console.log(
    `check: ${verifiers.map((v) => v.name).join(', ')} each say pass for all ${cases.length} signed messages ` +
      'and fail for each tampered copy (Subject changed)',
  );
}

/** The inspector's CPU profile of this process, on for mailgate's timed rounds only. */
class InProcessProfile {
  #session: Session | undefined;
  /** One profile per stretch between start and pause: V8 cannot pause a profile. */
  readonly pieces: unknown[] = [];

  async start(): Promise<void> {
    if (this.#session) return;
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    this.#session = session;
  }

  async pause(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.#session = undefined;
    const { profile } = await session.post('Profiler.stop');
    this.pieces.push(profile);
    session.disconnect();
  }
}

async function partVerify(
  world: ReturnType<typeof buildDkimWorld>,
  settings: Settings,
  dns: DnsFixture,
  warnings: string[],
): Promise<void> {
  const require = createRequire(import.meta.url);
  const mailauthVersion = (require('mailauth/package.json') as { version: string }).version;
  const resolver = createResolver({
    servers: [dns.address],
    cache: { maxEntries: 10_000 },
    timeout: 2000,
    attempts: 2,
  });
  const verifiers = [mailgateVerifier(resolver), mailauthVerifier(world.keyRecords), floorVerifier];
  const cases: VerifyCase[] = world.messages
    .filter((m) => settings.sizes.includes(m.size))
    .map((m) => ({
      message: m,
      label: `${sizeLabel(m.size)} ${KEY_LABEL[m.keyType]}`,
      signed: { message: m.signed, floor: prepareFloor(m.signed, world.keyRecords) },
      tampered: { message: m.tampered, floor: prepareFloor(m.tampered, world.keyRecords) },
    }));

  console.log('');
  console.log(
    `Part 1: DKIM verifications per second, one message at a time in this process; mailgate verifyDkim, ` +
      `mailauth@${mailauthVersion} dkimVerify, floor (node:crypto only)`,
  );
  console.log(
    `messages: bodies of ${settings.sizes.map(sizeLabel).join(', ')} (text lines of about 72 characters), ` +
      'each signed once by mailgate signDkim with RSA-2048 and with ed25519, relaxed/relaxed, h=from:to:subject:date:message-id',
  );
  console.log(
    `keys warm for all: mailgate's resolver cache (fixture DNS server ${dns.address}), mailauth's in-memory resolver, ` +
      'the floor a prepared KeyObject (and canonical forms made before timing)',
  );
  console.log(
    `${settings.rounds} timed rounds × ${settings.verifyRoundMs} ms per contender and message, after a ` +
      `${settings.verifyRoundMs / 2} ms warm-up each, turns rotating; v/s: median round; ratio: median of in-round ratios`,
  );
  const sent0 = resolver.stats.sent;
  await checkVerifiers(verifiers, cases);
  const keyQueries = resolver.stats.sent - sent0;

  const profile = settings.profileDir ? new InProcessProfile() : undefined;
  const results = new Map<string, VerifyRound[]>();
  const dnsBefore = (await dns.stats()).queries;
  const sentBefore = resolver.stats.sent;
  for (const c of cases) {
    const rounds = await alternatingRounds(
      verifiers,
      {
        concurrencies: [1],
        rounds: settings.rounds,
        seconds: settings.verifyRoundMs / 1000,
        warmupSeconds: settings.verifyRoundMs / 2000,
      },
      `verifications/s, ${c.label}`,
      async (v, _c, seconds) => {
        const timed = seconds === settings.verifyRoundMs / 1000;
        if (profile && timed && v.name === 'mailgate') await profile.start();
        try {
          return await verifyRound(v, c.signed, seconds);
        } finally {
          await profile?.pause();
        }
      },
    );
    results.set(c.label, rounds);
  }
  const dnsDuring = (await dns.stats()).queries - dnsBefore;
  const sentDuring = resolver.stats.sent - sentBefore;
  resolver.close();

  const rows: string[][] = [
    [
      'message',
      'mailgate v/s',
      'mailauth v/s',
      'floor v/s',
      'mailgate/mailauth',
      `goal ≥ ${GOALS.vsMailauth}x`,
      'mailgate/floor',
      `goal ≥ ${GOALS.vsFloor}x`,
    ],
  ];
  const detail: string[][] = [
    [
      'message',
      'mailgate µs',
      'mailauth µs',
      'floor µs',
      'mailgate − floor µs',
      'other CPU (max)',
      'rounds mailgate v/s',
    ],
  ];
  let busiest = 0;
  const misses: string[] = [];
  let drift = 0;
  for (const c of cases) {
    const rounds = results.get(c.label)!;
    const of = (n: VerifierName) => rounds.filter((r) => r.name === n);
    const rate = (n: VerifierName) => median(of(n).map((r) => r.perSecond));
    drift += rounds.reduce((s, r) => s + r.drift, 0);
    const vsMailauth = inRoundRatio(of('mailgate'), of('mailauth'));
    const vsFloor = inRoundRatio(of('mailgate'), of('floor'));
    const met = (x: number | undefined, goal: number) =>
      x === undefined ? '-' : x >= goal ? 'met' : 'MISSED';
    rows.push([
      c.label,
      fmt(rate('mailgate')),
      fmt(rate('mailauth')),
      fmt(rate('floor')),
      `${fmt(vsMailauth, 2)}x`,
      met(vsMailauth, GOALS.vsMailauth),
      `${fmt(vsFloor, 2)}x`,
      met(vsFloor, GOALS.vsFloor),
    ]);
    if (vsMailauth !== undefined && vsMailauth < GOALS.vsMailauth) {
      misses.push(
        `${c.label}: mailgate is ${fmt(vsMailauth, 2)}x mailauth, the goal is ≥ ${GOALS.vsMailauth}x`,
      );
    }
    if (vsFloor !== undefined && vsFloor < GOALS.vsFloor) {
      misses.push(
        `${c.label}: mailgate is ${fmt(vsFloor, 2)}x the floor, the goal is ≥ ${GOALS.vsFloor}x`,
      );
    }
    const us = (n: VerifierName) => 1e6 / rate(n);
    detail.push([
      c.label,
      fmt(us('mailgate'), 1),
      fmt(us('mailauth'), 1),
      fmt(us('floor'), 1),
      fmt(us('mailgate') - us('floor'), 1),
      rounds.some((r) => r.otherCpu === undefined)
        ? '-'
        : `${fmt(100 * Math.max(...rounds.map((r) => r.otherCpu!)))}%`,
      of('mailgate')
        .map((r) => fmt(r.perSecond))
        .join(' / '),
    ]);
    for (const r of rounds) busiest = Math.max(busiest, r.otherCpu ?? 0);
  }
  console.log('');
  console.log(table(rows));
  console.log('');
  console.log(table(detail, [0, 6]));
  console.log(
    'µs: time per verification, one at a time (1 / the median v/s); ' +
      'mailgate − floor: what mailgate spends beyond hashing and the signature check; other CPU: the busiest ' +
      `round's use of the machine by every other process (${cpus().length} cores = ${cpus().length * 100}%). DNS: ${keyQueries} key ` +
      `queries by mailgate before timing, ${sentDuring} sent and ${dnsDuring} received by the fixture server during the rounds`,
  );
  if (drift > 0) warnings.push(`${drift} timed verifications did not say pass`);
  if (busiest > 0.25) {
    warnings.push(
      `part 1: other processes used up to ${fmt(100 * busiest)}% of a core during a round (this process verifies on one): ` +
        'the machine was shared, so these figures are less trustworthy',
    );
  }
  console.log('');
  if (misses.length === 0) {
    console.log('Part 1: every goal met.');
  } else {
    console.log(`Part 1: ${misses.length} goal(s) MISSED:`);
    for (const m of misses) console.log(`  MISSED ${m}`);
  }
  if (profile && settings.profileDir) {
    mkdirSync(settings.profileDir, { recursive: true });
    profile.pieces.forEach((piece, i) => {
      // Each piece is one timed round; bench/cpuprofile-top.ts reads one file at a time.
      const file = join(
        settings.profileDir!,
        `dkim-verify-mailgate-${String(i + 1).padStart(2, '0')}.cpuprofile`,
      );
      writeFileSync(file, JSON.stringify(piece));
    });
    console.log(
      `profile: ${profile.pieces.length} .cpuprofile files of mailgate's timed rounds (in case order) in ${settings.profileDir}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Part 2: milter transactions per second

const MILTERS = ['mailgate', 'opendkim'] as const;
type MilterName = (typeof MILTERS)[number];
type MilterServer = ChildServer<MilterName>;

function mailgateConfig(listen: string, dir: string, dnsAddress: string): string {
  return [
    ...mailgateConfigHead('bench/dkim.ts', RECEIVER, dnsAddress, join(dir, 'mailgate.db')),
    '',
    '[policyd]',
    'enabled = false',
    '',
    '[milter]',
    'enabled = true',
    `listen = ["${listen}"]`,
    // OpenDKIM checks neither: the checks the configuration can turn off are off.
    'csa = "off"',
    'reject_ptr_localhost = false',
    '',
    '[cbv]',
    'enabled = false',
    '',
    '[greylist]',
    'enabled = false',
    '',
    '[reputation]',
    'enabled = false',
    '',
    '[dkim]',
    'verify = true',
    '',
    '[dmarc]',
    'enabled = true',
    'record = false',
    '',
    '[arc]',
    'verify = false',
    '',
  ].join('\n');
}

async function startMailgate(
  dir: string,
  dnsAddress: string,
  profileDir: string | undefined,
  socket: MilterSocket,
): Promise<MilterServer> {
  const port = socket === 'inet' ? await freePort() : 0;
  const path = join(dir, 'mailgate.sock');
  const config = join(dir, 'mailgate.toml');
  const listen = socket === 'inet' ? `inet:${port}@127.0.0.1` : `unix:${path}`;
  writeFileSync(config, mailgateConfig(listen, dir, dnsAddress));
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return ChildServer.start<MilterName>({
    name: 'mailgate',
    command: process.execPath,
    args: [
      ...profile,
      '--import',
      'tsx',
      join(REPO, 'test', 'support', 'cli-entry.ts'),
      'serve',
      '--config',
      config,
    ],
    cwd: REPO,
    // `serve` logs "started" at info, which `warn` leaves out: the socket says when it is ready.
    ready: socket === 'inet' ? { port } : { path },
    readyTimeoutMs: 30_000,
    stopGraceMs: 5000,
  });
}

/** What each milter's Authentication-Results must say for the transaction to count. */
function verified(name: MilterName, outcome: Outcome): boolean {
  if (outcome.ending !== 'accepted') return false;
  const dkim = outcome.authResults.some((v) => /(^|[;\s])dkim=pass\b/.test(v));
  if (name === 'opendkim') return dkim;
  return dkim && outcome.authResults.some((v) => /(^|[;\s])dmarc=pass\b/.test(v));
}

interface MilterRound {
  name: MilterName;
  concurrency: number;
  tx: number;
  seconds: number;
  perSecond: number;
  latencies: number[];
  /** Transactions without the expected verdict, and one of them. */
  wrong: number;
  wrongExample?: string;
  dnsQueries: number;
  serverCpu: number | undefined;
  dnsCpu: number;
  clientCpu: number;
  otherCpu: number | undefined;
}

async function milterRound(
  server: MilterServer,
  message: MilterMessage,
  concurrency: number,
  seconds: number,
  dns: DnsFixture,
): Promise<MilterRound> {
  collectGarbage();
  const latencies: number[] = [];
  let wrong = 0;
  let wrongExample: string | undefined;
  const dns0 = await dns.stats();
  const cpu0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const machine0 = machineCpuSeconds();
  const start = performance.now();
  const end = start + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const outcome = await oneTransaction(server.listen, message);
          latencies.push(outcome.ms);
          if (!verified(server.name, outcome)) {
            wrong++;
            wrongExample ??= `${outcome.ending}; ${outcome.authResults.join(' | ') || 'no Authentication-Results'}`;
          }
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
  return {
    name: server.name,
    concurrency,
    tx: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    latencies,
    wrong,
    ...(wrongExample ? { wrongExample } : {}),
    dnsQueries: dns1.queries - dns0.queries,
    serverCpu,
    dnsCpu,
    clientCpu,
    otherCpu:
      machine0 === undefined || machine1 === undefined || serverCpu === undefined
        ? undefined
        : Math.max(0, (machine1 - machine0) / elapsed - serverCpu - dnsCpu - clientCpu),
  };
}

async function partMilter(
  world: ReturnType<typeof buildDkimWorld>,
  settings: Settings,
  dns: DnsFixture,
  dir: string,
  servers: MilterServer[],
  warnings: string[],
): Promise<void> {
  const signed = world.messages.find((m) => m.size === MILTER_SIZE && m.keyType === 'rsa')!;
  const message = milterMessage(signed.signed);
  const cpuList = cpus();
  console.log('');
  console.log(
    'Part 2: milter transactions per second with DKIM verification, one message per milter connection, ' +
      'Postfix-like MTA client (MilterClient) in this process',
  );
  console.log(
    `message: the ${sizeLabel(MILTER_SIZE)} RSA-2048 one of part 1 (${fmt(message.size)} bytes, ${message.headers.length} header fields ` +
      'with the Received of the MTA), body in packets of at most 64 KB',
  );
  console.log(
    `C = ${settings.concurrencies.join(' and ')} connections at once; a warm-up round of ${settings.milterRoundMs / 2} ms each, ` +
      `then ${settings.rounds} timed rounds × ${settings.milterRoundMs} ms each, turns rotating; tx/s: median round; ` +
      'ratio: median of in-round ratios; p50/p99: all transactions of the timed rounds',
  );

  const mailgate = await startMailgate(dir, dns.address, settings.profileDir, settings.socket);
  servers.push(mailgate);
  console.log(
    `mailgate  pid ${mailgate.pid} ${mailgate.listen}: mailgate serve (TypeScript sources, tsx), [milter] only; ` +
      '[dkim] verify, [dmarc] on (record = false), [arc] verify off, CSA off, reject_ptr_localhost off, greylist, ' +
      `cbv and reputation off; SPF (always on) passes from the fixture DNS server ${dns.address}`,
  );
  const peer = opendkimOrWhyNot();
  if ('missing' in peer) {
    const line = '!'.repeat(100);
    console.log(
      [
        line,
        `!!! OPENDKIM MISSING: ${peer.missing}`,
        '!!! measuring mailgate ALONE: no comparison, no goal judged',
        line,
      ].join('\n'),
    );
  } else {
    const opendkim = await startOpendkim(peer, dir, world.keyRecords, RECEIVER, settings.socket);
    servers.push(opendkim);
    console.log(
      `opendkim  pid ${opendkim.pid} ${opendkim.listen}: ${peer.path} (${peer.version}), Mode v, ` +
        'keys from a TestPublicKeys file (no DNS), AuthservID the receiver, Syslog no, foreground',
    );
    if (settings.socket === 'inet') {
      console.log(
        "  note: over TCP libmilter's end-of-message answer waits for the client's delayed ACK (about 40 ms here), " +
          "which decides OpenDKIM's C=1 figures and weighs on C=50; --socket=unix measures both milters without it",
      );
    }
  }

  // The first transaction on each, shown, and held to what it must say.
  for (const server of servers) {
    const first = await oneTransaction(server.listen, message).catch((err: unknown) => {
      throw serverError(server, err);
    });
    console.log(
      `first transaction, ${server.name}: ${first.ending}; negotiated 0x${first.protocol.toString(16)} ` +
        `(${describeProtocol(first.protocol)}): ${first.awaited} replies waited for per transaction, ` +
        'the negotiation and end of message included',
    );
    for (const m of first.modifications) console.log(`    ${m.replace(/\n/g, '\n      ')}`);
    if (!verified(server.name, first)) {
      throw new Error(
        `${server.name} did not verify the message (${server.name === 'mailgate' ? 'dkim=pass and dmarc=pass' : 'dkim=pass'} ` +
          'expected in an Authentication-Results): its figures would mean nothing',
      );
    }
  }

  const rounds = await alternatingRounds(
    servers,
    {
      concurrencies: settings.concurrencies,
      rounds: settings.rounds,
      seconds: settings.milterRoundMs / 1000,
      warmupSeconds: settings.milterRoundMs / 2000,
    },
    'tx/s',
    (server, c, seconds) => milterRound(server, message, c, seconds, dns),
  );

  const present = servers.map((s) => s.name);
  const of = (n: MilterName, c: number) =>
    rounds.filter((r) => r.name === n && r.concurrency === c);
  const rows: string[][] = [['milter', 'C', 'tx/s', 'p50 ms', 'p99 ms', 'rounds tx/s']];
  for (const c of settings.concurrencies) {
    for (const n of present) {
      const mine = of(n, c);
      const sorted = mine.flatMap((r) => r.latencies).sort((a, b) => a - b);
      rows.push([
        n,
        String(c),
        fmt(median(mine.map((r) => r.perSecond))),
        fmt(percentile(sorted, 50), 2),
        fmt(percentile(sorted, 99), 2),
        mine.map((r) => fmt(r.perSecond)).join(' / '),
      ]);
    }
  }
  console.log('');
  console.log(table(rows, [0, 5]));

  const both = present.includes('opendkim');
  if (both) {
    console.log('');
    console.log(
      table([
        ['mailgate/opendkim', ...settings.concurrencies.map((c) => `C=${c}`)],
        [
          'tx/s',
          ...settings.concurrencies.map(
            (c) => `${fmt(inRoundRatio(of('mailgate', c), of('opendkim', c)), 2)}x`,
          ),
        ],
      ]),
    );
  }

  const detail: string[][] = [
    [
      'milter',
      'C',
      'server CPU',
      'server µs/tx',
      'client CPU',
      'client µs/tx',
      'DNS q/tx',
      'DNS CPU',
      'other CPU',
      'wrong',
    ],
  ];
  for (const c of settings.concurrencies) {
    for (const n of present) {
      const mine = of(n, c);
      const tx = mine.reduce((s, r) => s + r.tx, 0);
      const avg = (f: (r: MilterRound) => number) =>
        `${fmt((100 * mine.reduce((s, r) => s + f(r), 0)) / mine.length)}%`;
      const perTx = (f: (r: MilterRound) => number) =>
        fmt((mine.reduce((s, r) => s + f(r) * r.seconds, 0) / tx) * 1e6);
      const wrong = mine.reduce((s, r) => s + r.wrong, 0);
      detail.push([
        n,
        String(c),
        mine.some((r) => r.serverCpu === undefined) ? '-' : avg((r) => r.serverCpu!),
        mine.some((r) => r.serverCpu === undefined) ? '-' : perTx((r) => r.serverCpu!),
        avg((r) => r.clientCpu),
        perTx((r) => r.clientCpu),
        fmt(mine.reduce((s, r) => s + r.dnsQueries, 0) / tx, 2),
        avg((r) => r.dnsCpu),
        mine.some((r) => r.otherCpu === undefined) ? '-' : avg((r) => r.otherCpu!),
        `${wrong}/${tx}`,
      ]);
      if (wrong > 0) {
        const example = mine.find((r) => r.wrongExample)?.wrongExample;
        warnings.push(
          `${n} at C=${c}: ${wrong} of ${tx} transactions were not verified as expected, e.g. ${example}`,
        );
      }
    }
  }
  console.log('');
  console.log(table(detail));
  console.log(
    'CPU: share of one core during the timed rounds (server: the milter process, all threads; client: this process; ' +
      'DNS: the fixture server process; other: every other process and time stolen by the hypervisor); µs/tx: CPU time ' +
      `per transaction; DNS q/tx: queries the fixture server received per transaction; wrong: transactions not verified. ${cpuList.length} cores in all.`,
  );

  const others = rounds.map((r) => r.otherCpu).filter((x): x is number => x !== undefined);
  if (others.length && Math.max(...others) > 0.25) {
    warnings.push(
      `part 2: other processes used up to ${fmt(100 * Math.max(...others))}% of a core during a round: the machine was shared, so these figures are less trustworthy`,
    );
  }

  console.log('');
  const high = Math.max(...settings.concurrencies);
  if (!both) {
    console.log(
      `Part 2: goal (C=${high}: mailgate more tx/s than OpenDKIM) not judged: no OpenDKIM.`,
    );
  } else {
    const ratio = inRoundRatio(of('mailgate', high), of('opendkim', high));
    const met = ratio !== undefined && ratio > GOALS.vsOpendkim;
    console.log(
      `Part 2: goal C=${high}: mailgate more tx/s than OpenDKIM: ${fmt(ratio, 2)}x, ${met ? 'met' : 'MISSED'}.`,
    );
  }
  if (settings.profileDir) {
    console.log(
      `profile: the mailgate milter's .cpuprofile goes to ${settings.profileDir} when it stops`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const settings = readSettings();
  const cpuList = cpus();
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-bench-dkim-'));
  const servers: MilterServer[] = [];
  let dns: DnsFixture | undefined;
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
    await Promise.all([...servers.map((s) => s.stop()), dns?.stop()]);
  };
  const release = guardRun('bench:dkim', settings.timeLimitMs, stopAll, () => {
    interrupted = true;
  });

  const warnings: string[] = [];
  try {
    console.log('mailgate DKIM benchmark');
    console.log(
      `node ${process.version}, ${cpuList[0]?.model.trim() ?? 'unknown CPU'} × ${cpuList.length}, ${process.platform}/${process.arch}`,
    );
    const sizes = settings.only.includes('milter')
      ? [...new Set([...settings.sizes, MILTER_SIZE])]
      : settings.sizes;
    const world = buildDkimWorld(sizes);
    const zoneFile = join(dir, 'zone.json');
    writeFileSync(zoneFile, JSON.stringify(world.zone));
    dns = await DnsFixture.start({ zoneFile });
    console.log(
      `fixture DNS server ${dns.address}, child pid ${dns.pid}: the keys, SPF, PTR and DMARC records`,
    );

    if (settings.only.includes('verify')) await partVerify(world, settings, dns, warnings);
    if (settings.only.includes('milter')) {
      await partMilter(world, settings, dns, dir, servers, warnings);
    }
    printWarnings(warnings, servers);
    return 0;
  } finally {
    release();
    if (!interrupted) await stopAll();
    process.off('exit', killAll);
    removeDir();
    cleaned = true;
    if (settings.keep) console.log(`kept ${dir}`);
  }
}

main().then(
  // Exit outright: after an error, work still in flight must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    if (interrupted) process.exit(130);
    console.error(
      `bench:dkim failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
