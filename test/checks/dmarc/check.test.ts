// checkDmarc end to end against the fixture DNS server: the alignment matrix, testing mode,
// pct= sampling in psl mode, From fields that do not give one Author Domain (OpenDMARC's
// CVE-2021-34555 among them), hostile input, and the Authentication-Results clause.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkDmarc,
  type DmarcResult,
  dmarcAuthResults,
  MAX_DNS_QUERIES,
} from '../../../src/checks/dmarc/index.js';
import { fieldFromParts } from '../../../src/checks/message/index.js';
import { resultClause } from '../../../src/policy/auth-results.js';
import { askedDuring, dkimPass, dmarc, fixtureResolver, spfPass, useZone } from './zone.js';

useZone();

describe('identifier alignment', () => {
  // [record, From domain, identifier, aligned?]
  const relations: Array<[string, string, string, boolean, boolean]> = [
    // name, From domain, identifier, relaxed, strict
    ['identical', 'X', 'X', true, true],
    ['identical, other case', 'X', 'UPPER', true, true],
    ['a subdomain of the From domain', 'X', 'bounce.X', true, false],
    ['the parent of the From domain', 'news.X', 'X', true, false],
    ['a sibling of the From domain', 'news.X', 'mail.X', true, false],
    ['an unrelated domain', 'X', 'other.example', false, false],
    ['a look-alike suffix', 'X', 'badX', false, false],
  ];
  for (const mode of ['relaxed', 'strict'] as const) {
    for (const [name, fromPattern, idPattern, relaxed, strict] of relations) {
      for (const kind of ['spf', 'dkim'] as const) {
        const expected = mode === 'relaxed' ? relaxed : strict;
        test(`${mode}, ${kind}: ${name} ${expected ? 'aligns' : 'does not align'}`, async () => {
          const base = `${mode}.example`;
          const author = fromPattern.replace('X', base);
          const identifier =
            idPattern === 'UPPER' ? base.toUpperCase() : idPattern.replace('X', base);
          const r = await dmarc(
            `jo@${author}`,
            kind === 'spf' ? { spf: spfPass(identifier) } : { dkim: [dkimPass(identifier)] },
          );
          assert.equal(r.result, expected ? 'pass' : 'fail', r.reason);
          assert.equal(kind === 'spf' ? r.spfAligned : r.dkimAligned, expected);
          assert.equal(r.disposition, expected ? 'none' : 'reject');
          if (kind === 'dkim') {
            assert.deepEqual(r.alignedDkimDomains, expected ? [identifier.toLowerCase()] : []);
          }
        });
      }
    }
  }

  test('adkim and aspf are separate: strict DKIM, relaxed SPF', async () => {
    const r = await dmarc('jo@halfstrict.example', {
      spf: spfPass('bounce.halfstrict.example'),
      dkim: [dkimPass('mail.halfstrict.example')],
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.spfAligned, true);
    assert.equal(r.dkimAligned, false);
  });

  test('only passes count: SPF and DKIM results other than pass never align', async () => {
    for (const result of [
      'fail',
      'softfail',
      'neutral',
      'none',
      'temperror',
      'permerror',
    ] as const) {
      const r = await dmarc('jo@relaxed.example', {
        spf: { domain: 'relaxed.example', result, scope: 'mfrom' },
        dkim: [{ domain: 'relaxed.example', result }],
      });
      assert.equal(r.result, 'fail', result);
      assert.equal(r.reason, 'no SPF or DKIM pass to align with relaxed.example');
    }
  });

  test('an SPF pass of the HELO identity (null MAIL FROM) counts', async () => {
    const r = await dmarc('jo@relaxed.example', {
      spf: { domain: 'mx.relaxed.example', result: 'pass', scope: 'helo' },
    });
    assert.equal(r.result, 'pass');
  });

  test('every passing DKIM domain is checked, and the aligned ones listed', async () => {
    const r = await dmarc('jo@relaxed.example', {
      dkim: [
        dkimPass('esp.example'),
        dkimPass('relaxed.example'),
        { domain: 'mail.relaxed.example', result: 'fail' },
        dkimPass('news.relaxed.example'),
        dkimPass('Relaxed.Example'),
      ],
    });
    assert.equal(r.result, 'pass');
    assert.deepEqual(r.alignedDkimDomains, ['relaxed.example', 'news.relaxed.example']);
    assert.equal(
      r.reason,
      'DKIM relaxed.example, news.relaxed.example aligned with relaxed.example',
    );
  });

  test('a failure names what was tried', async () => {
    const r = await dmarc('jo@strict.example', {
      spf: spfPass('bounce.strict.example'),
      dkim: [dkimPass('esp.example')],
    });
    assert.equal(
      r.reason,
      'SPF bounce.strict.example and DKIM esp.example not aligned with strict.example (aspf=s, adkim=s)',
    );
  });

  test('strict alignment asks no walk', async () => {
    const r = await dmarc('jo@strict.example', { dkim: [dkimPass('mail.strict.example')] });
    assert.equal(r.queries, 1);
    assert.equal(r.organizationalDomain, undefined);
  });
});

describe('testing mode (t=y)', () => {
  test('reject becomes quarantine', async () => {
    const r = await dmarc('jo@testing.example');
    assert.equal(r.result, 'fail');
    assert.equal(r.testing, true);
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'quarantine');
    assert.match(r.reason, /testing mode \(t=y\): quarantine$/);
  });

  test('quarantine becomes none', async () => {
    const r = await dmarc('jo@testq.example');
    assert.equal(r.policy, 'quarantine');
    assert.equal(r.disposition, 'none');
  });

  test('a pass in testing mode is a pass', async () => {
    const r = await dmarc('jo@testing.example', { dkim: [dkimPass('testing.example')] });
    assert.equal(r.result, 'pass');
    assert.equal(r.disposition, 'none');
    assert.equal(r.testing, true);
  });
});

