import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  AccessMapError,
  type AccessMapProblem,
  formatAccessMapProblem,
  MAX_REPLY_TEXT,
  parseSpfAction,
  SpfAccessMap,
  type SpfPolicyAction,
} from '../../src/policy/access-map.js';
import { AccessMapFile } from '../../src/policy/access-map-file.js';
import { ManualClock, RecordingLogger } from '../greylist/helpers.js';

/** Parse text that must have no problems. */
function clean(text: string): SpfAccessMap {
  const { map, problems } = SpfAccessMap.parse(text, 'access');
  assert.deepEqual(problems, []);
  return map;
}

/** The one problem of a one-line map. */
function problemOf(text: string): AccessMapProblem {
  const { map, problems } = SpfAccessMap.parse(text, 'access');
  assert.equal(problems.length, 1, `one problem for ${JSON.stringify(text)}`);
  assert.equal(map.size, 0);
  return problems[0]!;
}

const SENDMAIL_ACCESS = `# /etc/mail/access: Sendmail's keys and ours in one file
Connect:localhost.localdomain   RELAY
Connect:192.168.1               RELAY
From:spammer@aol.com            REJECT
spf-relay.example.com           OK
example.net                     DISCARD

# SPF policy
SPF-Neutral:aol.com   ERROR:"550 5.7.1 AOL mail must get SPF PASS"
SPF-Softfail:         CBV
SPF-PermError:\tDSN
SPF-Fail:             REJECT
SPF-Pass:             OK
SPF-None:             OK
`;

test('a Sendmail access file: our keys are read, every other key is skipped', () => {
  const map = clean(SENDMAIL_ACCESS);
  assert.equal(map.size, 6);
  assert.deepEqual(map.lookup('neutral', 'aol.com'), {
    result: 'neutral',
    domain: 'aol.com',
    action: { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'AOL mail must get SPF PASS' },
    source: 'access',
    line: 9,
  });
  assert.deepEqual(map.lookup('softfail', 'example.com')?.action, { kind: 'CBV' });
  assert.deepEqual(map.lookup('permerror', 'example.com')?.action, { kind: 'DSN' });
  assert.deepEqual(map.lookup('fail', 'example.com')?.action, { kind: 'REJECT' });
  assert.deepEqual(map.lookup('pass', 'example.com')?.action, { kind: 'OK' });
  assert.equal(map.lookup('none', 'example.com')?.line, 14);
  // No SPF-Neutral: default, so only aol.com has a neutral entry.
  assert.equal(map.lookup('neutral', 'example.com'), undefined);
  assert.deepEqual(
    map.list().map((e) => e.line),
    [9, 10, 11, 12, 13, 14],
  );
});

test('every value form', () => {
  const cases: [string, SpfPolicyAction][] = [
    ['OK', { kind: 'OK' }],
    ['ok', { kind: 'OK' }],
    ['CBV', { kind: 'CBV' }],
    ['Dsn', { kind: 'DSN' }],
    ['REJECT', { kind: 'REJECT' }],
    [
      'ERROR:"550 5.7.1 AOL mail must get SPF PASS"',
      { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'AOL mail must get SPF PASS' },
    ],
    ['ERROR:"550 Go away"', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }],
    ['ERROR:550 Go away', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }],
    ['ERROR:5.7.1:550 Go away', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }],
    ['ERROR:5.7.0:553 Go away', { kind: 'ERROR', code: 553, xcode: '5.7.0', text: 'Go away' }],
    ['ERROR:"5.7.1:550 Go away"', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }],
    ['ERROR: Go away', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }],
    ['ERROR:Go away', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }],
    ['error:"550 5.7.1 x"', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'x' }],
    ['ERROR:450 try later', { kind: 'ERROR', code: 450, xcode: '4.7.1', text: 'try later' }],
    ['ERROR:451 4.7.0 try later', { kind: 'ERROR', code: 451, xcode: '4.7.0', text: 'try later' }],
    ['ERROR:4.7.1:451 later', { kind: 'ERROR', code: 451, xcode: '4.7.1', text: 'later' }],
    [
      'ERROR:550',
      { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'rejected by local SPF policy' },
    ],
    [
      'ERROR:"450"',
      { kind: 'ERROR', code: 450, xcode: '4.7.1', text: 'deferred by local SPF policy' },
    ],
    // A # inside the text is text, as in Postfix and Sendmail; quotes inside are kept.
    [
      'ERROR:"550 see ticket #12 "now""',
      { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'see ticket #12 "now"' },
    ],
    // Digits that are no reply code are text.
    ['ERROR: 3 strikes', { kind: 'ERROR', code: 550, xcode: '5.7.1', text: '3 strikes' }],
  ];
  for (const [value, action] of cases) {
    assert.deepEqual(parseSpfAction(value), action, value);
    assert.deepEqual(clean(`SPF-Fail:\t${value}\n`).lookup('fail', 'x.example')?.action, action);
  }
});

