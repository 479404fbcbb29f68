/**
 * End to end through real programs: swaks (or, for several transactions on one connection, our
 * own small client) → a throwaway Postfix (test/support/postfix.ts) → the sample milter
 * (examples/sample-milter.ts, a child process) → the SMTP sink. Every file in
 * test/milter/cases/*.case is one case; the format is described in test/milter/case-file.ts.
 * Adding a case is adding a file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type MilterProcess, startMilterProcess } from '../support/milter-process.js';
import { type PostfixRig, startPostfix } from '../support/postfix.js';
import { skipUnlessAvailable } from '../support/programs.js';
import { type MessageHeader, parseMessage } from '../support/smtp-sink.js';
import { type SmtpExchange, smtpDialogue } from '../support/smtp-transcript.js';
import {
  type CaseTransaction,
  globToRegExp,
  type MilterCase,
  messageText,
  readCase,
} from './case-file.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CASES = join(ROOT, 'test', 'milter', 'cases');
const DELIVERY_TIMEOUT_MS = 20_000;
const LOG_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Splits a dialogue into transactions: each MAIL starts one; the greeting goes with the first. */
function splitTransactions(exchanges: readonly SmtpExchange[], count: number): SmtpExchange[][] {
  const segments: SmtpExchange[][] = [[]];
  let seenMail = false;
  for (const exchange of exchanges) {
    if (exchange.stage === 'mail') {
      if (seenMail) segments.push([]);
      seenMail = true;
    }
    segments[segments.length - 1]!.push(exchange);
  }
  while (segments.length < count) segments.push([]);
  return segments;
}

const isPositive = (exchange: SmtpExchange) => /^2/.test(exchange.reply.at(-1) ?? '');

function show(exchanges: readonly SmtpExchange[]): string {
  return exchanges
    .map((e) => `${e.command || `(${e.stage})`}\n${e.reply.map((r) => `    ${r}`).join('\n')}`)
    .join('\n');
}

/** Waits until `lines()` holds a line containing the glob. */
async function waitForLine(lines: () => string[], glob: string, what: string): Promise<void> {
  const pattern = globToRegExp(glob, { anywhere: true });
  const deadline = Date.now() + LOG_TIMEOUT_MS;
  while (!lines().some((l) => pattern.test(l))) {
    if (Date.now() > deadline) assert.fail(`${what}: no line contains ${JSON.stringify(glob)}`);
    await sleep(100);
  }
}

/** Checks a message (delivered, or on hold) against the transaction's expectations. */
function checkMessage(tx: CaseTransaction, headers: MessageHeader[], body: string): void {
  const values = (name: string) =>
    headers.filter((h) => h.name.toLowerCase() === name.toLowerCase()).map((h) => h.value);
  const listing = headers.map((h) => `${h.name}: ${h.value}`).join('\n');
  for (const want of tx.headerHas) {
    const all = values(want.name);
    const candidates = want.occurrence ? all.slice(want.occurrence - 1, want.occurrence) : all;
    const pattern = globToRegExp(want.value ?? '*');
    assert.ok(
      candidates.some((v) => pattern.test(v)),
      `HEADER-HAS ${want.name}${want.occurrence ? `[${want.occurrence}]` : ''}: ${want.value}\n` +
        `the message's header:\n${listing}`,
    );
  }
  for (const unwanted of tx.headerLacks) {
    const all = values(unwanted.name);
    const candidates = unwanted.occurrence
      ? all.slice(unwanted.occurrence - 1, unwanted.occurrence)
      : all;
    const pattern = globToRegExp(unwanted.value ?? '*');
    assert.ok(
      !candidates.some((v) => pattern.test(v)),
      `HEADER-LACKS ${unwanted.name}${unwanted.value === undefined ? '' : `: ${unwanted.value}`}\n` +
        `the message's header:\n${listing}`,
    );
  }
  if (tx.headerLast) {
    const last = headers.at(-1);
    assert.ok(
      last !== undefined &&
        last.name.toLowerCase() === tx.headerLast.name.toLowerCase() &&
        globToRegExp(tx.headerLast.value ?? '*').test(last.value),
      `HEADER-LAST ${tx.headerLast.name}: ${tx.headerLast.value}\nthe message's header:\n${listing}`,
    );
  }
  if (tx.bodyIs !== undefined) assert.equal(body, tx.bodyIs, 'BODY-IS');
  for (const text of tx.bodyHas) assert.ok(body.includes(text), `BODY-HAS ${text}\nbody:\n${body}`);
  for (const text of tx.bodyLacks) {
    assert.ok(!body.includes(text), `BODY-LACKS ${text}\nbody:\n${body}`);
  }
}

