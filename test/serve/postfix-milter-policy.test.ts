/**
 * End to end: swaks → a throwaway Postfix (test/support/postfix.ts) whose milter settings are the
 * main.cf lines of docs/milter-policy.md ("Setting it up"; all but non_smtpd_milters, which no
 * case could exercise: see where the rig is started) → mailgate's milter policy
 * (`Daemon.start`, the real resolver pointed at the fixture DNS server) → the SMTP sink. Every
 * file in test/serve/milter-cases/*.case is one case, in the format of test/milter/case-file.ts
 * with four of its extensions: XCLIENT (who the client is), CONFIG (settings merged over
 * baseConfig below), HEADER-FIRST, and MX-CONNECTIONS and MX-COMMAND (what the call-back MX saw,
 * below). Adding a case is adding a file, and an entry in ZONE when it needs DNS.
 *
 * How a case's client is played:
 * - swaks connects from 127.0.0.1, says EHLO and hands the session over with XCLIENT (Postfix
 *   allows it from 127.0.0.0/8: smtpd_authorized_xclient_hosts). Postfix then closes its milter
 *   connection and opens a new one whose connect names the XCLIENT ADDR (and NAME): mailgate sees
 *   the case's client as it would see a real one. XCLIENT LOGIN reaches it as {auth_authen},
 *   through the guide's milter_mail_macros.
 * - swaks says its EHLO again after XCLIENT, so the case's HELO reaches mailgate in both milter
 *   connections. 127.0.0.1, the rig's own, is in internal_connect, so that the first one is never
 *   judged: only the case's client is.
 * - The replies checked are the ones after XCLIENT: its 220 is the case's BANNER, the EHLO after
 *   it the case's EHLO.
 * - mynetworks is 0.0.0.0/0, so that the cases' clients may relay to the sink (relaying is not
 *   what is tested). Everything else about smtpd is Postfix's defaults (smtpd_helo_required = no,
 *   smtpd_delay_reject = yes, no helo or sender restrictions), so every refusal seen is
 *   mailgate's.
 * - A case's CONFIG is applied with `Daemon.reload` (what SIGHUP does) before the case; the next
 *   case without one reloads the base again. The milter keeps its port across reloads, so one
 *   Postfix serves every case.
 * - A case of several transactions (TRANSACTION) sends each with swaks on a connection of its
 *   own, with the case's HELO and XCLIENT each time; each transaction's LOG, MILTER-LOG and MX-*
 *   lines are about what happened since it began.
 *
 * What Postfix does with a milter's refusal at HELO (numeric-helo.case, helo-self.case): it answers
 * the EHLO itself 250, but with every extension except ENHANCEDSTATUSCODES withheld, logs
 * `milter-reject: EHLO`, and gives the milter's reply to MAIL FROM (and to every later command
 * of the session).
 *
 * The hostile cases (hostile-helo-*.case) sort between the others: the cases after them show
 * the daemon serving on, and the run ends by checking that it logged no error.
 *
 * Call-back verification (cbv-*.case): a case that turns `[cbv] enabled` on has the daemon call
 * the sender's MX for real, at end of message. ZONE gives the senders' domains MX records whose
 * address, 10.250.0.2, is in a network namespace of the test's own (test/support/netns-mx.ts:
 * a veth pair, 10.250.0.1 on this side), where CALLBACK_MX runs: smtp-server on port 2525 (it
 * takes every RCPT TO but the local parts it is told to refuse) and a server that accepts
 * connections and never speaks, on 2526. The daemon counts every address of its own
 * interfaces and loopback as ours and never calls an MX there (docs/cbv.md, fraud detection):
 * that is why the MX lives in a namespace, reached through no switch of mailgate's. The ports
 * there are the namespace's own, so they are fixed, and baseConfig's `[cbv] port` names the first
 * (the silent server's case sets the other). MX-CONNECTIONS and MX-COMMAND check what the MX saw
 * during a transaction; cbv-cached.case sends one sender twice, and the MX sees one call-back.
 * Making the namespace needs root and `ip` (iproute2): without them the call-back cases skip,
 * naming what is missing, and the others run. Every other case runs with `[cbv] enabled =
 * false`, under which what would be called back is accepted (softfail-cbv-off.case).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observe/index.js';
import { Daemon } from '../../src/serve/index.js';
import {
  checkLogs,
  checkNoStrayDeliveries,
  checkOutcome,
  LOG_TIMEOUT_MS,
  sendWithSwaks,
  show,
} from '../milter/case-check.js';
import {
  type CaseExtension,
  CaseSyntaxError,
  type CaseTransaction,
  globToRegExp,
  type MilterCase,
  parseCase,
  readCase,
} from '../milter/case-file.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import {
  MX_ADDRESS,
  type MxSnapshot,
  type NamespaceMx,
  type NamespaceMxServer,
  startNamespaceMx,
  whyNoNamespaceMx,
} from '../support/netns-mx.js';
import { type PostfixRig, startPostfix } from '../support/postfix.js';
import { guideBlock, mainCfLines, waitForBanner } from '../support/postfix-guide.js';
import { skipUnlessAvailable } from '../support/programs.js';
import type { SmtpExchange } from '../support/smtp-transcript.js';

const CASES = fileURLToPath(new URL('./milter-cases/', import.meta.url));
const EXTENSIONS: readonly CaseExtension[] = ['xclient', 'config', 'header-first', 'mx'];

/** The DNS world of the cases, in the fixture server's zone format. */
const ZONE = {
  // 192.0.2.10 is mail.pass.test, with a verified PTR; the HELO name has SPF of its own.
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'mail.pass.test': [{ A: '192.0.2.10' }, { TXT: 'v=spf1 a -all' }],
  '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.pass.test' }],
  'fail.test': [{ TXT: 'v=spf1 -all' }],
  'soft.test': [{ TXT: 'v=spf1 ~all' }],
  // dns-timeout.case: the SPF lookup is never answered.
  'temp.test': [{ TXT: 'TIMEOUT' }],
  // no-ptr-helo-spf.case: an address, no SPF; 198.51.100.7 has no PTR at all.
  'none.test': [{ A: '203.0.113.200' }],
  // The call-back cases: the senders' MX is CALLBACK_MX, in its network namespace.
  'mx.cbv.test': [{ A: MX_ADDRESS }],
  'soft-cbv.test': [{ TXT: 'v=spf1 ~all' }, { MX: [10, 'mx.cbv.test'] }],
  'silent-cbv.test': [{ TXT: 'v=spf1 ~all' }, { MX: [10, 'mx.cbv.test'] }],
  // No SPF; the best guess (a/24 mx/24 ptr) does not cover 198.51.100.7 either.
  'nospf-cbv.test': [{ MX: [10, 'mx.cbv.test'] }],
};