test('bad values are problems that say what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['MAYBE', /^unknown value "MAYBE" \(expected OK, CBV, DSN, REJECT or ERROR:\.\.\.\)$/],
    ['RELAY', /unknown value "RELAY"/],
    ['', /^no value/],
    ['REJECT go away', /unexpected text after REJECT: go away .*ERROR:"550 text"/],
    [
      'OK # comment',
      /unexpected text after OK: # comment \(a # starts a comment only at the start/,
    ],
    ['ERROR:250 fine', /4xx or 5xx reply code, not 250/],
    ['ERROR:599 nope', /4xx or 5xx reply code, not 599/],
    ['ERROR:"550 4.7.1 mixed"', /enhanced status code 4\.7\.1 does not match reply code 550/],
    ['ERROR:450 5.7.1 mixed', /5\.7\.1 does not match reply code 450/],
    ['ERROR:550 2.0.0 mixed', /2\.0\.0 does not match reply code 550/],
    ['ERROR:4.7.1:550 mixed', /4\.7\.1 does not match reply code 550/],
    ['ERROR:5.7.1: no code', /a reply code must follow 5\.7\.1:/],
    ['ERROR: 5.7.1 no code', /needs a reply code before it/],
    ['ERROR:550 5.7.1234 long', /bad enhanced status code 5\.7\.1234/],
    ['ERROR:6.0.0:550 class', /bad enhanced status code 6\.0\.0/],
    ['ERROR:5.7.1:550 5.7.2 two', /two different enhanced status codes, 5\.7\.1 and 5\.7\.2/],
    ['ERROR:"550 unterminated', /unterminated quoted text/],
    ['ERROR:"550 text" trailing', /unterminated quoted text, or text after the closing quote/],
    ['ERROR:"', /unterminated/],
  ];
  for (const [value, expected] of cases) {
    const action = parseSpfAction(value);
    assert.equal(typeof action, 'string', value);
    assert.match(action as string, expected, value);
  }
  // The same value twice with one code: accepted, written once.
  assert.deepEqual(parseSpfAction('ERROR:5.7.1:550 5.7.1 once'), {
    kind: 'ERROR',
    code: 550,
    xcode: '5.7.1',
    text: 'once',
  });
});

