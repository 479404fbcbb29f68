import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkSettings,
  DEFAULT_GREYLIST_SETTINGS,
  exactly,
  greylistHeader,
  judge,
  rfc5322Date,
  type ScoreFacts,
  safeHostname,
  spfCouldMatter,
} from '../../src/greylist/index.js';
import { VERSION } from '../../src/version.js';

const T = { dnswl: 1, dnsbl: 1, rfc: 2 };
const facts = (over: Partial<ScoreFacts> = {}): ScoreFacts => ({
  dnswl: exactly(0),
  dnsbl: exactly(0),
  helo: exactly(0),
  dyn: exactly(0),
  spf: null,
  sEqR: 0,
  ...over,
});

test('bley order: DNSWL passes, then DNSBL greylists, then the RFC sum', () => {
  assert.deepEqual(judge(facts({ dnswl: exactly(1), dnsbl: exactly(5) }), T), {
    verdict: 'pass',
    reason: 'dnswl',
  });
  assert.deepEqual(judge(facts({ dnsbl: exactly(1) }), T), {
    verdict: 'greylist',
    reason: 'dnsbl',
  });
  assert.deepEqual(judge(facts({ helo: exactly(1), dyn: exactly(1) }), T), {
    verdict: 'greylist',
    reason: 'score',
  });
  assert.deepEqual(judge(facts({ helo: exactly(1), sEqR: 1 }), T), {
    verdict: 'greylist',
    reason: 'score',
  });
  assert.deepEqual(judge(facts({ helo: exactly(1), spf: exactly(1) }), T), {
    verdict: 'greylist',
    reason: 'score',
  });
  assert.deepEqual(judge(facts({ helo: exactly(1) }), T), { verdict: 'pass', reason: 'clean' });
  assert.deepEqual(judge(facts({ dnsbl: exactly(0.5) }), T), { verdict: 'pass', reason: 'clean' });
});

test('a failed lookup that could change the verdict leaves it undecided', () => {
  // A failed DNSBL that could reach the threshold.
  assert.equal(judge(facts({ dnsbl: { min: 0, max: 1 } }), T), 'undecided');
  // A failed DNSWL that could have vouched for a listed client.
  assert.equal(judge(facts({ dnsbl: exactly(1), dnswl: { min: 0, max: 1 } }), T), 'undecided');
  // A failed PTR: HELO 0..2, dyn 0..1.
  assert.equal(judge(facts({ helo: { min: 0, max: 2 }, dyn: { min: 0, max: 1 } }), T), 'undecided');
  // SPF temperror when it mattered.
  assert.equal(judge(facts({ helo: exactly(1), spf: { min: 0, max: 1 } }), T), 'undecided');
});

test('a failed lookup that could not change the verdict does not matter', () => {
  // A failed DNSWL for a clean client: it passes anyway, for being clean.
  assert.deepEqual(judge(facts({ dnswl: { min: 0, max: 1 } }), T), {
    verdict: 'pass',
    reason: 'clean',
  });
  // A failed DNSBL for a client the RFC scores greylist anyway.
  assert.deepEqual(judge(facts({ dnsbl: { min: 0, max: 1 }, helo: exactly(2) }), T), {
    verdict: 'greylist',
    reason: 'score',
  });
  // A listed client with one more DNSBL failing.
  assert.deepEqual(judge(facts({ dnsbl: { min: 1, max: 2 } }), T), {
    verdict: 'greylist',
    reason: 'dnsbl',
  });
  // A DNSWL listing decides whatever else failed.
  assert.deepEqual(judge(facts({ dnswl: { min: 1, max: 2 }, dnsbl: { min: 0, max: 3 } }), T), {
    verdict: 'pass',
    reason: 'dnswl',
  });
});

test('SPF is worth asking only when it could change the outcome', () => {
  // bley: sum < threshold <= sum + 1, no DNSBL verdict.
  assert.equal(spfCouldMatter(facts({ helo: exactly(1) }), T), true);
  assert.equal(spfCouldMatter(facts({ helo: exactly(0), sEqR: 1 }), T), true);
  assert.equal(spfCouldMatter(facts({ helo: exactly(0) }), T), false, 'clean even with SPF fail');
  assert.equal(spfCouldMatter(facts({ helo: exactly(2) }), T), false, 'greylisted anyway');
  assert.equal(spfCouldMatter(facts({ helo: exactly(1), dnsbl: exactly(1) }), T), false);
  assert.equal(spfCouldMatter(facts({ helo: exactly(1), dnswl: exactly(1) }), T), false);
  // A failed DNSBL: an SPF fail would settle it (greylist whatever the list says).
  assert.equal(spfCouldMatter(facts({ helo: exactly(1), dnsbl: { min: 0, max: 1 } }), T), true);
  // A failed PTR with HELO 0..2: SPF cannot settle it, so it is not worth its queries.
  assert.equal(
    spfCouldMatter(facts({ helo: { min: 0, max: 2 }, dyn: { min: 0, max: 1 } }), T),
    false,
  );
});

test('the X-Greylist header and its date', () => {
  const at = Date.UTC(2026, 10, 21, 10, 0, 0);
  assert.equal(rfc5322Date(at), 'Sat, 21 Nov 2026 10:00:00 +0000');
  assert.equal(rfc5322Date(Date.UTC(2027, 0, 3, 4, 5, 6)), 'Sun, 03 Jan 2027 04:05:06 +0000');
  assert.equal(
    greylistHeader(1805.9, 'MX.Example.com.', '0.1.0', at),
    'X-Greylist: delayed 1805 seconds by mailgate-0.1.0 at mx.example.com; Sat, 21 Nov 2026 10:00:00 +0000',
  );
  const hostile = greylistHeader(1, 'evil\r\nX-Injected: yes', '1\r\n2', at);
  assert.match(hostile, /^[\x20-\x7e]*$/);
  assert.ok(!hostile.includes('X-Injected:'));
  assert.equal(safeHostname('\r\n'), 'localhost');
  assert.equal(safeHostname('a'.repeat(400)).length, 253);
});

test('defaults are bley and postgrey defaults, and bad settings are refused', () => {
  const d = DEFAULT_GREYLIST_SETTINGS;
  assert.equal(d.periodMs, 29 * 60_000);
  assert.equal(d.penaltyMs, 10 * 60_000);
  assert.equal(d.maxMs, 12 * 3_600_000);
  assert.deepEqual([d.dnsblThreshold, d.dnswlThreshold, d.rfcThreshold], [1, 1, 2]);
  assert.equal(d.cacheMs, 60_000);
  assert.equal(d.autoWhitelistAfter, 5);
  assert.equal(d.passedTtlMs, 40 * 86_400_000);
  assert.equal(d.greylistedTtlMs, 10 * 86_400_000);
  assert.equal(d.decisionTtlMs, 30 * 86_400_000);
  assert.equal(d.storeFailure, 'open');
  assert.equal(d.version, VERSION);
  assert.equal(d.hostname, 'localhost');
  assert.deepEqual(d.lists, []);
  assert.ok(Object.isFrozen(d));
  checkSettings(d);
  assert.throws(() => checkSettings({ ...d, periodMs: -1 }), /periodMs/);
  assert.throws(() => checkSettings({ ...d, rfcThreshold: 0 }), /rfcThreshold/);
  assert.throws(() => checkSettings({ ...d, autoWhitelistAfter: 1.5 }), /autoWhitelistAfter/);
});
