// Finding the record that applies (RFC 9989 section 4.10; RFC 7489 section 6.6.3 in psl mode)
// against the fixture DNS server: the record at the From domain, the walk to the organizational
// domain and its shortcut, psd=, sp= and np=, several records, unusable records, DNS trouble.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_WALK_QUERIES } from '../../../src/checks/dmarc/index.js';
import { askedDuring, dkimPass, dmarc, useZone } from './zone.js';

useZone();

describe('the record at the From domain', () => {
  test('one query, p= applies, nothing to align: fail with the policy', async () => {
    const { value: r, names } = await askedDuring(() => dmarc('jo@exact.example'));
    assert.deepEqual(names, ['TXT _dmarc.exact.example']);
    assert.equal(r.result, 'fail');
    assert.equal(r.domain, 'exact.example');
    assert.equal(r.policyDomain, 'exact.example');
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'reject');
    assert.equal(r.queries, 1);
    assert.deepEqual(r.record, { p: 'reject', adkim: 'r', aspf: 'r', ignored: [] });
    assert.equal(r.reason, 'no SPF or DKIM pass to align with exact.example');
  });

  test('a record in several strings, among TXT records that are not DMARC records', async () => {
    const r = await dmarc('jo@split.example');
    assert.equal(r.policyDomain, 'split.example');
    assert.equal(r.policy, 'reject');
  });

  test('no record anywhere: none, after walking to the top', async () => {
    const { value: r, names } = await askedDuring(() => dmarc('jo@mail.nowhere.example'));
    assert.deepEqual(names, [
      'TXT _dmarc.mail.nowhere.example',
      'TXT _dmarc.nowhere.example',
      'TXT _dmarc.example',
    ]);
    assert.equal(r.result, 'none');
    assert.equal(r.reason, 'no DMARC record for mail.nowhere.example');
    assert.equal(r.policyDomain, undefined);
    assert.equal(r.disposition, 'none');
  });
});

describe('the DNS Tree Walk', () => {
  test('up to the organizational domain: its sp= applies, not the record in between', async () => {
    const { value: r, names } = await askedDuring(() => dmarc('jo@a.b.mail.org.example'));
    assert.deepEqual(names, [
      'TXT _dmarc.a.b.mail.org.example',
      'TXT _dmarc.b.mail.org.example',
      'TXT _dmarc.mail.org.example',
      'TXT _dmarc.org.example',
      'TXT _dmarc.example',
    ]);
    assert.equal(r.policyDomain, 'org.example');
    assert.equal(r.organizationalDomain, 'org.example');
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'reject');
  });

  test('the record in between applies to its own name, with its p=', async () => {
    const r = await dmarc('jo@mail.org.example');
    assert.equal(r.policyDomain, 'mail.org.example');
    assert.equal(r.policy, 'none');
  });

  test('the organizational domain itself: p=, not sp=', async () => {
    const r = await dmarc('jo@org.example');
    assert.equal(r.policy, 'quarantine');
  });

  test('psd=n ends the walk: that name is the organizational domain', async () => {
    const { value: r, names } = await askedDuring(() => dmarc('jo@host.dept.psdn.example'));
    assert.deepEqual(names, ['TXT _dmarc.host.dept.psdn.example', 'TXT _dmarc.dept.psdn.example']);
    assert.equal(r.policyDomain, 'dept.psdn.example');
    assert.equal(r.organizationalDomain, 'dept.psdn.example');
    assert.equal(r.policy, 'reject');
  });

  test('psd=y at a public suffix: the name below it is the organizational domain', async () => {
    const { value: r, names } = await askedDuring(() =>
      dmarc('jo@mail.agency.gov', { dkim: [dkimPass('agency.gov')] }),
    );
    assert.equal(r.result, 'pass');
    assert.equal(r.policyDomain, 'gov', 'the PSD record stands in for an agency without one');
    assert.equal(r.organizationalDomain, 'agency.gov');
    assert.deepEqual(r.alignedDkimDomains, ['agency.gov']);
    assert.equal(r.policy, 'quarantine', "the PSD's sp= for an existing subdomain");
    // The d= walk meets the From walk at _dmarc.gov, which is asked once.
    assert.deepEqual(names, [
      'TXT _dmarc.mail.agency.gov',
      'TXT _dmarc.agency.gov',
      'TXT _dmarc.gov',
    ]);
  });

  test('psd=y: a sibling under the same suffix is another organization', async () => {
    const r = await dmarc('jo@mail.agency.gov', { dkim: [dkimPass('other.gov')] });
    assert.equal(r.result, 'fail');
    assert.equal(r.policy, 'quarantine');
  });

  test("psd=y: a domain under the suffix with a record of its own uses it, not the PSD's", async () => {
    const r = await dmarc('jo@city.gov');
    assert.equal(r.policyDomain, 'city.gov');
    assert.equal(r.policy, 'none');
  });

  test("psd=y at the From domain itself: the suffix's own p=", async () => {
    const r = await dmarc('jo@gov');
    assert.equal(r.policyDomain, 'gov');
    assert.equal(r.organizationalDomain, 'gov');
    assert.equal(r.policy, 'reject');
  });

  test('np= of the PSD for a name under it that does not exist', async () => {
    const r = await dmarc('jo@nosuch.gov');
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'reject');
  });

  test('the shortcut: a name of twelve labels costs eight queries', async () => {
    const { value: r, names } = await askedDuring(() =>
      dmarc('jo@a.b.c.d.e.f.g.h.i.j.long.example'),
    );
    assert.deepEqual(names, [
      'TXT _dmarc.a.b.c.d.e.f.g.h.i.j.long.example',
      'TXT _dmarc.f.g.h.i.j.long.example',
      'TXT _dmarc.g.h.i.j.long.example',
      'TXT _dmarc.h.i.j.long.example',
      'TXT _dmarc.i.j.long.example',
      'TXT _dmarc.j.long.example',
      'TXT _dmarc.long.example',
      'TXT _dmarc.example',
    ]);
    assert.equal(r.policyDomain, 'long.example');
    assert.equal(r.policy, 'quarantine');
  });

  test('the shortcut at exactly eight labels, and none below', async () => {
    const eight = await askedDuring(() => dmarc('jo@a.b.c.d.e.f.long.example'));
    assert.equal(eight.names.length, 8);
    assert.equal(eight.names[1], 'TXT _dmarc.b.c.d.e.f.long.example');
    const seven = await askedDuring(() => dmarc('jo@b.c.d.e.f.long.example'));
    assert.equal(seven.names.length, 7);
  });

  test('however long the name, and however many identifiers, one walk is at most eight', async () => {
    const deep = `${Array.from({ length: 60 }, (_, i) => `l${i}`).join('.')}.long.example`;
    const { value: r, names } = await askedDuring(() => dmarc(`jo@${deep}`));
    assert.equal(names.length, MAX_WALK_QUERIES);
    assert.equal(r.policyDomain, 'long.example');
  });
});