test('reply text is printable ASCII, one line, blanks squeezed, bounded', () => {
  const action = parseSpfAction('ERROR:"550 5.7.1 a\u0000b\rc\u00e9\u202e d\t\t e"');
  assert.deepEqual(action, { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'a?b?c?? d e' });
  const long = parseSpfAction(`ERROR:550 ${'x'.repeat(5000)}`);
  assert.ok(typeof long !== 'string' && long.kind === 'ERROR');
  if (typeof long !== 'string' && long.kind === 'ERROR') {
    assert.equal(long.text.length, MAX_REPLY_TEXT);
    assert.ok(long.text.endsWith('...'));
  }
  // Through a file, with a bare CR and NUL inside the line: the text stays one line.
  const map = clean('SPF-Fail: ERROR:"550 evil\r\u0000X-Injected: 1"\nSPF-Pass: OK\n');
  assert.deepEqual(map.lookup('fail', 'example.com')?.action, {
    kind: 'ERROR',
    code: 550,
    xcode: '5.7.1',
    text: 'evil??X-Injected: 1',
  });
  // A bare CR does not end a line (old Mac files): two keys on one line are one bad line.
  const joined = problemOf('SPF-Fail: REJECT\rSPF-Pass: OK\n');
  assert.equal(
    joined.problem,
    'unknown value "REJECT\\x0dSPF-Pass: OK" (expected OK, CBV, DSN, REJECT or ERROR:...)',
  );
  assert.equal(joined.text, 'SPF-Fail: REJECT?SPF-Pass: OK');
});

test('hostile text in the file never gets out unescaped', () => {
  const { map, problems } = SpfAccessMap.parse(
    [
      'SPF-Fail:evil\u0000.example REJECT',
      'SPF-Fail: MAY\u001b[31mBE\u00e9',
      'SPF-Neutral:ok.example ERROR:"550 fine"',
    ].join('\n'),
    '/etc/mail/acc\ness',
  );
  assert.equal(map.size, 1);
  assert.equal(problems.length, 2);
  for (const p of problems) {
    const line = formatAccessMapProblem(p);
    assert.doesNotMatch(line, /[^\x20-\x7e]/, line);
    assert.doesNotMatch(p.text, /[^\x20-\x7e]/);
  }
  assert.match(
    formatAccessMapProblem(problems[0]!),
    /^\/etc\/mail\/acc\\x0aess:1: not a domain name: evil\\x00\.example: /,
  );
  assert.match(problems[1]!.problem, /unknown value "MAY\\x1b\[31mBE\\xe9"/);
});

test('continuation lines (Postfix): a line starting with a blank continues the one before', () => {
  const map = clean(
    [
      'SPF-Neutral:aol.com ERROR:"550 5.7.1 AOL mail',
      '    must get',
      '# a comment between does not end the logical line',
      '',
      '\tSPF PASS"',
      'SPF-Softfail:',
      '  CBV',
      'Connect:10 RELAY',
      '  SPF-Fail: REJECT',
      'SPF-Pass: OK',
    ].join('\n'),
  );
  assert.deepEqual(map.lookup('neutral', 'aol.com'), {
    result: 'neutral',
    domain: 'aol.com',
    action: { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'AOL mail must get SPF PASS' },
    source: 'access',
    line: 1,
  });
  assert.deepEqual(map.lookup('softfail', 'x.example')?.action, { kind: 'CBV' });
  assert.equal(map.lookup('softfail', 'x.example')?.line, 6);
  // The continued `Connect:` line is someone else's: its continuation is not an SPF key.
  assert.equal(map.lookup('fail', 'x.example'), undefined);
  assert.equal(map.lookup('pass', 'x.example')?.line, 10);
});

test('a continuation with nothing to continue is a problem only when it looks like ours', () => {
  const { map, problems } = SpfAccessMap.parse(
    '  Connect:10 RELAY\n  SPF-Fail: REJECT\nSPF-Pass: OK\n',
    'access',
  );
  assert.equal(map.size, 1);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 2);
  assert.match(problems[0]!.problem, /continuation line .* with no line before it/);
});

test('CRLF files, a byte-order mark, trailing blanks and whitespace-only lines', () => {
  const map = clean(
    '\ufeffSPF-Fail: REJECT  \r\n   \r\n\t\r\n# c\r\nSPF-Neutral:aol.com\tERROR:"550 x"\r\n  \r\nSPF-Pass:\tOK\t\r\n',
  );
  assert.equal(map.size, 3);
  assert.deepEqual(map.lookup('fail', 'a.example')?.action, { kind: 'REJECT' });
  assert.deepEqual(map.lookup('neutral', 'aol.com')?.action, {
    kind: 'ERROR',
    code: 550,
    xcode: '5.7.1',
    text: 'x',
  });
  assert.equal(map.lookup('neutral', 'aol.com')?.line, 5);
  assert.equal(map.lookup('pass', 'a.example')?.line, 7);
});