/** The call-back MX (see the top): the cases' senders, by local part, get these answers. */
const CALLBACK_MX: NamespaceMxServer[] = [
  {
    kind: 'smtp',
    port: 2525,
    name: 'mx.cbv.test',
    rcpt: {
      nobody: {
        code: 550,
        message: '5.1.1 <nobody@soft-cbv.test>: Recipient address rejected: User unknown',
      },
      later: { code: 451, message: '4.3.0 <later@soft-cbv.test>: Temporary lookup failure' },
    },
  },
  { kind: 'silent', port: 2526 },
];

type Table = Record<string, unknown>;

/** The configuration every case starts from; a case's CONFIG is merged over it. */
function baseConfig(dir: string, dnsPort: number): Table {
  return {
    hostname: 'mx.mailgate.test',
    dns: { servers: [`127.0.0.1:${dnsPort}`], timeout: '300ms', attempts: 1 },
    store: { url: `sqlite:${join(dir, 'mailgate.db')}` },
    policyd: { enabled: false },
    milter: {
      listen: ['inet:0@127.0.0.1'],
      // 127.0.0.1 is the rig's own client before XCLIENT hands the session over (see above).
      internal_connect: ['127.0.0.1', '10.1.0.0/16'],
      internal_domains: ['ours.test'],
      // Above [cbv] timeout, below the rig's milter_command_timeout (10s); a reload cannot
      // change it, so it is the base's.
      callback_timeout: '8s',
    },
    // Off unless a case turns it on (see above); then it calls CALLBACK_MX, short of time.
    cbv: {
      enabled: false,
      port: CALLBACK_MX[0]!.port,
      timeout: '3s',
      per_domain_rate: '100/h',
    },
    greylist: { enabled: false },
  };
}

