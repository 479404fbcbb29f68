// The RFC 7208 conformance suite (openspf.org, BSD licence: see test/data/rfc7208-tests.LICENSE),
// played through the real resolver against the fixture DNS server, one scenario's zone at a time.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkSpf } from '../../../src/checks/spf/index.js';
import { createResolver } from '../../../src/dns/index.js';
import { type FixtureDnsServer, parseSuiteZone, startDnsServer } from '../../support/dns-server.js';
import { loadSuite } from '../../support/spf-suite.js';

const suitePath = fileURLToPath(new URL('../../data/rfc7208-tests.yml', import.meta.url));
const scenarios = loadSuite(suitePath);

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer();
});
after(async () => {
  await server.close();
});

test('the suite holds all 203 cases', () => {
  const count = scenarios.reduce((n, s) => n + Object.keys(s.tests).length, 0);
  assert.equal(count, 203);
});

for (const scenario of scenarios) {
  describe(scenario.description, () => {
    for (const [name, t] of Object.entries(scenario.tests)) {
      test(name, async () => {
        server.setZone(parseSuiteZone(scenario.zonedata));
        // No cache: each case sees exactly its scenario's zone. TIMEOUT entries never answer, so a
        // short per-query timeout keeps the suite fast.
        const resolver = createResolver({
          servers: [server.address],
          timeout: 150,
          attempts: 1,
          cache: false,
        });
        const r = await checkSpf(
          { ip: t.host, sender: t.mailfrom, helo: t.helo },
          { resolver, defaultExplanation: 'DEFAULT' },
        );
        const accepted = Array.isArray(t.result) ? t.result : [t.result];
        assert.ok(
          accepted.includes(r.result),
          `${name}: got ${r.result} (${r.problem ?? r.mechanism ?? ''}), want ${accepted.join(' or ')}`,
        );
        if (t.explanation !== undefined && r.result === 'fail') {
          assert.equal(r.explanation, t.explanation, `${name}: explanation`);
        }
      });
    }
  });
}