describe('pct= sampling (psl mode)', () => {
  const psl = { discovery: 'psl' } as const;
  test('a message inside the sample gets the policy', async () => {
    const r = await dmarc('jo@pct.example', {}, psl, { random: () => 0.49 });
    assert.equal(r.disposition, 'reject');
    assert.equal(r.record?.pct, 50);
  });

  test('a message outside it gets one step less (RFC 7489 section 6.6.4)', async () => {
    const r = await dmarc('jo@pct.example', {}, psl, { random: () => 0.5 });
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'quarantine');
    assert.match(r.reason, /left out of the pct=50 sample: quarantine$/);
  });

  test('pct=0 leaves every message out', async () => {
    const r = await dmarc('jo@pct0.example', {}, psl, { random: () => 0 });
    assert.equal(r.disposition, 'none');
  });

  test('sampling is not asked for a pass, nor with honorPct off, nor by the tree walk', async () => {
    const never = () => {
      throw new Error('random asked');
    };
    const pass = await dmarc('jo@pct.example', { dkim: [dkimPass('pct.example')] }, psl, {
      random: never,
    });
    assert.equal(pass.result, 'pass');
    const off = await dmarc('jo@pct.example', {}, { ...psl, honorPct: false }, { random: never });
    assert.equal(off.disposition, 'reject');
    const walk = await dmarc('jo@pct.example', {}, {}, { random: never });
    assert.equal(walk.disposition, 'reject');
    assert.equal(walk.record?.pct, undefined, 'pct= is no RFC 9989 tag');
  });
});

describe('From fields without one Author Domain', () => {
  test('no From field: permerror, no DNS', async () => {
    const r = await dmarc([]);
    assert.equal(r.result, 'permerror');
    assert.equal(r.reason, 'no From field');
    assert.equal(r.domain, undefined);
    assert.equal(r.queries, 0);
  });

  test('several From addresses with different domains: permerror, with the strictest failing policy', async () => {
    const r = await dmarc('a@testq.example, b@exact.example', {
      dkim: [dkimPass('testq.example')],
    });
    assert.equal(r.result, 'permerror');
    assert.match(
      r.reason,
      /^several From addresses with different domains \(testq\.example, exact\.example\)/,
    );
    assert.equal(r.domain, 'exact.example', 'the failing domain decides');
    assert.equal(r.disposition, 'reject');
  });

  test('...and when every domain passes, nothing to apply', async () => {
    const r = await dmarc('a@exact.example, b@relaxed.example', {
      dkim: [dkimPass('exact.example'), dkimPass('relaxed.example')],
    });
    assert.equal(r.result, 'permerror');
    assert.equal(r.disposition, 'none');
  });

  test('two From fields, one domain: permerror, still evaluated', async () => {
    const r = await dmarc(['jo@exact.example', 'jo@exact.example']);
    assert.equal(r.result, 'permerror');
    assert.match(r.reason, /^2 From fields; exact\.example: fail/);
    assert.equal(r.disposition, 'reject');
  });

  test('several addresses with one domain: an ordinary evaluation', async () => {
    const r = await dmarc('a@exact.example, B <b@Exact.Example>', {
      dkim: [dkimPass('exact.example')],
    });
    assert.equal(r.result, 'pass');
  });

  // CVE-2021-34555: OpenDMARC crashed on a multi-valued From with an element without a domain.
  for (const value of [
    'a@exact.example, b',
    'b, a@exact.example',
    'a@exact.example, <>',
    'a@exact.example,',
    ',',
    'a@exact.example, undisclosed-recipients:;',
    'a@exact.example, "x" <y@[192.0.2.1]>',
    'Group: a@exact.example, b@relaxed.example;, c@',
  ]) {
    test(`CVE-2021-34555 shape ${JSON.stringify(value)}: a result, never a crash`, async () => {
      const r = await dmarc(value);
      assert.ok(['fail', 'permerror'].includes(r.result), `${r.result}: ${r.reason}`);
      assert.match(r.reason, /^[\x20-\x7e]+$/);
    });
  }
});