test('tags match without case; a key with no colon is a plain domain of someone else', () => {
  const map = clean(
    [
      'spf-softfail: CBV',
      'SPF-SOFTFAIL:a.example REJECT',
      'Spf-SoftFail:b.example OK',
      'SPF-permerror: DSN',
      'spf-none.example.com OK',
      'SPF-Pass.example.com REJECT',
    ].join('\n'),
  );
  assert.equal(map.size, 4);
  assert.deepEqual(map.lookup('softfail', 'c.example')?.action, { kind: 'CBV' });
  assert.deepEqual(map.lookup('softfail', 'a.example')?.action, { kind: 'REJECT' });
  assert.deepEqual(map.lookup('softfail', 'b.example')?.action, { kind: 'OK' });
  assert.deepEqual(map.lookup('permerror', 'b.example')?.action, { kind: 'DSN' });
  assert.equal(map.lookup('none', 'example.com'), undefined);
  assert.equal(map.lookup('pass', 'example.com'), undefined);
});

test('the most specific entry wins: the domain, then each parent, then the bare tag', () => {
  const map = clean(
    [
      'SPF-Neutral: OK',
      'SPF-Neutral:com CBV',
      'SPF-Neutral:aol.com REJECT',
      'SPF-Neutral:mx.aol.com DSN',
      'SPF-Neutral:Mixed.Example. ERROR:"550 mixed"',
    ].join('\n'),
  );
  const kind = (domain: string | null | undefined) => {
    const action = map.lookup('neutral', domain)?.action;
    return action?.kind;
  };
  assert.equal(kind('mx.aol.com'), 'DSN');
  assert.equal(kind('a.b.mx.aol.com'), 'DSN');
  assert.equal(kind('aol.com'), 'REJECT');
  assert.equal(kind('smtp.aol.com'), 'REJECT');
  assert.equal(kind('example.com'), 'CBV');
  assert.equal(kind('example.org'), 'OK');
  // A suffix that is no parent is no match.
  assert.equal(kind('notaol.org'), 'OK');
  assert.equal(kind('evilaol.com'), 'CBV');
  // No case, no trailing dot, either side.
  assert.equal(kind('MX.AOL.COM.'), 'DSN');
  assert.equal(kind('mixed.example'), 'ERROR');
  assert.equal(map.lookup('neutral', 'mixed.example')?.domain, 'mixed.example');
  // An address is looked up by its domain.
  assert.equal(kind('jo@mx.aol.com'), 'DSN');
  assert.equal(kind('"a@b"@aol.com'), 'REJECT');
  // No domain, an empty one, or garbage: the default.
  assert.equal(kind(null), 'OK');
  assert.equal(kind(undefined), 'OK');
  assert.equal(kind(''), 'OK');
  assert.equal(kind('.'), 'OK');
  assert.equal(kind(`${'a.'.repeat(200)}aol.com`), 'OK');
  // Other results have no entries; temperror never has one.
  assert.equal(map.lookup('fail', 'aol.com'), undefined);
  assert.equal(map.lookup('temperror', 'aol.com'), undefined);
});

test('internationalised names are compared as written: A-labels with A-labels', () => {
  const map = clean('SPF-Fail:xn--bcher-kva.example REJECT\nSPF-Fail:bücher.test CBV\n');
  assert.equal(map.lookup('fail', 'mail.xn--bcher-kva.example')?.action.kind, 'REJECT');
  assert.equal(map.lookup('fail', 'XN--BCHER-KVA.EXAMPLE')?.action.kind, 'REJECT');
  assert.equal(map.lookup('fail', 'bücher.example'), undefined);
  assert.equal(map.lookup('fail', 'mx.bücher.test')?.action.kind, 'CBV');
  assert.equal(map.lookup('fail', 'xn--bcher-kva.test'), undefined);
});

