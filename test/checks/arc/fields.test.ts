// Reading ARC fields and grouping them into a chain: every rule of RFC 8617 sections 4.1, 4.2
// and 5.2 steps 1 to 3 that needs no key, and hostile input of every kind giving a reason, never
// an exception.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  MAX_ARC_FIELD_BYTES,
  readAuthResults,
  readChain,
  readMessageSignature,
  readSeal,
  verifyArc,
} from '../../../src/checks/arc/index.js';
import { fieldFromText, type HeaderField } from '../../../src/checks/message/index.js';

const B = 'dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==';
const BH = 'KWSe46TZKCcDbH4klJPo+tjk5LWJnVRlP5pvjXFZYLQ=';

function seal(i: number | string, extra = '', cv = i === 1 ? 'none' : 'pass'): HeaderField {
  return fieldFromText(
    `ARC-Seal: i=${i}; a=rsa-sha256; cv=${cv}; d=example.org; s=s1; t=12345; ${extra}b=${B}`,
  );
}
function signature(i: number | string, extra = ''): HeaderField {
  return fieldFromText(
    `ARC-Message-Signature: i=${i}; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1; ` +
      `h=from:to:subject; ${extra}bh=${BH}; b=${B}`,
  );
}
function results(i: number | string, rest = 'mx.example.org; spf=pass'): HeaderField {
  return fieldFromText(`ARC-Authentication-Results: i=${i}; ${rest}`);
}
function set(i: number): HeaderField[] {
  return [seal(i), signature(i), results(i)];
}
/** Sets n..1 as sealers stack them: newest on top. */
function sets(n: number): HeaderField[] {
  const out: HeaderField[] = [];
  for (let i = n; i >= 1; i--) out.push(...set(i));
  return out;
}
const FROM = fieldFromText('From: jo@example.org');

describe('ARC-Seal', () => {
  test('a well-formed seal is read', () => {
    const r = readSeal(seal(2));
    assert.ok('ok' in r && r.ok);
    assert.equal(r.instance, 2);
    assert.equal(r.cv, 'pass');
    assert.deepEqual(
      { ...r.tags, signature: r.tags.signature.toString() },
      {
        algorithm: 'rsa-sha256',
        signature: 'this is not a real signature',
        cv: 'pass',
        domain: 'example.org',
        selector: 's1',
        timestamp: 12345,
      },
    );
  });

  test('an h= tag makes the seal fail, keeping its instance and cv', () => {
    const r = readSeal(seal(1, 'h=from:to; '));
    assert.ok('ok' in r && !r.ok);
    assert.equal(r.problem, 'an ARC-Seal may not have h=');
    assert.equal(r.instance, 1);
    assert.equal(r.cv, 'none');
  });

  for (const [what, extra, problem] of [
    ['cv= of another word', 'cv=maybe', 'cv= is not none, pass or fail'],
    ['cv= in capitals', 'cv=PASS', 'cv= is not none, pass or fail'],
    ['t= not a number', 't=soon', 't= is not a number'],
    ['t= too long', `t=${'9'.repeat(13)}`, 't= is not a number'],
    ['t= empty', 't=', 't= is not a number'],
    ['t= with a space inside', 't=12 345', 't= is not a number'],
    ['d= not a domain', 'd=exa mple.org', 'd= is not a domain name'],
    ['d= with an empty label', 'd=example..org', 'd= is not a domain name'],
    ['s= empty', 's=', 's= is not a selector'],
    ['a= unknown', 'a=rsa-md5', 'a= is not a known algorithm'],
  ] as const) {
    test(`${what} is a reason`, () => {
      const [tag] = extra.split('=');
      const text = `ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=example.org; s=s1; t=1; b=${B}`.replace(
        new RegExp(`(?<=; )${tag}=[^;]*`),
        extra,
      );
      const r = readSeal(fieldFromText(text));
      assert.ok('ok' in r && !r.ok, text);
      assert.equal(r.problem, problem);
    });
  }

  for (const [what, text, reason] of [
    ['no i=', `ARC-Seal: a=rsa-sha256; cv=none; d=e.org; s=s; b=${B}`, 'ARC-Seal has no i= tag'],
    ['i=0', `ARC-Seal: i=0; cv=none; b=${B}`, 'ARC-Seal has i= out of range'],
    ['i=51', `ARC-Seal: i=51; cv=pass; b=${B}`, 'ARC-Seal has i= out of range'],
    ['i=100', `ARC-Seal: i=100; cv=pass; b=${B}`, 'ARC-Seal has i= out of range'],
    ['i=-1', `ARC-Seal: i=-1; cv=pass; b=${B}`, 'ARC-Seal has i= out of range'],
    ['i=1.5', `ARC-Seal: i=1.5; cv=pass; b=${B}`, 'ARC-Seal has i= out of range'],
    ['i= empty', `ARC-Seal: i=; cv=pass; b=${B}`, 'ARC-Seal has i= out of range'],
    ['a doubled tag', `ARC-Seal: i=1; i=1; cv=none`, "ARC-Seal unreadable: tag 'i' appears twice"],
    ['an empty tag', `ARC-Seal: i=1;; cv=none`, 'ARC-Seal unreadable: empty tag at part 2'],
    ['a bad tag name', `ARC-Seal: i=1; 9x=1`, "ARC-Seal unreadable: bad tag name '9x'"],
  ] as const) {
    test(`${what} leaves the seal out of any set, with a reason`, () => {
      const r = readSeal(fieldFromText(text));
      assert.deepEqual(r, { kind: 'seal', reason });
    });
  }
});

