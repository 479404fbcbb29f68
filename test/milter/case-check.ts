/**
 * Playing and checking a case (test/milter/case-file.ts) against a throwaway Postfix: what both
 * runners share, test/milter/postfix-interop.test.ts (the sample milter) and
 * test/serve/postfix-milter-policy.test.ts (the daemon's milter policy). Sending a transaction
 * with swaks, the replies the client got, the queue id, the delivered or held message, the log
 * lines, and the deliveries no case expected. What differs between the runners (XCLIENT, CONFIG,
 * the call-back MX, whose log MILTER-LOG reads) stays with them.
 *
 * ```ts
 * const exchanges = await sendWithSwaks(rig, c, tx, join(workDir, `${c.name}.eml`));
 * await checkOutcome(tx, exchanges, rig, expected);
 * await checkLogs(tx, () => rig.maillog().slice(logSince), () => milter.output(), 'MILTER-LOG');
 * ```
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PostfixRig } from '../support/postfix.js';
import { type MessageHeader, parseMessage } from '../support/smtp-sink.js';
import type { SmtpExchange } from '../support/smtp-transcript.js';
import { type CaseTransaction, globToRegExp, type MilterCase, messageText } from './case-file.js';

/** How long a delivered message may take to reach the sink. */
export const DELIVERY_TIMEOUT_MS = 20_000;
/** How long a LOG line, a held message or another late effect is waited for. */
export const LOG_TIMEOUT_MS = 10_000;

/**
 * Whether the exchange's last reply line is positive (2xx).
 *
 * ```ts
 * isPositive({ stage: 'dot', command: '.', reply: ['250 2.0.0 Ok: queued as 4F2'] }); // true
 * ```
 */
export const isPositive = (exchange: SmtpExchange): boolean =>
  /^2/.test(exchange.reply.at(-1) ?? '');

/**
 * The dialogue as text for a failure message: each command, then its reply lines indented.
 *
 * ```ts
 * show(exchanges); // 'EHLO client.mailgate.test\n    250-…\nMAIL FROM:<a@x>\n    250 2.1.0 Ok'
 * ```
 */
export function show(exchanges: readonly SmtpExchange[]): string {
  return exchanges
    .map((e) => `${e.command || `(${e.stage})`}\n${e.reply.map((r) => `    ${r}`).join('\n')}`)
    .join('\n');
}

/**
 * Waits until `lines()` holds a line containing the glob; fails, naming `what`, after
 * LOG_TIMEOUT_MS.
 *
 * ```ts
 * await waitForLine(() => rig.maillog().split('\n'), 'milter-hold: *', 'LOG (maillog)');
 * ```
 */
export async function waitForLine(
  lines: () => string[],
  glob: string,
  what: string,
): Promise<void> {
  const pattern = globToRegExp(glob, { anywhere: true });
  const deadline = Date.now() + LOG_TIMEOUT_MS;
  while (!lines().some((l) => pattern.test(l))) {
    if (Date.now() > deadline) assert.fail(`${what}: no line contains ${JSON.stringify(glob)}`);
    await sleep(100);
  }
}

function headerMatches(header: MessageHeader | undefined, want: { name: string; value?: string }) {
  return (
    header !== undefined &&
    header.name.toLowerCase() === want.name.toLowerCase() &&
    globToRegExp(want.value ?? '*').test(header.value)
  );
}

/**
 * Checks a message (delivered, or on hold) against the transaction's HEADER-HAS, HEADER-LACKS,
 * HEADER-FIRST, HEADER-LAST, BODY-IS, BODY-HAS and BODY-LACKS.
 *
 * ```ts
 * checkMessage(tx, delivery.headers, delivery.body);
 * ```
 */
