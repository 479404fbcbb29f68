// Sealing and validating over several hops with real keys published in the fixture DNS server:
// what one hop seals the next validates, changes after a seal are caught where RFC 8617 says
// they are, and DNS trouble is reported as such.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type ArcResult,
  ArcSealing,
  ArcVerification,
  type ChainValidation,
  sealArc,
  verifyArc,
} from '../../../src/checks/arc/index.js';
import { BodyHashes } from '../../../src/checks/dkim/body-hash.js';
import { fieldValue, formatMessage, parseMessage } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { makeKey, ORIGINAL, type TestKey, zoneOf } from './support.js';

const rsaList = makeKey('rsa', 'rsa1', 'list.example');
const rsaForwarder = makeKey('rsa', 'rsa2', 'forward.example', 2048);
const edList = makeKey('ed25519', 'ed1', 'list.example');
const edForwarder = makeKey('ed25519', 'ed2', 'forward.example');
const keys = [rsaList, rsaForwarder, edList, edForwarder];

let server: FixtureDnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer({
    ...zoneOf(keys),
    'slow._domainkey.list.example': ['TIMEOUT'],
    'broken._domainkey.list.example': [{ RCODE: 'SERVFAIL' }],
  });
  resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
});
after(async () => {
  await server.close();
});

let clock = 1_800_000_000;
/** One hop: validate what arrived, then seal with that result. */
async function hop(
  message: Buffer,
  key: TestKey,
  authservId: string,
): Promise<{ sealed: Buffer; incoming: ArcResult }> {
  const incoming = await verifyArc(message, {}, { resolver });
  const sealed = sealArc(message, key.seal, {
    authservId,
    authResults: `${authservId}; arc=${incoming.cv}; spf=pass smtp.mailfrom=author.example`,
    cv: incoming.cv,
    timestamp: clock++,
  });
  return { sealed, incoming };
}

function withBody(message: Buffer, change: (body: string) => string): Buffer {
  const { headers, body } = parseMessage(message);
  return formatMessage(headers, Buffer.from(change(body.toString('latin1')), 'latin1'));
}

