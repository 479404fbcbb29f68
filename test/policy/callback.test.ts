/**
 * Call-back verification and DSNs through the milter door: the engine with a CachedVerifier on a
 * real SQLite store, the fixture DNS server, and smtp-server MX hosts on loopback addresses
 * (127.0.0.2 and up, allowed explicitly: loopback is otherwise a fraudulent MX). Each case plays
 * an SMTP session with the MTA-side milter client and asserts the answer at end of message.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { createResolver, type StubResolver } from '../../src/dns/index.js';
import { createMilterServer, MilterClient, type MilterServer } from '../../src/milter/index.js';
import { builtinTemplates, createSmtpClient } from '../../src/notify/index.js';
import { AccessMapFile, CachedVerifier, PolicyEngine } from '../../src/policy/index.js';
import { policyMilter } from '../../src/serve/milter-door.js';
import { policySettings } from '../../src/serve/settings.js';
import { openStore, type Store } from '../../src/store/index.js';
import { type Mx, onOnePort, type RawMx, startMx, startRawMx } from '../notify/support.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';

let dns: FixtureDnsServer;
let dir: string;
let mx: Mx;
let silent: RawMx;
let selfMx: Mx;
let resolver: StubResolver;

const mxOf = (host: string) => [{ MX: [10, host] }, { TXT: 'v=spf1 ~all' }];

before(async () => {
  [mx, silent, selfMx] = (await onOnePort<Mx | RawMx>([
    (port) =>
      startMx({
        host: '127.0.0.2',
        port,
        name: 'mx.remote.test',
        rcpt: (address) =>
          address.startsWith('nobody@')
            ? { code: 550, message: `<${address}>: User unknown` }
            : address.startsWith('later@')
              ? { code: 450, message: 'try later' }
              : undefined,
        data: undefined,
      }),
    (port) => startRawMx({ host: '127.0.0.3', port, banner: null }),
    (port) => startMx({ host: '127.0.0.4', port, name: 'mx.mailgate.test' }),
  ])) as [Mx, RawMx, Mx];
  dns = await startDnsServer({
    'accept.test': mxOf('mx.remote.test'),
    'rate.test': mxOf('mx.remote.test'),
    'dsn.test': mxOf('mx.remote.test'),
    'mx.remote.test': [{ A: '127.0.0.2' }],
    'silent.test': mxOf('mx.silent.test'),
    'mx.silent.test': [{ A: '127.0.0.3' }],
    'self.test': mxOf('mx.self.test'),
    'mx.self.test': [{ A: '127.0.0.4' }],
    'nullmx.test': [{ MX: [0, '.'] }, { TXT: 'v=spf1 ~all' }],
    // A broken record (an unknown mechanism) that evidently means to authorize the client.
    'lax.test': [{ MX: [10, 'mx.remote.test'] }, { TXT: 'v=spf1 ip4:198.51.100.7 bogus -all' }],
  });
  resolver = createResolver({ servers: [`127.0.0.1:${dns.port}`] });
  dir = await mkdtemp(join(tmpdir(), 'mailgate-callback-'));
});

after(async () => {
  resolver.close();
  await Promise.all([mx.close(), silent.close(), selfMx.close(), dns.close()]);
  await rm(dir, { recursive: true, force: true });
});

interface Rig {
  server: MilterServer;
  spec: string;
  store: Store;
  lines: Array<{ fields: Record<string, unknown>; message: string }>;
}

async function rig(
  name: string,
  cbv: Record<string, unknown> = {},
  spf: Record<string, unknown> = {},
  storeSettings: Record<string, unknown> = {},
): Promise<Rig> {
  const store = await openStore(`sqlite:${join(dir, `${name}.db`)}`);
  const config = parseConfig({
    hostname: 'mx.mailgate.test',
    cbv: { timeout: '2s', port: mx.port, ...cbv },
    spf,
    store: storeSettings,
  });
  const accessMap = config.spf.access_file
    ? await AccessMapFile.load(config.spf.access_file)
    : undefined;
  const settings = policySettings(config, accessMap);
  const lines: Rig['lines'] = [];
  const logger = {
    info: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }),
    warn: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }),
    error: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }),
  };
  const verifier = new CachedVerifier(
    {
      ...settings.callback,
      hostname: settings.hostname,
      ourNames: ['mx.mailgate.test'],
      ourAddresses: ['127.0.0.1'],
      storeFailure: config.store.fail,
      allowAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
    },
    { resolver, store, smtp: createSmtpClient(), templates: builtinTemplates(), logger },
  );
  const engine = new PolicyEngine(settings, { resolver, logger, store, verifier });
  const server = createMilterServer(
    policyMilter(() => ({ engine, release() {} })),
    {
      listen: 'inet:0@127.0.0.1',
    },
  );
  const { address } = await server.listen();
  return { server, spec: address, store, lines };
}

async function send(r: Rig, sender: string, subject = 'hello') {
  const client = await MilterClient.connect(r.spec, { timeoutMs: 10_000 });
  try {
    await client.negotiate();
    await client.connect('[198.51.100.7]', 'inet', 40000, '198.51.100.7');
    await client.helo('client.example');
    const mail = await client.mail(`<${sender}>`);
    if (mail?.verdict !== 'continue') return { mail };
    await client.rcpt('<sam@ours.test>');
    await client.data();
    await client.header('Subject', subject);
    await client.eoh();
    await client.body('Hi.\r\n');
    return { mail, eom: await client.eom() };
  } finally {
    await client.close();
  }
}

const eomReply = (result: Awaited<ReturnType<typeof send>>) =>
  result.eom?.verdict.reply?.text ?? result.eom?.verdict.verdict;

describe('call-back verification of a softfail', () => {
  let r: Rig;
  before(async () => {
    r = await rig('cbv', { per_domain_rate: '100/h' });
  });
  after(async () => {
    await r.server.close();
    await r.store.close();
  });

  test('an address the MX takes is accepted; the second time comes from the cache', async () => {
    const before = mx.commands.length;
    const first = await send(r, 'jo@accept.test');
    assert.equal(first.eom?.verdict.verdict, 'continue');
    const asked = mx.commands.slice(before);
    assert.ok(asked.includes('MAIL FROM:<>'), asked.join(' | '));
    assert.ok(
      asked.some((c) => /^RCPT TO:<jo@accept\.test>/i.test(c)),
      asked.join(' | '),
    );
    assert.ok(!asked.some((c) => c.startsWith('DATA')), 'a call-back sends no message');
    const connections = mx.connections;
    const second = await send(r, 'JO@accept.test');
    assert.equal(second.eom?.verdict.verdict, 'continue');
    assert.equal(mx.connections, connections, 'no second call');
    const cached = r.lines.filter((l) =>
      (l.fields['tags'] as string[] | undefined)?.includes('cached'),
    );
    assert.equal(cached.length, 1);
  });

  test('a 5xx refuses the message with the remote reply; a 4xx defers it', async () => {
    const refused = await send(r, 'nobody@accept.test');
    assert.equal(refused.eom?.verdict.verdict, 'reject');
    assert.match(eomReply(refused) ?? '', /^550 5\.7\.1 CBV: 550 .*User unknown/);
    const later = await send(r, 'later@accept.test');
    assert.equal(later.eom?.verdict.verdict, 'tempfail');
    assert.match(eomReply(later) ?? '', /^451 4\.7\.1 CBV: /);
  });

  test('an MX that never speaks defers; an MX naming us or a null MX refuses', async () => {
    const quiet = await send(r, 'jo@silent.test');
    assert.equal(quiet.eom?.verdict.verdict, 'tempfail');
    const self = await send(r, 'jo@self.test');
    assert.equal(self.eom?.verdict.verdict, 'reject');
    assert.ok(!selfMx.commands.some((c) => c.startsWith('MAIL')), 'never talks to itself');
    const nullMx = await send(r, 'jo@nullmx.test');
    assert.equal(nullMx.eom?.verdict.verdict, 'reject');
  });
});

test('the per-domain rate limit defers what is over it, and calls no more', async () => {
  const r = await rig('rate', { per_domain_rate: '2/h' });
  try {
    const before = mx.connections;
    assert.equal((await send(r, 'a@rate.test')).eom?.verdict.verdict, 'continue');
    assert.equal((await send(r, 'b@rate.test')).eom?.verdict.verdict, 'continue');
    const third = await send(r, 'c@rate.test');
    assert.equal(third.eom?.verdict.verdict, 'tempfail');
    assert.match(eomReply(third) ?? '', /too many verifications for rate\.test/);
    assert.equal(mx.connections - before, 2);
  } finally {
    await r.server.close();
    await r.store.close();
  }
});

test('the access map asks for a DSN: the sender gets a warning, and the message is accepted', async () => {
  const access = join(dir, 'access');
  await writeFile(access, 'SPF-Softfail:dsn.test DSN\n');
  const r = await rig('dsn', { per_domain_rate: '100/h' }, { access_file: access });
  try {
    const before = mx.deliveries.length;
    const result = await send(r, 'jo@dsn.test', 'Quarterly figures\r\nBcc: evil@x.test');
    assert.equal(result.eom?.verdict.verdict, 'continue');
    const dsn = mx.deliveries.slice(before);
    assert.equal(dsn.length, 1);
    assert.equal(dsn[0]!.from, '');
    assert.deepEqual(dsn[0]!.to, ['jo@dsn.test']);
    const text = dsn[0]!.raw.toString('latin1');
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.match(head, /^Auto-Submitted: auto-replied$/mu);
    assert.doesNotMatch(head, /^Bcc:/imu);
    assert.match(text, /Quarterly figures/u);
  } finally {
    await r.server.close();
    await r.store.close();
  }
});

test('a store outage: fail open accepts unverified and calls nobody; tempfail defers', async () => {
  for (const fail of ['open', 'tempfail'] as const) {
    const r = await rig(`outage-${fail}`, {}, {}, { fail });
    try {
      await r.store.close();
      const before = mx.connections;
      const result = await send(r, `x-${fail}@accept.test`);
      assert.equal(result.eom?.verdict.verdict, fail === 'open' ? 'continue' : 'tempfail', fail);
      assert.equal(mx.connections, before, 'no call without the cache and the rate limit');
    } finally {
      await r.server.close();
    }
  }
});

test('lax: a broken record is judged by what it meant, and its owner is told by DSN', async () => {
  const r = await rig('lax', { per_domain_rate: '100/h' }, { lax: true });
  try {
    const before = mx.deliveries.length;
    const result = await send(r, 'jo@lax.test');
    assert.equal(result.mail?.verdict, 'continue');
    assert.equal(result.eom?.verdict.verdict, 'continue');
    const dsn = mx.deliveries.slice(before);
    assert.equal(dsn.length, 1);
    assert.deepEqual(dsn[0]!.to, ['jo@lax.test']);
    assert.match(dsn[0]!.raw.toString('latin1'), /bogus/u, 'the DSN names the error');
  } finally {
    await r.server.close();
    await r.store.close();
  }
});