export function checkMessage(tx: CaseTransaction, headers: MessageHeader[], body: string): void {
  const values = (name: string) =>
    headers.filter((h) => h.name.toLowerCase() === name.toLowerCase()).map((h) => h.value);
  const listing = `the message's header:\n${headers.map((h) => `${h.name}: ${h.value}`).join('\n')}`;
  const pick = (all: string[], occurrence: number | undefined) =>
    occurrence ? all.slice(occurrence - 1, occurrence) : all;
  for (const want of tx.headerHas) {
    const pattern = globToRegExp(want.value ?? '*');
    assert.ok(
      pick(values(want.name), want.occurrence).some((v) => pattern.test(v)),
      `HEADER-HAS ${want.name}${want.occurrence ? `[${want.occurrence}]` : ''}: ${want.value}\n${listing}`,
    );
  }
  for (const unwanted of tx.headerLacks) {
    const pattern = globToRegExp(unwanted.value ?? '*');
    assert.ok(
      !pick(values(unwanted.name), unwanted.occurrence).some((v) => pattern.test(v)),
      `HEADER-LACKS ${unwanted.name}${unwanted.occurrence ? `[${unwanted.occurrence}]` : ''}` +
        `${unwanted.value === undefined ? '' : `: ${unwanted.value}`}\n${listing}`,
    );
  }
  if (tx.headerFirst) {
    assert.ok(
      headerMatches(headers[0], tx.headerFirst),
      `HEADER-FIRST ${tx.headerFirst.name}: ${tx.headerFirst.value}\n${listing}`,
    );
  }
  if (tx.headerLast) {
    assert.ok(
      headerMatches(headers.at(-1), tx.headerLast),
      `HEADER-LAST ${tx.headerLast.name}: ${tx.headerLast.value}\n${listing}`,
    );
  }
  if (tx.bodyIs !== undefined) assert.equal(body, tx.bodyIs, 'BODY-IS');
  for (const text of tx.bodyHas) assert.ok(body.includes(text), `BODY-HAS ${text}\nbody:\n${body}`);
  for (const text of tx.bodyLacks) {
    assert.ok(!body.includes(text), `BODY-LACKS ${text}\nbody:\n${body}`);
  }
}

/**
 * Sends one transaction of the case with swaks (`extra` goes after the case's own arguments, e.g.
 * `--xclient`) and returns the dialogue swaks printed. The message is written to `dataFile`,
 * dot-stuffed and ending in "." since `--no-data-fixup` sends the file as it is, then CRLF.
 *
 * ```ts
 * const exchanges = await sendWithSwaks(rig, c, c.transactions[0]!, '/tmp/x/case.eml');
 * ```
 */
export async function sendWithSwaks(
  rig: PostfixRig,
  c: MilterCase,
  tx: CaseTransaction,
  dataFile: string,
  extra: readonly string[] = [],
): Promise<SmtpExchange[]> {
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
    ...extra,
  ]);
  assert.ok(!run.timedOut, `swaks timed out:\n${run.stdout}\n${run.stderr}`);
  assert.ok(
    run.transcript.length > 0,
    `swaks printed no dialogue (exit ${run.code}):\n${run.stderr}`,
  );
  return run.transcript;
}

/**
 * Checks a transaction's REPLY lines against what the client got, and its OUTCOME: refused (never
 * queued), delivered (relayed to the sink with the expected envelope and message) or held (on
 * hold, with the expected message). The queue id of a message that was queued is added to
 * `expected` (see checkNoStrayDeliveries) and returned.
 *
 * ```ts
 * const queueId = await checkOutcome(tx, exchanges, rig, expected);
 * ```
 */
export async function checkOutcome(
  tx: CaseTransaction,
  exchanges: readonly SmtpExchange[],
  rig: PostfixRig,
  expected: Set<string>,
): Promise<string | undefined> {
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
    expected.add(queueId);
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
  }
  return queueId;
}

/**
 * Waits for the transaction's LOG lines in `maillog()` and its MILTER-LOG lines in `milterLog()`
 * (each the text since the transaction began); `milterWhat` names the latter in a failure.
 *
 * ```ts
 * await checkLogs(tx, () => rig.maillog().slice(since), () => milter.output(), 'MILTER-LOG');
 * ```
 */
export async function checkLogs(
  tx: CaseTransaction,
  maillog: () => string,
  milterLog: () => string,
  milterWhat: string,
): Promise<void> {
  for (const glob of tx.log) {
    await waitForLine(() => maillog().split('\n'), glob, 'LOG (maillog)');
  }
  for (const glob of tx.milterLog) {
    await waitForLine(() => milterLog().split('\n'), glob, milterWhat);
  }
}

/**
 * After the last case: nothing reached the sink that no case expected (a refused message that
 * slipped through). Waits half a second for late deliveries first.
 *
 * ```ts
 * await checkNoStrayDeliveries(rig, expected);
 * ```
 */
export async function checkNoStrayDeliveries(
  rig: PostfixRig,
  expected: ReadonlySet<string>,
): Promise<void> {
  await sleep(500);
  const stray = rig.sink.deliveries.filter((d) => !d.queueId || !expected.has(d.queueId));
  assert.deepEqual(
    stray.map((d) => `${d.queueId}: ${d.header('Subject')}`),
    [],
    'deliveries no case expected',
  );
}
