import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  authenticationResults,
  authservIdOf,
  foldHeader,
  iprevClause,
  iprevFromPtr,
  isForgedAuthResults,
  propertyValue,
  resultClause,
  type SpfClauseFacts,
  spfClause,
} from '../../src/policy/auth-results.js';

// ---------------------------------------------------------------------------------------------
// A strict reader of RFC 8601's grammar (section 2.2), so that what we write is checked against
// the grammar and not against our own writer.

interface ParsedClause {
  method: string;
  version?: string;
  result: string;
  reason?: string;
  props: Record<string, string>;
}

interface Parsed {
  id: string;
  version?: string;
  clauses: ParsedClause[];
}

const TSPECIALS = '()<>@,;:\\"/[]?=';
const isTokenChar = (c: string) => c > ' ' && c < '\x7f' && !TSPECIALS.includes(c);
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;
const KEYWORD = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const DOMAIN_NAME =
  /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)+$/;
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

function parseAuthResults(value: string): Parsed {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at ${i}: ${JSON.stringify(value.slice(i, i + 30))}`);
  };
  const cfws = () => {
    for (;;) {
      if (value[i] === ' ' || value[i] === '\t') i++;
      else if (value[i] === '\r' && value[i + 1] === '\n' && /[ \t]/.test(value[i + 2] ?? ''))
        i += 2;
      else if (value[i] === '\n' && /[ \t]/.test(value[i + 1] ?? '')) i++;
      else if (value[i] === '(') {
        let depth = 0;
        do {
          const c = value[i];
          if (c === undefined) fail('unterminated comment');
          if (c === '\\') {
            if (!/[\x20-\x7e\t]/.test(value[i + 1] ?? '')) fail('bad quoted-pair');
            i += 2;
            continue;
          }
          // A comment may be folded (RFC 5322 3.2.2: FWS inside it).
          if (c === '\r' && value[i + 1] === '\n' && /[ \t]/.test(value[i + 2] ?? '')) {
            i += 2;
            continue;
          }
          if (c === '\n' && /[ \t]/.test(value[i + 1] ?? '')) {
            i++;
            continue;
          }
          if (!/[\x20-\x7e\t]/.test(c!)) fail('bad comment character');
          if (c === '(') depth++;
          else if (c === ')') depth--;
          i++;
        } while (depth > 0);
      } else return;
    }
  };
  const quoted = (): string => {
    if (value[i] !== '"') fail('expected a quoted-string');
    i++;
    let out = '';
    for (;;) {
      const c = value[i];
      if (c === undefined) fail('unterminated quoted-string');
      if (c === '"') break;
      if (c === '\\') {
        const n = value[i + 1];
        if (n === undefined || !/[\x20-\x7e\t]/.test(n)) fail('bad quoted-pair');
        out += n;
        i += 2;
        continue;
      }
      if (!/[\x20-\x7e\t]/.test(c!) || c === '\\') fail('bad qtext');
      out += c;
      i++;
    }
    i++;
    return out;
  };
  const token = (): string => {
    const start = i;
    while (i < value.length && isTokenChar(value[i]!)) i++;
    if (i === start) fail('expected a token');
    return value.slice(start, i);
  };
  const mimeValue = () => (value[i] === '"' ? quoted() : token());
  const keyword = (): string => {
    const start = i;
    while (i < value.length && /[A-Za-z0-9-]/.test(value[i]!)) i++;
    const word = value.slice(start, i);
    if (!KEYWORD.test(word)) fail('expected a keyword');
    return word;
  };
  const pvalue = (): string => {
    if (value[i] === '"') return quoted();
    const start = i;
    while (i < value.length && (ATEXT.test(value[i]!) || value[i] === '.' || value[i] === '@')) i++;
    const text = value.slice(start, i);
    const at = text.lastIndexOf('@');
    if (at >= 0) {
      const local = text.slice(0, at);
      if ((local === '' || DOT_ATOM.test(local)) && DOMAIN_NAME.test(text.slice(at + 1)))
        return text;
      fail('bad address pvalue');
    }
    if (text === '' || ![...text].every(isTokenChar)) fail('bad token pvalue');
    return text;
  };
  const expect = (c: string) => {
    if (value[i] !== c) fail(`expected ${c}`);
    i++;
  };

  cfws();
  const id = mimeValue();
  cfws();
  let version: string | undefined;
  if (/[0-9]/.test(value[i] ?? '')) {
    const start = i;
    while (/[0-9]/.test(value[i] ?? '')) i++;
    version = value.slice(start, i);
    cfws();
  }
  const clauses: ParsedClause[] = [];
  expect(';');
  cfws();
  if (value.slice(i, i + 4).toLowerCase() === 'none') {
    const save = i;
    i += 4;
    cfws();
    if (i === value.length) return { id, ...(version ? { version } : {}), clauses };
    i = save;
  }
  for (;;) {
    const method = keyword();
    cfws();
    const clause: ParsedClause = { method, result: '', props: {} };
    if (value[i] === '/') {
      i++;
      cfws();
      const start = i;
      while (/[0-9]/.test(value[i] ?? '')) i++;
      if (i === start) fail('expected a method version');
      clause.version = value.slice(start, i);
      cfws();
    }
    expect('=');
    cfws();
    clause.result = keyword();
    cfws();
    if (value.startsWith('reason', i) && /[\s=(]/.test(value[i + 6] ?? '')) {
      i += 6;
      cfws();
      expect('=');
      cfws();
      clause.reason = mimeValue();
      cfws();
    }
    while (i < value.length && value[i] !== ';') {
      const ptype = keyword();
      cfws();
      expect('.');
      cfws();
      const property = keyword();
      cfws();
      expect('=');
      cfws();
      clause.props[`${ptype}.${property}`] = pvalue();
      cfws();
    }
    clauses.push(clause);
    if (i === value.length) break;
    expect(';');
    cfws();
  }
  return { id, ...(version ? { version } : {}), clauses };
}

test('the grammar reader itself accepts RFC 8601 examples and refuses broken values', () => {
  assert.deepEqual(parseAuthResults('example.org 1; none'), {
    id: 'example.org',
    version: '1',
    clauses: [],
  });
  const heavy = parseAuthResults(
    "foo.example.net (foobar) 1 (baz);\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\n      policy (A dot can go here) . (like that) expired\n      (this surprised me) = (as I wasn't expecting it) 1362471462",
  );
  assert.equal(heavy.id, 'foo.example.net');
  assert.deepEqual(heavy.clauses, [
    { method: 'dkim', version: '1', result: 'fail', props: { 'policy.expired': '1362471462' } },
  ]);
  for (const bad of [
    'example.com; spf=pass smtp.mailfrom=a b',
    'example.com; spf=pass smtp.mailfrom="x',
    'example.com; spf=pass (x',
    'example.com spf=pass',
    'example.com; spf=pass\r\nX-Injected: 1',
    'example.com; iprev=pass policy.iprev=2001:db8::1',
  ]) {
    assert.throws(() => parseAuthResults(bad), bad);
  }
});

// ---------------------------------------------------------------------------------------------

const mailfrom: SpfClauseFacts = {
  result: 'pass',
  identity: 'mailfrom',
  ip: '192.0.2.3',
  sender: 'jo@example.com',
  domain: 'example.com',
  helo: 'mail.example.com',
};
const helo: SpfClauseFacts = {
  result: 'none',
  identity: 'helo',
  ip: '192.0.2.3',
  sender: 'postmaster@mail.example.com',
  domain: 'mail.example.com',
  helo: 'mail.example.com',
};

test('a whole header: two spf clauses and iprev', () => {
  const value = authenticationResults('mx.example.org', [
    spfClause(mailfrom),
    spfClause(helo),
    iprevClause({ result: 'pass', ip: '192.0.2.3', name: 'mail.example.com' }),
  ]);
  assert.equal(
    value,
    'mx.example.org; spf=pass smtp.mailfrom=jo@example.com; spf=none smtp.helo=mail.example.com; ' +
      'iprev=pass policy.iprev=192.0.2.3 (mail.example.com)',
  );
  assert.deepEqual(parseAuthResults(value), {
    id: 'mx.example.org',
    clauses: [
      { method: 'spf', result: 'pass', props: { 'smtp.mailfrom': 'jo@example.com' } },
      { method: 'spf', result: 'none', props: { 'smtp.helo': 'mail.example.com' } },
      { method: 'iprev', result: 'pass', props: { 'policy.iprev': '192.0.2.3' } },
    ],
  });
  assert.equal(authenticationResults('mx.example.org', []), 'mx.example.org; none');
  assert.deepEqual(parseAuthResults('mx.example.org; none').clauses, []);
});

test('spf clauses carry the reason of an error', () => {
  const value = spfClause({ ...mailfrom, result: 'permerror', problem: 'too many DNS lookups' });
  assert.equal(value, 'spf=permerror reason="too many DNS lookups" smtp.mailfrom=jo@example.com');
  assert.deepEqual(parseAuthResults(`x; ${value}`).clauses[0], {
    method: 'spf',
    result: 'permerror',
    reason: 'too many DNS lookups',
    props: { 'smtp.mailfrom': 'jo@example.com' },
  });
});

const HOSTILE = [
  'a"b\\c\r\nX-Injected: yes\u0000\u00e9@evil.example',
  'h\r\nX-Bad: 1 (x) "q"; dkim=pass header.d=bank.example',
  'x; spf=pass smtp.mailfrom=paypal.com',
  '(((((',
  ')))))',
  '"',
  '\\',
  '',
  ' ',
  '@',
  'a@',
  '@b',
  'a@b@c.example',
  '\u202egro.elpmaxe',
  'x'.repeat(5000),
  `${'a'.repeat(100)}@${'b.'.repeat(60)}example`,
  '\n\t',
  'mailfrom=evil.example;',
];

test('hostile HELO and sender values cannot break the header or add a clause', () => {
  for (const text of HOSTILE) {
    const clauses = [
      spfClause({ ...mailfrom, result: 'fail', sender: text, helo: text }),
      spfClause({ ...helo, result: 'softfail', helo: text, sender: `postmaster@${text}` }),
      spfClause({ ...mailfrom, result: 'permerror', problem: text, sender: text }),
      iprevClause({ result: 'fail', ip: '192.0.2.3', name: text }),
    ];
    const value = authenticationResults('mx.example.org', clauses);
    assert.doesNotMatch(value, /[\r\n\0]/, JSON.stringify(text));
    assert.doesNotMatch(value, /[^\x20-\x7e]/, JSON.stringify(text));
    const parsed = parseAuthResults(value);
    assert.equal(parsed.id, 'mx.example.org');
    assert.deepEqual(
      parsed.clauses.map((c) => `${c.method}=${c.result}`),
      ['spf=fail', 'spf=softfail', 'spf=permerror', 'iprev=fail'],
      JSON.stringify(text),
    );
    assert.deepEqual(Object.keys(parsed.clauses[0]!.props), ['smtp.mailfrom']);
    assert.deepEqual(Object.keys(parsed.clauses[1]!.props), ['smtp.helo']);
    assert.equal(parsed.clauses[3]!.props['policy.iprev'], '192.0.2.3');
    // Bounded, so that the field stays well inside 998 characters unfolded.
    assert.ok(value.length < 900, `${value.length}`);
    // And it still reads as ours, and only ours.
    assert.equal(authservIdOf(value), 'mx.example.org');
    const folded = foldHeader('Authentication-Results', value);
    assert.doesNotMatch(folded, /[\r\0]|\n(?![ \t])/);
    assert.deepEqual(parseAuthResults(folded), parsed);
  }
  // What the client sent survives as text, made safe.
  const evil = spfClause({ ...mailfrom, sender: 'a"b\\c\r\nX: y@evil.example' });
  assert.equal(evil, 'spf=pass smtp.mailfrom="a\\"b\\\\c??X: y@evil.example"');
  assert.equal(
    parseAuthResults(`x; ${evil}`).clauses[0]!.props['smtp.mailfrom'],
    'a"b\\c??X: y@evil.example',
  );
});

test('a hostile authserv-id is quoted and bounded', () => {
  const value = authenticationResults('mx; spf=pass\r\n', [spfClause(mailfrom)]);
  assert.doesNotMatch(value, /[\r\n]/);
  const parsed = parseAuthResults(value);
  assert.equal(parsed.id, 'mx; spf=pass??');
  assert.equal(parsed.clauses.length, 1);
});

test('iprev: the four results, the address as policy.iprev, the name as a comment', () => {
  assert.equal(
    iprevClause({ result: 'pass', ip: '192.0.2.1', name: 'mx.example.com' }),
    'iprev=pass policy.iprev=192.0.2.1 (mx.example.com)',
  );
  assert.equal(
    iprevClause({ result: 'permerror', ip: '192.0.2.1' }),
    'iprev=permerror policy.iprev=192.0.2.1',
  );
  assert.equal(
    iprevClause({ result: 'temperror', ip: '192.0.2.1' }),
    'iprev=temperror policy.iprev=192.0.2.1',
  );
  // A colon is a tspecial: IPv6 addresses are quoted.
  assert.equal(
    iprevClause({ result: 'fail', ip: '2001:db8::1', name: 'evil (x) \\ name' }),
    'iprev=fail policy.iprev="2001:db8::1" (evil \\(x\\) \\\\ name)',
  );
  const ptr = (
    result: 'verified' | 'unverified' | 'none' | 'tempfail',
    name?: string,
    names: string[] = [],
  ) => iprevFromPtr({ result, ip: '192.0.2.1', ...(name ? { name } : {}), names });
  assert.deepEqual(ptr('verified', 'mx.example.com', ['other.example', 'mx.example.com']), {
    result: 'pass',
    ip: '192.0.2.1',
    name: 'mx.example.com',
  });
  assert.deepEqual(ptr('unverified', undefined, ['liar.example']), {
    result: 'fail',
    ip: '192.0.2.1',
    name: 'liar.example',
  });
  assert.deepEqual(ptr('none'), { result: 'permerror', ip: '192.0.2.1' });
  assert.deepEqual(ptr('tempfail', undefined, ['x.example']), {
    result: 'temperror',
    ip: '192.0.2.1',
  });
});

test('the generic clause: version, comment, reason, properties with comments', () => {
  const dkim = resultClause({
    method: 'dkim',
    version: 1,
    result: 'pass',
    comment: 'good signature',
    reason: 'signature ok',
    properties: [
      { ptype: 'header', property: 'd', value: 'example.com' },
      { ptype: 'header', property: 'i', value: '@mail.example.com' },
      { ptype: 'header', property: 's', value: 'sel-2024' },
      { ptype: 'header', property: 'b', value: 'oINEO8hg', comment: 'first 8' },
    ],
  });
  assert.equal(
    dkim,
    'dkim/1=pass (good signature) reason="signature ok" header.d=example.com header.i=@mail.example.com ' +
      'header.s=sel-2024 header.b=oINEO8hg (first 8)',
  );
  assert.deepEqual(parseAuthResults(`mx; ${dkim}`).clauses[0], {
    method: 'dkim',
    version: '1',
    result: 'pass',
    reason: 'signature ok',
    props: {
      'header.d': 'example.com',
      'header.i': '@mail.example.com',
      'header.s': 'sel-2024',
      'header.b': 'oINEO8hg',
    },
  });
  assert.equal(
    resultClause({
      method: 'dmarc',
      result: 'fail',
      properties: [{ ptype: 'header', property: 'from', value: 'example.com' }],
    }),
    'dmarc=fail header.from=example.com',
  );
  assert.equal(resultClause({ method: 'arc', result: 'none' }), 'arc=none');
  for (const bad of [
    { method: 'dkim=pass; x', result: 'pass' },
    { method: 'dkim', result: 'pass (x)' },
    { method: '-dkim', result: 'pass' },
    { method: 'dkim', result: '' },
    {
      method: 'dkim',
      result: 'pass',
      properties: [{ ptype: 'he ader', property: 'd', value: 'x' }],
    },
    {
      method: 'dkim',
      result: 'pass',
      properties: [{ ptype: 'header', property: 'd.x', value: 'x' }],
    },
    { method: 'dkim', version: 1.5, result: 'pass' },
    { method: 'dkim', version: -1, result: 'pass' },
  ]) {
    assert.throws(() => resultClause(bad), TypeError, JSON.stringify(bad));
  }
});

test('property values: tokens and addresses bare, the rest quoted, all bounded', () => {
  assert.equal(propertyValue('example.com'), 'example.com');
  assert.equal(propertyValue('192.0.2.1'), '192.0.2.1');
  assert.equal(propertyValue('jo@example.com'), 'jo@example.com');
  assert.equal(propertyValue('jo.smith+tag@example.com'), 'jo.smith+tag@example.com');
  assert.equal(propertyValue('@example.com'), '@example.com');
  assert.equal(propertyValue('2001:db8::1'), '"2001:db8::1"');
  assert.equal(propertyValue('a b@example.com'), '"a b@example.com"');
  assert.equal(propertyValue('jo@'), '"jo@"');
  assert.equal(propertyValue('jo@-bad-.example'), '"jo@-bad-.example"');
  assert.equal(propertyValue(''), '""');
  assert.equal(propertyValue('a"b'), '"a\\"b"');
  assert.equal(propertyValue('x'.repeat(500)).length, 112);
  assert.equal(propertyValue(`${'x'.repeat(500)}@example.com`).length, 112);
  assert.equal(propertyValue('x'.repeat(500), 20), `"${'x'.repeat(17)}..."`);
});

test('foldHeader: short values unchanged; long ones fold at clause ends within 78 characters', () => {
  assert.equal(
    foldHeader('Authentication-Results', 'mx.example.org; none'),
    'mx.example.org; none',
  );
  const value = authenticationResults('mx.example.org', [
    spfClause(mailfrom),
    spfClause(helo),
    iprevClause({ result: 'pass', ip: '192.0.2.3', name: 'mail.example.com' }),
  ]);
  const folded = foldHeader('Authentication-Results', value);
  assert.equal(
    folded,
    'mx.example.org; spf=pass smtp.mailfrom=jo@example.com;\n' +
      '\tspf=none smtp.helo=mail.example.com;\n' +
      '\tiprev=pass policy.iprev=192.0.2.3 (mail.example.com)',
  );
  const lines = `Authentication-Results: ${folded}`.split('\n');
  for (const line of lines) assert.ok(line.length <= 78, line);
  // Unfolding gives the value back, a tab where a space was.
  assert.equal(folded.replace(/\n\t/g, ' '), value);
  // The milter wants LF folds; a message on disk wants CRLF.
  assert.equal(
    foldHeader('Authentication-Results', value, { newline: '\r\n' }),
    folded.replace(/\n/g, '\r\n'),
  );
  // A narrower width folds inside a clause, between its words.
  const narrow = foldHeader('Authentication-Results', value, { width: 40 });
  for (const line of `Authentication-Results: ${narrow}`.split('\n'))
    assert.ok(line.length <= 40, line);
  assert.equal(narrow.replace(/\n\t/g, ' '), value);
});

test('foldHeader: never inside a quoted-string, no blank lines, words longer than a line kept whole', () => {
  const long = resultClause({
    method: 'spf',
    result: 'permerror',
    reason: 'a reason with many words that will not fit on one line at all, no matter what',
    properties: [{ ptype: 'smtp', property: 'mailfrom', value: `${'x'.repeat(90)}@example.com` }],
  });
  const value = authenticationResults('mx.example.org', [
    long,
    'iprev=pass  policy.iprev=192.0.2.1',
  ]);
  const folded = foldHeader('Authentication-Results', value);
  const lines = folded.split('\n');
  assert.ok(lines.length > 2);
  for (const line of lines) assert.doesNotMatch(line, /^\t?[ \t]*$/);
  // Each quoted-string is whole on one line.
  for (const line of lines)
    assert.equal((line.replace(/\\./g, '').match(/"/g) ?? []).length % 2, 0, line);
  assert.equal(folded.replace(/\n\t/g, ' '), value);
  assert.deepEqual(parseAuthResults(folded), parseAuthResults(value));
  // An unbreakable word longer than the width stays on a line of its own.
  const word = 'x'.repeat(120);
  assert.equal(foldHeader('X-Test', `a ${word} b`), `a\n\t${word}\n\tb`);
  assert.equal(foldHeader('X-Test', word), word);
  // Quoted-strings with spaces are not broken even when that makes a long line.
  const quoted = `"${'y '.repeat(50)}"`;
  assert.equal(foldHeader('X-Test', `a; ${quoted}; b`), `a;\n\t${quoted};\n\tb`);
});

test('foldHeader: line ends and NULs in the value cannot make a second header', () => {
  const value = `mx; spf=pass smtp.mailfrom=a\r\nX-Injected: 1\u0000 ${'z '.repeat(40)}`;
  const folded = foldHeader('Authentication-Results', value);
  assert.doesNotMatch(folded, /[\r\0]|\n(?![ \t])/);
  assert.match(folded, /a\?\?X-Injected: 1\?/);
  // An existing fold is unfolded first, not doubled.
  assert.equal(foldHeader('X', 'a;\r\n\tb'), 'a;\tb');
});

test('authservIdOf: the examples of RFC 8601 Appendix B', () => {
  const examples: [string, string][] = [
    // B.2, no authentication done.
    ['example.org 1; none', 'example.org'],
    // B.3, SPF.
    ['example.com; spf=pass smtp.mailfrom=example.net', 'example.com'],
    // SMTP AUTH and SPF, then iprev.
    [
      'example.com;\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\n          spf=pass smtp.mailfrom=example.net',
      'example.com',
    ],
    ['example.com; iprev=pass\n          policy.iprev=192.0.2.200', 'example.com'],
    // Multi-tiered.
    [
      'example.com;\n          dkim=pass (good signature) header.d=example.com;\n          dkim=fail (bad signature) header.d=newyork.example.com',
      'example.com',
    ],
    [
      'example.net;\n          dkim=pass (good signature) header.i=@newyork.example.com',
      'example.net',
    ],
    // B.7, comment-heavy.
    [
      "foo.example.net (foobar) 1 (baz);\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\n      policy (A dot can go here) . (like that) expired\n      (this surprised me) = (as I wasn't expecting it) 1362471462",
      'foo.example.net',
    ],
  ];
  for (const [value, id] of examples) {
    assert.equal(authservIdOf(value), id, value);
    assert.equal(authservIdOf(value.replace(/\n/g, '\r\n')), id, 'CRLF folds');
  }
});

test('authservIdOf: comments, quoted ids, folds, and where an id may end', () => {
  assert.equal(
    authservIdOf(' (a (nested (deep)) comment \\) with escapes) mx.example.org; none'),
    'mx.example.org',
  );
  assert.equal(authservIdOf('(c)mx.example.org(c); none'), 'mx.example.org');
  assert.equal(authservIdOf('"mx.example.org"; none'), 'mx.example.org');
  assert.equal(authservIdOf('"mx\\.exa\\"mple"; none'), 'mx.exa"mple');
  assert.equal(authservIdOf('"mx.exa\r\n mple"; none'), 'mx.exa mple');
  assert.equal(authservIdOf('\r\n\tmx.example.org\r\n\t; none'), 'mx.example.org');
  assert.equal(authservIdOf('mx.example.org'), 'mx.example.org');
  assert.equal(authservIdOf('mx.example.org;'), 'mx.example.org');
  assert.equal(authservIdOf('MX.Example.ORG 1 ; spf=pass'), 'MX.Example.ORG');
  // Internationalised mail may carry a U-label id.
  assert.equal(authservIdOf('mx.bücher.example; none'), 'mx.bücher.example');
  // Broken after the id: still the id, so that a claim to be us is removed all the same.
  assert.equal(authservIdOf('mx.example.org spf=pass'), 'mx.example.org');
  assert.equal(authservIdOf('mx.example.org; (unterminated'), 'mx.example.org');
});

test('authservIdOf: garbage is null, and the work is bounded', () => {
  for (const garbage of [
    '',
    ' ',
    '\r\n\t',
    ';',
    '; spf=pass',
    '(unterminated',
    '(a (b) c',
    '((((((((((((((((((((x))))))))))))))))))) ',
    '"unterminated',
    '"esc\\',
    '""; none',
    'spf=pass smtp.mailfrom=x',
    'mx.example.org/1; none',
    'mx@example.org; none',
    'a\u0000b; none',
    '"a\u0000b"; none',
    '\u0000mx.example.org; none',
    ')mx.example.org; none',
    `${'x'.repeat(300)}; none`,
    `"${'x'.repeat(300)}"; none`,
    `${'(comment)'.repeat(1000)} mx.example.org; none`,
    `${'('.repeat(100_000)}`,
    `${'x'.repeat(1_000_000)}`,
  ]) {
    const started = process.hrtime.bigint();
    assert.equal(authservIdOf(garbage), null, JSON.stringify(garbage.slice(0, 40)));
    // Not a speed assertion: a guard against a quadratic or unbounded scan, with a wide margin.
    assert.ok(process.hrtime.bigint() - started < 1_000_000_000n);
  }
});

test('isForgedAuthResults: a claim to be one of us, compared without case', () => {
  const ours = ['mx.example.org', 'MX2.Example.Org'];
  assert.equal(
    isForgedAuthResults('mx.example.org; spf=pass smtp.mailfrom=paypal.com', ours),
    true,
  );
  assert.equal(isForgedAuthResults('MX.EXAMPLE.ORG; none', ours), true);
  assert.equal(
    isForgedAuthResults('mx2.example.org 1; dkim=pass header.d=bank.example', ours),
    true,
  );
  assert.equal(isForgedAuthResults('"mx.example.org"; none', ours), true);
  assert.equal(isForgedAuthResults('(we are) mx.example.org (honest); none', ours), true);
  assert.equal(isForgedAuthResults('\r\n mx.example.org\r\n ; none', ours), true);
  // Others' headers stay, our own name inside them notwithstanding.
  assert.equal(
    isForgedAuthResults('gmail.com; spf=pass smtp.mailfrom=mx.example.org', ours),
    false,
  );
  assert.equal(isForgedAuthResults('(mx.example.org) gmail.com; none', ours), false);
  assert.equal(isForgedAuthResults('example.org; none', ours), false);
  assert.equal(isForgedAuthResults('mx.example.org.evil.test; none', ours), false);
  assert.equal(isForgedAuthResults('garbage (', ours), false);
  assert.equal(isForgedAuthResults('mx.example.org; none', []), false);
  // What we write is recognised as ours.
  const ownValue = authenticationResults('mx.example.org', [spfClause(mailfrom)]);
  assert.equal(isForgedAuthResults(ownValue, ours), true);
  assert.equal(isForgedAuthResults(foldHeader('Authentication-Results', ownValue), ours), true);
});