for (const [kind, list, forwarder] of [
  ['rsa', rsaList, rsaForwarder],
  ['ed25519', edList, edForwarder],
] as const) {
  describe(`${kind} seals over several hops`, () => {
    test('i=1 then i=2 over it validate; sealers and AARs are reported oldest first', async () => {
      const one = await hop(ORIGINAL, list, 'mx.list.example');
      assert.equal(one.incoming.cv, 'none');
      const two = await hop(one.sealed, forwarder, 'mx.forward.example');
      assert.equal(two.incoming.cv, 'pass', two.incoming.reason);
      const r = await verifyArc(two.sealed, {}, { resolver });
      assert.equal(r.cv, 'pass', r.reason);
      assert.equal(r.instances, 2);
      assert.equal(r.oldestPass, 0);
      assert.deepEqual(r.sealers, [
        { instance: 1, domain: 'list.example', selector: list.seal.selector, result: 'pass' },
        {
          instance: 2,
          domain: 'forward.example',
          selector: forwarder.seal.selector,
          result: 'pass',
        },
      ]);
      assert.deepEqual(
        r.authResults.map((a) => [a.instance, a.authservId, a.results]),
        [
          [1, 'mx.list.example', 'arc=none; spf=pass smtp.mailfrom=author.example'],
          [2, 'mx.forward.example', 'arc=pass; spf=pass smtp.mailfrom=author.example'],
        ],
      );
    });

    test('a body changed after the newest seal fails its AMS, so the chain fails', async () => {
      const one = await hop(ORIGINAL, list, 'mx.list.example');
      const two = await hop(one.sealed, forwarder, 'mx.forward.example');
      const tampered = withBody(two.sealed, (b) => b.replace('minutes', 'millions'));
      const r = await verifyArc(tampered, {}, { resolver });
      assert.equal(r.cv, 'fail');
      assert.equal(r.reason, 'i=2 body hash did not match');
      assert.equal(r.temporary, undefined);
      assert.equal(r.oldestPass, undefined);
    });

    test('a body changed between the seals fails only the older AMS: the chain still passes (RFC 8617 5.2 step 5)', async () => {
      const one = await hop(ORIGINAL, list, 'mx.list.example');
      // The forwarder validates what arrived, then adds a footer, then seals: its AMS signs the
      // new body, its seal binds the old sets.
      const incoming = await verifyArc(one.sealed, {}, { resolver });
      assert.equal(incoming.cv, 'pass');
      const footed = withBody(one.sealed, (b) => `${b}--\r\nlist footer\r\n`);
      const two = sealArc(footed, forwarder.seal, {
        authservId: 'mx.forward.example',
        authResults: 'mx.forward.example; arc=pass',
        cv: incoming.cv,
        timestamp: clock++,
      });
      const r = await verifyArc(two, {}, { resolver });
      assert.equal(r.cv, 'pass', r.reason);
      // The newest run of AMSs that still validate starts at i=2.
      assert.equal(r.oldestPass, 2);
    });

    test('a changed AAR of an older set breaks the seals that bind it', async () => {
      const one = await hop(ORIGINAL, list, 'mx.list.example');
      const two = await hop(one.sealed, forwarder, 'mx.forward.example');
      const text = two.sealed
        .toString('latin1')
        .replace('arc=none; spf=pass', 'arc=none; spf=fail');
      const r = await verifyArc(Buffer.from(text, 'latin1'), {}, { resolver });
      assert.equal(r.cv, 'fail');
      assert.equal(r.reason, 'i=2 seal did not verify');
      assert.deepEqual(
        r.sealers.map((s) => [s.instance, s.result]),
        [[2, 'fail']],
      );
    });

    test('a failed chain is sealed cv=fail once, and never again', async () => {
      const one = await hop(ORIGINAL, list, 'mx.list.example');
      const broken = withBody(one.sealed, (b) => b.toUpperCase());
      const two = await hop(broken, forwarder, 'mx.forward.example');
      assert.equal(two.incoming.cv, 'fail');
      const parsed = parseMessage(two.sealed);
      assert.match(fieldValue(parsed.headers[0]!), /cv=fail/);
      const r = await verifyArc(two.sealed, {}, { resolver });
      assert.equal(r.cv, 'fail');
      assert.equal(r.reason, 'i=2 seal says cv=fail');
      const sealing = new ArcSealing(parsed.headers, list.seal, {
        authservId: 'mx.list.example',
        authResults: 'mx.list.example; arc=fail',
        cv: 'fail',
        timestamp: clock++,
      });
      sealing.update(parsed.body);
      assert.deepEqual(sealing.finish(), []);
      assert.equal(sealing.instance, 0);
      assert.equal(sealing.skipped, 'the chain already failed at i=2');
    });
  });
}

// Built before any test runs: 50 seals are CPU work that would hold up queries in flight.
const fiftySets = (() => {
  let message: Buffer = ORIGINAL;
  let cv: ChainValidation = 'none';
  for (let i = 1; i <= 50; i++) {
    message = sealArc(message, (i % 2 ? edList : edForwarder).seal, {
      authservId: 'mx.example',
      authResults: `mx.example; arc=${cv}`,
      cv,
      timestamp: clock++,
    });
    cv = 'pass';
  }
  return message;
})();

test('a chain of 50 sets validates, and is not sealed again', async () => {
  const message = fiftySets;
  const r = await verifyArc(message, {}, { resolver });
  assert.equal(r.cv, 'pass', r.reason);
  assert.equal(r.instances, 50);
  assert.equal(r.sealers.length, 50);
  const again = sealArc(message, edList.seal, {
    authservId: 'mx.example',
    authResults: 'mx.example; arc=pass',
    cv: 'pass',
  });
  assert.deepEqual(again, formatMessage(parseMessage(message).headers, parseMessage(message).body));
  const limited = await verifyArc(message, { maxInstances: 10 }, { resolver });
  assert.equal(limited.cv, 'fail');
  assert.equal(limited.reason, '50 ARC sets, more than 10');
});

