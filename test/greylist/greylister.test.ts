// The greylister against the real fixture DNS server and a real SQLite store, with a clock that
// moves only when told.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createResolver, parseIp, reverseName } from '../../src/dns/index.js';
import {
  ClientWhitelist,
  DEFAULT_GREYLIST_SETTINGS,
  Greylister,
  type GreylisterOptions,
  type GreylistReputation,
  type GreylistRequest,
  type GreylistSettings,
  RecipientWhitelist,
  WhitelistFile,
} from '../../src/greylist/index.js';
import { ReputationReader, ReputationRecorder } from '../../src/reputation/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { ManualClock, RecordingLogger } from './helpers.js';

const rev = (ip: string) => reverseName(parseIp(ip)!);
const listed = (ip: string, zone: string) => `${ip.split('.').reverse().join('.')}.${zone}`;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const PERIOD = DEFAULT_GREYLIST_SETTINGS.periodMs;
const PENALTY = DEFAULT_GREYLIST_SETTINGS.penaltyMs;
const START = Date.UTC(2026, 10, 21, 10, 0, 0);

/** Clients of the fixture zone, each with what makes it score as it does. */
const C = {
  /** Verified name, HELO = name: every score 0. */
  clean: { ip: '192.0.2.10', helo: 'mail.clean.example' },
  /** No PTR: HELO score 2, greylisted for `score`. */
  noPtr: { ip: '192.0.2.20', helo: 'mail.noptr.example' },
  noPtrNeighbour: { ip: '192.0.2.21', helo: 'mail.noptr.example' },
  /** Listed by the DNSWL (and has no PTR). */
  dnswl: { ip: '192.0.2.30', helo: 'anything.example' },
  /** The DNSWL has a name for it but no address (NODATA): not a listing. */
  dnswlNodata: { ip: '192.0.2.31', helo: 'anything.example' },
  /** Listed by the DNSBL, with a clean name. */
  dnsbl: { ip: '192.0.2.40', helo: 'mail40.clean.example' },
  /** HELO shares the name's registrable domain: HELO score 1. */
  helo1: { ip: '192.0.2.50', helo: 'helo.spf.example' },
  /** The DNSBL fails (SERVFAIL); clean name. */
  blFails: { ip: '192.0.2.60', helo: 'mail60.clean.example' },
  /** The DNSBL never answers; clean name. */
  blSilent: { ip: '192.0.2.62', helo: 'mail62.clean.example' },
  /** The PTR lookup is never answered. */
  ptrSilent: { ip: '192.0.2.63', helo: 'mail63.clean.example' },
  /** The PTR lookup fails. */
  ptrFails: { ip: '192.0.2.61', helo: 'mail61.clean.example' },
  /** A dynamic-looking verified name, HELO = name: dyn 1. */
  dynamic: { ip: '192.0.2.70', helo: 'dsl-192-0-2-70.pool.isp.example' },
  /** Verified name under a whitelisted domain. */
  partner: { ip: '192.0.2.80', helo: 'x.partner.example' },
} as const;

let server: FixtureDnsServer;
let dir: string;
const stores: Store[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailgate-greylist-'));
  server = await startDnsServer({
    [rev(C.clean.ip)]: [{ PTR: 'mail.clean.example' }],
    'mail.clean.example': [{ A: C.clean.ip }],
    [rev(C.dnsbl.ip)]: [{ PTR: 'mail40.clean.example' }],
    'mail40.clean.example': [{ A: C.dnsbl.ip }],
    [rev(C.blFails.ip)]: [{ PTR: 'mail60.clean.example' }],
    'mail60.clean.example': [{ A: C.blFails.ip }],
    [rev(C.ptrFails.ip)]: [{ RCODE: 'SERVFAIL' }],
    [rev(C.blSilent.ip)]: [{ PTR: 'mail62.clean.example' }],
    'mail62.clean.example': [{ A: C.blSilent.ip }],
    [listed(C.blSilent.ip, 'bl.example')]: ['TIMEOUT'],
    [rev(C.ptrSilent.ip)]: ['TIMEOUT'],
    'spfsilent.example': ['TIMEOUT'],
    [rev(C.helo1.ip)]: [{ PTR: 'mx50.spf.example' }],
    'mx50.spf.example': [{ A: C.helo1.ip }],
    [rev(C.dynamic.ip)]: [{ PTR: 'dsl-192-0-2-70.pool.isp.example' }],
    'dsl-192-0-2-70.pool.isp.example': [{ A: C.dynamic.ip }],
    [rev(C.partner.ip)]: [{ PTR: 'relay.partner.example' }],
    'relay.partner.example': [{ A: C.partner.ip }],
    'wl.example': [{ TXT: 'zone apex' }],
    'bl.example': [{ TXT: 'zone apex' }],
    [listed(C.dnswl.ip, 'wl.example')]: [{ A: '127.0.10.2' }],
    [listed(C.dnswlNodata.ip, 'wl.example')]: [{ TXT: 'a name without an address' }],
    [listed(C.dnsbl.ip, 'bl.example')]: [{ A: '127.0.0.2' }],
    [listed(C.blFails.ip, 'bl.example')]: [{ RCODE: 'SERVFAIL' }],
    'spffail.example': [{ TXT: 'v=spf1 -all' }],
    'spfsoft.example': [{ TXT: 'v=spf1 ~all' }],
    'spfpass.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
    'plusall.example': [{ TXT: 'v=spf1 +all' }],
    'wide.example': [{ TXT: 'v=spf1 ip4:192.0.0.0/8 -all' }],
    'spferror.example': [{ RCODE: 'SERVFAIL' }],
    'nospf.example': [{ A: '198.51.100.1' }],
  });
});