describe('hostile input', () => {
  test('a huge From field: permerror without DNS', async () => {
    const r = await dmarc(`${'x'.repeat(2_000_000)}@exact.example`);
    assert.equal(r.result, 'permerror');
    assert.equal(r.queries, 0);
  });

  test('a thousand addresses with a thousand domains: bounded evaluation', async () => {
    const list = Array.from({ length: 1000 }, (_, i) => `u@d${i}.ex`).join(',');
    const r = await dmarc(list);
    assert.equal(r.result, 'permerror');
    assert.match(r.reason, /more than 100 From addresses/);
    assert.match(r.reason, /only 4 of 100 From domains evaluated/);
    assert.ok(r.queries <= 4 * 3, `${r.queries} queries`);
  });

  test('NUL and 8-bit bytes in the From field', async () => {
    const raw = Buffer.concat([
      Buffer.from(' "\u0000\u00ff" <jo@exact.example>, x@', 'latin1'),
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.from('.example'),
    ]);
    const r = await checkDmarc(
      { from: [fieldFromParts(Buffer.from('From'), raw, true)], dkim: [] },
      {},
      { resolver: fixtureResolver() },
    );
    assert.equal(r.result, 'permerror');
    assert.match(r.reason, /^[\x20-\x7e]+$/);
  });

  test('many passing DKIM domains: the DNS work stays bounded', async () => {
    const dkim = Array.from({ length: 300 }, (_, i) =>
      dkimPass(`s${i}.a.b.c.d.e.f.g.relaxed.example`),
    );
    const r = await dmarc('jo@q.relaxed.example', { dkim });
    assert.equal(r.result, 'pass');
    assert.ok(r.queries <= MAX_DNS_QUERIES, `${r.queries} queries`);
    assert.equal(r.alignedDkimDomains.length, 10);
  });

  test('identifiers that would need more than the query cap: the cap holds', async () => {
    // Eleven walks of six names of their own each, beside the From domain's three.
    const deep = (i: number) => `a${i}.b${i}.c${i}.d${i}.e${i}.f${i}.relaxed.example`;
    const { value: r, names } = await askedDuring(() =>
      dmarc('jo@q.relaxed.example', {
        spf: spfPass(deep(99)),
        dkim: Array.from({ length: 10 }, (_, i) => dkimPass(deep(i))),
      }),
    );
    assert.equal(names.length, MAX_DNS_QUERIES, 'the work asked for is more than the cap');
    assert.equal(r.queries, names.length);
    assert.equal(r.result, 'pass', 'the identifiers walked before the cap still align');
  });

  test('hostile identifiers are ignored, not thrown on', async () => {
    const r = await dmarc('jo@exact.example', {
      spf: { domain: 'exact.example\r\n', result: 'pass', scope: 'mfrom' },
      dkim: [
        { domain: '\u0000', result: 'pass' },
        { domain: 'x'.repeat(10_000), result: 'pass' },
        { domain: 42 as unknown as string, result: 'pass' },
      ],
    });
    assert.equal(r.result, 'fail');
  });

  test('every reason is one bounded line of printable ASCII', async () => {
    const results: DmarcResult[] = await Promise.all([
      dmarc('jo@hostile.example'),
      dmarc(`a@${'x'.repeat(60)}.example, b@${'y'.repeat(60)}.example, c@z.example`),
      dmarc('jo@badp.example'),
    ]);
    for (const r of results) {
      assert.match(r.reason, /^[\x20-\x7e]+$/);
      assert.ok(r.reason.length <= 500);
    }
  });
});

describe('Authentication-Results', () => {
  test('a pass: header.from and the policy a failure would get', async () => {
    const r = await dmarc('jo@exact.example', { dkim: [dkimPass('exact.example')] });
    assert.equal(
      resultClause(dmarcAuthResults(r)),
      'dmarc=pass header.from=exact.example policy.dmarc=reject',
    );
  });

  test('a failure: the disposition, after testing mode', async () => {
    const r = await dmarc('jo@testing.example');
    assert.equal(
      resultClause(dmarcAuthResults(r)),
      'dmarc=fail header.from=testing.example policy.dmarc=quarantine',
    );
    const pass = await dmarc('jo@testing.example', { dkim: [dkimPass('testing.example')] });
    assert.equal(
      resultClause(dmarcAuthResults(pass)),
      'dmarc=pass header.from=testing.example policy.dmarc=quarantine',
    );
  });

  test('none, temperror and permerror carry their reason, and no policy', async () => {
    const none = await dmarc('jo@nowhere.example');
    assert.equal(
      resultClause(dmarcAuthResults(none)),
      'dmarc=none reason="no DMARC record for nowhere.example" header.from=nowhere.example',
    );
    const temp = dmarcAuthResults(await dmarc('jo@servfail.example'));
    assert.equal(temp.result, 'temperror');
    assert.deepEqual(temp.properties, [
      { ptype: 'header', property: 'from', value: 'servfail.example' },
    ]);
    const perm = await dmarc([]);
    assert.equal(resultClause(dmarcAuthResults(perm)), 'dmarc=permerror reason="no From field"');
  });

  test('a permerror whose failing domain asks for reject says so', async () => {
    const r = await dmarc('a@exact.example, b@relaxed.example');
    assert.deepEqual(dmarcAuthResults(r).properties, [
      { ptype: 'header', property: 'from', value: 'exact.example' },
      { ptype: 'policy', property: 'dmarc', value: 'reject' },
    ]);
  });
});