describe('ARC-Message-Signature', () => {
  test('a well-formed AMS is read; c= as one word means a simple body', () => {
    const r = readMessageSignature(signature(1));
    assert.ok('ok' in r && r.ok);
    assert.deepEqual(r.tags.signedHeaders, ['from', 'to', 'subject']);
    assert.deepEqual(r.tags.canonicalizations, [{ header: 'relaxed', body: 'relaxed' }]);
    const one = readMessageSignature(
      fieldFromText(
        `ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed; d=e.org; s=s; h=from; bh=${BH}; b=${B}`,
      ),
    );
    assert.ok('ok' in one && one.ok);
    assert.deepEqual(one.tags.canonicalizations, [{ header: 'relaxed', body: 'simple' }]);
  });

  for (const [what, extra, problem] of [
    ['h= naming ARC-Seal', 'h=from:ARC-Seal', 'h= may not name ARC-Seal'],
    ['c= of three parts', 'c=relaxed/relaxed/simple', 'c= is not a canonicalization'],
    ['l= not a number', 'l=ten', 'l= is not a number'],
    ['x= before t=', 't=200; x=100', 'x= is before t='],
    ['q= without dns/txt', 'q=https', 'q= offers no dns/txt'],
    ['bh= not base64', 'bh=@@@@', 'bh= is not base64'],
  ] as const) {
    test(`${what} is a reason`, () => {
      let text = `ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=e.org; s=s; h=from; bh=${BH}; b=${B}`;
      for (const part of extra.split('; ')) {
        const tag = part.split('=')[0]!;
        const present = new RegExp(`(?<=; )${tag}=[^;]*`);
        text = present.test(text) ? text.replace(present, part) : `${text}; ${part}`;
      }
      const r = readMessageSignature(fieldFromText(text));
      assert.ok('ok' in r && !r.ok, text);
      assert.equal(r.problem, problem);
    });
  }

  test('an h= of more than 100 names is a reason', () => {
    const many = fieldFromText(
      `ARC-Message-Signature: i=1; a=rsa-sha256; d=e.org; s=s; h=${Array(101).fill('x').join(':')}; bh=${BH}; b=${B}`,
    );
    const r = readMessageSignature(many);
    assert.ok('ok' in r && !r.ok);
    assert.equal(r.problem, 'h= lists too many fields');
  });
});

describe('ARC-Authentication-Results', () => {
  test('the instance, the authserv-id and the results are read', () => {
    const r = readAuthResults(
      fieldFromText(
        'ARC-Authentication-Results: i=3; mx.example.org 1;\r\n spf=pass;\r\n\tdkim=none',
      ),
    );
    assert.ok('ok' in r && r.ok);
    assert.equal(r.instance, 3);
    assert.deepEqual(r.tags, { authservId: 'mx.example.org', results: 'spf=pass; dkim=none' });
  });

  test('control characters in the results never come out', () => {
    const field = fieldFromText('ARC-Authentication-Results: i=1; mx.example.org; spf=pass');
    const raw = Buffer.concat([field.raw, Buffer.from('\r\nX-Injected: 1\u0000\r')]);
    const r = readAuthResults({ ...field, raw });
    assert.ok('ok' in r && r.ok);
    assert.doesNotMatch(r.tags.results, /[\r\n\u0000]/);
  });

  for (const [what, value] of [
    ['no i=', 'mx.example.org; spf=pass'],
    ['i= not first', 'mx.example.org; i=1; spf=pass'],
    ['i= without ;', 'i=1 mx.example.org; spf=pass'],
    ['i=0', 'i=0; mx.example.org'],
    ['i=51', 'i=51; mx.example.org'],
  ] as const) {
    test(`${what} leaves the AAR out of any set`, () => {
      const r = readAuthResults(fieldFromText(`ARC-Authentication-Results: ${value}`));
      assert.ok('reason' in r, value);
    });
  }
});