test('malformed SPF lines are problems with their line numbers; good lines are kept', () => {
  const text = [
    'SPF-Pass: OK', // 1
    'SPF-TempError: REJECT', // 2
    'SPF-Unknown: REJECT', // 3
    'SPF-Fail:user@aol.com REJECT', // 4
    'SPF-Fail:bad..example REJECT', // 5
    'SPF-Fail:.aol.com REJECT', // 6
    'SPF-Fail:a_b/c.example REJECT', // 7
    `SPF-Fail:${'a'.repeat(64)}.example REJECT`, // 8
    `SPF-Fail:${'abc.'.repeat(70)}example REJECT`, // 9
    'SPF-Neutral: aol.com REJECT', // 10
    'SPF-Fail:', // 11
    'SPF-Pass: REJECT', // 12: a duplicate
    'SPF-Pass:Example.COM OK', // 13
    'SPF-Pass:example.com. REJECT', // 14: a duplicate too
    '    continued', // 15: part of line 14
    'SPF-Softfail: CBV', // 16
    'SPF-Fail:REJECT', // 17
    'SPF-Fail:ERROR:"550 glued"', // 18
  ].join('\n');
  const { map, problems } = SpfAccessMap.parse(text, '/etc/mail/access');
  assert.equal(map.size, 3);
  const byLine = new Map(problems.map((p) => [p.line, p.problem]));
  assert.deepEqual([...byLine.keys()], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 17, 18]);
  assert.match(byLine.get(2)!, /SPF-TempError: cannot be set: a TempError always tempfails/);
  assert.match(
    byLine.get(3)!,
    /unknown SPF result "Unknown" \(expected Pass, Fail, Softfail, Neutral, PermError or None\)/,
  );
  assert.match(byLine.get(4)!, /an SPF key names a domain, not an address/);
  assert.match(byLine.get(5)!, /not a domain name: bad\.\.example/);
  assert.match(byLine.get(6)!, /not a domain name/);
  assert.match(byLine.get(7)!, /not a domain name/);
  assert.match(byLine.get(8)!, /not a domain name/);
  assert.match(byLine.get(9)!, /domain name too long/);
  assert.match(
    byLine.get(10)!,
    /unknown value "aol.com REJECT".*a domain goes right after the tag, without a blank \(as in SPF-Neutral:aol.com\)/,
  );
  assert.match(byLine.get(11)!, /no value/);
  assert.match(byLine.get(12)!, /duplicate key \(first at line 1, which is used\)/);
  // Line 14 was continued: "REJECT continued" is its value, and the key was a duplicate anyway.
  assert.match(byLine.get(14)!, /^unexpected text after REJECT: continued /);
  assert.equal(
    byLine.get(17),
    'no value; a blank goes between the key and the value (as in SPF-Fail: REJECT)',
  );
  assert.match(byLine.get(18)!, /^no value; a blank goes between .*SPF-Fail: ERROR:"550 glued"\)$/);
  assert.deepEqual(map.lookup('pass', 'x.example')?.action, { kind: 'OK' });
  assert.equal(map.lookup('pass', 'example.com')?.line, 13);
  assert.equal(
    formatAccessMapProblem(problems[0]!),
    '/etc/mail/access:2: SPF-TempError: cannot be set: a TempError always tempfails: SPF-TempError: REJECT',
  );
  assert.equal(problems[0]!.source, '/etc/mail/access');
  assert.equal(problems[0]!.text, 'SPF-TempError: REJECT');
});