interface RunState {
  rig: PostfixRig;
  milter: MilterProcess;
  workDir: string;
  /** Queue ids of messages a case expected (delivered or held). */
  expected: Set<string>;
}

/** Sends a case's transactions and returns what the client saw. */
async function send(c: MilterCase, { rig, workDir }: RunState): Promise<SmtpExchange[]> {
  if (c.transactions.length > 1) {
    return smtpDialogue(
      rig.smtpPort,
      c.helo,
      c.transactions.map((tx) => ({ from: tx.from, to: tx.to, data: messageText(c, tx) })),
    );
  }
  const tx = c.transactions[0]!;
  // --no-data-fixup sends the file as it is, then CRLF: so the file is dot-stuffed and ends in ".".
  const dataFile = join(workDir, `${c.name}.eml`);
  writeFileSync(dataFile, `${messageText(c, tx).replace(/^\./gm, '..')}.`);
  const run = await rig.swaks([
    '--helo',
    c.helo,
    '--from',
    tx.from === '' ? '<>' : tx.from,
    '--to',
    tx.to.join(','),
    '--data',
    `@${dataFile}`,
    '--no-data-fixup',
    '--timeout',
    '30s',
  ]);
  assert.ok(!run.timedOut, `swaks timed out:\n${run.stdout}\n${run.stderr}`);
  assert.ok(
    run.transcript.length > 0,
    `swaks printed no dialogue (exit ${run.code}):\n${run.stderr}`,
  );
  return run.transcript;
}

async function checkTransaction(
  tx: CaseTransaction,
  exchanges: SmtpExchange[],
  state: RunState,
  logSince: number,
  milterSince: number,
): Promise<void> {
  const { rig, milter } = state;
  for (const want of tx.replies) {
    const got = exchanges.find(
      (e) => e.stage === want.stage && (want.address === undefined || e.address === want.address),
    );
    const label = `REPLY ${want.stage.toUpperCase()}${want.address !== undefined ? ` <${want.address}>` : ''}`;
    assert.ok(got, `${label}: the client never got there`);
    assert.ok(
      got.reply.length === want.lines.length &&
        want.lines.every((line, n) => globToRegExp(line).test(got.reply[n] ?? '')),
      `${label}\n  expected: ${JSON.stringify(want.lines)}\n  received: ${JSON.stringify(got.reply)}`,
    );
  }

  const dot = exchanges.find((e) => e.stage === 'dot');
  const queueId =
    dot && isPositive(dot) ? /queued as (\w+)/.exec(dot.reply.join(' '))?.[1] : undefined;
  if (tx.outcome === 'refused') {
    assert.equal(queueId, undefined, `OUTCOME refused, but the message was queued as ${queueId}`);
  } else {
    assert.ok(
      queueId,
      `OUTCOME ${tx.outcome}, but the end of DATA got ${JSON.stringify(dot?.reply)}`,
    );
    state.expected.add(queueId);
  }

  if (tx.outcome === 'delivered') {
    const delivery = await rig.nextDelivery({
      match: (d) => d.queueId === queueId,
      timeoutMs: DELIVERY_TIMEOUT_MS,
    });
    const accepted = exchanges.filter((e) => e.stage === 'rcpt' && isPositive(e));
    assert.equal(delivery.from, tx.envelopeFrom ?? tx.from, 'the delivered envelope sender');
    assert.deepEqual(
      [...delivery.to].sort(),
      [...(tx.envelopeTo ?? accepted.map((e) => e.address ?? ''))].sort(),
      'the delivered envelope recipients',
    );
    checkMessage(tx, delivery.headers, delivery.body);
  } else if (tx.outcome === 'held') {
    const deadline = Date.now() + LOG_TIMEOUT_MS;
    for (;;) {
      const entry = (await rig.queue()).find((q) => q.queue_id === queueId);
      if (entry?.queue_name === 'hold') break;
      assert.ok(
        Date.now() < deadline,
        `OUTCOME held, but ${queueId} is ${entry ? `in the ${entry.queue_name} queue` : 'not in the queue'}`,
      );
      await sleep(100);
    }
    const { headers, body } = parseMessage(await rig.postcat(queueId!));
    checkMessage(tx, headers, body);
    assert.ok(
      !rig.sink.deliveries.some((d) => d.queueId === queueId),
      `${queueId} was held and yet delivered`,
    );
  }

  for (const glob of tx.log) {
    await waitForLine(() => rig.maillog().slice(logSince).split('\n'), glob, 'LOG (maillog)');
  }
  for (const glob of tx.milterLog) {
    await waitForLine(() => milter.output().slice(milterSince).split('\n'), glob, 'MILTER-LOG');
  }
}

