// The DMARC record grammar (RFC 9989 sections 4.7, 4.8 and 4.10.1; RFC 7489 section 6.3 in psl
// mode): which TXT records are DMARC records, every tag, what a bad value falls back to, and
// when a record is unusable.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type DmarcRecord,
  isDmarcRecord,
  MAX_RECORD_LENGTH,
  parseDmarcRecord,
} from '../../../src/checks/dmarc/index.js';

function record(text: string, discovery: 'tree-walk' | 'psl' = 'tree-walk'): DmarcRecord {
  const parsed = parseDmarcRecord(text, discovery);
  assert.ok(parsed.ok, `expected a usable record: ${parsed.ok ? '' : parsed.reason}`);
  return parsed.record;
}

function unusable(text: string, discovery: 'tree-walk' | 'psl' = 'tree-walk'): string {
  const parsed = parseDmarcRecord(text, discovery);
  assert.equal(parsed.ok, false, `expected an unusable record: ${text}`);
  return parsed.ok ? '' : parsed.reason;
}

describe('which TXT records are DMARC records', () => {
  test('v=DMARC1 first, the tag name in any case, the value exactly', () => {
    assert.equal(isDmarcRecord('v=DMARC1; p=reject'), true);
    assert.equal(isDmarcRecord('V=DMARC1;p=reject'), true);
    assert.equal(isDmarcRecord('v = DMARC1 ; p=reject'), true);
    assert.equal(isDmarcRecord('v=DMARC1'), true);
    assert.equal(isDmarcRecord('v=dmarc1; p=reject'), false);
    assert.equal(isDmarcRecord('v=DMARC10; p=reject'), false);
    assert.equal(isDmarcRecord('p=reject; v=DMARC1'), false);
    assert.equal(isDmarcRecord(' v=DMARC1; p=reject'), false);
    assert.equal(isDmarcRecord('v=spf1 -all'), false);
    assert.match(unusable('v=dmarc1; p=reject'), /does not start with v=DMARC1/);
  });
});

describe('tags (RFC 9989)', () => {
  test('a minimal record, and the defaults', () => {
    assert.deepEqual(record('v=DMARC1; p=reject'), {
      p: 'reject',
      adkim: 'r',
      aspf: 'r',
      ignored: [],
    });
    // Without p= an otherwise valid record is p=none (section 4.7).
    assert.deepEqual(record('v=DMARC1'), { p: 'none', adkim: 'r', aspf: 'r', ignored: [] });
  });

  test('every tag, with spacing and case as the grammar allows', () => {
    assert.deepEqual(
      record(
        'v=DMARC1;p = Quarantine ; sp=REJECT; np=none; adkim=s; aspf=S; t=y; psd=n; ' +
          'rua=mailto:a@example.com, mailto:b@example.net!10m ; ruf=mailto:f@example.com; fo=1;',
      ),
      {
        p: 'quarantine',
        sp: 'reject',
        np: 'none',
        adkim: 's',
        aspf: 's',
        t: true,
        psd: 'n',
        rua: ['mailto:a@example.com', 'mailto:b@example.net'],
        ruf: ['mailto:f@example.com'],
        ignored: [],
      },
    );
    assert.equal(record('v=DMARC1; p=none; t=n').t, false);
    assert.equal(record('v=DMARC1; p=none; psd=u').psd, 'u');
    assert.equal(record('v=DMARC1; p=none; psd=y').psd, 'y');
  });

  test("unknown tags are ignored, RFC 7489's pct=, rf= and ri= among them", () => {
    const r = record('v=DMARC1; p=reject; pct=10; rf=afrf; ri=3600; colour=blue');
    assert.equal(r.pct, undefined);
    assert.deepEqual(r.ignored, []);
  });

  test('a bad value is discarded for its default, and noted', () => {
    const r = record('v=DMARC1; p=reject; adkim=x; aspf=relaxed; t=maybe; psd=q');
    assert.equal(r.adkim, 'r');
    assert.equal(r.aspf, 'r');
    assert.equal(r.t, undefined);
    assert.equal(r.psd, undefined);
    assert.equal(r.ignored.length, 4);
    assert.match(r.ignored[0]!, /adkim= 'x' is not r or s/);
  });

  test('a tag given twice: the first counts', () => {
    const r = record('v=DMARC1; p=reject; p=none');
    assert.equal(r.p, 'reject');
    assert.match(r.ignored[0]!, /p= given twice/);
  });

  test('pieces that are not tag=value are noted and skipped', () => {
    const r = record('v=DMARC1; p=reject; junk; p2; =x');
    assert.equal(r.p, 'reject');
    assert.equal(r.ignored.length, 3);
    // An empty value is the tag with an invalid value.
    assert.match(unusable('v=DMARC1; p=reject; sp='), /invalid sp=/);
    assert.equal(record('v=DMARC1; p=reject; adkim=').adkim, 'r');
  });

  test('an invalid p= with a valid rua= acts as p=none (section 4.10.1)', () => {
    const r = record('v=DMARC1; p=rejectt; sp=reject; np=reject; rua=mailto:d@example.com');
    assert.equal(r.p, 'none');
    assert.equal(r.sp, undefined, 'the record is taken as p=none altogether');
    assert.equal(r.np, undefined);
    assert.deepEqual(r.rua, ['mailto:d@example.com']);
  });

  test('an invalid p=, sp= or np= without a valid rua= makes the record unusable', () => {
    assert.match(unusable('v=DMARC1; p=rejectt'), /invalid p= and no valid rua= URI.*4\.10\.1/);
    assert.match(unusable('v=DMARC1; p=reject; sp=bogus'), /invalid sp=/);
    assert.match(unusable('v=DMARC1; p=reject; np=bogus'), /invalid np=/);
    assert.match(unusable('v=DMARC1; p=bogus; rua=not a uri'), /no valid rua=/);
    assert.match(unusable('v=DMARC1; p=bogus; rua=mailto:a!b@example.com'), /no valid rua=/);
  });

  test('report URIs: invalid ones dropped, duplicates once, at most eight kept', () => {
    const r = record('v=DMARC1; p=none; rua=mailto:a@example.com,bogus,mailto:a@example.com');
    assert.deepEqual(r.rua, ['mailto:a@example.com']);
    assert.match(r.ignored[0]!, /1 invalid URI/);
    const many = Array.from({ length: 50 }, (_, i) => `mailto:r${i}@example.com`).join(',');
    assert.equal(record(`v=DMARC1; p=none; rua=${many}`).rua?.length, 8);
  });
});