test('strict mode throws on the first problem, naming source and line', () => {
  assert.throws(
    () =>
      SpfAccessMap.parse('SPF-Pass: OK\n\nSPF-Fail: NOPE\nSPF-Neutral: NOPE\n', 'site.access', {
        strict: true,
      }),
    (err: unknown) =>
      err instanceof AccessMapError &&
      err.problems.length === 1 &&
      err.problems[0]!.line === 3 &&
      err.message ===
        'site.access:3: unknown value "NOPE" (expected OK, CBV, DSN, REJECT or ERROR:...): SPF-Fail: NOPE',
  );
  const { map } = SpfAccessMap.parse('SPF-Pass: OK\n', 'site.access', { strict: true });
  assert.equal(map.size, 1);
  // Without a source, problems say `inline`.
  assert.throws(
    () => SpfAccessMap.parse('SPF-Pass: MAYBE', undefined, { strict: true }),
    /^AccessMapError: inline:1: /,
  );
});

test('a garbage file: bounded problems, long lines refused, no entries', () => {
  const lines: string[] = [];
  for (let i = 0; i < 1000; i++) lines.push(`SPF-Fail: garbage-${i}`);
  lines.push(`SPF-Pass: ERROR:"550 ${'y'.repeat(10_000)}"`);
  const { map, problems } = SpfAccessMap.parse(lines.join('\n'), 'junk');
  assert.equal(map.size, 0);
  assert.equal(problems.length, 101);
  assert.equal(problems[100]!.problem, '901 more problems not listed');
  assert.equal(problems[100]!.line, 1001);
  for (const p of problems) assert.ok(p.text.length <= 200);
  // One line over the limit: refused, whatever it says.
  const long = problemOf(`SPF-Pass: ERROR:"550 ${'y'.repeat(10_000)}"`);
  assert.match(long.problem, /line longer than 4096 characters/);
  // Continuations do not get around the limit.
  const continued = problemOf(`SPF-Pass: ERROR:"550${'\n  yyyyyyyyyy'.repeat(1000)}"`);
  assert.match(continued.problem, /line longer than/);
  // A binary file (someone pointed us at access.db): never a crash.
  const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString(
    'latin1',
  );
  const binary = SpfAccessMap.parse(bytes, 'access.db');
  assert.equal(binary.map.size, 0);
});

test('an empty map has no entries for anything', () => {
  const map = SpfAccessMap.empty();
  assert.equal(map.size, 0);
  assert.equal(map.lookup('fail', 'aol.com'), undefined);
  assert.equal(clean('').size, 0);
  assert.equal(clean('# only a comment\n\n').size, 0);
});

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailgate-access-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('AccessMapFile.load: a good file, a bad one, a missing one', async () => {
  const good = join(dir, 'good');
  await writeFile(good, SENDMAIL_ACCESS);
  const logger = new RecordingLogger();
  const file = await AccessMapFile.load(good, { logger });
  assert.equal(file.map.size, 6);
  assert.equal(file.path, good);
  assert.ok(logger.has('info', 'access map loaded'));
  assert.equal((await file.lookup('neutral', 'mx.aol.com'))?.action.kind, 'ERROR');

  const bad = join(dir, 'bad');
  await writeFile(bad, 'SPF-Pass: OK\nSPF-Fail: NOPE\nSPF-Neutral: NOPE\n');
  await assert.rejects(
    AccessMapFile.load(bad),
    (err: unknown) =>
      err instanceof AccessMapError &&
      err.problems.length === 2 &&
      err.message.startsWith(`${bad}:2: unknown value "NOPE"`) &&
      err.message.endsWith('(and 1 more)'),
  );
  const missing = join(dir, 'missing');
  await assert.rejects(
    AccessMapFile.load(missing),
    (err: Error) => err.message.includes(missing) && /ENOENT/.test(err.message),
  );
  await mkdir(join(dir, 'a-directory'));
  await assert.rejects(AccessMapFile.load(join(dir, 'a-directory')), /not a regular file/);
});