async function runCase(c: MilterCase, state: RunState): Promise<void> {
  const logSince = state.rig.maillog().length;
  const milterSince = state.milter.output().length;
  let exchanges: SmtpExchange[] = [];
  try {
    exchanges = await send(c, state);
    const segments = splitTransactions(exchanges, c.transactions.length);
    for (const [n, tx] of c.transactions.entries()) {
      await checkTransaction(tx, segments[n]!, state, logSince, milterSince);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${c.file}: ${message}\n--- the client saw ---\n${show(exchanges)}\n` +
        `--- maillog ---\n${state.rig.maillog().slice(logSince)}` +
        `--- milter ---\n${state.milter.output().slice(milterSince)}`,
      { cause: error },
    );
  }
}

test('Postfix with the sample milter: every case in test/milter/cases', {
  timeout: 600_000,
}, async (t) => {
  if (skipUnlessAvailable(t, ['postfix', 'swaks', 'root'])) return;
  const files = readdirSync(CASES)
    .filter((f) => f.endsWith('.case'))
    .sort();
  assert.ok(files.length > 0, `no case files in ${CASES}`);

  const started = Date.now();
  const milter = await startMilterProcess(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'examples', 'sample-milter.ts'), '--listen', 'inet:0@127.0.0.1'],
    { cwd: ROOT },
  );
  let rig: PostfixRig | undefined;
  const workDir = mkdtempSync(join(tmpdir(), 'mailgate-cases-'));
  try {
    rig = await startPostfix({ milter: milter.spec });
    const state: RunState = { rig, milter, workDir, expected: new Set() };
    for (const file of files) {
      const c = readCase(join(CASES, file));
      await t.test(`${c.name}${c.description ? ` — ${c.description}` : ''}`, () =>
        runCase(c, state),
      );
    }
    // Nothing reached the sink that no case expected (a refused message that slipped through).
    await sleep(500);
    const stray = rig.sink.deliveries.filter((d) => !d.queueId || !state.expected.has(d.queueId));
    assert.deepEqual(
      stray.map((d) => `${d.queueId}: ${d.header('Subject')}`),
      [],
      'deliveries no case expected',
    );
    t.diagnostic(`${files.length} cases, ${Date.now() - started} ms including start-up`);
  } finally {
    await rig?.stop();
    await milter.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  assert.equal(milter.exitCode(), 0, `the sample milter's exit on SIGTERM:\n${milter.output()}`);
});
