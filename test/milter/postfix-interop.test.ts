/**
 * End to end through real programs: swaks (or, for several transactions on one connection, our
 * own small client) → a throwaway Postfix (test/support/postfix.ts) → the sample milter
 * (examples/sample-milter.ts, a child process) → the SMTP sink. Every file in
 * test/milter/cases/*.case is one case; the format is described in test/milter/case-file.ts.
 * Adding a case is adding a file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type MilterProcess, startMilterProcess } from '../support/milter-process.js';
import { type PostfixRig, startPostfix } from '../support/postfix.js';
import { skipUnlessAvailable } from '../support/programs.js';
import { type SmtpExchange, smtpDialogue } from '../support/smtp-transcript.js';
import {
  checkLogs,
  checkNoStrayDeliveries,
  checkOutcome,
  sendWithSwaks,
  show,
} from './case-check.js';
import { type CaseTransaction, type MilterCase, messageText, readCase } from './case-file.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CASES = join(ROOT, 'test', 'milter', 'cases');

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
  return sendWithSwaks(rig, c, c.transactions[0]!, join(workDir, `${c.name}.eml`));
}

async function checkTransaction(
  tx: CaseTransaction,
  exchanges: SmtpExchange[],
  state: RunState,
  logSince: number,
  milterSince: number,
): Promise<void> {
  const { rig, milter } = state;
  const queueId = await checkOutcome(tx, exchanges, rig, state.expected);
  if (tx.outcome === 'held') {
    assert.ok(
      !rig.sink.deliveries.some((d) => d.queueId === queueId),
      `${queueId} was held and yet delivered`,
    );
  }
  await checkLogs(
    tx,
    () => rig.maillog().slice(logSince),
    () => milter.output().slice(milterSince),
    'MILTER-LOG',
  );
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
    await checkNoStrayDeliveries(rig, state.expected);
    t.diagnostic(`${files.length} cases, ${Date.now() - started} ms including start-up`);
  } finally {
    await rig?.stop();
    await milter.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  assert.equal(milter.exitCode(), 0, `the sample milter's exit on SIGTERM:\n${milter.output()}`);
});
