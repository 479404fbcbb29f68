// The metrics object: what each method counts, under which labels, and that no label can take
// a value the code did not choose (an attacker's text becomes `other`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DaemonMetrics, labelWord } from '../../src/observe/index.js';

/** The value of one sample line of the exposition, or undefined when it is absent. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/u.exec(line);
    if (!match || match[1] !== name) continue;
    const got = (match[2] ?? '')
      .split(/,(?=[a-z_]+=")/u)
      .filter(Boolean)
      .sort();
    if (JSON.stringify(got) === JSON.stringify(wanted)) return Number(match[3]);
  }
  return undefined;
}

test('label words: short lower-case tokens pass, anything else is other', () => {
  assert.equal(labelWord('pass'), 'pass');
  assert.equal(labelWord('dns-tempfail'), 'dns-tempfail');
  assert.equal(labelWord('Pass'), 'other');
  assert.equal(labelWord('x'.repeat(33)), 'other');
  assert.equal(labelWord('evil"}\nfoo 1'), 'other');
  assert.equal(labelWord(''), 'other');
});

test('each method counts under its family and labels', async () => {
  const metrics = new DaemonMetrics({ version: '9.9.9', processMetrics: false });
  metrics.decision('milter', 'mail', 'reject', 0.003);
  metrics.decision('milter', 'mail', 'reject', 0.004);
  metrics.decision('policy', 'rcpt', 'continue', 0.001);
  metrics.check('spf', 'pass', 0.002);
  metrics.check('dkim', 'fail');
  metrics.check('spf', 'Injected\r\nlabel');
  metrics.dnsQuery('TXT', 'answer', 0.001);
  metrics.dnsQuery('NAPTR', 'timeout', 2);
  metrics.dnsCache(true);
  metrics.dnsCache(true);
  metrics.dnsCache(false);
  metrics.storeOperation('logDecision', true, 0.0001);
  metrics.storeOperation('getTriplet', false, 0.5);
  metrics.cbv('call');
  metrics.cbv('cache-hit');
  metrics.cbvResult('accepted');
  metrics.reload(true);
  metrics.reload(false);
  let open = 3;
  metrics.addListener({
    door: 'milter',
    listener: 'inet:10028@127.0.0.1',
    connections: () => open,
  });
  const text = await metrics.registry.metrics();

  assert.equal(sample(text, 'mailgate_info', { version: '9.9.9' }), 1);
  assert.equal(
    sample(text, 'mailgate_decisions_total', { door: 'milter', stage: 'mail', verdict: 'reject' }),
    2,
  );
  assert.equal(
    sample(text, 'mailgate_decisions_total', {
      door: 'policy',
      stage: 'rcpt',
      verdict: 'continue',
    }),
    1,
  );
  assert.equal(
    sample(text, 'mailgate_stage_duration_seconds_count', { door: 'milter', stage: 'mail' }),
    2,
  );
  assert.equal(
    sample(text, 'mailgate_stage_duration_seconds_bucket', {
      door: 'milter',
      stage: 'mail',
      le: '0.0025',
    }),
    0,
  );
  assert.equal(
    sample(text, 'mailgate_stage_duration_seconds_bucket', {
      door: 'milter',
      stage: 'mail',
      le: '0.005',
    }),
    2,
  );
  assert.equal(sample(text, 'mailgate_check_results_total', { check: 'spf', result: 'pass' }), 1);
  assert.equal(sample(text, 'mailgate_check_results_total', { check: 'spf', result: 'other' }), 1);
  assert.equal(sample(text, 'mailgate_check_results_total', { check: 'dkim', result: 'fail' }), 1);
  // A result without a time is counted, not timed.
  assert.equal(sample(text, 'mailgate_check_duration_seconds_count', { check: 'spf' }), 1);
  assert.equal(sample(text, 'mailgate_check_duration_seconds_count', { check: 'dkim' }), undefined);
  assert.equal(sample(text, 'mailgate_dns_queries_total', { type: 'TXT', outcome: 'answer' }), 1);
  assert.equal(
    sample(text, 'mailgate_dns_queries_total', { type: 'other', outcome: 'timeout' }),
    1,
  );
  assert.equal(sample(text, 'mailgate_dns_timeouts_total'), 1);
  assert.equal(sample(text, 'mailgate_dns_cache_total', { result: 'hit' }), 2);
  assert.equal(sample(text, 'mailgate_dns_cache_total', { result: 'miss' }), 1);
  assert.equal(
    sample(text, 'mailgate_store_operations_total', { operation: 'logdecision', outcome: 'ok' }),
    1,
  );
  assert.equal(sample(text, 'mailgate_store_errors_total', { operation: 'gettriplet' }), 1);
  assert.equal(sample(text, 'mailgate_cbv_total', { event: 'call' }), 1);
  assert.equal(sample(text, 'mailgate_cbv_total', { event: 'cache-hit' }), 1);
  assert.equal(sample(text, 'mailgate_cbv_results_total', { result: 'accepted' }), 1);
  assert.equal(sample(text, 'mailgate_reloads_total', { outcome: 'ok' }), 1);
  assert.equal(sample(text, 'mailgate_reloads_total', { outcome: 'failed' }), 1);
  assert.equal(
    sample(text, 'mailgate_open_connections', { door: 'milter', listener: 'inet:10028@127.0.0.1' }),
    3,
  );
  // The gauge reads the listener at each scrape.
  open = 1;
  const later = await metrics.registry.metrics();
  assert.equal(
    sample(later, 'mailgate_open_connections', {
      door: 'milter',
      listener: 'inet:10028@127.0.0.1',
    }),
    1,
  );
  metrics.removeListeners('milter');
  assert.doesNotMatch(await metrics.registry.metrics(), /^mailgate_open_connections\{/mu);
  // No process metrics were asked for.
  assert.doesNotMatch(text, /^process_cpu/mu);
});

test('process metrics are there by default, and two daemons in one process do not collide', async () => {
  const one = new DaemonMetrics();
  const two = new DaemonMetrics();
  one.decision('milter', 'eom', 'continue', 0.01);
  assert.match(await one.registry.metrics(), /^process_cpu_user_seconds_total /mu);
  assert.doesNotMatch(await two.registry.metrics(), /^mailgate_decisions_total\{/mu);
});