describe('sp= and np=', () => {
  test('np= for a subdomain that does not exist (one A query, made only on a failure)', async () => {
    const { value: r, names } = await askedDuring(() => dmarc('jo@ghost.np.example'));
    assert.equal(r.policy, 'reject');
    assert.equal(names.at(-1), 'A ghost.np.example');
    assert.equal(r.queries, 4);
  });

  test('sp= for a subdomain that exists', async () => {
    const r = await dmarc('jo@real.np.example');
    assert.equal(r.policy, 'quarantine');
    assert.equal(r.disposition, 'quarantine');
  });

  test('p= for the domain itself', async () => {
    assert.equal((await dmarc('jo@np.example')).policy, 'none');
  });

  test('a pass asks no existence query', async () => {
    const { value: r, names } = await askedDuring(() =>
      dmarc('jo@ghost.np.example', { dkim: [dkimPass('np.example')] }),
    );
    assert.equal(r.result, 'pass');
    assert.ok(!names.some((n) => n.startsWith('A ')), names.join(', '));
  });

  test('without np=, sp= covers names that do not exist, with no existence query', async () => {
    const { value: r, names } = await askedDuring(() => dmarc('jo@ghost.spo.example'));
    assert.equal(r.policy, 'reject');
    assert.ok(!names.some((n) => n.startsWith('A ')));
  });

  test('an existence query that times out: temperror, the policy undecided', async () => {
    const r = await dmarc('jo@slowghost.np.example');
    assert.equal(r.result, 'temperror');
    assert.match(r.reason, /DNS trouble asking whether slowghost\.np\.example exists/);
    assert.equal(r.disposition, 'none');
  });
});