test('the body may arrive in chunks of any size', async () => {
  const { sealed } = await hop(ORIGINAL, rsaList, 'mx.list.example');
  const { headers, body } = parseMessage(sealed);
  const arc = new ArcVerification(headers, {}, { resolver });
  for (let at = 0; at < body.length; at++) arc.update(body.subarray(at, at + 1));
  assert.equal((await arc.finish()).cv, 'pass');
});

test('shared body hashes are registered on, and fed by their owner', async () => {
  const { sealed } = await hop(ORIGINAL, rsaList, 'mx.list.example');
  const { headers, body } = parseMessage(sealed);
  const shared = new BodyHashes();
  const arc = new ArcVerification(headers, {}, { resolver, bodyHashes: shared });
  assert.equal(shared.size, 1);
  // Fed to the verification, the body goes nowhere: the owner of the hashes feeds them.
  arc.update(Buffer.from('not the body'));
  shared.update(body);
  shared.finish();
  assert.equal((await arc.finish()).cv, 'pass');
});

test('keys shorter than minRsaBits fail their signatures', async () => {
  const { sealed } = await hop(ORIGINAL, rsaList, 'mx.list.example');
  const r = await verifyArc(sealed, { minRsaBits: 2048 }, { resolver });
  assert.equal(r.cv, 'fail');
  assert.equal(r.reason, 'i=1 message signature key: key of 1024 bits, fewer than 2048');
});

test('settings that make no sense are TypeErrors', () => {
  const { headers } = parseMessage(ORIGINAL);
  for (const settings of [{ maxInstances: 0 }, { minRsaBits: -1 }, { timeBudgetMs: 1.5 }]) {
    assert.throws(() => new ArcVerification(headers, settings, { resolver }), TypeError);
  }
});

describe('DNS trouble', () => {
  async function sealedWithSelector(selector: string): Promise<Buffer> {
    return sealArc(
      ORIGINAL,
      { ...edList.seal, selector },
      { authservId: 'mx.list.example', authResults: 'mx.list.example; arc=none', cv: 'none' },
    );
  }

  test('a key lookup that times out fails the chain, marked temporary, with the cause', async () => {
    const r = await verifyArc(await sealedWithSelector('slow'), {}, { resolver });
    assert.equal(r.cv, 'fail');
    assert.equal(r.temporary, true);
    assert.match(
      r.reason,
      /^i=1 message signature key: temporary: .*slow\._domainkey\.list\.example/,
    );
  });

  test('SERVFAIL is temporary too', async () => {
    const r = await verifyArc(await sealedWithSelector('broken'), {}, { resolver });
    assert.equal(r.cv, 'fail');
    assert.equal(r.temporary, true);
    assert.match(r.reason, /servfail/);
  });

  test('a key that does not exist is a plain failure', async () => {
    const r = await verifyArc(await sealedWithSelector('absent'), {}, { resolver });
    assert.equal(r.cv, 'fail');
    assert.equal(r.temporary, undefined);
    assert.equal(
      r.reason,
      'i=1 message signature key: no key record at absent._domainkey.list.example',
    );
  });

  test('a spent time budget is temporary', async () => {
    const { sealed } = await hop(ORIGINAL, edList, 'mx.list.example');
    const r = await verifyArc(sealed, { timeBudgetMs: 0 }, { resolver });
    assert.equal(r.cv, 'fail');
    assert.equal(r.temporary, true);
    assert.match(r.reason, /budget/);
  });

  test('without a resolver a chain cannot pass, and no chain is still none', async () => {
    const { sealed } = await hop(ORIGINAL, edList, 'mx.list.example');
    const r = await verifyArc(sealed);
    assert.equal(r.cv, 'fail');
    assert.equal(r.temporary, true);
    assert.equal((await verifyArc(ORIGINAL)).cv, 'none');
  });
});