describe('chain structure', () => {
  const reasonOf = (headers: HeaderField[]) => {
    const chain = readChain(headers, 50);
    return chain.kind === 'broken' ? chain.reason : chain.kind;
  };

  test('no ARC field is none; whole sets are whole', () => {
    assert.equal(reasonOf([FROM]), 'none');
    assert.equal(reasonOf([...sets(3), FROM]), 'whole');
  });

  test('a gap, a missing or doubled member, a bad cv are named', () => {
    assert.equal(reasonOf([...set(3), ...set(1)]), 'gap at i=2');
    assert.equal(reasonOf([seal(1), results(1)]), 'i=1 has no ARC-Message-Signature');
    assert.equal(reasonOf([seal(1), signature(1)]), 'i=1 has no ARC-Authentication-Results');
    assert.equal(reasonOf([...set(1), seal(1)]), 'i=1 has 2 ARC-Seal fields');
    assert.equal(
      reasonOf([seal(2, '', 'none'), signature(2), results(2), ...set(1)]),
      'i=2 seal says cv=none, not pass',
    );
    assert.equal(
      reasonOf([seal(1, '', 'pass'), signature(1), results(1)]),
      'i=1 seal says cv=pass, not none',
    );
    assert.equal(reasonOf([results(1, ';'), seal(1), signature(1)]), 'i=1 AAR: no authserv-id');
  });

  test('a newest seal saying cv=fail ends the chain before anything else is looked at', () => {
    const chain = readChain([seal(3, '', 'fail'), signature(3), ...set(1)], 50);
    assert.equal(chain.kind, 'broken');
    assert.ok(chain.kind === 'broken' && chain.newestSaysFail);
    assert.equal(chain.reason, 'i=3 seal says cv=fail');
    assert.equal(chain.instances, 3);
  });

  test('more sets than allowed fail, as do more fields than 50 sets can hold', () => {
    assert.equal(reasonOf(sets(50)), 'whole');
    assert.equal(readChain(sets(12), 11).kind, 'broken');
    assert.equal(reasonOf([...sets(50), seal(50)]), '151 ARC fields, more than 150');
    const flood = Array.from({ length: 10_000 }, () => seal(1));
    assert.equal(reasonOf(flood), '10000 ARC fields, more than 150');
  });

  test('oversized fields are refused unread', () => {
    const huge = fieldFromText(`ARC-Seal: i=1; cv=none; x=${'a'.repeat(MAX_ARC_FIELD_BYTES)}`);
    assert.equal(
      reasonOf([huge, signature(1), results(1)]),
      `ARC-Seal longer than ${MAX_ARC_FIELD_BYTES} bytes`,
    );
    const big = `z=${'a'.repeat(MAX_ARC_FIELD_BYTES - 200)}; `;
    const bulky = Array.from({ length: 20 }, (_, k) => signature(k + 1, big));
    assert.equal(reasonOf(bulky), 'ARC fields longer than 262144 bytes');
  });

  test('AARs are reported for each instance that has exactly one', () => {
    const chain = readChain([...set(2), results(1), ...set(1)], 50);
    assert.equal(chain.kind, 'broken');
    assert.deepEqual(chain.kind === 'broken' && chain.authResults, [
      { instance: 2, authservId: 'mx.example.org', results: 'spf=pass' },
    ]);
  });
});

describe('hostile input', () => {
  // A fixed generator: the same fields on every run.
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const alphabet = 'i=0123456789;:= \t\r\nabcvdshbtlxq-/+*\u0000\u00ff\u00e9"()\\';
  const noise = (length: number) =>
    Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');

  test('random ARC fields give a result and a printable reason, never an exception', async () => {
    const names = ['ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results'];
    for (let round = 0; round < 300; round++) {
      const headers: HeaderField[] = [];
      for (let k = 0; k < 1 + Math.floor(random() * 6); k++) {
        const name = names[Math.floor(random() * names.length)]!;
        const value =
          random() < 0.5
            ? noise(Math.floor(random() * 200))
            : `i=${Math.floor(random() * 3)}; ${noise(60)}`;
        headers.push({
          name,
          key: name.toLowerCase(),
          raw: Buffer.from(`${name}:${value}`, 'latin1'),
        });
      }
      const message = Buffer.concat([
        ...headers.map((h) => Buffer.concat([h.raw, Buffer.from('\r\n')])),
        Buffer.from('\r\nbody\r\n'),
      ]);
      // No resolver: nothing may reach DNS unless the structure is whole.
      const r = await verifyArc(message);
      assert.ok(r.cv === 'fail' || r.cv === 'none');
      assert.match(r.reason, /^[\x20-\x7e]*$/);
      for (const entry of r.authResults) assert.doesNotMatch(entry.results, /[\r\n\u0000]/);
    }
  });
});