after(async () => {
  for (const store of stores) await store.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

let serial = 0;

interface Rig {
  greylister: Greylister;
  store: Store;
  clock: ManualClock;
  logger: RecordingLogger;
  settings: GreylistSettings;
  decide(
    client: { ip: string; helo: string },
    more?: Partial<GreylistRequest>,
  ): ReturnType<Greylister['decide']>;
}

/** A greylister with its own SQLite file, its own resolver (no shared DNS cache) and clock. */
async function rig(
  over: Partial<GreylistSettings> = {},
  options: Omit<GreylisterOptions, 'logger'> = {},
): Promise<Rig> {
  const store = await openStore(`sqlite:${join(dir, `greylist-${++serial}.db`)}`);
  stores.push(store);
  const clock = new ManualClock(START);
  const logger = new RecordingLogger();
  const settings: GreylistSettings = {
    ...DEFAULT_GREYLIST_SETTINGS,
    // These tests count the DNS work of scoring; keying by the SPF domain asks SPF first, and
    // has tests of its own.
    keySpfPassByDomain: false,
    hostname: 'mx.example.net',
    version: '1.2.3',
    lists: [
      { zone: 'wl.example', kind: 'dnswl' },
      { zone: 'bl.example', kind: 'dnsbl' },
    ],
    ...over,
  };
  const resolver = createResolver({ servers: [server.address], timeout: 300, attempts: 1 });
  const greylister = new Greylister(settings, { store, resolver, clock }, { ...options, logger });
  return {
    greylister,
    store,
    clock,
    logger,
    settings,
    decide: (client, more = {}) =>
      greylister.decide({
        ip: client.ip,
        helo: client.helo,
        sender: 'jo@sender.example',
        recipient: 'sam@rcpt.example',
        ...more,
      }),
  };
}

const key = (client: string, sender = 'jo@sender.example', recipient = 'sam@rcpt.example') => ({
  client,
  sender,
  recipient,
});

/** Queries the fixture server received since the last reset, as `NAME TYPE`. */
const asked = () => server.queries.map((q) => `${q.name.toLowerCase()} ${q.type}`);

describe('the greylisting timeline', () => {
  test('greylisted, early retry adds the penalty, passes after waiting, then known', async () => {
    const r = await rig();
    const first = await r.decide(C.noPtr);
    assert.equal(first.verdict, 'greylist');
    assert.equal(first.reason, 'score');
    assert.equal(first.header, undefined);
    assert.deepEqual(first.key, key(C.noPtr.ip));
    assert.equal(first.scores.helo, 2);
    let row = await r.store.getTriplet(first.key);
    assert.equal(row?.state, 'greylisted');
    assert.equal(row?.failCount, 0);

    // The same recipient twice in one message (bob+news@, Bob@ normalise alike): one attempt,
    // no penalty.
    r.clock.advance(2 * SECOND);
    const twice = await r.decide(C.noPtr, { recipient: 'Sam+news@rcpt.example' });
    assert.deepEqual([twice.verdict, twice.reason], ['greylist', 'early-retry']);
    assert.equal((await r.store.getTriplet(first.key))?.failCount, 0);
    r.clock.advance(-2 * SECOND);

    r.clock.advance(PERIOD - SECOND);
    const early = await r.decide(C.noPtr);
    assert.equal(early.verdict, 'greylist');
    assert.equal(early.reason, 'early-retry');
    row = await r.store.getTriplet(first.key);
    assert.equal(row?.failCount, 1);

    // The wait is now period + penalty: just past the period is still early...
    r.clock.set(START + PERIOD + PENALTY);
    const stillEarly = await r.decide(C.noPtr);
    assert.equal(stillEarly.reason, 'early-retry', 'not strictly more than period + penalty');
    // ...and with two early retries the wait is period + 2 penalties.
    r.clock.set(START + PERIOD + 2 * PENALTY + SECOND);
    const passed = await r.decide(C.noPtr);
    assert.equal(passed.verdict, 'pass');
    assert.equal(passed.reason, 'waited');
    const delay = (PERIOD + 2 * PENALTY + SECOND) / 1000;
    assert.equal(passed.delay, delay);
    const date = 'Sat, 21 Nov 2026 10:49:01 +0000';
    assert.deepEqual(passed.header, {
      name: 'X-Greylist',
      value: `delayed ${delay} seconds by mailgate-1.2.3 at mx.example.net; ${date}`,
    });
    row = await r.store.getTriplet(first.key);
    assert.equal(row?.state, 'passed');
    assert.equal(row?.passCount, 1);

    r.clock.advance(3 * 24 * 60 * MINUTE);
    const known = await r.decide(C.noPtr);
    assert.equal(known.verdict, 'pass');
    assert.equal(known.reason, 'known');
    assert.equal(known.header, undefined);
    assert.equal((await r.store.getTriplet(first.key))?.passCount, 2);
  });

  test('without the header setting a pass after waiting is a plain DUNNO', async () => {
    const r = await rig({ header: false });
    await r.decide(C.noPtr);
    r.clock.advance(PERIOD + SECOND);
    const passed = await r.decide(C.noPtr);
    assert.equal(passed.reason, 'waited');
    assert.equal(passed.header, undefined);
  });

  test('after max since the first attempt a triplet passes whatever its penalties', async () => {
    const r = await rig({ penaltyMs: 10 * 60 * MINUTE });
    await r.decide(C.noPtr);
    r.clock.advance(MINUTE);
    await r.decide(C.noPtr);
    r.clock.advance(MINUTE);
    await r.decide(C.noPtr);
    // Wait now: 29 min + 20 h; max: 12 h.
    r.clock.set(START + 12 * 60 * MINUTE);
    assert.equal((await r.decide(C.noPtr)).reason, 'early-retry');
    r.clock.set(START + 12 * 60 * MINUTE + SECOND);
    const passed = await r.decide(C.noPtr);
    assert.equal(passed.verdict, 'pass');
    assert.equal(passed.reason, 'max-wait');
    assert.equal(passed.delay, 12 * 60 * 60 + 1);
    assert.match(passed.header?.value ?? '', /^delayed 43201 seconds/);
  });
});

describe('scoring a new triplet', () => {
  test('a clean client passes at once and is remembered', async () => {
    const r = await rig();
    server.resetLog();
    const d = await r.decide(C.clean);
    assert.equal(d.verdict, 'pass');
    assert.equal(d.reason, 'clean');
    assert.equal(d.header, undefined);
    assert.deepEqual(d.scores, { dnswl: 0, dnsbl: 0, helo: 0, dyn: 0, s_eq_r: 0 });
    assert.equal((await r.store.getTriplet(d.key))?.state, 'passed');
    // Sum 0: an SPF fail could not reach 2, so SPF was not asked.
    assert.ok(!asked().some((q) => q.startsWith('sender.example')), asked().join(', '));
    assert.ok(asked().includes(`${rev(C.clean.ip)} PTR`), 'the PTR was looked up');
  });

  test('the name Postfix verified saves the PTR lookup; "unknown" is no name', async () => {
    const r = await rig({ cacheMs: 0 });
    server.resetLog();
    const d = await r.decide(C.clean, { clientName: 'mail.clean.example' });
    assert.equal(d.reason, 'clean');
    assert.ok(!asked().some((q) => q.endsWith(' PTR')), asked().join(', '));
    const unknown = await r.decide(C.clean, {
      clientName: 'unknown',
      recipient: 'other@rcpt.example',
    });
    assert.equal(unknown.reason, 'score');
    assert.equal(unknown.scores.helo, 2);
    assert.equal(unknown.scores.dyn, 0, 'no name counts once, in the HELO score');
    assert.ok(!asked().some((q) => q.endsWith(' PTR')));
  });

  test('a DNSWL listing passes and is remembered; NODATA is no listing', async () => {
    const r = await rig();
    const d = await r.decide(C.dnswl);
    assert.equal(d.verdict, 'pass');
    assert.equal(d.reason, 'dnswl');
    assert.equal(d.scores.dnswl, 1);
    assert.equal((await r.store.getTriplet(d.key))?.state, 'passed');
    const nodata = await r.decide(C.dnswlNodata);
    assert.equal(nodata.scores.dnswl, 0);
    assert.equal(nodata.reason, 'score', 'no PTR: greylisted on its HELO score, not passed');
  });

  test('a DNSBL listing greylists', async () => {
    const r = await rig();
    const d = await r.decide(C.dnsbl);
    assert.equal(d.verdict, 'greylist');
    assert.equal(d.reason, 'dnsbl');
    assert.equal(d.scores.dnsbl, 1);
    assert.equal(d.scores.helo, 0);
    assert.equal((await r.store.getTriplet(d.key))?.state, 'greylisted');
  });

  test('sender = recipient scores 1 (after normalising); the null sender never equals', async () => {
    const r = await rig({ cacheMs: 0 });
    server.resetLog();
    const same = await r.decide(C.helo1, {
      sender: 'Sam+Tag@Rcpt.Example',
      recipient: '<sam@rcpt.example>',
    });
    assert.equal(same.scores.helo, 1);
    assert.equal(same.scores.s_eq_r, 1);
    assert.equal(same.verdict, 'greylist');
    assert.equal(same.reason, 'score');
    // 1 + 1 reached the threshold: SPF could change nothing and was not asked.
    assert.equal(same.scores.spf, undefined);
    assert.ok(!asked().some((q) => q.startsWith('rcpt.example ')), asked().join(', '));

    const bounce = await r.decide(C.helo1, { sender: '<>', recipient: 'sam@rcpt.example' });
    assert.equal(bounce.scores.s_eq_r, 0);
    assert.equal(bounce.key.sender, '');
  });

  test('SPF is asked only when it can change the outcome, and a fail or softfail counts 1', async () => {
    const r = await rig({ cacheMs: 0 });
    // HELO 1: 1 < 2 <= 1 + 1, so SPF decides.
    server.resetLog();
    const fail = await r.decide(C.helo1, { sender: 'jo@spffail.example' });
    assert.ok(asked().includes('spffail.example TXT'), asked().join(', '));
    assert.equal(fail.scores.spf, 1);
    assert.equal(fail.reason, 'score');
    const soft = await r.decide(C.helo1, { sender: 'jo@spfsoft.example' });
    assert.equal(soft.scores.spf, 1);
    assert.equal(soft.verdict, 'greylist');
    const pass = await r.decide(C.helo1, { sender: 'jo@spfpass.example' });
    assert.equal(pass.scores.spf, 0);
    assert.equal(pass.reason, 'clean');
    const none = await r.decide(C.helo1, { sender: 'jo@nospf.example' });
    assert.equal(none.scores.spf, 0);
    assert.equal(none.reason, 'clean');

    // Dynamic name: dyn 1, and SPF decides again.
    const dyn = await r.decide(C.dynamic, { sender: 'jo@spffail.example' });
    assert.equal(dyn.scores.dyn, 1);
    assert.equal(dyn.scores.helo, 0);
    assert.equal(dyn.reason, 'score');

    // HELO 2 (greylisted anyway), HELO 0 (clean anyway), a DNSBL hit: SPF is never asked (a
    // fresh resolver, so that no cached answer hides a query).
    const fresh = await rig({ cacheMs: 0 });
    server.resetLog();
    const spfFail = { sender: 'jo@spffail.example' };
    assert.equal((await fresh.decide(C.noPtr, spfFail)).reason, 'score');
    assert.equal((await fresh.decide(C.clean, spfFail)).reason, 'clean');
    assert.equal((await fresh.decide(C.dnsbl, spfFail)).reason, 'dnsbl');
    assert.ok(!asked().some((q) => q.startsWith('spffail.example')), asked().join(', '));
  });

  test('with spf off an SPF fail is never asked about', async () => {
    const r = await rig({ spf: false });
    server.resetLog();
    const d = await r.decide(C.helo1, { sender: 'jo@spffail.example' });
    assert.equal(d.reason, 'clean');
    assert.ok(!asked().some((q) => q.startsWith('spffail.example')));
  });
});

describe('DNS trouble', () => {
  test('a failed DNSBL that could change the verdict greylists as dns-tempfail, remembered', async () => {
    const r = await rig();
    const d = await r.decide(C.blFails);
    assert.equal(d.verdict, 'greylist');
    assert.equal(d.reason, 'dns-tempfail');
    assert.ok(
      d.problems.some((p) => p.startsWith('dnsxl bl.example:')),
      d.problems.join('; '),
    );
    assert.equal((await r.store.getTriplet(d.key))?.state, 'greylisted');
    // It retries like any greylisted client.
    r.clock.advance(PERIOD + SECOND);
    const retry = await r.decide(C.blFails);
    assert.equal(retry.reason, 'waited');
    assert.equal(retry.verdict, 'pass');
  });

  test('lookups still unanswered when dns_budget runs out count as failed', async () => {
    // The real clock and a resolver that would wait 20 s for a silent server: only the budget
    // can end the wait. One case per check: the DNS list, the PTR, SPF.
    const cases = [
      {
        client: C.blSilent,
        sender: 'jo@sender.example',
        lists: true,
        problem: 'dnsxl bl.example:',
      },
      { client: C.ptrSilent, sender: 'jo@sender.example', lists: false, problem: 'ptr:' },
      { client: C.helo1, sender: 'jo@spfsilent.example', lists: false, problem: 'spf: temperror' },
    ];
    for (const { client, sender, lists, problem } of cases) {
      const store = await openStore(`sqlite:${join(dir, `greylist-${++serial}.db`)}`);
      stores.push(store);
      const resolver = createResolver({ servers: [server.address], timeout: 20_000, attempts: 1 });
      const greylister = new Greylister(
        {
          ...DEFAULT_GREYLIST_SETTINGS,
          keySpfPassByDomain: false,
          lists: lists ? [{ zone: 'bl.example', kind: 'dnsbl' }] : [],
          dnsBudgetMs: 300,
        },
        { store, resolver },
      );
      try {
        const started = Date.now();
        const d = await greylister.decide({
          ip: client.ip,
          helo: client.helo,
          sender,
          recipient: 'sam@rcpt.example',
        });
        const took = Date.now() - started;
        assert.equal(d.reason, 'dns-tempfail', `${problem} ${d.problems.join('; ')}`);
        assert.ok(
          d.problems.some((p) => p.startsWith(problem)),
          d.problems.join('; '),
        );
        assert.ok(took < 3_000, `${problem} answered after ${took} ms, not at the budget`);
      } finally {
        resolver.close();
      }
    }
  });

  test('a failed PTR lookup greylists as dns-tempfail', async () => {
    const r = await rig();
    const d = await r.decide(C.ptrFails);
    assert.equal(d.reason, 'dns-tempfail');
    assert.ok(
      d.problems.some((p) => p.startsWith('ptr:')),
      d.problems.join('; '),
    );
    assert.equal(d.scores.dyn, undefined);
    assert.equal((await r.store.getTriplet(d.key))?.state, 'greylisted');
  });

  test('an SPF temperror that could change the verdict greylists as dns-tempfail', async () => {
    const r = await rig();
    const d = await r.decide(C.helo1, { sender: 'jo@spferror.example' });
    assert.equal(d.reason, 'dns-tempfail');
    assert.ok(
      d.problems.some((p) => p.startsWith('spf: temperror')),
      d.problems.join('; '),
    );
  });

  test('a failure that could not change the verdict does not matter', async () => {
    // A failed DNSBL for a client with no PTR: HELO 2 greylists whatever the list says.
    const r = await rig({ lists: [{ zone: 'bl.example', kind: 'dnsbl' }] });
    const d = await r.decide(
      { ip: C.blFails.ip, helo: 'not-my-name.example' },
      {
        clientName: 'unknown',
      },
    );
    assert.equal(d.reason, 'score');
    assert.equal(d.problems.length, 1);
  });
});

describe('postmaster, whitelists and auto-whitelisting', () => {
  test('mail to postmaster@ and abuse@ always passes, with no DNS and no triplet', async () => {
    const r = await rig();
    // A bad verdict in the cache first (bley checked its cache before anything else).
    assert.equal((await r.decide(C.dnsbl)).reason, 'dnsbl');
    server.resetLog();
    for (const recipient of [
      'Postmaster@rcpt.example',
      'abuse@x.example',
      'postmaster',
      'abuse+x@y.example',
    ]) {
      const d = await r.decide(C.dnsbl, { recipient });
      assert.equal(d.verdict, 'pass', recipient);
      assert.equal(d.reason, 'postmaster');
      assert.equal(await r.store.getTriplet(d.key), null);
    }
    assert.deepEqual(asked(), []);
  });

  test('recipient whitelist entries pass before the cache and the store', async () => {
    const { list } = RecipientWhitelist.parse('hostmaster@\nwide.example\n', 'recipients');
    const r = await rig({}, { recipientWhitelists: [list] });
    assert.equal((await r.decide(C.dnsbl)).reason, 'dnsbl');
    const d = await r.decide(C.dnsbl, { recipient: 'anyone@sub.wide.example' });
    assert.equal(d.reason, 'whitelist-recipient');
    assert.equal(d.match, 'recipients:2: wide.example');
    assert.equal(
      (await r.decide(C.dnsbl, { recipient: 'hostmaster@x.example' })).reason,
      'whitelist-recipient',
    );
  });

  test('client whitelist by address, by network, by verified name and by regex', async () => {
    const { list } = ClientWhitelist.parse(
      `${C.dnsbl.ip}\n198.51.100\npartner.example\n/^mail\\.clean\\./\n`,
      'clients',
    );
    const r = await rig({}, { clientWhitelists: [list] });
    assert.equal((await r.decide(C.dnsbl)).reason, 'whitelist-client');
    assert.equal(
      (await r.decide({ ip: '198.51.100.7', helo: 'x' }, { clientName: 'unknown' })).match,
      'clients:2: 198.51.100',
    );
    // The name comes from a PTR lookup of our own when the MTA gave none...
    server.resetLog();
    const partner = await r.decide(C.partner);
    assert.equal(partner.reason, 'whitelist-client');
    assert.equal(partner.match, 'clients:3: partner.example');
    assert.ok(asked().includes(`${rev(C.partner.ip)} PTR`));
    // ...and from the MTA when it gave one; "unknown" matches no name.
    const ip = '203.0.113.5';
    assert.equal(
      (await r.decide({ ip, helo: 'x' }, { clientName: 'mail.clean.example' })).match,
      'clients:4: /^mail\\.clean\\./',
    );
    assert.notEqual(
      (await r.decide({ ip, helo: 'x' }, { clientName: 'unknown', recipient: 'b@rcpt.example' }))
        .reason,
      'whitelist-client',
    );
    // A name that is not verified (no PTR) never matches.
    assert.notEqual(
      (await r.decide({ ip: '203.0.113.99', helo: 'relay.partner.example' })).reason,
      'whitelist-client',
    );
  });

  test('a whitelist file is followed: a change is seen within a second of use', async () => {
    const path = join(dir, `whitelist-${++serial}`);
    writeFileSync(path, '# nothing yet\n');
    const clock = new ManualClock(START);
    const file = await WhitelistFile.clients(path, { clock });
    const r = await rig({ cacheMs: 0 }, { clientWhitelists: [file] });
    r.clock.set(START);
    assert.equal((await r.decide(C.dnsbl)).reason, 'dnsbl');
    writeFileSync(path, `# now listed\n${C.dnsbl.ip}/32\n`);
    clock.advance(SECOND);
    const d = await r.decide(C.dnsbl);
    assert.equal(d.reason, 'whitelist-client');
    assert.equal(d.match, `${path}:2: ${C.dnsbl.ip}/32`);
  });

  test('a client is auto-whitelisted after N counted passes, counted at most once a minute', async () => {
    const r = await rig({ autoWhitelistAfter: 2, cacheMs: 0 });
    await r.decide(C.noPtr);
    r.clock.advance(PERIOD + SECOND);
    assert.equal((await r.decide(C.noPtr)).reason, 'waited');
    assert.equal((await r.store.getClient(C.noPtr.ip))?.count, 1);
    // Known passes count too, but not twice in a minute.
    r.clock.advance(30 * SECOND);
    assert.equal((await r.decide(C.noPtr)).reason, 'known');
    assert.equal((await r.store.getClient(C.noPtr.ip))?.count, 1);
    // A new triplet is still scored (and greylisted): the client is not yet trusted.
    assert.equal((await r.decide(C.noPtr, { recipient: 'new1@rcpt.example' })).reason, 'score');
    r.clock.advance(31 * SECOND);
    assert.equal((await r.decide(C.noPtr)).reason, 'known');
    assert.equal((await r.store.getClient(C.noPtr.ip))?.count, 2);
    server.resetLog();
    const d = await r.decide(C.noPtr, { recipient: 'new2@rcpt.example' });
    assert.equal(d.verdict, 'pass');
    assert.equal(d.reason, 'auto-whitelist');
    assert.deepEqual(asked(), [], 'an auto-whitelisted client costs no DNS');
    assert.equal(await r.store.getTriplet(d.key), null);
  });

  test('auto-whitelisting off (0) never counts', async () => {
    const r = await rig({ autoWhitelistAfter: 0 });
    await r.decide(C.noPtr);
    r.clock.advance(PERIOD + SECOND);
    assert.equal((await r.decide(C.noPtr)).reason, 'waited');
    assert.equal(await r.store.getClient(C.noPtr.ip), null);
  });
});

describe('the short-term caches', () => {
  test('a bad-cached client: new triplets greylisted without DNS, and remembered', async () => {
    const r = await rig();
    assert.equal((await r.decide(C.dnsbl)).reason, 'dnsbl');
    server.resetLog();
    const d = await r.decide(C.dnsbl, { recipient: 'other@rcpt.example' });
    assert.equal(d.verdict, 'greylist');
    assert.equal(d.reason, 'cache-bad');
    assert.deepEqual(asked(), []);
    // bley forgot such a triplet; here its retry after the period passes.
    assert.equal((await r.store.getTriplet(d.key))?.state, 'greylisted');
    r.clock.advance(PERIOD + SECOND);
    const retry = await r.decide(C.dnsbl, { recipient: 'other@rcpt.example' });
    assert.equal(retry.reason, 'waited');
  });

  test('a good-cached client: new triplets pass without DNS, and are remembered', async () => {
    const r = await rig();
    assert.equal((await r.decide(C.clean)).reason, 'clean');
    server.resetLog();
    const d = await r.decide(C.clean, { recipient: 'other@rcpt.example' });
    assert.equal(d.verdict, 'pass');
    assert.equal(d.reason, 'cache-good');
    assert.deepEqual(asked(), []);
    assert.equal((await r.store.getTriplet(d.key))?.state, 'passed');
  });

  test('a cached verdict expires after cacheMs, and known triplets follow the store', async () => {
    const r = await rig({ cacheMs: 30 * SECOND });
    assert.equal((await r.decide(C.dnsbl)).reason, 'dnsbl');
    r.clock.advance(29 * SECOND);
    assert.equal((await r.decide(C.dnsbl, { recipient: 'b@rcpt.example' })).reason, 'cache-bad');
    r.clock.advance(SECOND);
    const rescored = await r.decide(C.dnsbl, { recipient: 'c@rcpt.example' });
    assert.equal(rescored.reason, 'dnsbl');
    assert.equal(rescored.scores.dnsbl, 1, 'scored again');

    // A passed triplet passes even from a client in the bad cache.
    await r.store.firstAttempt(
      key(C.dnsbl.ip, 'jo@sender.example', 'd@rcpt.example'),
      'passed',
      START,
    );
    const known = await r.decide(C.dnsbl, { recipient: 'd@rcpt.example' });
    assert.equal(known.reason, 'known');
    assert.equal(known.verdict, 'pass');
  });

  test('cacheMs 0 scores every new triplet', async () => {
    const r = await rig({ cacheMs: 0 });
    assert.equal((await r.decide(C.dnsbl)).reason, 'dnsbl');
    assert.equal((await r.decide(C.dnsbl, { recipient: 'b@rcpt.example' })).reason, 'dnsbl');
  });
});

describe('keys', () => {
  test('keyByNetwork: a retry from another address of the /24 finds the triplet', async () => {
    const r = await rig({ keyByNetwork: true });
    const first = await r.decide(C.noPtr);
    assert.equal(first.key.client, '192.0.2.0/24');
    r.clock.advance(PERIOD + SECOND);
    const retry = await r.decide(C.noPtrNeighbour);
    assert.equal(retry.key.client, '192.0.2.0/24');
    assert.equal(retry.reason, 'waited');
  });

  test('keyByNetwork: IPv6 clients share their /64; mapped IPv4 is IPv4', async () => {
    const r = await rig({ keyByNetwork: true, lists: [] });
    const a = await r.decide(
      { ip: '2001:DB8:1:2::5', helo: 'x.example' },
      { clientName: 'unknown' },
    );
    assert.equal(a.key.client, '2001:db8:1:2::/64');
    r.clock.advance(PERIOD + SECOND);
    const b = await r.decide(
      { ip: '2001:db8:1:2:ffff::6', helo: 'x.example' },
      { clientName: 'unknown' },
    );
    assert.equal(b.reason, 'waited');
    const mapped = await r.decide(
      { ip: '::ffff:192.0.2.20', helo: 'x' },
      { clientName: 'unknown' },
    );
    assert.equal(mapped.key.client, '192.0.2.0/24');
  });

  test('without keyByNetwork the key is the canonical address', async () => {
    const r = await rig({ lists: [] });
    const d = await r.decide({ ip: '2001:0DB8:0:0::0001', helo: 'x' }, { clientName: 'unknown' });
    assert.equal(d.key.client, '2001:db8::1');
    await assert.rejects(r.decide({ ip: 'unknown', helo: 'x' }), TypeError);
  });

  test('hostile input never reaches a key, a header or a log line', async () => {
    const r = await rig({ hostname: 'mx\r\nX-Evil: 1', lists: [] });
    const hostile = {
      sender: `evil\r\nX-Injected: 1\0${'s'.repeat(5000)}@example.com`,
      recipient: `${'r\n'.repeat(2500)}@rcpt.example`,
      helo: 'helo\r\nX-Helo: 1',
      clientName: 'unknown',
    };
    const first = await r.decide(C.noPtr, hostile);
    for (const value of Object.values(first.key)) {
      assert.match(value, /^[\x20-\x7e]*$/);
      assert.ok(value.length <= 254);
    }
    r.clock.advance(PERIOD + SECOND);
    const passed = await r.decide(C.noPtr, hostile);
    assert.equal(passed.reason, 'waited');
    assert.match(passed.header!.value, /^[\x20-\x7e]*$/);
    assert.match(passed.header!.value, / at mx--x-evil--1; /);
    for (const line of r.logger.lines) {
      assert.match(
        JSON.stringify(line),
        /^[\x20-\x7e]*$/,
        'no raw control character in a log field',
      );
      for (const value of Object.values(line.fields)) {
        if (typeof value === 'string') assert.ok(!/[\r\n\0]/.test(value));
      }
    }
    const [logged] = await r.store.recentDecisions(1);
    assert.ok(logged);
    for (const value of [logged.sender, logged.recipient, logged.helo ?? '', logged.host]) {
      assert.match(value, /^[\x20-\x7e]*$/);
    }
  });
});

describe('concurrency, the store and the logs', () => {
  test('concurrent decisions for one new triplet create one row, with no penalty', async () => {
    const r = await rig({ cacheMs: 0 });
    const decisions = await Promise.all(Array.from({ length: 6 }, () => r.decide(C.noPtr)));
    for (const d of decisions) assert.equal(d.verdict, 'greylist');
    const row = await r.store.getTriplet(key(C.noPtr.ip));
    assert.equal(row?.failCount, 0);
    assert.equal(row?.state, 'greylisted');
  });

  test('a triplet stored first by another request or MX host decides, not our score', async () => {
    const r = await rig({ cacheMs: 0 });
    // Another MX host let it pass a moment ago; our scoring would greylist it.
    await r.store.firstAttempt(key(C.noPtr.ip), 'passed', START);
    const d = await r.decide(C.noPtr);
    assert.equal(d.verdict, 'pass');
    assert.equal(d.reason, 'known');
  });

  test('store failure, open: DUNNO with reason store-failure, logged once with the error', async () => {
    const r = await rig({ storeFailure: 'open' });
    await r.store.close();
    const d = await r.decide(C.noPtr);
    assert.equal(d.verdict, 'pass');
    assert.equal(d.reason, 'store-failure');
    assert.equal(d.header, undefined);
    assert.ok(
      d.problems.some((p) => p.startsWith('store ')),
      d.problems.join('; '),
    );
    const errors = r.logger.lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.message, 'greylist store failure');
    assert.ok(errors[0]!.fields.err instanceof Error);
    assert.equal(r.logger.of('greylist').length, 1);
  });

  test('store failure, tempfail: the store failure action', async () => {
    const r = await rig({ storeFailure: 'tempfail' });
    await r.store.close();
    const d = await r.decide(C.clean);
    assert.equal(d.verdict, 'tempfail');
    assert.equal(d.reason, 'store-failure');
    // Mail to postmaster needs no store; the decision log write fails, is logged, changes nothing.
    const pm = await r.decide(C.clean, { recipient: 'postmaster@rcpt.example' });
    assert.equal(pm.verdict, 'pass');
    assert.equal(pm.reason, 'postmaster');
    // The decision log is written after the answer: its failure shows a moment later.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.logger.count('warn', 'greylist decision log write failed'), 1);
  });

  test('every decision is logged on one line and written to the decision log', async () => {
    const r = await rig();
    await r.decide(C.noPtr);
    r.clock.advance(PERIOD + SECOND);
    await r.decide(C.noPtr);
    const lines = r.logger.of('greylist');
    assert.equal(lines.length, 2);
    assert.deepEqual(
      { ...lines[1]!.fields, scores: undefined },
      {
        verdict: 'pass',
        reason: 'waited',
        client: C.noPtr.ip,
        ip: C.noPtr.ip,
        sender: 'jo@sender.example',
        recipient: 'sam@rcpt.example',
        scores: undefined,
        delay: PERIOD / 1000 + 1,
        problems: undefined,
        match: undefined,
      },
    );
    assert.deepEqual(lines[0]!.fields.scores, { dnswl: 0, dnsbl: 0, helo: 2, dyn: 0, s_eq_r: 0 });
    const logged = await r.store.recentDecisions(10);
    assert.equal(logged.length, 2);
    assert.equal(logged[0]!.action, 'pass');
    assert.equal(logged[0]!.reason, 'waited');
    assert.equal(logged[0]!.delay, PERIOD / 1000 + 1);
    assert.equal(logged[0]!.host, 'mx.example.net');
    assert.equal(logged[1]!.action, 'greylist');
    assert.equal(logged[1]!.reason, 'score');
    assert.equal(logged[1]!.time, START);
    assert.equal(logged[1]!.helo, C.noPtr.helo);
    assert.deepEqual(logged[1]!.scores, { dnswl: 0, dnsbl: 0, helo: 2, dyn: 0, s_eq_r: 0 });
  });

  test('decisionLog off writes nothing', async () => {
    const r = await rig({ decisionLog: false });
    await r.decide(C.clean);
    assert.deepEqual(await r.store.recentDecisions(10), []);
  });
});

describe('keying SPF-pass senders by their domain', () => {
  // Two hosts of one sender's pool, neither with a PTR (so both would be greylisted by score).
  const first = C.noPtr;
  const second = C.noPtrNeighbour;
  const pass = { sender: 'jo@spfpass.example' };

  test("a retry from another host of the sender's pool passes once the first attempt waited", async () => {
    const r = await rig({ keySpfPassByDomain: true });
    const attempt = await r.decide(first, pass);
    assert.equal(attempt.verdict, 'greylist');
    assert.deepEqual(attempt.key, key('spf:spfpass.example', 'jo@spfpass.example'));
    r.clock.advance(PERIOD + SECOND);
    const retry = await r.decide(second, pass);
    assert.equal(retry.verdict, 'pass');
    assert.equal(retry.reason, 'waited');
    // The decision log still names the address that sent.
    const logged = await r.store.recentDecisions(5);
    assert.deepEqual(
      logged.map((d) => d.client),
      [second.ip, first.ip],
    );
  });

  test('a record that lets everyone pass, or a network wider than /16, vouches for nobody', async () => {
    const r = await rig({ keySpfPassByDomain: true });
    for (const sender of ['jo@plusall.example', 'jo@wide.example']) {
      const d = await r.decide(first, { sender });
      assert.equal(d.key.client, first.ip, sender);
    }
  });

  test('a host on a block list is keyed by its address, whatever domain it sends for', async () => {
    const r = await rig({ keySpfPassByDomain: true });
    const clean = await r.decide(C.clean, pass);
    assert.equal(clean.key.client, 'spf:spfpass.example');
    const listed = await r.decide(C.dnsbl, pass);
    assert.equal(listed.key.client, C.dnsbl.ip);
    assert.equal(listed.verdict, 'greylist');
    assert.equal(listed.reason, 'dnsbl');
  });

  test("a domain key neither feeds the auto-whitelist nor caches the host's verdict", async () => {
    const r = await rig({ keySpfPassByDomain: true, autoWhitelistAfter: 1 });
    await r.decide(first, pass);
    r.clock.advance(PERIOD + SECOND);
    assert.equal((await r.decide(second, pass)).reason, 'waited');
    assert.equal(await r.store.getClient('spf:spfpass.example'), null);
    assert.equal(await r.store.getClient(second.ip), null);
    // Another sender from the host that passed by the domain's triplet is scored afresh.
    const other = await r.decide(second, { sender: 'jo@nospf.example' });
    assert.equal(other.reason, 'score');
  });

  test('turned off, the other host is a new triplet', async () => {
    const r = await rig({ keySpfPassByDomain: false });
    await r.decide(first, pass);
    r.clock.advance(PERIOD + SECOND);
    const retry = await r.decide(second, pass);
    assert.equal(retry.verdict, 'greylist');
    assert.deepEqual(retry.key, key(second.ip, 'jo@spfpass.example'));
  });

  test('senders whose SPF does not pass, and the null sender, stay keyed by address', async () => {
    const r = await rig({ keySpfPassByDomain: true });
    for (const sender of ['jo@spfsoft.example', 'jo@nospf.example', 'jo@spferror.example', '']) {
      const d = await r.decide(first, { sender });
      assert.equal(d.key.client, first.ip, sender);
    }
  });

  test("the caller's SPF result is used, not asked again", async () => {
    const r = await rig({ keySpfPassByDomain: true });
    let calls = 0;
    server.resetLog();
    const d = await r.decide(first, {
      sender: 'jo@elsewhere.example',
      lookups: {
        spf: async () => {
          calls++;
          return {
            result: 'pass',
            identity: 'mailfrom',
            ip: first.ip,
            sender: 'jo@elsewhere.example',
            domain: 'elsewhere.example',
            helo: first.helo,
            mechanism: 'ip4:192.0.2.0/24',
            lookups: 1,
            voidLookups: 0,
            queries: 1,
            reply: { code: 250, xcode: '2.7.0', text: 'ok' },
          };
        },
      },
    });
    assert.equal(d.key.client, 'spf:elsewhere.example');
    assert.equal(calls, 1);
    assert.ok(!asked().some((q) => q.startsWith('elsewhere.example')));
  });
});

describe('local sender reputation', () => {
  const HALF_LIFE = 30 * 86_400_000;
  const settings = {
    halfLifeMs: HALF_LIFE,
    minScore: 0.5,
    minConfidence: 0.5,
    observationsForConfidence: 10,
    prior: 1,
  };

  /** A greylister whose reputation hooks are the real recorder and reader on its own store. */
  async function reputationRig(skip: boolean) {
    const base = await rig({ keySpfPassByDomain: false });
    const recorder = new ReputationRecorder(base.store, {
      logger: base.logger,
      halfLifeMs: HALF_LIFE,
    });
    const reader = new ReputationReader(base.store, settings, { clock: base.clock, cacheTtlMs: 0 });
    const reputation: GreylistReputation = {
      record: (subjects, event) => recorder.record(subjects, event, base.clock.now()),
      ...(skip
        ? {
            goodStanding: async (subjects: readonly string[]) =>
              (await reader.lookup(subjects, base.clock.now())).find((s) => s.goodStanding)
                ?.subject ?? null,
          }
        : {}),
    };
    const greylister = new Greylister(
      base.settings,
      {
        store: base.store,
        resolver: createResolver({ servers: [server.address], timeout: 300 }),
        clock: base.clock,
      },
      { logger: base.logger, reputation },
    );
    const decide = (client: { ip: string; helo: string }, more: Partial<GreylistRequest> = {}) =>
      greylister.decide({
        ip: client.ip,
        helo: client.helo,
        sender: 'jo@sender.example',
        recipient: 'sam@rcpt.example',
        ...more,
      });
    const counts = async (subject: string) => {
      await recorder.flush();
      const rows = await base.store.getReputation([subject]);
      return Object.fromEntries(rows.map((r) => [r.event, Math.round(r.amount * 1000) / 1000]));
    };
    /** Twenty passes for a subject, as if the last weeks had gone well. */
    const seed = (subject: string) =>
      base.store.addReputation(
        [{ subject, event: 'greylist:pass', amount: 20, time: base.clock.now() }],
        HALF_LIFE,
      );
    return { ...base, decide, counts, seed };
  }

  test('a new triplet greylisted counts a refusal; the retry after the wait counts a pass', async () => {
    const r = await reputationRig(false);
    await r.decide(C.noPtr);
    await r.decide(C.noPtr); // an early retry: not counted again
    assert.deepEqual(await r.counts('net:192.0.2.0/24'), { 'greylist:refused': 1 });
    assert.deepEqual(await r.counts('domain:sender.example'), { 'greylist:refused': 1 });
    r.clock.advance(PERIOD + PENALTY + SECOND);
    assert.equal((await r.decide(C.noPtr)).reason, 'waited');
    assert.deepEqual(await r.counts('net:192.0.2.0/24'), {
      'greylist:pass': 1,
      'greylist:refused': 1,
    });
    // A known triplet's later passes are not a retry that came back.
    await r.decide(C.noPtr);
    assert.equal((await r.counts('net:192.0.2.0/24'))['greylist:pass'], 1);
  });

  test('a network in good standing skips greylisting; a domain only when its SPF passes', async () => {
    const r = await reputationRig(true);
    await r.seed('net:192.0.2.0/24');
    const skipped = await r.decide(C.noPtr);
    assert.equal(skipped.verdict, 'pass');
    assert.equal(skipped.reason, 'reputation');
    assert.equal(skipped.match, 'net:192.0.2.0/24');

    // A domain alone: only when its SPF passes from this client.
    const d = await reputationRig(true);
    await d.seed('domain:spfpass.example');
    await d.seed('domain:spffail.example');
    const authentic = await d.decide(C.noPtr, { sender: 'jo@spfpass.example' });
    assert.equal(authentic.reason, 'reputation');
    assert.equal(authentic.match, 'domain:spfpass.example');
    // spfpass.example authorizes 192.0.2.0/24 only: from 198.51.100.20 its name is a forgery.
    const other = { ip: '198.51.100.20', helo: 'mail.noptr.example' };
    assert.equal((await d.decide(other, { sender: 'jo@spfpass.example' })).verdict, 'greylist');
    assert.equal((await d.decide(C.noPtr, { sender: 'jo@spffail.example' })).verdict, 'greylist');
  });

  test('without the skip switch, good standing changes nothing', async () => {
    const r = await reputationRig(false);
    await r.seed('net:192.0.2.0/24');
    assert.equal((await r.decide(C.noPtr)).verdict, 'greylist');
  });
});