test('AccessMapFile follows changes at most once a second; a bad edit keeps the old map', async () => {
  const path = join(dir, 'follow');
  await writeFile(path, 'SPF-Neutral: OK\n');
  const clock = new ManualClock(1_000_000);
  const logger = new RecordingLogger();
  const file = await AccessMapFile.load(path, { clock, logger });
  assert.equal((await file.lookup('neutral', 'aol.com'))?.action.kind, 'OK');

  await writeFile(path, 'SPF-Neutral: OK\nSPF-Neutral:aol.com REJECT\n');
  clock.advance(999);
  // Within the second: the old map, without a look at the file.
  assert.equal((await file.lookup('neutral', 'aol.com'))?.action.kind, 'OK');
  clock.advance(1);
  assert.equal((await file.lookup('neutral', 'aol.com'))?.action.kind, 'REJECT');
  assert.ok(logger.has('info', 'access map reloaded'));

  // A bad edit: the previous map stays, and the problem is logged once, not every second.
  await writeFile(path, 'SPF-Neutral: OK\nSPF-Neutral:aol.com REJECTT\n');
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    assert.equal((await file.lookup('neutral', 'aol.com'))?.action.kind, 'REJECT');
  }
  assert.equal(logger.count('warn', 'access map has problems; keeping the previous map'), 1);
  assert.ok(
    logger.has(
      'warn',
      `${path}:2: unknown value "REJECTT" (expected OK, CBV, DSN, REJECT or ERROR:...): SPF-Neutral:aol.com REJECTT`,
    ),
  );

  // reload() says why it kept the old map.
  const problems = await file.reload();
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 2);
  assert.equal(file.map.lookup('neutral', 'aol.com')?.action.kind, 'REJECT');

  // Fixed, and replaced by rename as editors do: taken at once by reload().
  await writeFile(`${path}.new`, 'SPF-Neutral:aol.com CBV\n');
  await rename(`${path}.new`, path);
  assert.deepEqual(await file.reload(), []);
  assert.equal(file.map.lookup('neutral', 'aol.com')?.action.kind, 'CBV');
  assert.equal(file.map.lookup('neutral', 'example.com'), undefined);
});

test('AccessMapFile: a vanished file keeps its map; reload() reports it; it comes back', async () => {
  const path = join(dir, 'vanish');
  await writeFile(path, 'SPF-Fail: REJECT\n');
  const clock = new ManualClock(5_000_000);
  const logger = new RecordingLogger();
  const file = await AccessMapFile.load(path, { clock, logger });
  await unlink(path);
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    assert.equal((await file.lookup('fail', 'x.example'))?.action.kind, 'REJECT');
  }
  assert.equal(logger.count('warn', 'access map unreadable; keeping the previous map'), 1);
  const problems = await file.reload();
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 0);
  assert.match(formatAccessMapProblem(problems[0]!), new RegExp(`^${path}: .*ENOENT`));
  await writeFile(path, 'SPF-Fail: CBV\n');
  clock.advance(1000);
  assert.equal((await file.lookup('fail', 'x.example'))?.action.kind, 'CBV');
});

test('AccessMapFile: a clock stepped back does not stop the looks; concurrent lookups share one', async () => {
  const path = join(dir, 'clock');
  await writeFile(path, 'SPF-Pass: OK\n');
  const clock = new ManualClock(50_000_000);
  const logger = new RecordingLogger();
  const file = await AccessMapFile.load(path, { clock, logger });
  clock.set(50_000_000 - 3_600_000);
  await writeFile(path, 'SPF-Pass: DSN\n');
  clock.advance(1000);
  const results = await Promise.all([
    file.lookup('pass', 'a.example'),
    file.lookup('pass', 'b.example'),
    file.lookup('pass', 'c.example'),
  ]);
  assert.deepEqual(
    results.map((r) => r?.action.kind),
    ['DSN', 'DSN', 'DSN'],
  );
  assert.equal(logger.count('info', 'access map reloaded'), 1);
});
