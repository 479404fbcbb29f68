// `mailgate dkim`, `mailgate dmarc` and `mailgate arc` through the real binary entry, the real
// resolver and the fixture DNS server.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateKeyPair, parseKeyRecord } from '../../src/checks/dkim/index.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { runCli } from '../support/run-cli.js';

const key = generateKeyPair('ed25519');
let server: FixtureDnsServer;
let dir: string;
const MESSAGE = 'From: Jo <jo@signed.test>\nTo: <sam@example.org>\nSubject: hello\n\nHi.\n';

before(async () => {
  server = await startDnsServer({
    's1._domainkey.signed.test': [{ TXT: key.publicKeyRecord }],
    'signed.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
    '_dmarc.signed.test': [{ TXT: 'v=DMARC1; p=reject' }],
  });
  dir = mkdtempSync(join(tmpdir(), 'mailgate-cli-auth-'));
  writeFileSync(join(dir, 'key.pem'), key.privateKeyPem);
  writeFileSync(join(dir, 'plain.eml'), MESSAGE);
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(['--dns', server.address, ...args]);

async function signedFile(): Promise<string> {
  const run = await cli(
    'dkim',
    'sign',
    '--domain',
    'signed.test',
    '--selector',
    's1',
    '--key',
    join(dir, 'key.pem'),
    join(dir, 'plain.eml'),
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^DKIM-Signature: v=1; a=ed25519-sha256; /);
  const path = join(dir, 'signed.eml');
  writeFileSync(path, run.stdout);
  return path;
}

test('dkim sign, then dkim verify: one line per signature, and --json', async () => {
  const path = await signedFile();
  const text = await cli('dkim', 'verify', path);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^pass d=signed\.test s=s1 a=ed25519-sha256 \(/);
  const json = await cli('dkim', 'verify', '--json', path);
  const out = JSON.parse(json.stdout);
  assert.deepEqual(
    out.signatures.map((s: Record<string, unknown>) => [s['result'], s['domain'], s['selector']]),
    [['pass', 'signed.test', 's1']],
  );
  assert.match(out.authResults, /^mailgate; dkim=pass header\.d=signed\.test/);
});

test('an unsigned message: signatures [] and dkim=none; a missing file exits 2', async () => {
  const json = await cli('dkim', 'verify', '--json', join(dir, 'plain.eml'));
  assert.equal(json.code, 0);
  assert.deepEqual(JSON.parse(json.stdout).signatures, []);
  assert.match(JSON.parse(json.stdout).authResults, /dkim=none/);
  const missing = await cli('dkim', 'verify', join(dir, 'absent.eml'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read/);
});

test('dmarc: SPF, DKIM and DMARC for the message, with --json', async () => {
  const path = await signedFile();
  const run = await cli(
    'dmarc',
    '--ip',
    '198.51.100.1',
    '--sender',
    'jo@signed.test',
    '--json',
    path,
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.spf.result, 'fail');
  assert.deepEqual(
    [
      out.dmarc.result,
      out.dmarc.policy,
      out.dmarc.domain,
      out.dmarc.spfAligned,
      out.dmarc.dkimAligned,
    ],
    ['pass', 'reject', 'signed.test', false, true],
  );
  const unsigned = await cli(
    'dmarc',
    '--ip',
    '198.51.100.1',
    '--sender',
    'jo@signed.test',
    '--json',
    join(dir, 'plain.eml'),
  );
  assert.equal(JSON.parse(unsigned.stdout).dmarc.result, 'fail');
  const bad = await cli('dmarc', '--ip', 'nope', '--sender', 'jo@signed.test', path);
  assert.equal(bad.code, 2);
});

test('arc verify: cv none for a message without a chain', async () => {
  const run = await cli('arc', 'verify', '--json', join(dir, 'plain.eml'));
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).cv, 'none');
});

test('dkim keygen writes a private key only its owner reads, prints the record, keeps an existing file', async () => {
  for (const type of ['rsa', 'ed25519']) {
    const out = join(dir, `${type}.pem`);
    const run = await cli(
      'dkim',
      'keygen',
      '--type',
      type,
      '--selector',
      's2',
      '--domain',
      'Example.COM',
      '--out',
      out,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.match(readFileSync(out, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const m = /^s2\._domainkey\.example\.com\. IN TXT \( (.*) \)\n$/u.exec(run.stdout);
    assert.ok(m, run.stdout);
    const record = [...m[1]!.matchAll(/"([^"]*)"/gu)].map((s) => s[1]).join('');
    const parsed = parseKeyRecord(record);
    assert.ok(parsed.ok && parsed.key.keyType === type);
    const again = await cli(
      'dkim',
      'keygen',
      '--type',
      type,
      '--selector',
      's2',
      '--domain',
      'example.com',
      '--out',
      out,
    );
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists/);
  }
  const bad = await cli(
    'dkim',
    'keygen',
    '--type',
    'dsa',
    '--selector',
    's',
    '--domain',
    'example.com',
  );
  assert.equal(bad.code, 2);
});
