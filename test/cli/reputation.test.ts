// `mailgate reputation` against a real SQLite store seeded through the recorder, as the daemon
// would have filled it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ReputationRecorder } from '../../src/reputation/index.js';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../support/run-cli.js';

const DAY = 86_400_000;
let dir: string;
let config: string;
/** When the seeded events happened: a day before the test ran. */
let seen: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailgate-cli-reputation-'));
  const db = join(dir, 'mailgate.db');
  config = join(dir, 'mailgate.toml');
  writeFileSync(config, `[store]\nurl = "sqlite:${db}"\n`);
  const store = await openStore(`sqlite:${db}`);
  const recorder = new ReputationRecorder(store, {
    logger: { info: () => {}, warn: () => {} },
    flushMs: 60_000,
  });
  seen = Date.now() - DAY;
  const domain = ['domain:example.org'];
  for (let i = 0; i < 12; i++) recorder.record(domain, 'spf:pass', seen);
  recorder.record(domain, 'spf:softfail', seen);
  for (let i = 0; i < 2; i++) recorder.record(domain, 'greylist:refused', seen);
  for (let i = 0; i < 2; i++) recorder.record(domain, 'greylist:pass', seen);
  for (let i = 0; i < 3; i++) recorder.record(domain, 'spf:none', seen);
  for (let i = 0; i < 3; i++) recorder.record(['net:192.0.2.0/24'], 'cbv:rejected', seen - DAY);
  await recorder.close();
  await store.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

const near = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-3, `${what}: ${actual} is not about ${expected}`);

test('--json: one object with every subject asked, in order', async () => {
  const run = await runCli([
    'reputation',
    'Example.ORG',
    '192.0.2.77',
    'nobody.example',
    '--config',
    config,
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const out = JSON.parse(lines[0]!) as {
    subjects: {
      subject: string;
      score: number;
      confidence: number;
      observations: number;
      goodStanding: boolean;
      lastSeen: string | null;
      counts: Record<string, number>;
    }[];
  };
  assert.deepEqual(
    out.subjects.map((s) => s.subject),
    ['domain:example.org', 'net:192.0.2.0/24', 'domain:nobody.example'],
  );
  const [domain, net, nobody] = out.subjects;
  assert.ok(domain && net && nobody);
  assert.deepEqual(Object.keys(domain), [
    'subject',
    'score',
    'confidence',
    'observations',
    'goodStanding',
    'lastSeen',
    'counts',
  ]);
  // A day old at a 30-day half-life: everything weighs 2^(-1/30) of what was counted.
  const f = 2 ** (-1 / 30);
  near(domain.score, (14 * f - 2 * f) / (16 * f + 1), 'score');
  near(domain.confidence, (17 * f) / (17 * f + 10), 'confidence');
  near(domain.observations, 17 * f, 'observations');
  assert.equal(domain.goodStanding, true);
  assert.equal(domain.lastSeen, new Date(seen).toISOString());
  assert.deepEqual(Object.keys(domain.counts).sort(), [
    'greylist:pass',
    'greylist:refused',
    'spf:none',
    'spf:pass',
    'spf:softfail',
  ]);
  near(domain.counts['spf:pass']!, 12 * f, 'spf:pass');
  near(domain.counts['spf:none']!, 3 * f, 'spf:none');
  const g = 2 ** (-2 / 30);
  near(net.score, -(6 * g) / (6 * g + 1), 'network score');
  assert.equal(net.goodStanding, false);
  assert.deepEqual(nobody, {
    subject: 'domain:nobody.example',
    score: 0,
    confidence: 0,
    observations: 0,
    goodStanding: false,
    lastSeen: null,
    counts: {},
  });
});

test('for people: the subject, then one labelled line each', async () => {
  const run = await runCli(['reputation', '2001:db8::1', '192.0.2.1', '--config', config]);
  assert.equal(run.code, 0, run.stderr);
  const [v6, v4] = run.stdout.split('\n\n');
  assert.match(v6!, /^net:2001:db8::\/64\n/);
  assert.match(v6!, /^ {2}good standing +no$/m);
  assert.match(v6!, /^ {2}last seen +never$/m);
  assert.match(v4!, /^net:192\.0\.2\.0\/24\n/);
  assert.match(v4!, /^ {2}score +-0\.85\d$/m);
  assert.match(v4!, /^ {2}observations +2\.8\d$/m);
  assert.match(v4!, /^ {2}cbv:rejected +2\.8\d$/m);
  assert.match(
    v4!,
    new RegExp(`^ {2}last seen +${new Date(seen - DAY).toISOString().replace(/\./g, '\\.')}$`, 'm'),
  );
  assert.doesNotMatch(v4!, /spf:pass/, 'events never seen are not listed');
});

test('the configuration decides good standing', async () => {
  const strict = join(dir, 'strict.toml');
  writeFileSync(
    strict,
    `[store]\nurl = "sqlite:${join(dir, 'mailgate.db')}"\n[reputation]\nmin_confidence = 0.9\n`,
  );
  const run = await runCli(['reputation', 'example.org', '--config', strict, '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).subjects[0].goodStanding, false);
});

test('what is neither a domain nor an address is a usage error (exit 2), shown escaped', async () => {
  for (const bad of ['not a domain', 'localhost', '192.0.2.0/24', 'evil.example\r\nX: y']) {
    const run = await runCli(['reputation', bad, '--config', config]);
    assert.equal(run.code, 2, bad);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^mailgate: not a domain nor an IP address: /);
    assert.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  }
  const none = await runCli(['reputation', '--config', config]);
  assert.equal(none.code, 2);
  const badConfig = join(dir, 'bad.toml');
  writeFileSync(badConfig, '[reputation]\nmin_score = 2\n');
  const bad = await runCli(['reputation', 'example.org', '--config', badConfig]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /reputation\.min_score/);
});

test('a store that is not there is an error (exit 1), and is not created', async () => {
  const missing = join(dir, 'nowhere', 'mailgate.db');
  const elsewhere = join(dir, 'elsewhere.toml');
  writeFileSync(elsewhere, `[store]\nurl = "sqlite:${missing}"\n`);
  const run = await runCli(['reputation', 'example.org', '--config', elsewhere]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^mailgate: no store at sqlite:.*nowhere\/mailgate\.db/);
  assert.equal(run.stderr.trim().split('\n').length, 1, 'a message, not a stack');
  assert.equal(existsSync(missing), false);
});