describe('tags (RFC 7489, psl mode)', () => {
  test('pct= counts; np=, psd= and t= are not RFC 7489 tags', () => {
    assert.deepEqual(
      record('v=DMARC1; p=reject; sp=none; np=quarantine; psd=y; t=y; pct=25', 'psl'),
      { p: 'reject', sp: 'none', adkim: 'r', aspf: 'r', pct: 25, ignored: [] },
    );
    assert.equal(record('v=DMARC1; p=reject; np=bogus', 'psl').p, 'reject');
  });

  test('a pct= out of range falls back to 100', () => {
    for (const pct of ['101', '-1', '50%', '1000', 'x']) {
      const r = record(`v=DMARC1; p=reject; pct=${pct}`, 'psl');
      assert.equal(r.pct, undefined, pct);
      assert.match(r.ignored[0]!, /0 to 100/);
    }
    assert.equal(record('v=DMARC1; p=reject; pct=0', 'psl').pct, 0);
  });

  test('p= must be present and follow v= (section 6.3)', () => {
    const late = 'v=DMARC1; rua=mailto:d@example.com; p=reject';
    assert.equal(record(late).p, 'reject', 'RFC 9989 allows any order');
    assert.equal(record(late, 'psl').p, 'none', 'RFC 7489: not a valid p=, and rua= is valid');
    assert.match(unusable('v=DMARC1; sp=reject; p=reject', 'psl'), /RFC 7489 section 6\.6\.3/);
    assert.match(unusable('v=DMARC1', 'psl'), /has no p=/);
    assert.equal(record('v=DMARC1; rua=mailto:d@example.com', 'psl').p, 'none');
  });
});

describe('hostile records', () => {
  test('control and 8-bit characters never reach a note', () => {
    const r = record(
      'v=DMARC1; p=reject; rua=mailto:a@example.com\r\nX-Evil: 1; s\u0000p=none; \u00ffx=1',
    );
    assert.equal(r.p, 'reject');
    assert.equal(r.rua, undefined);
    assert.ok(r.ignored.length >= 2);
    for (const note of r.ignored) assert.match(note, /^[\x20-\x7e]*$/);
    const reason = unusable('v=DMARC1; p=\u0000\r\n');
    assert.match(reason, /^[\x20-\x7e]*$/);
  });

  test('an over-long record is unusable, and not parsed', () => {
    const long = `v=DMARC1; p=reject; rua=mailto:${'a'.repeat(MAX_RECORD_LENGTH)}@example.com`;
    assert.match(unusable(long), /longer than 4096 characters/);
  });

  test('many tags and notes stay bounded', () => {
    const r = record(`v=DMARC1; p=reject; ${'junk; '.repeat(500)}`);
    assert.ok(r.ignored.length <= 8);
  });

  test('parses are frozen and shared', () => {
    const a = record('v=DMARC1; p=reject; rua=mailto:a@example.com');
    assert.ok(Object.isFrozen(a));
    assert.ok(Object.isFrozen(a.rua));
    assert.equal(record('v=DMARC1; p=reject; rua=mailto:a@example.com'), a);
  });
});
