// `mailgate report` run as a program against a real SQLite store written through logDecision:
// the period options, each format on standard output and into a file, and the usage and
// run-time errors with their exit codes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DecisionReport } from '../../src/observe/index.js';
import { type Decision, openStore } from '../../src/store/index.js';
import { runCli } from '../support/run-cli.js';

const HOUR = 3_600_000;
const HOSTILE_HELO = '<b>bold</b>"\u001b]0;title\u0007';
let dir: string;
let config: string;
let noWhitelistConfig: string;
/** When the lines relative to now were written. */
let now: number;

function line(time: number, action: string, reason: string, extra: Partial<Decision> = {}) {
  return {
    time,
    host: 'mx1.example.net',
    client: '192.0.2.7',
    helo: 'mail.example.org',
    sender: 'jo@example.org',
    recipient: 'bob@ours.example',
    action,
    reason,
    stage: 'mail',
    tags: [],
    ...extra,
  } satisfies Decision;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailgate-cli-report-'));
  const db = join(dir, 'mailgate.db');
  config = join(dir, 'mailgate.toml');
  writeFileSync(config, `[store]\nurl = "sqlite:${db}"\n`);
  noWhitelistConfig = join(dir, 'no-whitelist.toml');
  writeFileSync(
    noWhitelistConfig,
    `[store]\nurl = "sqlite:${db}"\n\n[greylist]\nauto_whitelist_clients = 0\n`,
  );
  const store = await openStore(`sqlite:${db}`);
  now = Date.now();
  await Promise.all([
    // The last 24 hours: three lines.
    store.logDecision(
      line(now - HOUR, 'reject', 'spf-fail', {
        helo: HOSTILE_HELO,
        tags: ['REJECT', 'SPF fail', 'policy default'],
      }),
    ),
    store.logDecision(line(now - 2 * HOUR, 'pass', 'eom', { stage: 'eom' })),
    store.logDecision(
      line(now - 3 * HOUR, 'tempfail', 'spf-temperror', {
        tags: ['TEMPFAIL', 'SPF temperror', 'policy default'],
      }),
    ),
    // Two days ago: within 7d, not within 24h.
    store.logDecision(line(now - 48 * HOUR, 'reject', 'numeric-helo', { stage: 'helo' })),
    // A fixed day long ago, for --from/--to.
    store.logDecision(line(Date.UTC(2025, 2, 1, 9, 59), 'pass', 'eom', { stage: 'eom' })),
    store.logDecision(line(Date.UTC(2025, 2, 1, 10, 0), 'reject', 'spf-fail')),
    store.logDecision(line(Date.UTC(2025, 2, 1, 23, 0), 'greylist', 'score', { stage: undefined })),
    store.logDecision(line(Date.UTC(2025, 2, 2, 0, 0), 'reject', 'spf-fail')),
  ]);
  await store.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

function json(stdout: string): DecisionReport {
  return JSON.parse(stdout) as DecisionReport;
}

describe('mailgate report', () => {
  it('reports the last 24 hours as text by default', async () => {
    const run = await runCli(['report', '-c', config]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /^mailgate decision log report\n/);
    assert.match(run.stdout, /\(24h\)\n/);
    assert.match(run.stdout, /^ {2}decisions +3$/m);
    assert.match(run.stdout, /^ {2}reject +1 +33\.3%$/m);
    assert.match(run.stdout, /^DNS tempfails \(1\)$/m);
    // The hostile HELO is escaped: no terminal control reaches the output.
    assert.doesNotMatch(run.stdout, /[\u0000-\u0009\u000b-\u001f]/);
    assert.match(run.stdout, /<b>bold<\/b>"\\x1b\]0;title\\x07/);
  });

  it('--since 7d --format json: the report object', async () => {
    const run = await runCli(['report', '--since', '7d', '--format', 'json', '--config', config]);
    assert.equal(run.code, 0, run.stderr);
    const report = json(run.stdout);
    assert.equal(report.total, 4);
    assert.ok(Math.abs(report.to - report.from - 7 * 24 * HOUR) < 1);
    assert.ok(report.to >= now && report.to - now < 60_000);
    assert.deepEqual(
      report.actions.map((a) => [a.name, a.count]),
      [
        ['reject', 2],
        ['pass', 1],
        ['tempfail', 1],
      ],
    );
    // The default auto-whitelist threshold (5) asks what greylisting holds now.
    assert.deepEqual(report.greylistNow, { waiting: 0, passed: 0, whitelisted: 0 });
  });

  it('--from and --to: an ISO 8601 period, UTC unless an offset is given', async () => {
    const day = await runCli([
      'report',
      '--from',
      '2025-03-01',
      '--to',
      '2025-03-02',
      '--format',
      'json',
      '-c',
      noWhitelistConfig,
    ]);
    assert.equal(day.code, 0, day.stderr);
    const report = json(day.stdout);
    assert.equal(report.from, Date.UTC(2025, 2, 1));
    assert.equal(report.to, Date.UTC(2025, 2, 2));
    assert.equal(report.total, 3);
    assert.equal(report.greylistLines, 1);
    assert.equal(report.greylistNow, undefined);
    // 12:00 at +02:00 is 10:00 UTC: the 09:59 line is left out, the 10:00 line is in.
    const offset = await runCli([
      'report',
      '--from',
      '2025-03-01T12:00+02:00',
      '--to',
      '2025-03-01T23:30:00Z',
      '--format',
      'json',
      '-c',
      config,
    ]);
    assert.equal(offset.code, 0, offset.stderr);
    const later = json(offset.stdout);
    assert.equal(later.from, Date.UTC(2025, 2, 1, 10));
    assert.deepEqual(
      later.actions.map((a) => [a.name, a.count]),
      [
        ['greylist', 1],
        ['reject', 1],
      ],
    );
  });

  it('--format html --output FILE: the page in the file, nothing on standard output', async () => {
    const file = join(dir, 'report.html');
    const run = await runCli(['report', '--format', 'html', '--output', file, '-c', config]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
    const html = readFileSync(file, 'utf8');
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<title>mailgate report: /);
    assert.equal((html.match(/<svg /g) ?? []).length, 3);
    assert.match(html, /&lt;b&gt;bold&lt;\/b&gt;&quot;\uFFFD\]0;title\uFFFD/);
    assert.doesNotMatch(html, /<b>bold/);
  });

  it('--output for text and json too', async () => {
    for (const format of ['text', 'json']) {
      const file = join(dir, `report.${format}`);
      const run = await runCli(['report', '--format', format, '-o', file, '-c', config]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, '');
      const written = readFileSync(file, 'utf8');
      if (format === 'json') assert.equal(json(written).total, 3);
      else assert.match(written, /^ {2}decisions +3$/m);
    }
  });

  it('refuses bad arguments with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--since', 'yesterday'], /--since: not a duration: yesterday/],
      [['--since', '0s'], /--since: not a duration/],
      [['--since', '1h', '--from', '2025-03-01'], /either --since or --from\/--to/],
      [['--to', '2025-03-01'], /--to needs --from/],
      [['--from', '2025-02-30'], /--from: not an ISO 8601 date: 2025-02-30/],
      [['--from', '03/01/2025'], /--from: not an ISO 8601 date/],
      [['--from', '2025-03-02', '--to', '2025-03-01'], /--to must be after --from/],
      [['--format', 'xml'], /--format must be text, json or html, not xml/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(['report', ...args, '-c', config]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
    }
  });

  it('fails with exit code 1 when there is no store or the file cannot be written', async () => {
    const missing = join(dir, 'missing.toml');
    writeFileSync(missing, `[store]\nurl = "sqlite:${join(dir, 'nowhere', 'none.db')}"\n`);
    const run = await runCli(['report', '-c', missing]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^mailgate: no store at sqlite:/);
    assert.ok(!existsSync(join(dir, 'nowhere')));
    const unwritable = await runCli([
      'report',
      '-o',
      join(dir, 'no-such-dir', 'r.txt'),
      '-c',
      config,
    ]);
    assert.equal(unwritable.code, 1);
    assert.match(unwritable.stderr, /^mailgate: cannot write .*no-such-dir\/r\.txt: ENOENT$/m);
  });

  it('is listed in the help', async () => {
    const run = await runCli(['report', '--help']);
    assert.equal(run.code, 0);
    for (const option of ['--since', '--from', '--to', '--format', '--output', '--config']) {
      assert.match(run.stdout, new RegExp(option));
    }
  });
});