const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`: tables key by key, anything else replaced. */
function merge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const old = out[key];
    out[key] = isTable(old) && isTable(value) ? merge(old, value) : value;
  }
  return out;
}

/** The TOML file a case runs under, checked by mailgate's own schema (errors name the case). */
function caseConfig(c: MilterCase, base: Table): string {
  return caseSettings(c, base).text;
}

/** The case's configuration file, and whether it calls back (then it needs CALLBACK_MX). */
function caseSettings(c: MilterCase, base: Table): { text: string; callsBack: boolean } {
  let snippet: Table = {};
  try {
    snippet = parseToml(c.config ?? '') as Table;
  } catch (error) {
    assert.fail(`${c.file}: CONFIG is not TOML: ${(error as Error).message}`);
  }
  const merged = merge(base, snippet);
  const config = parseConfig(merged, `${c.file}: CONFIG`);
  return { text: stringifyToml(merged), callsBack: config.cbv.enabled };
}

/** Whether a case needs the call-back MX: it calls back, or says what the MX must see. */
function needsMx(c: MilterCase, base: Table): boolean {
  return (
    caseSettings(c, base).callsBack ||
    c.transactions.some((tx) => tx.mxConnections !== undefined || tx.mxCommands.length > 0)
  );
}

/**
 * The main.cf lines of docs/milter-policy.md ("Setting it up", the block after "Postfix
 * (`main.cf`):"), with the daemon's real port for the documented 10028: the guide is what is
 * tested.
 */
async function documentedMainCf(port: number): Promise<Record<string, string>> {
  const block = await guideBlock(
    'docs/milter-policy.md',
    /^## Setting it up\n(?:(?!^## )[\s\S])*?Postfix \(`main\.cf`\):\n\n((?: {4}.*\n)+)/m,
    'the Postfix main.cf block in "Setting it up"',
  );
  const params = mainCfLines(block);
  assert.equal(params['smtpd_milters'], 'inet:127.0.0.1:10028', 'the guide names the default port');
  params['smtpd_milters'] = `inet:127.0.0.1:${port}`;
  return params;
}

/** An XCLIENT value as xtext (RFC 3461): `+`, `=` and every byte outside ! to ~ as +HH. */
function xtext(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((byte) =>
      byte > 0x20 && byte < 0x7f && byte !== 0x2b && byte !== 0x3d
        ? String.fromCharCode(byte)
        : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
}

/**
 * The dialogue as the case's client had it: from XCLIENT's 220 (its banner) on. Without XCLIENT
 * the whole dialogue, the rig's own 127.0.0.1.
 */
function clientSession(c: MilterCase, transcript: SmtpExchange[]): SmtpExchange[] {
  if (c.xclient.length === 0) return transcript;
  const at = transcript.findIndex((e) => /^XCLIENT /i.test(e.command));
  assert.ok(at >= 0, 'swaks sent no XCLIENT');
  const handover = transcript[at]!;
  assert.match(handover.reply.at(-1) ?? '', /^220 /, 'XCLIENT was refused');
  return [{ stage: 'banner', command: '', reply: handover.reply }, ...transcript.slice(at + 1)];
}

interface RunState {
  rig: PostfixRig;
  daemon: Daemon;
  /** Everything the daemon logged (JSON lines). */
  daemonLog: () => string;
  configPath: string;
  base: Table;
  /** The configuration file in force. */
  config: string;
  workDir: string;
  /** Queue ids of messages a case expected (delivered or held). */
  expected: Set<string>;
  /** The call-back MX, when it could be made. */
  mx: NamespaceMx | undefined;
}

/** Puts the case's configuration in force, by reloading the daemon when it differs. */
async function configure(c: MilterCase, state: RunState): Promise<void> {
  const wanted = caseConfig(c, state.base);
  if (wanted === state.config) return;
  await writeFile(state.configPath, wanted);
  assert.equal(
    await state.daemon.reload(),
    true,
    `the daemon refused the configuration:\n${wanted}`,
  );
  state.config = wanted;
}

/** Sends a transaction of the case with swaks; returns the dialogue of the case's client. */
async function send(c: MilterCase, tx: CaseTransaction, state: RunState): Promise<SmtpExchange[]> {
  const n = c.transactions.indexOf(tx);
  const dataFile = join(state.workDir, `${c.name}${n > 0 ? `-${n + 1}` : ''}.eml`);
  const xclient = c.xclient.length
    ? ['--xclient', c.xclient.map((a) => `${a.name}=${xtext(a.value)}`).join(' ')]
    : [];
  return clientSession(c, await sendWithSwaks(state.rig, c, tx, dataFile, xclient));
}

/** What the call-back MX saw between two snapshots. */
function mxSince(before: MxSnapshot, after: MxSnapshot): MxSnapshot {
  return {
    connections: after.connections - before.connections,
    commands: after.commands.slice(before.commands.length),
  };
}

/** MX-CONNECTIONS and MX-COMMAND: waited for, since a QUIT may arrive after the reply. */
async function checkMx(tx: CaseTransaction, mx: NamespaceMx, before: MxSnapshot): Promise<void> {
  if (tx.mxConnections === undefined && tx.mxCommands.length === 0) return;
  const patterns = tx.mxCommands.map((glob) => globToRegExp(glob));
  const matches = (seen: MxSnapshot) =>
    (tx.mxConnections === undefined || seen.connections === tx.mxConnections) &&
    seen.commands.length === patterns.length &&
    patterns.every((p, n) => p.test(seen.commands[n] ?? ''));
  const deadline = Date.now() + LOG_TIMEOUT_MS;
  let seen = mxSince(before, await mx.snapshot());
  while (!matches(seen) && Date.now() < deadline) {
    await sleep(100);
    seen = mxSince(before, await mx.snapshot());
  }
  if (tx.mxConnections !== undefined) {
    assert.equal(seen.connections, tx.mxConnections, 'MX-CONNECTIONS: connections the MX accepted');
  }
  assert.deepEqual(
    seen.commands.map((line, n) => (patterns[n]?.test(line) ? tx.mxCommands[n] : line)),
    tx.mxCommands,
    'MX-COMMAND: the commands the MX received (a glob where it matched, else the line)',
  );
}

async function checkTransaction(
  tx: CaseTransaction,
  exchanges: SmtpExchange[],
  state: RunState,
  logSince: number,
  daemonSince: number,
  mxBefore: MxSnapshot | undefined,
): Promise<void> {
  const { rig } = state;
  await checkOutcome(tx, exchanges, rig, state.expected);
  await checkLogs(
    tx,
    () => rig.maillog().slice(logSince),
    () => state.daemonLog().slice(daemonSince),
    "MILTER-LOG (mailgate's log)",
  );
  if (mxBefore && state.mx) await checkMx(tx, state.mx, mxBefore);
}

/** Plays the case, each transaction on a connection of its own; returns how long each took (ms). */
async function runCase(c: MilterCase, state: RunState): Promise<number[]> {
  await configure(c, state);
  const took: number[] = [];
  for (const [n, tx] of c.transactions.entries()) {
    const logSince = state.rig.maillog().length;
    const daemonSince = state.daemonLog().length;
    let exchanges: SmtpExchange[] = [];
    let mxBefore: MxSnapshot | undefined;
    let mxSeen: MxSnapshot | undefined;
    try {
      mxBefore = await state.mx?.snapshot();
      const started = Date.now();
      exchanges = await send(c, tx, state);
      took.push(Date.now() - started);
      await checkTransaction(tx, exchanges, state, logSince, daemonSince, mxBefore);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (state.mx && mxBefore) mxSeen = mxSince(mxBefore, await state.mx.snapshot());
      const which =
        c.transactions.length > 1 ? ` transaction ${n + 1}${tx.name ? ` (${tx.name})` : ''}` : '';
      throw new Error(
        `${c.file}${which}: ${message}\n--- the client saw ---\n${show(exchanges)}\n` +
          `--- maillog ---\n${state.rig.maillog().slice(logSince)}` +
          `--- mailgate ---\n${state.daemonLog().slice(daemonSince)}` +
          (mxSeen
            ? `--- the call-back MX saw ---\n${mxSeen.connections} connections\n${mxSeen.commands.join('\n')}\n`
            : ''),
        { cause: error },
      );
    }
  }
  return took;
}

/** Every case file, parsed with the extensions this runner plays. */
function readCases(): MilterCase[] {
  const files = readdirSync(CASES)
    .filter((f) => f.endsWith('.case'))
    .sort();
  assert.ok(files.length > 0, `no case files in ${CASES}`);
  return files.map((f) => readCase(join(CASES, f), { extensions: EXTENSIONS }));
}

test('every case in test/serve/milter-cases parses, says what it is about, and its CONFIG is good', () => {
  const base = baseConfig('/nonexistent', 53);
  for (const c of readCases()) {
    assert.ok(c.description, `${c.file} opens with a comment saying what it is about`);
    caseConfig(c, base);
  }
});

test('the case-file extensions: refused unless the runner plays them', () => {
  const text = [
    '# XCLIENT, CONFIG, HEADER-FIRST and the MX lines.',
    'XCLIENT ADDR=192.0.2.10 NAME=mail.example.org LOGIN=alice',
    'CONFIG',
    '[spf]',
    'reject_noptr = true',
    '.',
    'MAIL <a@example.com>',
    'RCPT <b@example.net>',
    'OUTCOME delivered',
    'HEADER-FIRST Received-SPF: Pass *',
    'MX-CONNECTIONS 1',
    'MX-COMMAND MAIL FROM:<>',
    'MX-COMMAND RCPT TO:<a@*>',
    'TRANSACTION again',
    'MAIL <a@example.com>',
    'RCPT <b@example.net>',
    'OUTCOME refused',
    'MX-CONNECTIONS 0',
  ].join('\n');
  const c = parseCase(text, 'x.case', { extensions: EXTENSIONS });
  assert.deepEqual(c.xclient, [
    { name: 'ADDR', value: '192.0.2.10' },
    { name: 'NAME', value: 'mail.example.org' },
    { name: 'LOGIN', value: 'alice' },
  ]);
  assert.equal(c.config, '[spf]\nreject_noptr = true');
  assert.deepEqual(c.transactions[0]?.headerFirst, { name: 'Received-SPF', value: 'Pass *' });
  assert.equal(c.transactions.length, 2);
  assert.deepEqual(
    c.transactions.map((tx) => [tx.mxConnections, tx.mxCommands]),
    [
      [1, ['MAIL FROM:<>', 'RCPT TO:<a@*>']],
      [0, []],
    ],
  );

  // Without the extensions (the sample milter's runner): unknown directives, as before.
  assert.throws(() => parseCase(text, 'x.case'), /x\.case:2: unknown directive XCLIENT/);
  assert.throws(
    () => parseCase(text, 'x.case', { extensions: ['xclient'] }),
    /x\.case:3: unknown directive CONFIG/,
  );
  assert.throws(
    () => parseCase(text, 'x.case', { extensions: ['xclient', 'config', 'header-first'] }),
    /x\.case:11: unknown directive MX-CONNECTIONS/,
  );
  const plain = parseCase('MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused', 'p.case');
  assert.deepEqual(
    [plain.xclient, plain.config, plain.transactions[0]?.mxConnections],
    [[], undefined, undefined],
  );

  const bad: [string, RegExp][] = [
    ['XCLIENT ADDR=1.2.3.4 FOO=bar\nMAIL <a@x>\nRCPT <b@x>\nOUTCOME refused', /:1: XCLIENT wants/],
    ['XCLIENT ADDR\nMAIL <a@x>\nRCPT <b@x>\nOUTCOME refused', /:1: XCLIENT wants/],
    ['XCLIENT ADDR=1 ADDR=2\nMAIL <a@x>\nRCPT <b@x>\nOUTCOME refused', /ADDR given twice/],
    ['CONFIG\n[a]\n.\nCONFIG\n.\nMAIL <a@x>\nRCPT <b@x>\nOUTCOME refused', /:4: a second CONFIG/],
    ['CONFIG\n[a]\nMAIL <a@x>', /:1: block not ended/],
    [
      'MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nHEADER-FIRST A: 1',
      /message expectations for a refused/,
    ],
    [
      'MAIL <a@x>\nRCPT <b@x>\nOUTCOME delivered\nHEADER-FIRST A: 1\nHEADER-FIRST B: 2',
      /:5: a second HEADER-FIRST/,
    ],
    [
      'TRANSACTION one\nMAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nTRANSACTION two\nXCLIENT ADDR=1',
      /:6: XCLIENT is only for the first transaction/,
    ],
    ['MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nMX-CONNECTIONS one', /:4: MX-CONNECTIONS wants/],
    [
      'MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nMX-CONNECTIONS 1\nMX-CONNECTIONS 2',
      /:5: a second MX-CONNECTIONS/,
    ],
    ['MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nMX-COMMAND', /:4: MX-COMMAND needs an argument/],
  ];
  for (const [source, message] of bad) {
    assert.throws(
      () => parseCase(source, 'y.case', { extensions: EXTENSIONS }),
      (e: unknown) => e instanceof CaseSyntaxError && message.test(e.message),
      `${JSON.stringify(source)} is refused with ${message}`,
    );
  }
});

test('Postfix with the milter policy: every case in test/serve/milter-cases', {
  timeout: 300_000,
}, async (t) => {
  if (skipUnlessAvailable(t, ['postfix', 'swaks', 'root'])) return;
  const cases = readCases();
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-milter-cases-'));
  let dns: FixtureDnsServer | undefined;
  let daemon: Daemon | undefined;
  let rig: PostfixRig | undefined;
  let mx: NamespaceMx | undefined;
  let log = '';
  try {
    dns = await startDnsServer(ZONE);
    const base = baseConfig(dir, dns.port);
    // The call-back MX, when the cases that need it can run (see the top).
    const noMx = cases.some((c) => needsMx(c, base)) ? whyNoNamespaceMx() : undefined;
    if (!noMx) mx = await startNamespaceMx(CALLBACK_MX);
    const configPath = join(dir, 'mailgate.toml');
    const config = stringifyToml(base);
    await writeFile(configPath, config);
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk, _encoding, done) {
          log += String(chunk);
          done();
        },
      }),
    });
    daemon = await Daemon.start({ configPath, logger });
    const address = daemon.addresses.find((a) => a.door === 'milter');
    assert.ok(address?.kind === 'inet', 'the milter listens on a port');
    const documented = await documentedMainCf(address.port);
    // The guide's lines but one: non_smtpd_milters (its `$smtpd_milters`) concerns mail submitted
    // locally (sendmail, pickup), which no case sends, and the rig has it already (''). The
    // milter goes in as the rig's own smtpd_milters; the rest replace the rig's entries of the
    // same names (milter_protocol, milter_default_action, mynetworks), never written twice: see
    // the check of the maillog at the end.
    const { smtpd_milters: milter, non_smtpd_milters: local, ...lines } = documented;
    assert.equal(local, '$smtpd_milters');
    rig = await startPostfix({
      milter,
      main: {
        ...lines,
        smtpd_authorized_xclient_hosts: '127.0.0.0/8',
        // The cases' clients (XCLIENT ADDR) may relay to the sink: relaying is not tested.
        mynetworks: '0.0.0.0/0',
      },
    });
    // The guide's lines are the ones in force.
    for (const [name, value] of Object.entries({ smtpd_milters: milter, ...lines })) {
      assert.equal(await rig.postconf(name), value, `main.cf ${name}`);
    }
    await waitForBanner(rig.smtpPort);

    const state: RunState = {
      rig,
      daemon,
      daemonLog: () => log,
      configPath,
      base,
      config,
      workDir: dir,
      expected: new Set(),
      mx,
    };
    for (const c of cases) {
      const name = `${c.name} — ${c.description}`;
      if (noMx && needsMx(c, base)) {
        const message = `missing: ${noMx}, for the call-back MX's network namespace`;
        console.error(`*** SKIPPED "${c.name}": ${message} ***`);
        await t.test(name, { skip: message }, () => {});
        continue;
      }
      await t.test(name, async (sub) => {
        const took = await runCase(c, state);
        sub.diagnostic(`sent in ${took.map((ms) => `${ms} ms`).join(', ')}`);
      });
    }

    await checkNoStrayDeliveries(rig, state.expected);
    // Hostile input was refused, not survived by luck: nothing went wrong inside mailgate.
    const errors = log.split('\n').filter((l) => /"level":"(error|fatal)"/.test(l));
    assert.deepEqual(errors, [], "errors in mailgate's log");
    // The rig wrote no main.cf entry twice (each would be a warning from every Postfix process).
    assert.deepEqual(
      rig
        .maillog()
        .split('\n')
        .filter((l) => /overriding earlier entry/.test(l)),
      [],
      'main.cf duplicates',
    );
    t.diagnostic(`${cases.length} cases, ${Date.now() - started} ms including start-up`);
  } catch (error) {
    if (rig) t.diagnostic(`maillog:\n${rig.maillog()}`);
    t.diagnostic(`mailgate log:\n${log}`);
    throw error;
  } finally {
    await rig?.stop();
    await daemon?.close();
    await mx?.close();
    await dns?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