describe('several records, unusable records', () => {
  test('several DMARC records at the From domain are all discarded; the walk goes on', async () => {
    const r = await dmarc('jo@two.parent2.example');
    assert.equal(r.policyDomain, 'parent2.example');
    assert.equal(r.policy, 'quarantine');
  });

  test('several records and nothing above them: none, saying why', async () => {
    const r = await dmarc('jo@alone2.example');
    assert.equal(r.result, 'none');
    assert.equal(
      r.reason,
      'no DMARC record for alone2.example: several DMARC records (2 at _dmarc.alone2.example), so none applies',
    );
  });

  test('psl mode: several records at the From domain end discovery (RFC 7489 step 5)', async () => {
    const r = await dmarc('jo@two.parent2.example', {}, { discovery: 'psl' });
    assert.equal(r.result, 'none');
    assert.match(r.reason, /several DMARC records/);
  });

  test('an invalid p= without a valid rua=: permerror, no policy', async () => {
    const r = await dmarc('jo@badp.example');
    assert.equal(r.result, 'permerror');
    assert.match(r.reason, /invalid p= and no valid rua= URI.*at _dmarc\.badp\.example/);
    assert.equal(r.policy, 'none');
    assert.equal(r.disposition, 'none');
  });

  test('an invalid p= with a valid rua=: evaluated as p=none', async () => {
    const r = await dmarc('jo@badprua.example');
    assert.equal(r.result, 'fail');
    assert.equal(r.policy, 'none');
    assert.equal(r.disposition, 'none');
    assert.deepEqual(r.record?.rua, ['mailto:d@badprua.example']);
  });

  test('a hostile record: its bytes never reach the reason', async () => {
    const r = await dmarc('jo@hostile.example');
    assert.equal(r.result, 'permerror');
    assert.match(r.reason, /^[\x20-\x7e]+$/);
  });

  test('an over-long record (over TCP): permerror', async () => {
    const r = await dmarc('jo@huge.example');
    assert.equal(r.result, 'permerror');
    assert.match(r.reason, /longer than 4096/);
  });
});

describe('DNS trouble', () => {
  test('SERVFAIL at the From domain: temperror', async () => {
    const r = await dmarc('jo@servfail.example');
    assert.equal(r.result, 'temperror');
    assert.match(r.reason, /^DNS trouble looking up _dmarc\.servfail\.example: servfail/);
    assert.equal(r.disposition, 'none');
  });

  test('a timeout at the From domain: temperror', async () => {
    const r = await dmarc('jo@slow.example');
    assert.equal(r.result, 'temperror');
    assert.match(r.reason, /_dmarc\.slow\.example: (timeout|deadline)/);
  });

  test('SERVFAIL on the way up: temperror, not none', async () => {
    const r = await dmarc('jo@sub.brokenparent.example');
    assert.equal(r.result, 'temperror');
    assert.match(r.reason, /_dmarc\.brokenparent\.example/);
  });

  test('trouble finding an identifier’s organizational domain: temperror, with the policy known', async () => {
    const r = await dmarc('jo@news.align.example', { dkim: [dkimPass('mail.align.example')] });
    assert.equal(r.result, 'temperror');
    assert.match(r.reason, /organizational domain of mail\.align\.example/);
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'none');
  });

  test('...unless another identifier aligns: pass', async () => {
    const r = await dmarc('jo@news.align.example', {
      spf: { domain: 'align.example', result: 'pass', scope: 'mfrom' },
      dkim: [dkimPass('mail.align.example')],
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.spfAligned, true);
    assert.equal(r.dkimAligned, false);
  });

  test('a time budget spent: temperror', async () => {
    const r = await dmarc('jo@slow.example', {}, { timeBudgetMs: 20 });
    assert.equal(r.result, 'temperror');
  });
});

describe('psl discovery (RFC 7489)', () => {
  test('the From domain, then its organizational domain by the list: two queries', async () => {
    const { value: r, names } = await askedDuring(() =>
      dmarc('jo@a.b.pslorg.example', {}, { discovery: 'psl' }),
    );
    assert.deepEqual(names, ['TXT _dmarc.a.b.pslorg.example', 'TXT _dmarc.pslorg.example']);
    assert.equal(r.policyDomain, 'pslorg.example');
    assert.equal(r.organizationalDomain, 'pslorg.example');
    assert.equal(r.policy, 'reject');
  });

  test('a multi-label public suffix: the organizational domain is one label below it', async () => {
    const { value: r, names } = await askedDuring(() =>
      dmarc(
        'jo@mail.example.co.uk',
        { spf: { domain: 'bounce.example.co.uk', result: 'pass', scope: 'mfrom' } },
        { discovery: 'psl' },
      ),
    );
    assert.deepEqual(names, ['TXT _dmarc.mail.example.co.uk', 'TXT _dmarc.example.co.uk']);
    assert.equal(r.result, 'pass');
    assert.equal(r.organizationalDomain, 'example.co.uk');
  });

  test('the list, not psd=: a department with psd=n aligns with its parent', async () => {
    const walk = await dmarc('jo@host.dept.psdn.example', { dkim: [dkimPass('psdn.example')] });
    assert.equal(walk.result, 'fail', 'by the walk, dept.psdn.example is an organization');
    const list = await dmarc(
      'jo@host.dept.psdn.example',
      { dkim: [dkimPass('psdn.example')] },
      { discovery: 'psl' },
    );
    assert.equal(list.result, 'pass', 'by the list, psdn.example is');
    assert.equal(list.policyDomain, 'psdn.example');
  });
});
